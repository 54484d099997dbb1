"""`python -m app.backend`: serve with uvicorn, N worker processes sharing one metrics directory."""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
from pathlib import Path

import uvicorn


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m app.backend", description=__doc__)
    # bandit B104: inside a container the server must listen on the container's interface.
    parser.add_argument("--host", default=os.environ.get("MNIST_HOST", "0.0.0.0"))  # nosec B104
    parser.add_argument("--port", type=int, default=int(os.environ.get("MNIST_PORT", "8000")))
    parser.add_argument("--workers", type=int, default=int(os.environ.get("MNIST_WORKERS", "1")))
    parser.add_argument("--reload", action="store_true", help="restart on code changes (development)")
    args = parser.parse_args(argv)

    # Every worker writes its metrics here and /metrics sums them; stale files from a previous run would be
    # counted again, so the directory starts empty.
    metrics_dir = Path(os.environ.get("PROMETHEUS_MULTIPROC_DIR") or Path(tempfile.gettempdir()) / "mnist-metrics")
    shutil.rmtree(metrics_dir, ignore_errors=True)
    metrics_dir.mkdir(parents=True)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)

    uvicorn.run(
        "app.backend.main:app",
        host=args.host,
        port=args.port,
        workers=None if args.reload else args.workers,
        reload=args.reload,
        reload_dirs=["app"] if args.reload else None,
        access_log=False,
        proxy_headers=True,
        server_header=False,
    )


if __name__ == "__main__":
    main()
