"""`python -m app.frontend`: run the Streamlit app with the project's server settings."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

APP = Path(__file__).resolve().parent / "app.py"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m app.frontend", description=__doc__)
    # bandit B104: inside a container the server must listen on the container's interface.
    parser.add_argument("--host", default=os.environ.get("MNIST_HOST", "0.0.0.0"))  # nosec B104
    parser.add_argument("--port", type=int, default=int(os.environ.get("MNIST_PORT", "8501")))
    parser.add_argument("--reload", action="store_true", help="rerun the page when its code changes (development)")
    args = parser.parse_args(argv)
    flags = {
        "server.address": args.host,
        "server.port": args.port,
        "server.headless": "true",
        "server.runOnSave": "true" if args.reload else "false",
        "server.fileWatcherType": "auto" if args.reload else "none",
        # Set explicitly so Streamlit prints this address instead of looking up a public IP on the internet.
        "browser.serverAddress": "localhost",
        "browser.gatherUsageStats": "false",
        "client.toolbarMode": "viewer",
        "server.maxUploadSize": 2,  # MB, the backend's own upload limit
    }
    command = [sys.executable, "-m", "streamlit", "run", str(APP), *(f"--{k}={v}" for k, v in flags.items())]
    os.execv(sys.executable, command)


if __name__ == "__main__":
    main()
