"""A controller as a team member has it: a user who is not root, in the docker group, without sudo, with a checkout
of their own (this commit, with this working tree's changes), a virtualenv of their own with the controller's
requirements only (requirements-ops.txt) and the environment's access files a team hands out (the SSH key, the known
hosts, the CA). Made for one scenario step, removed after it.
"""

from __future__ import annotations

import contextlib
import grp
import os
import pwd
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from mnist_deploy import bastion

NAME = "mnist-operator"


@dataclass(frozen=True)
class Operator:
    name: str
    home: Path
    checkout: Path

    def run(self, *argv: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        """ARGV in the checkout as the operator (a name alone: one of their virtualenv's scripts): their uid, their
        group and docker's, their HOME, nothing of root's environment (no SUDO_USER, no MNIST_OPERATOR, no pip
        settings)."""
        venv_bin = self.checkout / ".venv" / "bin"
        env = {"HOME": str(self.home), "USER": self.name, "LOGNAME": self.name, "LANG": "C.UTF-8"}
        env["PATH"] = f"{venv_bin}:/usr/local/bin:/usr/bin:/bin"
        command = argv[0] if "/" in argv[0] else str(venv_bin / argv[0])
        return subprocess.run(
            [command, *argv[1:]],
            cwd=self.checkout,
            user=self.name,
            group=self.name,
            extra_groups=["docker"],
            env=env,
            capture_output=True,
            text=True,
            check=False,
            timeout=timeout,
        )


def _git(root: Path, *args: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(["git", *args], cwd=root, check=True, capture_output=True, **kwargs)


def _copy_checkout(root: Path, dest: Path) -> None:
    """A clone of ROOT's commit, then its working tree's changes (tracked and new files, removals)."""
    _git(root, "clone", "--quiet", "--no-hardlinks", str(root), str(dest))
    changed = _git(root, "ls-files", "--modified", "--others", "--exclude-standard", "-z").stdout.split(b"\0")
    for name in filter(None, (entry.decode() for entry in changed)):
        source, target = root / name, dest / name
        if source.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
        else:
            target.unlink(missing_ok=True)


@contextlib.contextmanager
def operator(
    root: Path, access_files: list[Path], wheels: Path, python: str = "/usr/bin/python3"
) -> Iterator[Operator]:
    """The operator, with ROOT's checkout, ACCESS_FILES (files and folders under ROOT) and WHEELS copied to theirs
    and a virtualenv of PYTHON made from the wheels; the user and everything of theirs removed afterwards."""
    try:
        pwd.getpwnam(NAME)
        raise RuntimeError(f"user {NAME} exists already: remove it (`userdel -r {NAME}`) if an earlier run left it")
    except KeyError:
        pass
    grp.getgrnam("docker")  # the engine's group: Debian's docker.io makes it
    subprocess.run(["useradd", "--create-home", "--user-group", "--shell", "/bin/bash", NAME], check=True)
    try:
        home = Path(pwd.getpwnam(NAME).pw_dir)
        checkout = home / "mnist-deployment"
        _copy_checkout(root, checkout)
        for path in [*access_files, wheels]:
            target = checkout / path.relative_to(root)
            target.parent.mkdir(parents=True, exist_ok=True)
            if path.is_dir():
                shutil.copytree(path, target)
            else:
                shutil.copy2(path, target)
        uid, gid = pwd.getpwnam(NAME).pw_uid, grp.getgrnam(NAME).gr_gid
        for folder, dirs, files in os.walk(checkout):
            for name in [folder, *(os.path.join(folder, entry) for entry in dirs + files)]:
                os.lchown(name, uid, gid)
        made = Operator(NAME, home, checkout)
        theirs = checkout / wheels.relative_to(root)
        commands = bastion.virtualenv_commands(
            str(checkout / ".venv"),
            str(theirs),
            str(next(theirs.glob("pip-*.whl"))),
            str(checkout / "requirements-ops.txt"),
            python,
        )
        for command in commands:
            done = made.run(*command)
            if done.returncode != 0:
                raise RuntimeError(f"{' '.join(command)} as {NAME} failed: {done.stderr[-2000:]}")
        yield made
    finally:
        _stop_processes_of(NAME)
        subprocess.run(["userdel", "--remove", NAME], check=True, capture_output=True)


def _stop_processes_of(user: str, timeout: float = 10) -> None:
    """Stop what the user made for the step still runs (SSH's shared connections persist after a deploy), by pid."""
    listed = subprocess.run(["ps", "-u", user, "-o", "pid="], capture_output=True, text=True, check=False)
    pids = [int(pid) for pid in listed.stdout.split()]
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while pids and time.monotonic() < deadline:
        pids = [pid for pid in pids if Path(f"/proc/{pid}").exists()]
        time.sleep(0.1)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
