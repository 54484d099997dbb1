"""Start the project's real servers on 127.0.0.1 for a test, and always stop them."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until_ok(url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise TimeoutError(f"{url} did not answer 200 within {timeout} s")


@contextlib.contextmanager
def running(command: list[str], ready_url: str, env: dict[str, str], cwd: Path) -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen(
        command,
        env={**os.environ, "PYTHONPATH": str(ROOT), **env},
        cwd=cwd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        wait_until_ok(ready_url)
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextlib.contextmanager
def backend(workdir: Path, workers: int = 1, port: int | None = None) -> Iterator[str]:
    """The real backend (`python -m app.backend`) serving the committed model; yields its base URL."""
    port = port or free_port()
    base = f"http://127.0.0.1:{port}"
    env = {
        "MNIST_MODEL_DIR": str(ROOT / "models"),
        "MNIST_LOG_LEVEL": "WARNING",
        "PROMETHEUS_MULTIPROC_DIR": str(workdir / f"metrics-{port}"),
        "MNIST_FEEDBACK_URL": f"sqlite:///{workdir / f'feedback-{port}.db'}",
    }
    command = [
        sys.executable,
        "-m",
        "app.backend",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(workers),
    ]
    with running(command, f"{base}/ready", env, workdir):
        yield base
