"""A host's releases, and the decisions a deploy or a rollback takes from them.

`read_state` reads a host's stack folder once: the releases it keeps (their records, newest first), which one is
`current` and `previous`, the environment's history of releases, and the folders the proxy and Prometheus mount.
Everything else here is a pure function of that state, tested without a host:

- `history_after`: the history after a deploy or a rollback. A deploy appends its release; a rollback goes back
  to its target, dropping what came after it. So rollbacks walk back through history and never flip between two
  releases: deploy A, B, C then rollback, rollback serves B then A, and a third rollback is refused.
- `rollback_target`: the release a rollback returns a host to, or why it cannot; `environment_rollback` asks it of
  every host and refuses unless all agree, so an environment always ends on one release. A failed deploy is undone
  the same way, each host it switched returned to the release it ran.
- `prune_plan`: the releases beyond the kept number, the images only they use, and mounted folders no kept release
  names.
- `gate_verdict`: whether the replicas that answered the gate serve the release's model well enough.
"""

from __future__ import annotations

import json
import math
import os
import time

from ansible_collections.mnist.deploy.plugins.module_utils import identity
from ansible_collections.mnist.deploy.plugins.module_utils.drift import RECORD_FILE, SERVING_FILE
from ansible_collections.mnist.deploy.plugins.module_utils.services import MOUNTED

HISTORY_FILE = "history.json"
HISTORY_LIMIT = 100


def _read_json(path: str):
    try:
        with open(path) as handle:
            return json.load(handle)
    except (OSError, ValueError):
        return None


def _read_text(path: str) -> str:
    try:
        with open(path) as handle:
            return handle.read().strip()
    except OSError:
        return ""


def _link_target(path: str) -> str:
    return os.path.basename(os.readlink(path)) if os.path.islink(path) else ""


def read_state(home: str) -> dict:
    """The host's releases as plain data: see the module docstring."""
    folder = os.path.join(home, "releases")
    releases = []
    for name in sorted(os.listdir(folder)) if os.path.isdir(folder) else []:
        path = os.path.join(folder, name)
        if not os.path.isdir(path) or os.path.islink(path):
            continue
        releases.append(
            {
                "id": name,
                "path": path,
                "mtime": os.stat(path).st_mtime,
                "record": _read_json(os.path.join(path, RECORD_FILE)),
                "mounts": {service: _read_text(os.path.join(path, service, "fingerprint")) for service in MOUNTED},
            }
        )
    releases.sort(key=lambda release: (release["mtime"], release["id"]), reverse=True)
    current, previous = _link_target(os.path.join(home, "current")), _link_target(os.path.join(home, "previous"))
    history = _read_json(os.path.join(home, HISTORY_FILE))
    if not isinstance(history, list) or not all(isinstance(entry, str) for entry in history):
        history = [release for release in (previous, current) if release]  # hosts deployed before the history
    mounted = {}
    for service in MOUNTED:
        service_dir = os.path.join(home, service)
        mounted[service] = sorted(os.listdir(service_dir)) if os.path.isdir(service_dir) else []
    return {
        "home": home,
        "releases": releases,
        "current": current,
        "previous": previous,
        "history": history,
        "mounted": mounted,
    }


def history_after(history: list, event: str, release: str) -> list:
    """The history once RELEASE serves after EVENT (deploy or rollback); its last entry is the current release."""
    if event not in ("deploy", "rollback"):
        raise ValueError(f"unknown event {event!r}: deploy or rollback")
    history = list(history)
    if event == "rollback" and release in history:
        history = history[: len(history) - history[::-1].index(release)]
    elif not history or history[-1] != release:
        history.append(release)
    return history[-HISTORY_LIMIT:]


def kept(state: dict) -> dict:
    """The releases the host keeps with a readable record, by id."""
    return {release["id"]: release for release in state["releases"] if release["record"]}


