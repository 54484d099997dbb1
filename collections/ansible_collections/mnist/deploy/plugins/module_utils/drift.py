"""What a host serves against what its last deploy recorded, read at each scrape: the release exporter's metrics
(mnist_release_info, the last deploy's time, mnist_release_drift) and the nightly testinfra check's findings.

Drift is anything the deploy did not make: a running container it did not record (someone's `docker run`, a
container recreated by hand), a recorded one that no longer runs (stopped or removed by hand), or a file of the
release that differs from its recorded hash (edited by hand), in the release's folder or in a folder it mounts by
fingerprint (prometheus/<fp>/, …). What runs is read from /proc (every process's cgroup names its container), so
the exporter needs no Docker socket: it runs with the host's process namespace, unprivileged, the stack's folder
mounted read-only.

Standard library only (and lock.py's name of the lock): it runs inside the release exporter's image and, through
testinfra, on the host.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

try:
    from ansible_collections.mnist.deploy.plugins.module_utils.lock import LOCK_DIR
except ImportError:  # in the release exporter's image, lock.py lies beside this file
    from lock import LOCK_DIR  # type: ignore[no-redef]

SERVING_FILE = "serving.json"  # written by the deploy's record step (module_utils/releases.py)
RECORD_FILE = "release.json"  # a release's record, in its folder
CONTAINER_ID = re.compile(r"[0-9a-f]{64}")
MAX_ITEMS = 20  # drift items exported as series: enough to say what differs, bounded


def _cgroup_ids(proc: str, pid: str) -> set:
    try:
        with open(os.path.join(proc, pid, "cgroup")) as handle:
            return set(CONTAINER_ID.findall(handle.read()))
    except OSError:  # the process ended meanwhile
        return set()


def running_containers(proc: str = "/proc") -> set:
    """The ids of the containers with a running process, from each process's cgroup path. A host that is itself a
    container (the sandbox's, an LXC machine) has its own id in every path, its init's (pid 1) too: not one of its
    containers."""
    found = set()
    for pid in os.listdir(proc):
        if pid.isdigit():
            found |= _cgroup_ids(proc, pid)
    return found - _cgroup_ids(proc, "1")


def _sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 16), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _read_json(path: str):
    try:
        with open(path) as handle:
            return json.load(handle)
    except (OSError, ValueError):
        return None


def file_drift(home: str, release: str, files: dict) -> list:
    """The release's FILES ({path: sha256}, its record's) that differ on the host: in releases/RELEASE/, and in the
    folders it mounts (a path under SERVICE/ whose SERVICE/fingerprint names the folder <home>/SERVICE/<fp>/)."""
    folder = os.path.join(home, "releases", release)
    fingerprints = {}
    for path in files:
        service, _, rest = path.partition("/")
        if rest == "fingerprint":
            try:
                with open(os.path.join(folder, path)) as handle:
                    fingerprints[service] = handle.read().strip()
            except OSError:
                pass
    found = []
    for path, wanted in sorted(files.items()):
        places = [(os.path.join(folder, path), f"releases/{release}/{path}")]
        service, _, rest = path.partition("/")
        if fingerprints.get(service) and rest != "fingerprint":
            where = f"{service}/{fingerprints[service]}/{rest}"
            places.append((os.path.join(home, where), where))
        for place, shown in places:
            try:
                if _sha256(place) != wanted:
                    found.append(f"file {shown} differs from the release")
            except OSError:
                found.append(f"file {shown} is missing")
    return found


def container_drift(recorded: dict, running: set) -> list:
    """RECORDED ({id: name}, what the deploy left running) against the RUNNING container ids."""
    found = [f"container {cid[:12]} runs but no deploy started it" for cid in sorted(running - set(recorded))]
    found += [f"container {recorded[cid]} ({cid[:12]}) no longer runs" for cid in sorted(set(recorded) - running)]
    return found


def inspect(home: str, proc: str = "/proc") -> dict:
    """What HOME's last deploy recorded and how the host differs from it: {release, record, recorded_at,
    in_progress, drift: [sentences]}."""
    serving = _read_json(os.path.join(home, SERVING_FILE))
    if not isinstance(serving, dict) or not serving.get("release"):
        return {"release": "", "record": {}, "recorded_at": 0, "in_progress": False, "drift": []}
    release = str(serving["release"])
    record = _read_json(os.path.join(home, "releases", release, RECORD_FILE)) or {}
    drift = container_drift(dict(serving.get("containers") or {}), running_containers(proc))
    drift += file_drift(home, release, dict(record.get("files") or {}))
    return {
        "release": release,
        "record": record,
        "recorded_at": float(serving.get("recorded_at") or 0),
        "in_progress": os.path.isdir(os.path.join(home, LOCK_DIR)),
        "drift": drift,
    }


def _label(value) -> str:
    return str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", " ")


def metrics(host: str, state: dict) -> str:
    """STATE (inspect's) in Prometheus's text format."""
    record = state["record"]
    lines = [
        "# HELP mnist_release_info The release this host serves, as its last deploy recorded it.",
        "# TYPE mnist_release_info gauge",
    ]
    if state["release"]:
        labels = {
            "host": host,
            "release": state["release"],
            "model_version": str(record.get("model_version", ""))[:12],
            "git_sha": record.get("git_sha", ""),
        }
        pairs = ",".join(f'{k}="{_label(v)}"' for k, v in labels.items())
        lines.append(f"mnist_release_info{{{pairs}}} 1")
    lines += [
        "# HELP mnist_release_deployed_timestamp_seconds When the last deploy or rollback recorded what serves.",
        "# TYPE mnist_release_deployed_timestamp_seconds gauge",
        f'mnist_release_deployed_timestamp_seconds{{host="{_label(host)}"}} {state["recorded_at"]}',
        "# HELP mnist_release_drift 1 when the host differs from what its last deploy recorded.",
        "# TYPE mnist_release_drift gauge",
        f'mnist_release_drift{{host="{_label(host)}"}} {1 if state["drift"] else 0}',
        "# HELP mnist_release_drift_item One difference between the host and its last deploy's record.",
        "# TYPE mnist_release_drift_item gauge",
    ]
    for item in state["drift"][:MAX_ITEMS]:
        lines.append(f'mnist_release_drift_item{{host="{_label(host)}",item="{_label(item)}"}} 1')
    lines += [
        "# HELP mnist_deploy_in_progress 1 while a deploy holds the host's lock (drift is expected meanwhile).",
        "# TYPE mnist_deploy_in_progress gauge",
        f'mnist_deploy_in_progress{{host="{_label(host)}"}} {1 if state["in_progress"] else 0}',
    ]
    return "\n".join(lines) + "\n"


def serve(home: str, host: str, port: int, proc: str = "/proc") -> None:
    class Exporter(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            if self.path.split("?")[0] not in ("/metrics", "/"):
                self.send_error(404)
                return
            started = time.monotonic()
            body = metrics(host, inspect(home, proc))
            body += f"mnist_release_exporter_scrape_seconds {time.monotonic() - started:.4f}\n"
            payload = body.encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args) -> None:
            pass

    ThreadingHTTPServer(("", port), Exporter).serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description="Export what the host serves and its drift from the record.")
    parser.add_argument("--home", required=True, help="the stack's folder (mounted read-only)")
    parser.add_argument("--host", required=True, help="the host's inventory name")
    parser.add_argument("--port", type=int, default=9101)
    parser.add_argument("--check", action="store_true", help="print the findings as JSON once and exit")
    args = parser.parse_args()
    if args.check:
        print(json.dumps({**inspect(args.home), "record": {}}))
        return
    serve(args.home, args.host, args.port)


if __name__ == "__main__":
    main()
