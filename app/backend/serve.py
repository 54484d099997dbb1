"""`python -m app.backend`: serve with uvicorn, N worker processes sharing one metrics directory."""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import uvicorn
from uvicorn.supervisors import Multiprocess

from app.mnist import blas

APP = "app.backend.main:app"


def tcp_socket(host: str) -> socket.socket:
    return socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)


def bind_reuse_port(host: str, port: int) -> socket.socket:
    """A socket bound to HOST:PORT that other SO_REUSEPORT sockets of this user may bind too."""
    sock = tcp_socket(host)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.set_inheritable(True)
    return sock


@dataclass(frozen=True)
class OwnListener:
    """Stands in uvicorn's list of listening sockets, and turns into a socket of each worker's own when the worker
    process unpickles it: every worker listens on its own SO_REUSEPORT socket, and the kernel spreads connections
    across them. With the one socket uvicorn shares, the worker that woke first took the connections: 32 connections
    were split 31/1 or 32/0 in a good share of runs, and one worker served while the other idled."""

    host: str
    port: int

    def __reduce__(self) -> tuple[Any, tuple[str, int]]:
        return bind_reuse_port, (self.host, self.port)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The server's options; each default comes from its MNIST_* variable (compose sets them per deployment)."""
    parser = argparse.ArgumentParser(prog="python -m app.backend", description=__doc__)
    # bandit B104: inside a container the server must listen on the container's interface.
    parser.add_argument("--host", default=os.environ.get("MNIST_HOST", "0.0.0.0"))  # nosec B104
    parser.add_argument("--port", type=int, default=int(os.environ.get("MNIST_PORT", "8000")))
    parser.add_argument("--workers", type=int, default=int(os.environ.get("MNIST_WORKERS", "1")))
    parser.add_argument("--reload", action="store_true", help="restart on code changes (development)")
    parser.add_argument("--app", default=APP, help="the ASGI app to serve (the benchmark serves its references)")
    args = parser.parse_args(argv)
    if args.workers < 1:
        parser.error(f"--workers (MNIST_WORKERS) must be at least 1, not {args.workers}")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    blas.one_thread_by_default()  # before the app, and numpy with it, is imported (here and in every worker)

    # Every worker writes its metrics here and /metrics sums them; stale files from a previous run would be
    # counted again, so the directory starts empty.
    metrics_dir = Path(os.environ.get("PROMETHEUS_MULTIPROC_DIR") or Path(tempfile.gettempdir()) / "mnist-metrics")
    shutil.rmtree(metrics_dir, ignore_errors=True)
    metrics_dir.mkdir(parents=True)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)

    options: dict[str, Any] = {"access_log": False, "proxy_headers": True, "server_header": False}
    if args.reload or args.workers == 1:
        reload_dirs = ["app"] if args.reload else None
        uvicorn.run(args.app, host=args.host, port=args.port, reload=args.reload, reload_dirs=reload_dirs, **options)
        return
    try:
        # A plain bind first: SO_REUSEPORT alone would share a port that another server of this user holds.
        with tcp_socket(args.host) as probe:
            probe.bind((args.host, args.port))
            port = probe.getsockname()[1]
        reserved = bind_reuse_port(args.host, port)
    except OSError as exc:
        sys.exit(f"cannot listen on {args.host}:{args.port}: {exc.strerror}")
    config = uvicorn.Config(args.app, host=args.host, port=port, workers=args.workers, **options)
    # Held, bound and never listening (so handed no connection), for as long as the workers run: nothing else can
    # take the port between two worker restarts.
    with reserved:
        Multiprocess(config, sockets=[cast(socket.socket, OwnListener(args.host, port))]).run()
