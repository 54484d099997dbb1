"""Deploy timings on the sandbox (a bastion and two hosts): cold deploy, no-op redeploy, deploy of a new model,
rollback. Each figure is the wall time of the same call `invoke deploy` / `invoke rollback` makes. Beside them, the
machine's floor from the same run: `ansible all -m ping` through the bastion (one round trip to every host), and
the controller's own share of a deploy (assembling the release: render and validation, images already built).

    python bench/deploy_timings.py [--model-b build/release-models/b] [--hosts 4]

Builds the images of both releases first (builds are not deploy time), starts the sandbox, bootstraps it,
measures, and removes it. The second model is trained for one epoch unless
--model-b names a store that has one. Prints a table; writes bench/results/deploy_timings.json.
"""

from __future__ import annotations

import argparse
import json
import os
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


def timed(label: str, action: Callable[[], Any], figures: dict[str, float]) -> Any:
    started = time.monotonic()
    result = action()
    figures[label] = time.monotonic() - started
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model-b", type=Path, default=ROOT / "build" / "release-models" / "b")
    parser.add_argument("--hosts", type=int, default=2, help="sandbox hosts (2 are in the inventory; more are added)")
    parser.add_argument(
        "--flavour",
        choices=tuple(sandbox.FLAVOURS),
        help="every target of this flavour (default: the inventory's, mixed)",
    )
    args = parser.parse_args()
    if args.hosts < 2:
        parser.error("--hosts: the sandbox has at least 2 hosts")
    releases.prepare(args.model_b)
    extra_hosts = ROOT / "inventories" / "sandbox" / "extra-hosts.yml"  # git-ignored, removed below
    if args.hosts > 2:
        more = {f"target-{n}": {"ansible_host": f"target-{n}"} for n in range(3, args.hosts + 1)}
        extra_hosts.write_text(json.dumps({"all": {"hosts": more}}, indent=2) + "\n")
    flavours = sandbox.flavours(Environment.read(sandbox.ENV).hostvars, args.flavour)
    figures: dict[str, float] = {}
    changed: dict[str, Any] = {}
    try:
        timed(f"sandbox up (bastion + {args.hosts} hosts)", lambda: sandbox.up(flavour=args.flavour), figures)
        timed("bootstrap (engine + Compose check)", lambda: deploy.playbook(sandbox.ENV, "bootstrap", {}), figures)
        cold = timed("cold deploy (images shipped)", lambda: deploy.deploy(sandbox.ENV, ROOT / "models"), figures)
        timed("floor: ansible all -m ping through the bastion", ping, figures)
        assemble = "controller: assemble the release (render + validate)"
        timed(assemble, lambda: deploy.assemble(sandbox.ENV, ROOT / "models"), figures)
        noop = timed("no-op redeploy", lambda: deploy.deploy(sandbox.ENV, ROOT / "models"), figures)
        new = timed("deploy of a new model", lambda: deploy.deploy(sandbox.ENV, args.model_b), figures)
        back = timed("rollback to the previous release", lambda: deploy.rollback(sandbox.ENV), figures)
        changed = {"cold": cold["changed"], "no-op": noop["changed"], "new model": new["changed"], "rollback": back}
    finally:
        sandbox.down()
        extra_hosts.unlink(missing_ok=True)
    title = f"Deploy timings: sandbox, {args.hosts} hosts (waves 1, 50 %, 100 %), through the bastion"
    table = Table(title=title)
    table.add_column("step")
    table.add_column("seconds", justify="right")
    for label, seconds in figures.items():
        table.add_row(label, f"{seconds:.1f}")
    Console().print(table)
    print("changed tasks per host:", json.dumps(changed))
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    summary = {KEYS[label]: round(seconds, 1) for label, seconds in figures.items() if label in KEYS}
    document = {**summary, "hosts": args.hosts, "flavours": flavours, "seconds": figures, "changed": changed}
    name = "deploy_timings.json" if args.hosts == 2 else f"deploy_timings_{args.hosts}_hosts.json"
    if args.flavour:
        name = name.replace(".json", f"_{args.flavour}.json")
    (out / name).write_text(json.dumps(document, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
