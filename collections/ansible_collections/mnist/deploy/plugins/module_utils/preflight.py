"""A host made ready for a release in one pass: its releases folder, what an interrupted deploy left behind, and
enough free space where images and releases land.

One module call instead of five: through a bastion each task is a round trip, and a deploy runs this on every host
before any host changes.
"""

from __future__ import annotations

import glob
import os
import shutil

from ansible_collections.mnist.deploy.plugins.module_utils import engine


def free_mb(path: str) -> int:
    """Free space (MB) on PATH's filesystem, as root sees it; a folder not made yet (a dry run of a first deploy) is
    measured where it would be made."""
    while not os.path.exists(path):
        parent = os.path.dirname(path)
        if parent == path:
            break
        path = parent
    stat = os.statvfs(path)
    return stat.f_bavail * stat.f_frsize // (1024 * 1024)


def space_problem(free: dict, needed_mb: int) -> str:
    """Why FREE ({path: MB}) is too little for a deploy needing NEEDED_MB on each filesystem, '' when it is enough."""
    short = {path: mb for path, mb in free.items() if mb < needed_mb}
    if not short:
        return ""
    where = ", ".join(f"{mb} MB in {path}" for path, mb in sorted(short.items()))
    return f"only {where} free; the deploy needs {needed_mb} MB (mnist_stack_min_free_disk_mb)"


def compose_problem(rc: int, out: str, err: str) -> str:
    """Why the host's Compose (`docker compose version --short`: RC, OUT, ERR) cannot bring a release up, '' when it
    can (engine.compose_problem's rule, the one bootstrap applies). Checked before anything ships: a host without
    it used to receive 1 GB of images, then fail."""
    problem = engine.compose_problem(out if rc == 0 else (err or out), engine.MIN_COMPOSE)
    return f"{problem}: run `invoke bootstrap` for this environment" if problem else ""


# Where Ansible lands a file while it copies it (ship-archive.yml points its remote_tmp there): a copy killed midway
# leaves its partial archive in a folder of this one.
TRANSFER = "transfer"


def leftover_archives(drop_dir: str) -> list:
    """Image archives in DROP_DIR, and the folders of copies cut short in DROP_DIR/transfer: under the environment's
    lock, each one is what a dead deploy left."""
    patterns = ("*.tar", "*.tar.gz", os.path.join(TRANSFER, "*"))
    return sorted(path for pattern in patterns for path in glob.glob(os.path.join(drop_dir, pattern)))


def prepare(home: str, drop_dir: str, check: bool = False) -> list:
    """Make HOME/releases (unless CHECK) and remove the leftover archives; return those removed (or that would be)."""
    leftovers = leftover_archives(drop_dir)
    if not check:
        os.makedirs(os.path.join(home, "releases"), mode=0o750, exist_ok=True)
        for leftover in leftovers:
            if os.path.isdir(leftover) and not os.path.islink(leftover):
                shutil.rmtree(leftover)
            else:
                os.unlink(leftover)
    return leftovers
