"""What `invoke status` asks of one host, in one round trip: run there as `sudo python3 -c <this file> HOME PROJECT`
(Fabric through the bastion; locally for dev), it prints one JSON document. Standard library only, Python ≥ 3.9:
it runs on the host's own Python, the one Ansible uses.

- release: the `current` and `previous` links of HOME (the stack's folder), the current release's record
  (release.json: its model version, who deployed it), and the deploy lock's owner if a deploy holds it;
- containers: every container of the Compose project PROJECT, running or not — service, state, health, restarts;
- proxy: the backend slots HAProxy's runtime API lists (`proxy-ctl show` in the proxy container), as
  [address, operational state, admin state] each;
- disk: free and total bytes where the engine keeps its images (Docker's root dir) and under HOME.

Every part that cannot be read says why under "errors" instead of failing the whole probe.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys


def _json(path):
    try:
        with open(path) as handle:
            return json.load(handle)
    except (OSError, ValueError):
        return None


def _link(path):
    return os.path.basename(os.readlink(path)) if os.path.islink(path) else ""


def _docker(*args):
    done = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=30, check=False)
    if done.returncode != 0:
        said = (done.stderr or done.stdout).strip().splitlines()
        raise RuntimeError(said[-1] if said else "docker " + args[0] + " failed")
    return done.stdout


def release(home):
    lock = os.path.join(home, "deploy.lock")
    current = _link(os.path.join(home, "current"))
    record = _json(os.path.join(home, "releases", current, "release.json")) if current else None
    return {
        "current": current,
        "previous": _link(os.path.join(home, "previous")),
        "model_version": (record or {}).get("model_version", ""),
        "lock": _json(os.path.join(lock, "owner.json")) or {} if os.path.isdir(lock) else None,
    }


def containers(project):
    ids = _docker("ps", "--all", "--quiet", "--filter", "label=com.docker.compose.project=" + project).split()
    found = []
    for item in json.loads(_docker("inspect", *ids)) if ids else []:
        state = item.get("State") or {}
        labels = (item.get("Config") or {}).get("Labels") or {}
        found.append(
            {
                "name": item.get("Name", "").lstrip("/"),
                "id": item.get("Id", "")[:12],
                "service": labels.get("com.docker.compose.service", ""),
                "state": state.get("Status", ""),
                "health": (state.get("Health") or {}).get("Status", ""),
                "restarts": item.get("RestartCount", 0),
                "started": state.get("StartedAt", ""),
            }
        )
    return sorted(found, key=lambda c: (c["service"], c["name"]))


def proxy_slots(found):
    running = [c for c in found if c["service"] == "proxy" and c["state"] == "running"]
    if not running:
        return None
    # show servers state api: be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state ...
    rows = [line.split() for line in _docker("exec", running[0]["name"], "proxy-ctl", "show").splitlines()]
    return [[row[4], int(row[5]), int(row[6])] for row in rows if len(row) > 6 and row[1] == "api"]


def disk(home):
    try:
        places = {"images": _docker("info", "--format", "{{.DockerRootDir}}").strip()}
    except (RuntimeError, OSError):
        places = {}
    places["releases"] = home if os.path.isdir(home) else os.path.dirname(home.rstrip("/")) or "/"
    usage = {}
    for what, path in places.items():
        if os.path.isdir(path):
            total, _, free = shutil.disk_usage(path)
            usage[what] = {"path": path, "free": free, "total": total}
    return usage


def probe(home, project):
    result: dict = {"errors": {}}
    for part, read in (
        ("release", lambda: release(home)),
        ("containers", lambda: containers(project)),
        ("disk", lambda: disk(home)),
    ):
        try:
            result[part] = read()
        except (RuntimeError, OSError, ValueError, subprocess.SubprocessError) as exc:
            result[part] = None
            result["errors"][part] = str(exc)
    try:
        result["proxy"] = proxy_slots(result["containers"] or [])
    except (RuntimeError, OSError, ValueError, subprocess.SubprocessError) as exc:
        result["proxy"] = None
        result["errors"]["proxy"] = str(exc)
    return result


if __name__ == "__main__":
    print(json.dumps(probe(sys.argv[1], sys.argv[2])))
