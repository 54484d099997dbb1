"""The deploy lock on a host: a directory that appears atomically with its owner already inside it.

`<home>/deploy.lock/owner.json` says who holds it (by, release, since, token). It is made in a temporary folder
next to it and renamed into place, so no other deploy ever sees a lock without an owner; a rename onto an existing
lock fails, so of two deploys racing exactly one wins; the run holding it may ask again. Only the holder's token
releases it, unless forced.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import tempfile
import time
from datetime import datetime, timezone

LOCK_DIR = "deploy.lock"
OWNER_FILE = "owner.json"


def read_owner(lock: str) -> dict:
    try:
        with open(os.path.join(lock, OWNER_FILE)) as handle:
            return json.load(handle)
    except (OSError, ValueError):
        return {}


def describe(holder: dict, now: float) -> str:
    """'alice@ci for release 0123456789ab since 2026-12-02T10:00:00Z (3 min ago)', from an owner record."""
    if not holder:
        return "an unknown deploy (the lock has no readable owner)"
    age = ""
    if isinstance(holder.get("since_epoch"), (int, float)):
        minutes = max(0, int((now - holder["since_epoch"]) // 60))
        age = f" ({minutes // 60} h {minutes % 60} min ago)" if minutes >= 60 else f" ({minutes} min ago)"
    release = holder.get("release") or "?"
    return f"{holder.get('by', '?')} for release {release} since {holder.get('since', '?')}{age}"


def acquire(home: str, by: str, release: str, token: str, now: float | None = None) -> dict:
    """Take the lock in HOME: {'acquired': bool, 'holder': owner record (ours, or the one in the way)}."""
    now = time.time() if now is None else now
    lock = os.path.join(home, LOCK_DIR)
    owner = {
        "by": by,
        "release": release,
        "token": token,
        "since": datetime.fromtimestamp(now, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "since_epoch": now,
    }
    staging = tempfile.mkdtemp(prefix=".deploy.lock-", dir=home)
    try:
        with open(os.path.join(staging, OWNER_FILE), "w") as handle:
            json.dump(owner, handle)
        if os.path.lexists(lock):  # rename() would replace an empty directory: never take over an existing lock
            holder = read_owner(lock)  # the same run asking again (its revert after a failure) holds it already
            return {"acquired": holder.get("token") == token, "holder": holder}
        try:
            os.rename(staging, lock)
        except OSError as exc:
            if exc.errno in (errno.EEXIST, errno.ENOTEMPTY):
                return {"acquired": False, "holder": read_owner(lock)}
            raise
        return {"acquired": True, "holder": owner}
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def release(home: str, token: str, force: bool = False) -> dict:
    """Remove the lock if TOKEN holds it (or FORCE): {'released': bool, 'holder': the owner record found}."""
    lock = os.path.join(home, LOCK_DIR)
    if not os.path.lexists(lock):
        return {"released": False, "holder": {}}
    holder = read_owner(lock)
    if not force and holder.get("token") != token:
        return {"released": False, "holder": holder}
    shutil.rmtree(lock)
    return {"released": True, "holder": holder}


def refusals(results: dict) -> list:
    """'HOST is locked by another deploy: HOLDER' for each host whose deploy_lock result was refused, sorted."""
    return [
        f"{host} is locked by another deploy: {result.get('holder_text') or 'an unknown deploy'}"
        for host, result in sorted(results.items())
        if result.get("refused")
    ]
