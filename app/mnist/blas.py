"""One thread for the preprocessing's linear algebra (numpy's and scipy's OpenBLAS) in each process that does it.

The backend scales by worker processes and replicas, and the robustness suite prepares its conditions in one process
per core; OpenBLAS otherwise starts a thread per core in every process, and they spin while they wait. Two backend
replicas preprocessing the deploy gate's 40 drawn digits at once took 1.5 s for 0.7 s of work, and the suite's
conditions prepared in two processes took longer than in one (63 s against 37 s; 22 s with one thread each).
OpenBLAS reads the variable when numpy loads: this module imports nothing, so it can be read before numpy is.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

ONE_THREAD = {"OPENBLAS_NUM_THREADS": "1"}


def one_thread_by_default() -> None:
    """For this process and those it starts, before numpy loads; an operator's own value stays."""
    for name, value in ONE_THREAD.items():
        os.environ.setdefault(name, value)


@contextlib.contextmanager
def for_children() -> Iterator[None]:
    """ONE_THREAD in the environment of the processes started inside (spawned: numpy loads afresh in them), this
    process's environment restored after."""
    saved = {name: os.environ.get(name) for name in ONE_THREAD}
    one_thread_by_default()
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
