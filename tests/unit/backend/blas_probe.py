"""An ASGI app that says how many threads numpy's and scipy's OpenBLAS use in the process serving it (test_serve)."""

from __future__ import annotations

import ctypes
import glob
import os

import numpy
import scipy
from fastapi import FastAPI

app = FastAPI()


def openblas_threads(package: object, pattern: str, symbol: str) -> int:
    folder = os.path.dirname(os.path.dirname(str(package.__file__)))  # type: ignore[attr-defined]
    library = ctypes.CDLL(glob.glob(os.path.join(folder, pattern))[0])
    return int(getattr(library, symbol)())


@app.get("/")
def threads() -> dict[str, int]:
    return {
        "numpy": openblas_threads(numpy, "numpy.libs/libscipy_openblas64_*.so", "scipy_openblas_get_num_threads64_"),
        "scipy": openblas_threads(scipy, "scipy.libs/libscipy_openblas-*.so", "scipy_openblas_get_num_threads"),
    }
