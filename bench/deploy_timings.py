"""Deploy timings on the sandbox (a bastion and two hosts): cold deploy, no-op redeploy, deploy of a new model,
rollback. Each figure is the wall time of the same call `invoke deploy` / `invoke rollback` makes. Beside them, the
machine's floor from the same run: `ansible all -m ping` through the bastion (one round trip to every host), and
the controller's own share of a deploy (assembling the release: render and validation, images already built).

    python bench/deploy_timings.py [--model-b build/release-models/b] [--hosts 4] [--rollbacks 3]

Builds the images of both releases first (builds are not deploy time), starts the sandbox, bootstraps it,
measures, and removes it. The second model is trained for one epoch unless
--model-b names a store that has one. Prints a table; writes bench/results/deploy_timings.json.

A rollback is timed --rollbacks times (the new model deployed again between two, its images already on the hosts):
on a machine whose two cores also run every host, one rollback varied from 23.7 to 39.1 s with the same code, so the
figure is their median, every run beside it.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
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
from mnist_deploy import deploy, render, sandbox, ssh  # noqa: E402
from mnist_deploy.environment import Environment  # noqa: E402

# The figures issue 15 sets targets for, by their key in bench/results/deploy_timings.json.
KEYS = {
    "cold deploy (images shipped)": "cold_deploy_s",
    "no-op redeploy": "noop_redeploy_s",
    "deploy of a new model": "new_model_deploy_s",
    "rollback to the previous release": "rollback_s",
    "floor: ansible all -m ping through the bastion": "floor_ping_s",
    "controller: assemble the release (render + validate)": "assemble_s",
}


def ping() -> None:
    """One Ansible round trip to every host through the bastion, as the deploy reaches them."""
    ssh.write_config(sandbox.ENV)
    subprocess.run(
        [
            str(Path(sys.executable).parent / "ansible"),
            "all",
            "-m",
            "ansible.builtin.ping",
            "-i",
            "inventories/sandbox",
        ],
        cwd=ROOT,
        check=True,
        stdout=subprocess.DEVNULL,
        env={**os.environ, "ANSIBLE_CONFIG": str(render.ROOT / "ansible.cfg")},
    )


ROLLBACK = "rollback to the previous release"
AGAIN = "the new model again (its images on the hosts)"


def timed(label: str, action: Callable[[], Any], figures: dict[str, float]) -> Any:
    started = time.monotonic()
    result = action()
    figures[label] = time.monotonic() - started
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model-b", type=Path, default=ROOT / "build" / "release-models" / "b")
    parser.add_argument("--hosts", type=int, default=2, help="sandbox hosts (2 are in the inventory; more are added)")
    parser.add_argument("--rollbacks", type=int, default=3, help="rollbacks timed (their median is the figure)")
    parser.add_argument(
        "--flavour",
        choices=tuple(sandbox.FLAVOURS),
        help="every target of this flavour (default: the inventory's, mixed)",
    )
    args = parser.parse_args()
    if args.hosts < 2:
        parser.error("--hosts: the sandbox has at least 2 hosts")
    if args.rollbacks < 1:
        parser.error("--rollbacks: at least 1")
    releases.prepare(args.model_b)
    extra_hosts = ROOT / "inventories" / "sandbox" / "extra-hosts.yml"  # git-ignored, removed below
    if args.hosts > 2:
        more = {f"target-{n}": {"ansible_host": f"target-{n}"} for n in range(3, args.hosts + 1)}
        extra_hosts.write_text(json.dumps({"all": {"hosts": more}}, indent=2) + "\n")
    flavours = sandbox.flavours(Environment.read(sandbox.ENV).hostvars, args.flavour)
    figures: dict[str, float] = {}
    changed: dict[str, Any] = {}
    rollbacks: list[float] = []
    redeploys: list[float] = []
    try:
        timed(f"sandbox up (bastion + {args.hosts} hosts)", lambda: sandbox.up(flavour=args.flavour), figures)
        timed("bootstrap (engine + Compose check)", lambda: deploy.playbook(sandbox.ENV, "bootstrap", {}), figures)
        cold = timed("cold deploy (images shipped)", lambda: deploy.deploy(sandbox.ENV, ROOT / "models"), figures)
        timed("floor: ansible all -m ping through the bastion", ping, figures)
        assemble = "controller: assemble the release (render + validate)"
        timed(assemble, lambda: deploy.assemble(sandbox.ENV, ROOT / "models"), figures)
        noop = timed("no-op redeploy", lambda: deploy.deploy(sandbox.ENV, ROOT / "models"), figures)
        new = timed("deploy of a new model", lambda: deploy.deploy(sandbox.ENV, args.model_b), figures)
        back = timed(ROLLBACK, lambda: deploy.rollback(sandbox.ENV), figures)
        rollbacks.append(figures[ROLLBACK])
        for _ in range(args.rollbacks - 1):
            timed(AGAIN, lambda: deploy.deploy(sandbox.ENV, args.model_b), figures)
            redeploys.append(figures[AGAIN])
            timed(ROLLBACK, lambda: deploy.rollback(sandbox.ENV), figures)
            rollbacks.append(figures[ROLLBACK])
        figures[ROLLBACK] = statistics.median(rollbacks)
        if redeploys:
            figures[AGAIN] = statistics.median(redeploys)
        changed = {"cold": cold["changed"], "no-op": noop["changed"], "new model": new["changed"], "rollback": back}
    finally:
        sandbox.down()
        extra_hosts.unlink(missing_ok=True)
    title = f"Deploy timings: sandbox, {args.hosts} hosts (waves 1, 50 %, 100 %), through the bastion"
    table = Table(title=title)
    table.add_column("step")
    table.add_column("seconds", justify="right")
    runs = {ROLLBACK: rollbacks, AGAIN: redeploys}
    for label, seconds in figures.items():
        each = runs.get(label, [])
        shown = (
            f"{statistics.median(each):.1f} (median of {', '.join(f'{s:.1f}' for s in each)})"
            if len(each) > 1
            else f"{seconds:.1f}"
        )
        table.add_row(label, shown)
    Console().print(table)
    print("changed tasks per host:", json.dumps(changed))
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    summary = {KEYS[label]: round(seconds, 1) for label, seconds in figures.items() if label in KEYS}
    document = {
        **summary,
        "rollback_runs_s": [round(seconds, 1) for seconds in rollbacks],
        "hosts": args.hosts,
        "flavours": flavours,
        "seconds": figures,
        "changed": changed,
    }
    name = "deploy_timings.json" if args.hosts == 2 else f"deploy_timings_{args.hosts}_hosts.json"
    if args.flavour:
        name = name.replace(".json", f"_{args.flavour}.json")
    (out / name).write_text(json.dumps(document, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
