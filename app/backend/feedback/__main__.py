"""`python -m app.backend.feedback upgrade|export|backup|restore`: the feedback database of this process's
MNIST_FEEDBACK_URL, from inside a backend container (what `invoke backup`, `restore` and `train --with-feedback`
run there through the bastion). Data goes through stdout and stdin, so nothing is left in the container."""

from __future__ import annotations

import argparse
import io
import sys

import numpy as np

from app.backend.core.config import get_settings
from app.backend.feedback import schema
from app.backend.feedback.store import FeedbackStore


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m app.backend.feedback", description=__doc__)
    parser.add_argument("action", choices=["upgrade", "export", "backup", "restore"])
    parser.add_argument("--url", help="SQLAlchemy URL of the database (default: MNIST_FEEDBACK_URL)")
    args = parser.parse_args(argv)
    settings = get_settings()
    url = args.url or settings.feedback_url
    if not url:
        parser.error("no feedback database: set MNIST_FEEDBACK_URL or pass --url")
    if args.action == "upgrade":
        before, after = schema.upgrade(url)
        print(f"feedback database: {before or 'empty'} -> {after}")
        return 0
    schema.upgrade(url)
    store = FeedbackStore(url, settings.feedback_retention_s)
    try:
        if args.action == "export":
            corrections = store.corrections()
            buffer = io.BytesIO()
            np.savez_compressed(
                buffer,
                images=corrections.images,
                right=corrections.right,
                predicted=corrections.predicted,
                model_versions=np.array(corrections.model_versions, dtype=str),
                created=np.array(corrections.created, dtype=str),
            )
            sys.stdout.buffer.write(buffer.getvalue())
        elif args.action == "backup":
            sys.stdout.write(store.dump())
        else:
            added = store.load(sys.stdin.read())
            print(f"restored: {added} corrections added (those already present kept as they are)", file=sys.stderr)
    finally:
        store.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