def rollback_target(state: dict, to: str = "", revert: bool = False) -> dict:
    """{'target': release id, 'refusal': why not}: an empty target with no refusal means the host has nothing to do.

    TO: that release. REVERT: undo a failed deploy, returning the host to TO, the release it ran before; a host the
    deploy did not switch has no TO and nothing to do. Otherwise: the release before the current one in the
    environment's history.
    """
    history, current = state["history"], state["current"]
    if revert and not to:
        return {"target": "", "refusal": ""}
    if to:
        target = to
    elif len(history) >= 2 and history[-1] == current:
        target = history[-2]
    elif history and history[-1] != current:
        return {
            "target": "",
            "refusal": f"serves {current or 'nothing'}, not {history[-1]} as its history says: "
            "roll back to a release by id (--to)",
        }
    else:
        return {
            "target": "",
            "refusal": f"the environment's history holds no release before {current or 'the current one'} "
            "(each rollback goes one release further back); name one with --to",
        }
    if target not in kept(state):
        ids = ", ".join(release["id"] for release in state["releases"]) or "none"
        return {"target": "", "refusal": f"keeps no release {target} (it keeps: {ids})"}
    return {"target": target, "refusal": ""}


def environment_rollback(decisions: dict, agree: bool = True) -> dict:
    """Every host's rollback decision ({host: rollback_target(...)}) turned into the environment's.

    {'targets': {host: id or ''}, 'refusals': [...]}: refused when any host refuses, or (AGREE) when hosts would end
    on different releases. Reverting a failed deploy returns each host to what it ran, so it does not ask them to
    agree.
    """
    refusals = [f"{host} {decision['refusal']}" for host, decision in sorted(decisions.items()) if decision["refusal"]]
    targets = {host: decision["target"] for host, decision in decisions.items()}
    chosen = sorted(set(filter(None, targets.values())))
    if agree and not refusals and len(chosen) > 1:
        split = ", ".join(f"{host} → {target}" for host, target in sorted(targets.items()))
        refusals.append(f"the hosts would end on different releases ({split}): roll back to one by id (--to)")
    return {"targets": targets, "refusals": refusals}


def prune_plan(state: dict, keep: int, release: str, active: str) -> dict:
    """What to remove once RELEASE serves (ACTIVE served before it), keeping the newest KEEP releases.

    {'releases': paths, 'images': identities of the images only the removed releases use, 'mounted': folders of the
    proxy's and Prometheus's files no kept release names, 'kept': the ids of the releases kept}. RELEASE and ACTIVE
    are always kept.
    """
    if keep < 2:
        raise ValueError("keep at least the current and the previous release (keep >= 2)")
    releases = state["releases"]
    protected = {release, active}
    pruned = []
    if len(releases) > keep:
        others = [entry for entry in releases if entry["id"] not in protected]
        pruned = others[keep - len([entry for entry in releases if entry["id"] in protected]) :]
    pruned_ids = {entry["id"] for entry in pruned}
    kept_releases = [entry for entry in releases if entry["id"] not in pruned_ids]

    def image_ids(entries):
        return {identity.of(image) for entry in entries for image in (entry["record"] or {}).get("images", [])}

    mounted = []
    for service in MOUNTED:
        used = {entry["mounts"].get(service) for entry in kept_releases}
        folder = os.path.join(state["home"], service)
        mounted += [os.path.join(folder, name) for name in state["mounted"].get(service, []) if name not in used]
    return {
        "releases": [entry["path"] for entry in pruned],
        "images": sorted(image_ids(pruned) - image_ids(kept_releases)),
        "mounted": mounted,
        "kept": [entry["id"] for entry in kept_releases],
    }


def gate_threshold(expected: float, digits: int, reference: int, z: float = 3.0) -> float:
    """The least share of DIGITS gate digits a replica must classify, when its model classified EXPECTED of
    REFERENCE digits of the same kind (its metadata): the expected share lowered by Z standard deviations of the
    difference between the two shares (binomial), so that a sound replica fails by chance about once in 700 gates
    while a broken one (its preprocessing, its model file) does not pass."""
    expected = min(max(expected, 0.0), 1.0)
    spread = math.sqrt(expected * (1 - expected) * (1 / max(digits, 1) + 1 / max(reference, 1)))
    return round(max(expected - z * spread, 0.0), 4)


