"""Deploy timings on the sandbox (a bastion and two hosts): cold deploy, no-op redeploy, deploy of a new model,
rollback. Each figure is the wall time of the same call `invoke deploy` / `invoke rollback` makes.

    python bench/deploy_timings.py [--model-b build/release-models/b]

Builds the images of both releases first (builds are not deploy time), starts the sandbox, bootstraps it,
measures, and removes it. The second model is trained for one epoch unless
--model-b names a store that has one. Prints a table; writes bench/results/deploy_timings.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import releases  # noqa: E402
from mnist_deploy import deploy, sandbox  # noqa: E402


def timed(label: str, action: Callable[[], Any], figures: dict[str, float]) -> Any:
    started = time.monotonic()
    result = action()
    figures[label] = time.monotonic() - started
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model-b", type=Path, default=ROOT / "build" / "release-models" / "b")
    args = parser.parse_args()
    releases.prepare(args.model_b)
    figures: dict[str, float] = {}
    changed: dict[str, Any] = {}
    try:
        timed("sandbox up (bastion + 2 hosts)", sandbox.up, figures)
        timed("bootstrap (engine + Compose check)", lambda: deploy.playbook(sandbox.ENV, "bootstrap", {}), figures)
        cold = timed("cold deploy (images shipped)", lambda: deploy.deploy(sandbox.ENV, ROOT / "models"), figures)
        noop = timed("no-op redeploy", lambda: deploy.deploy(sandbox.ENV, ROOT / "models"), figures)
        new = timed("deploy of a new model", lambda: deploy.deploy(sandbox.ENV, args.model_b), figures)
        back = timed("rollback to the previous release", lambda: deploy.rollback(sandbox.ENV), figures)
        changed = {"cold": cold["changed"], "no-op": noop["changed"], "new model": new["changed"], "rollback": back}
    finally:
        sandbox.down()
    table = Table(title="Deploy timings: sandbox, 2 hosts one at a time (serial 1), through the bastion")
    table.add_column("step")
    table.add_column("seconds", justify="right")
    for label, seconds in figures.items():
        table.add_row(label, f"{seconds:.1f}")
    Console().print(table)
    print("changed tasks per host:", json.dumps(changed))
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "deploy_timings.json").write_text(json.dumps({"seconds": figures, "changed": changed}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
