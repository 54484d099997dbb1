"""Requests through the proxy during a rollout and a rollback: how many fail (target: 0), and their latency.

    python bench/rollout.py [--model-b build/release-models/b] [--connections 4] [--rate 25]

Starts the sandbox, deploys release A (models/), then keeps a constant load on target-1's proxy
(https://target-1/api/v1/predict, checked against the sandbox's CA) while `invoke deploy` rolls release B out
(a model trained for one epoch) and `invoke rollback` brings A back. The load runs on the bastion (bench/load.py,
standard library only), next to the targets: its traffic stays between the project's own containers.
Prints a table per phase; writes bench/results/rollout.{json,png}; removes the sandbox.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import releases  # noqa: E402
from mnist_deploy import deploy, sandbox, tls  # noqa: E402

RESULTS = ROOT / "bench" / "results"
# bandit B108: a folder in the bastion container (a throwaway sandbox host), not on this machine.
IN_BASTION = "/tmp"  # nosec B108


def digit_body(path: Path) -> Path:
    with np.load(ROOT / "tests" / "fixtures" / "mnist_test_500.npz") as npz:
        digit = npz["images"][0] / 255.0
    path.write_text(json.dumps({"image": [round(float(v), 4) for v in digit.ravel()]}))
    return path


def start_load(host: str, connections: int, rate: float) -> subprocess.Popen[str]:
    RESULTS.mkdir(parents=True, exist_ok=True)
    for source, target in (
        (ROOT / "bench" / "load.py", f"{IN_BASTION}/load.py"),
        (digit_body(RESULTS / "body.json"), f"{IN_BASTION}/body.json"),
        (tls.SANDBOX_DIR / "ca.pem", f"{IN_BASTION}/ca.pem"),
    ):
        subprocess.run(["docker", "cp", str(source), f"{sandbox.BASTION}:{target}"], check=True, capture_output=True)
    url = f"https://{host}/api/v1/predict"
    files = [f"{IN_BASTION}/{name}" for name in ("load.py", "body.json", "ca.pem")]
    command = ["python3", files[0], url, *files[1:], str(connections), str(rate)]
    return subprocess.Popen(
        ["docker", "exec", "-i", sandbox.BASTION, *command],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )


def summarise(rows: list[list[Any]], phases: list[tuple[str, float, float]]) -> list[dict[str, Any]]:
    summary = []
    for name, start, end in phases:
        inside = [row for row in rows if start <= row[0] < end]
        latencies = np.array([row[1] for row in inside]) * 1000
        failed = [row for row in inside if row[2] != 200]
        summary.append(
            {
                "phase": name,
                "seconds": round(end - start, 1),
                "requests": len(inside),
                "failed": len(failed),
                "failures": sorted({str(row[2]) for row in failed}),
                **{
                    f"{label}_ms": round(float(np.percentile(latencies, q)), 1) if len(latencies) else None
                    for label, q in (("p50", 50), ("p95", 95), ("p99", 99), ("max", 100))
                },
            }
        )
    return summary


def plot(rows: list[list[Any]], phases: list[tuple[str, float, float]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    origin = rows[0][0]
    fig, ax = plt.subplots(figsize=(11, 4))
    ok = [(r[0] - origin, r[1] * 1000) for r in rows if r[2] == 200]
    bad = [(r[0] - origin, r[1] * 1000) for r in rows if r[2] != 200]
    seconds, latency = zip(*ok, strict=True)
    ax.scatter(seconds, latency, s=2, label="200", color="tab:blue")
    if bad:
        seconds, latency = zip(*bad, strict=True)
        ax.scatter(seconds, latency, s=12, label="failed", color="tab:red")
    for (name, start, end), colour in zip(phases[1::2], ("tab:orange", "tab:green"), strict=False):
        ax.axvspan(start - origin, end - origin, alpha=0.15, color=colour, label=name)
    ax.set(xlabel="seconds", ylabel="latency (ms)", yscale="log", title="POST /api/v1/predict through the proxy")
    ax.legend(fontsize=8, loc="upper right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model-b", type=Path, default=ROOT / "build" / "release-models" / "b")
    parser.add_argument("--connections", type=int, default=4, help="keep-alive clients")
    parser.add_argument("--rate", type=float, default=25.0, help="requests per second per client")
    parser.add_argument("--host", default="target-1")
    args = parser.parse_args()
    releases.prepare(args.model_b)
    console = Console()
    phases: list[tuple[str, float, float]] = []
    try:
        sandbox.up()
        deploy.playbook(sandbox.ENV, "bootstrap", {})
        deploy.deploy(sandbox.ENV, ROOT / "models")
        load = start_load(args.host, args.connections, args.rate)
        mark = time.time()
        for name, action in (
            ("steady (A)", lambda: time.sleep(5)),
            ("rollout A → B (invoke deploy)", lambda: deploy.deploy(sandbox.ENV, args.model_b)),
            ("steady (B)", lambda: time.sleep(5)),
            ("rollback B → A (invoke rollback)", lambda: deploy.rollback(sandbox.ENV)),
            ("steady (A again)", lambda: time.sleep(5)),
        ):
            console.print(f"[bold]{name}[/] under load …")
            action()
            phases.append((name, mark, time.time()))
            mark = time.time()
        out, _ = load.communicate(input="", timeout=60)
    finally:
        sandbox.down()
    rows = [json.loads(line) for line in out.splitlines() if line.startswith("[")]
    summary = summarise(rows, phases)
    table = Table(
        title=f"{args.connections} clients × {args.rate:g} req/s on {args.host}'s proxy (HTTPS), sandbox, 2 replicas"
    )
    for column in ("phase", "seconds", "requests", "failed", "p50 ms", "p95 ms", "p99 ms", "max ms"):
        table.add_column(column, justify="left" if column == "phase" else "right")
    for s in summary:
        table.add_row(
            s["phase"],
            f"{s['seconds']:.1f}",
            str(s["requests"]),
            str(s["failed"]) + (f" ({', '.join(s['failures'])})" if s["failures"] else ""),
            *(str(s[f"{k}_ms"]) for k in ("p50", "p95", "p99", "max")),
        )
    console.print(table)
    total_failed = sum(s["failed"] for s in summary)
    console.print(f"failed requests in all: {total_failed} of {len(rows)} (target: 0)")
    (RESULTS / "rollout.json").write_text(json.dumps({"phases": summary, "requests": len(rows)}, indent=2) + "\n")
    plot(rows, phases, RESULTS / "rollout.png")
    console.print(f"wrote {RESULTS / 'rollout.json'} and rollout.png")
    return 0 if total_failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