def gate_verdict(answers: list, running: int, expected: int, model: str, thresholds: dict, floor: float) -> str:
    """Why the gate fails ('' when it passes): RUNNING replicas answered (EXPECTED wanted), each ready, serving
    MODEL, classifying the raw digits at least as well as THRESHOLDS['raw'] and FLOOR (whichever is higher), and
    the drawn digits (through the preprocessing) as well as THRESHOLDS['drawn'] when the release has one (the
    model's own record: mnist_deploy/gate.py); a release recorded without thresholds is held to FLOOR."""
    problems = []
    if running != expected:
        problems.append(f"{running} running backend replicas (expected {expected})")
    if not answers:
        problems.append("no replica answered")
    unready = [answer for answer in answers if not answer.get("ready")]
    if unready:
        problems.append(f"{len(unready)} not ready")
    versions = sorted({str(answer.get("version")) for answer in answers})
    if answers and versions != [model]:
        problems.append(f"serving model {', '.join(v[:12] for v in versions)}, expected {model[:12]}")
    least = max(float(floor), float(thresholds.get("raw") or 0.0))
    accuracies = [answer.get("accuracy") or 0.0 for answer in answers]
    if answers and min(accuracies) < least:
        problems.append(f"raw digits {min(accuracies):.0%} < {least:.1%}")
    if answers and "drawn" in thresholds:
        drawn = [answer.get("drawn_accuracy") or 0.0 for answer in answers]
        if min(drawn) < float(thresholds["drawn"]):
            problems.append(f"drawn digits {min(drawn):.0%} < {float(thresholds['drawn']):.1%}")
    if not problems:
        return ""
    return f"gate failed: {'; '.join(problems)}; answers {'; '.join(json.dumps(a, sort_keys=True) for a in answers)}"


def switch_failure(release: str, host: str, why: str, active: str, restore_failure: str | None, env: str) -> str:
    """What a host's failed switch says: RELEASE failed on HOST because WHY, and what serves now — the earlier
    release ACTIVE put back, nothing (a first deploy: the stack stopped), the release itself left as it served (a
    redeploy), or, when putting back failed too (RESTORE_FAILURE), that what runs is not known."""
    said = f"release {release} failed on {host}: {why}."
    if restore_failure is not None:
        return (
            f"{said} Putting back what served failed too ({restore_failure}): what runs there is not known; "
            f"`invoke verify --env={env}` says."
        )
    if not active:
        return f"{said} There was no earlier release: the stack is stopped."
    if active == release:
        return f"{said} It served before and is left as it is."
    return f"{said} Rolled back to release {active}, which serves again."


def change_plan(current: dict | None, release: dict, files: dict, host_images: list) -> dict:
    """What deploying RELEASE (its FILES for this host) would change on a host serving CURRENT (its record, None on
    a first deploy) whose engine holds HOST_IMAGES (docker_image_info's images).

    {'first': bool, 'same_release': bool, 'ship': images the host lacks, 'files': paths added, changed or removed,
    'replace': services whose containers would be replaced (a new image, or files they mount that changed)}.
    """
    current = current or {}
    old_files = current.get("files") or {}
    changed_files = sorted(path for path in set(files) | set(old_files) if files.get(path) != old_files.get(path))
    # Compose recreates a service whose definition changed: the image's name (tags follow git sha and model), or
    # the files it mounts (proxy/haproxy.cfg → proxy).
    old_refs = {image["service"]: image["ref"] for image in current.get("images", [])}
    replace = {image["service"] for image in release["images"] if old_refs.get(image["service"]) != image["ref"]}
    replace |= {path.split("/", 1)[0] for path in changed_files if "/" in path}
    return {
        "first": not current,
        "same_release": current.get("id") == release["id"],
        "ship": identity.missing(release["images"], host_images),
        "files": changed_files,
        "replace": sorted(replace),
    }


def _point(link: str, target: str, check: bool) -> bool:
    """Make LINK point at TARGET (atomically: a new link renamed over the old); whether it changed."""
    if os.path.islink(link) and os.readlink(link) == target:
        return False
    if not check:
        temporary = f"{link}.new"
        if os.path.lexists(temporary):
            os.unlink(temporary)
        os.symlink(target, temporary)
        os.replace(temporary, link)
    return True


def audit_line(time: str, event: str, release: str, by: str, host: str, note: str = "") -> str:
    """One line of the host's audit log: history, not state, so appending it is no change to the host. NOTE says
    what the operator gave as the reason (a release deployed without the environment it is promoted from)."""
    line = {"time": time, "event": event, "release": release, "by": by, "host": host}
    return json.dumps({**line, "note": note} if note else line)


