"""Each worker process listens on a socket of its own (SO_REUSEPORT), and a busy port stops the server at once."""

from __future__ import annotations

import pickle
import socket
import subprocess
import sys
from pathlib import Path

from app.backend.serve import OwnListener, bind_reuse_port

ROOT = Path(__file__).resolve().parents[3]


def test_each_worker_unpickles_a_socket_of_its_own_on_the_reserved_port():
    with bind_reuse_port("127.0.0.1", 0) as reserved:
        port = reserved.getsockname()[1]
        listener = OwnListener("127.0.0.1", port)
        # What uvicorn's supervisor pickles for each worker process:
        with pickle.loads(pickle.dumps(listener)) as first, pickle.loads(pickle.dumps(listener)) as second:
            assert first.fileno() != second.fileno()
            assert first.getsockname() == second.getsockname() == ("127.0.0.1", port)
            first.listen()
            second.listen()
            with socket.create_connection(("127.0.0.1", port), timeout=2):
                pass


def test_the_reserved_port_is_refused_to_a_plain_bind():
    with bind_reuse_port("127.0.0.1", 0) as reserved, socket.socket() as other:
        try:
            other.bind(reserved.getsockname())
        except OSError as exc:
            assert exc.errno == 98  # EADDRINUSE
        else:
            raise AssertionError("a plain socket could bind the reserved port")


def test_a_busy_port_stops_the_server_with_its_reason(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        run = subprocess.run(
            [sys.executable, "-m", "app.backend", "--host", "127.0.0.1", "--port", str(port), "--workers", "2"],
            cwd=ROOT,
            env={"PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics"), "PATH": "/usr/bin:/bin"},
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert run.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}: Address already in use" in run.stderr
    assert "Traceback" not in run.stderr


def test_no_worker_is_refused_with_its_reason():
    run = subprocess.run(
        [sys.executable, "-m", "app.backend", "--workers", "0"],
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 2
    assert "--workers (MNIST_WORKERS) must be at least 1, not 0" in run.stderr
