"""Running commands: output streamed (progress stays visible), failures raised with what failed."""

from __future__ import annotations

import shlex
import subprocess
from collections.abc import Sequence
from pathlib import Path

from rich.console import Console

from mnist_deploy.errors import DeployError

console = Console(highlight=False)


def run(
    args: Sequence[str | Path],
    *,
    cwd: Path | None = None,
    quiet: bool = False,
    input: bytes | None = None,
    env: dict[str, str] | None = None,
) -> str:
    """Run ARGS; return stdout when QUIET (else stream it), raise DeployError naming the command on failure."""
    command = [str(a) for a in args]
    if not quiet:
        console.print(f"[dim]$ {shlex.join(command)}[/]")
    try:
        proc = subprocess.run(
            command,
            cwd=cwd,
            input=input,
            env=env,
            check=False,
            stdout=subprocess.PIPE if quiet else None,
            stderr=subprocess.PIPE if quiet else None,
        )
    except FileNotFoundError as exc:
        raise DeployError(f"{command[0]} is not installed") from exc
    if proc.returncode != 0:
        detail = (proc.stderr or b"").decode(errors="replace").strip()[-2000:] if quiet else ""
        raise DeployError(f"`{shlex.join(command)}` failed (exit {proc.returncode}){': ' + detail if detail else ''}")
    return (proc.stdout or b"").decode(errors="replace")


def succeeds(args: Sequence[str | Path], timeout: float = 20) -> bool:
    try:
        # No stdin: ssh, polled here, would set an inherited stdin non-blocking, and Ansible refuses to run on one.
        proc = subprocess.run(
            [str(a) for a in args], stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout, check=False
        )
        return proc.returncode == 0
    except (FileNotFoundError, subprocess.TimeoutExpired):
        return False
