"""Running commands: output streamed (progress stays visible), failures raised with what failed."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
import time
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


def run_logged(
    args: Sequence[str | Path], log: Path, label: str, step: re.Pattern[str] | None = None, input: bytes | None = None
) -> None:
    """Run ARGS with its whole output appended to LOG; show LABEL and, per line matching STEP, how far it is.

    STEP's groups are (current, total, what). On failure, raise DeployError with the last lines and the log's path.
    """
    command = [str(a) for a in args]
    log.parent.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    tty = sys.stdout.isatty()
    with log.open("a") as out, console.status(label) as status:
        out.write(f"\n$ {shlex.join(command)}\n")
        out.flush()
        proc = subprocess.Popen(
            command, stdin=subprocess.PIPE if input else None, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
        if input:
            assert proc.stdin is not None
            proc.stdin.write(input)
            proc.stdin.close()
        assert proc.stdout is not None
        for raw in proc.stdout:
            line = raw.decode(errors="replace")
            out.write(line)
            match = step.search(line) if step and tty else None  # a log file or CI gets the summary only
            if match:
                current, total, what = [g for g in match.groups() if g is not None]
                status.update(f"{label}: step {current}/{total} {what.strip()[:60]}")
        proc.wait()
    seconds = time.monotonic() - started
    if proc.returncode != 0:
        tail = log.read_text(errors="replace").splitlines()[-20:]
        raise DeployError(
            f"{label} failed (exit {proc.returncode}) after {seconds:.0f} s; full log: {log}\n" + "\n".join(tail)
        )
    console.print(f"{label}: done in {seconds:.0f} s")
