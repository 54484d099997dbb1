"""Latency and throughput of /api/v1/predict, side by side with a seed-style and a bare backend.

Load tool: wrk (Debian's package) — a C event loop that keeps 32 connections busy on one thread for a
fraction of a core, where a Python load generator would take the CPU the servers need on a 2-core machine.

    python bench/api_latency.py [--duration 10] [--workers 2] [--rounds 3]

On a shared 2-core VM one measurement of the same server moves by ±30 %, and which worker process accepts which
connection is chance. So the three backends are measured in turns, ROUNDS times each with a fresh server, and every
cell reports the median of its rounds (the spread goes into the JSON).

Prints a table and the ratios; writes bench/results/api_latency.{json,png}.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
CONCURRENCY = (1, 8, 32)
# All three are served the same way (`python -m app.backend`: uvicorn, a socket of its own per worker), so the
# ratios compare the applications, not the servers.
BACKENDS = {
    "ours (ONNX Runtime)": "app.backend.main:app",
    "seed-style (torch eager)": "bench.seed_backend:app",
    "bare FastAPI (constant)": "bench.bare_backend:app",
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start(app: str, port: int, workers: int, metrics_dir: Path) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "MNIST_MODEL_DIR": str(ROOT / "models"),
        "MNIST_LOG_LEVEL": "WARNING",
        "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
    }
    command = [sys.executable, "-m", "app.backend", "--app", app, "--host", "127.0.0.1", "--port", str(port)]
    command += ["--workers", str(workers)]
    proc = subprocess.Popen(command, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    body = (BENCH / "results" / "body.json").read_bytes()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            answer = httpx.post(
                f"http://127.0.0.1:{port}/api/v1/predict",
                content=body,
                headers={"content-type": "application/json"},
                timeout=2,
            )
            if answer.status_code == 200:
                return proc
        except httpx.TransportError:
            pass
        time.sleep(0.3)
    proc.kill()
    raise SystemExit(f"{app} did not answer on port {port} within 60 s")


def cpu_model() -> str:
    """The CPU's name: the same code runs ~2x faster or slower from one VM host to another."""
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            return next(line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name"))
    except (OSError, StopIteration):
        return "unknown CPU"


def run_wrk(port: int, connections: int, duration: int) -> dict[str, float]:
    env = {**os.environ, "BODY_FILE": str(BENCH / "results" / "body.json")}
    out = subprocess.run(
        [
            "wrk",
            "-t1",
            f"-c{connections}",
            f"-d{duration}s",
            "--timeout",
            "5s",
            "-s",
            str(BENCH / "wrk_post.lua"),
            f"http://127.0.0.1:{port}/api/v1/predict",
        ],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    line = next(line for line in out.splitlines() if line.startswith("RESULT "))
    result: dict[str, float] = json.loads(line.removeprefix("RESULT "))
    result["rps"] = result["requests"] / result["seconds"]
    return result


def measure(app: str, workers: int, duration: int) -> dict[int, dict[str, float]]:
    """One fresh server, warmed up, then one wrk run at each concurrency."""
    port = free_port()
    with tempfile.TemporaryDirectory() as metrics_dir:
        proc = start(app, port, workers, Path(metrics_dir))
        try:
            run_wrk(port, 8, 2)  # warm-up
            return {connections: run_wrk(port, connections, duration) for connections in CONCURRENCY}
        finally:
            proc.terminate()
            proc.wait(timeout=20)


def median_cell(runs: list[dict[str, float]]) -> dict[str, Any]:
    """Each figure's median over the rounds, and the rounds' throughputs to show the spread."""
    cell: dict[str, Any] = {
        key: float(np.median([run[key] for run in runs])) for key in ("rps", "p50_ms", "p95_ms", "p99_ms")
    }
    cell["errors"] = sum(run["errors"] for run in runs)
    cell["rps_rounds"] = [round(run["rps"]) for run in runs]
    return cell


def plot(results: dict[str, dict[int, dict[str, Any]]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    for name, by_c in results.items():
        left.plot(CONCURRENCY, [by_c[c]["rps"] for c in CONCURRENCY], marker="o", label=name)
        right.plot(CONCURRENCY, [by_c[c]["p95_ms"] for c in CONCURRENCY], marker="o", label=name)
    left.set(xlabel="concurrent connections", ylabel="requests / s", title="Throughput", xscale="log")
    right.set(
        xlabel="concurrent connections", ylabel="p95 latency (ms)", title="p95 latency", xscale="log", yscale="log"
    )
    right.axhline(10, color="tab:red", linestyle="--", label="target p95 < 10 ms")
    for ax in (left, right):
        ax.set_xticks(CONCURRENCY, [str(c) for c in CONCURRENCY])
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=int, default=10, help="seconds per measurement")
    parser.add_argument("--workers", type=int, default=2, help="server worker processes, the same for all three")
    parser.add_argument("--rounds", type=int, default=3, help="measurements of each cell; the median is reported")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed: apt-get install -y wrk")
    (BENCH / "results").mkdir(exist_ok=True)
    with np.load(ROOT / "tests" / "fixtures" / "mnist_test_500.npz") as npz:
        digit = npz["images"][0] / 255.0
    (BENCH / "results" / "body.json").write_text(json.dumps({"image": [round(v, 4) for v in digit.ravel()]}))

    console = Console(width=130)  # the table is wider than the 80 columns rich assumes without a terminal
    console.print(f"machine: {cpu_model()}, {os.cpu_count()} cores (the load generator shares them)")
    rounds: dict[str, dict[int, list[dict[str, float]]]] = {name: {c: [] for c in CONCURRENCY} for name in BACKENDS}
    for round_ in range(1, args.rounds + 1):
        for name, app in BACKENDS.items():
            console.print(f"round {round_}/{args.rounds}: {name}, {args.duration} s per concurrency")
            for connections, result in measure(app, args.workers, args.duration).items():
                rounds[name][connections].append(result)
    results = {name: {c: median_cell(runs) for c, runs in by_c.items()} for name, by_c in rounds.items()}

    table = Table(
        title=f"POST /api/v1/predict — {args.workers} worker processes each, wrk, {args.duration} s a cell, "
        f"median of {args.rounds} rounds"
    )
    for column in ("backend", "connections", "req/s", "p50 ms", "p95 ms", "p99 ms", "errors", "req/s by round"):
        table.add_column(column, justify="right" if column != "backend" else "left")
    for name, by_c in results.items():
        for c in CONCURRENCY:
            r = by_c[c]
            table.add_row(
                name,
                str(c),
                f"{r['rps']:.0f}",
                f"{r['p50_ms']:.2f}",
                f"{r['p95_ms']:.2f}",
                f"{r['p99_ms']:.2f}",
                str(int(r["errors"])),
                " ".join(str(rps) for rps in r["rps_rounds"]),
            )
    console.print(table)
    ours, seed, bare = (results[name] for name in BACKENDS)
    for c in CONCURRENCY:
        console.print(
            f"{c:>2} connections: ours / seed-style = {ours[c]['rps'] / seed[c]['rps']:.2f}x, "
            f"ours / bare = {ours[c]['rps'] / bare[c]['rps']:.2f}x"
        )
    console.print(
        f"p95 at 32 connections: {ours[32]['p95_ms']:.2f} ms (target < 10 ms); the bare endpoint's own, the floor "
        f"this machine sets: {bare[32]['p95_ms']:.2f} ms"
    )
    (BENCH / "results" / "api_latency.json").write_text(json.dumps(results, indent=2))
    plot(results, BENCH / "results" / "api_latency.png")
    console.print(f"wrote {BENCH / 'results' / 'api_latency.json'} and api_latency.png")


if __name__ == "__main__":
    main()
