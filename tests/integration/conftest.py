"""The stack under test: the real images on the real engine, under its own project name and ports.

With --backend-url (and --frontend-url, --prometheus-url) the same tests check a stack that already runs.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tests.servers import ROOT

TEST_PROJECT = "mnist-test"
TEST_PORTS = {"backend": 18000, "frontend": 18501, "prometheus": 19090}
OUT = ROOT / "build" / "test-stack"


@dataclass(frozen=True)
class Stack:
    backend: str
    frontend: str
    prometheus: str
    timeout: float
    project: str | None  # None: a stack we did not start, so no container checks


@pytest.fixture(scope="session")
def stack(request: pytest.FixtureRequest) -> Iterator[Stack]:
    option = request.config.getoption
    timeout = option("--timeout")
    if option("--backend-url"):
        yield Stack(
            option("--backend-url").rstrip("/"),
            option("--frontend-url").rstrip("/"),
            option("--prometheus-url").rstrip("/"),
            timeout,
            None,
        )
        return
    from mnist_deploy import stack as local_stack

    extra = {"mnist_stack_project": TEST_PROJECT, "mnist_stack_log_level": "INFO"}
    extra.update({f"mnist_stack_{service}_host_port": port for service, port in TEST_PORTS.items()})
    try:
        local_stack.up("dev", extra=extra, out_root=OUT)
        yield Stack(
            *(f"http://127.0.0.1:{TEST_PORTS[s]}" for s in ("backend", "frontend", "prometheus")),
            timeout=timeout,
            project=TEST_PROJECT,
        )
    finally:
        if (OUT / "dev" / "localhost" / "compose.yaml").is_file():
            local_stack.down("dev", volumes=True, out_root=OUT)
        shutil.rmtree(OUT, ignore_errors=True)