def record(
    home: str, release: str, active: str, event: str, line: str, check: bool = False, running: dict | None = None
) -> dict:
    """After RELEASE served (ACTIVE before it) through EVENT: `previous` and `current` links, the audit LINE, the
    environment's history, and what serves (SERVING_FILE: the release, when, and the RUNNING containers {id: name}
    the release exporter compares the host with). Return {'changed': bool, 'history': the new history}. A `failed`
    event only logs."""
    history = read_state(home)["history"]  # before the links move: a host without history.json derives it from them
    history_path = os.path.join(home, HISTORY_FILE)
    changed = False
    if event != "failed":
        releases_dir = os.path.join(home, "releases")
        if active and active != release:
            changed |= _point(os.path.join(home, "previous"), os.path.join(releases_dir, active), check)
        changed |= _point(os.path.join(home, "current"), os.path.join(releases_dir, release), check)
    if not check:
        with open(os.path.join(home, "audit.log"), "a") as log:
            log.write(line + "\n")
        os.chmod(os.path.join(home, "audit.log"), 0o640)
    if event == "failed":
        return {"changed": changed, "history": history}
    if not check:  # when it was recorded changes every time: history, not a change to report
        serving = {"release": release, "recorded_at": round(time.time(), 3), "containers": running or {}}
        with open(os.path.join(home, f"{SERVING_FILE}.new"), "w") as out:
            out.write(json.dumps(serving, indent=1, sort_keys=True) + "\n")
        os.replace(os.path.join(home, f"{SERVING_FILE}.new"), os.path.join(home, SERVING_FILE))
    after = history_after(history, event, release)
    if after != history or not os.path.isfile(history_path):
        changed = True
        if not check:
            with open(f"{history_path}.new", "w") as out:
                out.write(json.dumps(after) + "\n")
            os.replace(f"{history_path}.new", history_path)
    return {"changed": changed, "history": after}


def container_names(containers: list) -> dict:
    """{id: name} of docker_host_info's CONTAINERS (Names: ["/name"])."""
    return {c["Id"]: ((c.get("Names") or [c["Id"][:12]])[0]).lstrip("/") for c in containers if c.get("Id")}


def containers_by_service(containers: list) -> dict:
    """{service: [container ids]} from docker_host_info's containers (verbose: with their Compose labels)."""
    services: dict = {}
    for container in sorted(containers, key=lambda c: c.get("Created", 0)):
        service = (container.get("Labels") or {}).get("com.docker.compose.service")
        if service:
            services.setdefault(service, []).append(container["Id"])
    return services


def container_addresses(containers: list, ids: list, network: str) -> list:
    """The addresses on NETWORK of the containers IDS, in their order, from docker_host_info's containers (verbose).
    A container with no address there (stopped, or on another network) is refused: its slot could not be drained."""
    by_id = {container["Id"]: container for container in containers}
    addresses = []
    for cid in ids:
        networks = ((by_id.get(cid) or {}).get("NetworkSettings") or {}).get("Networks") or {}
        address = (networks.get(network) or {}).get("IPAddress")
        if not address:
            raise ValueError(f"container {cid[:12]} has no address on {network}")
        addresses.append(address)
    return addresses


def replaced_by_compose(containers: list, config_hash_line: str) -> bool:
    """Whether `docker compose up` replaces a service's running container. CONFIG_HASH_LINE is `docker compose config
    --hash SERVICE`'s output ("SERVICE HASH"); the running container (docker_host_info's verbose CONTAINERS) carries
    the hash it was made from in its com.docker.compose.config-hash label. No running container: it is made."""
    service, wanted = config_hash_line.split()[-2:]
    for container in containers:
        labels = container.get("Labels") or {}
        if labels.get("com.docker.compose.service") == service:
            return labels.get("com.docker.compose.config-hash") != wanted
    return True


def replica_targets(containers: list, network: str, port: int) -> list:
    """The scrape targets (address:PORT on NETWORK, sorted) of CONTAINERS (docker_host_info's verbose containers)."""
    ids = [container["Id"] for container in containers]
    return sorted(f"{address}:{port}" for address in container_addresses(containers, ids, network))


def scraped_targets(query: dict) -> list:
    """The instances (sorted) in a `promtool query instant -o json` run's result (a registered task result); []
    when the query failed (Prometheus starting, or gone)."""
    if query.get("rc", 1) != 0:
        return []
    return sorted(sample["metric"]["instance"] for sample in json.loads(query.get("stdout") or "[]"))
