"""`python -m app.backend.feedback upgrade|backup|restore`: the feedback database of this process's
MNIST_FEEDBACK_URL, from inside a backend container (what `invoke backup`, `restore` and `train --with-feedback`
run there through the bastion). Corrections go out on stdout and come back on stdin as one document
(app/mnist/corrections.py), so nothing is left in the container."""

from __future__ import annotations

import argparse
import sys

from app.backend.core.config import feedback_database_url, get_settings
from app.backend.feedback import schema
from app.backend.feedback.store import FeedbackError, FeedbackStore


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m app.backend.feedback", description=__doc__)
    parser.add_argument("action", choices=["upgrade", "backup", "restore"])
    parser.add_argument("--url", help="SQLAlchemy URL of the database (default: MNIST_FEEDBACK_URL)")
    args = parser.parse_args(argv)
    settings = get_settings()
    url = args.url or feedback_database_url(settings)
    if not url:
        parser.error("no feedback database: set MNIST_FEEDBACK_URL or pass --url")
    if args.action == "upgrade":
        before, after = schema.upgrade(url)
        print(f"feedback database: {before or 'empty'} -> {after}")
        return 0
    schema.upgrade(url)
    store = FeedbackStore(url, settings.feedback_retention_s)
    try:
        if args.action == "backup":
            sys.stdout.write(store.dump())
        else:
            try:
                added = store.load(sys.stdin.read())
            except FeedbackError as exc:
                print(f"restore refused: {exc}", file=sys.stderr)
                return 2
            print(f"restored: {added} corrections added (those already present kept as they were)", file=sys.stderr)
    finally:
        store.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
