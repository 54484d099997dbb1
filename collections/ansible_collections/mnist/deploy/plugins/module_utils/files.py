"""Install a set of files in one pass: only those whose content, mode or owner differ are written, atomically.

One module call for a release's whole folder instead of one copy per file: through a bastion each file costs a
round trip, and a no-op redeploy would spend most of its time asking whether a file changed.
"""

from __future__ import annotations

import grp
import json
import os
import pwd
import tempfile

from ansible_collections.mnist.deploy.plugins.module_utils.drift import RECORD_FILE
from ansible_collections.mnist.deploy.plugins.module_utils.services import MOUNTED


def _uid(owner: str) -> int:
    return int(owner) if owner.isdigit() else pwd.getpwnam(owner).pw_uid


def _gid(group: str) -> int:
    return int(group) if group.isdigit() else grp.getgrnam(group).gr_gid


def differs(target: str, content: bytes, mode: int, uid: int, gid: int) -> bool:
    try:
        info = os.lstat(target)
        with open(target, "rb") as handle:
            same = handle.read() == content
    except OSError:
        return True
    return not same or (info.st_mode & 0o7777) != mode or info.st_uid != uid or info.st_gid != gid


def install(dest: str, files: list, dir_mode: int = 0o755, check: bool = False) -> list:
    """Write FILES ([{path, content, mode, owner, group, create_only}], paths relative to DEST) that differ; return
    their paths. A CREATE_ONLY file is written when missing and never replaced (a release's record)."""
    changed = []
    for entry in files:
        relative = os.path.normpath(entry["path"])
        if relative.startswith("..") or os.path.isabs(relative):
            raise ValueError(f"{entry['path']!r} is outside {dest}")
        target = os.path.join(dest, relative)
        content = entry["content"]
        if not isinstance(content, str):  # a JSON document handed over as data
            content = json.dumps(content, indent=4, sort_keys=True)
        content = content.encode()
        mode = int(str(entry.get("mode") or "0644"), 8)
        uid, gid = _uid(str(entry.get("owner") or "root")), _gid(str(entry.get("group") or "root"))
        if (entry.get("create_only") and os.path.lexists(target)) or not differs(target, content, mode, uid, gid):
            continue
        changed.append(relative)
        if check:
            continue
        folder = os.path.dirname(target)
        if not os.path.isdir(folder):
            os.makedirs(folder, mode=dir_mode)
        handle, temporary = tempfile.mkstemp(prefix=".install-", dir=folder)
        try:
            with os.fdopen(handle, "wb") as out:
                out.write(content)
            os.chmod(temporary, mode)
            os.chown(temporary, uid, gid)
            os.replace(temporary, target)
        except BaseException:
            if os.path.exists(temporary):
                os.unlink(temporary)
            raise
    return changed


def read_tree(root: str) -> list:
    """Every file under ROOT as [{path, content}] (text), sorted: what `install` takes."""
    found = []
    for folder, _, names in os.walk(root):
        for name in names:
            path = os.path.join(folder, name)
            with open(path, encoding="utf-8") as handle:
                found.append({"path": os.path.relpath(path, root), "content": handle.read()})
    return sorted(found, key=lambda entry: entry["path"])


# The fixed uids of the images whose secrets the deploy installs (docker/proxy.Dockerfile, alertmanager.Dockerfile).
PROXY_UID, ALERTMANAGER_UID = "10080", "10093"


def release_files(
    host_dir: str,
    release: dict,
    host: str,
    passwords: dict | None = None,
    pem: str | None = None,
    alert_secrets: dict | None = None,
) -> list:
    """Every file a host needs for RELEASE, paths relative to the stack's home, for one `install` call.

    HOST_DIR: what Invoke rendered for HOST. Into releases/<id>/: those files, the release's record for the host
    (written once: a release never changes) and, in secrets/, PASSWORDS ({compose secret name: password},
    services.password_files: Grafana's, the database's), readable by their containers' users (not root). Into
    <service>/<fingerprint>/ for Prometheus, the proxy and Alertmanager, the folders compose.yaml mounts (named
    after the renderer's hash of their files, so a release with the same files finds them in place): their files;
    with PEM, the proxy's certificate and key in one file only the proxy's user may read; with ALERT_SECRETS
    ({name: content}, alerting.secret_files), Alertmanager's receivers' secrets in secrets/, only its user may read.
    """
    tree = read_tree(host_dir)
    folder = f"releases/{release['id']}"
    files = [{**entry, "path": f"{folder}/{entry['path']}"} for entry in tree]
    record = {**release, "files": release["files"][host], "host": host}
    record_json = json.dumps(record, indent=4, sort_keys=True)
    files.append({"path": f"{folder}/{RECORD_FILE}", "content": record_json, "create_only": True})
    for name, password in sorted((passwords or {}).items()):
        if password:
            files.append({"path": f"{folder}/secrets/{name}", "content": password + "\n", "mode": "0444"})
    for service in MOUNTED:
        mounted = [entry for entry in tree if entry["path"].startswith(service + "/")]
        if not mounted:
            continue
        fingerprint = next(e["content"] for e in mounted if e["path"] == f"{service}/fingerprint").strip()
        files += [
            {**entry, "path": f"{service}/{fingerprint}/{entry['path'][len(service) + 1 :]}"} for entry in mounted
        ]
        secrets = {}
        if service == "proxy" and pem:
            secrets = {"tls.pem": (pem, PROXY_UID)}
        if service == "alertmanager":
            secrets = {
                f"secrets/{name}": (content + "\n", ALERTMANAGER_UID) for name, content in (alert_secrets or {}).items()
            }
        for name, (content, uid) in sorted(secrets.items()):
            files.append(
                {
                    "path": f"{service}/{fingerprint}/{name}",
                    "content": content,
                    "owner": uid,
                    "group": uid,
                    "mode": "0400",
                }
            )
    return files
