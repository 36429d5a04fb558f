"""NumPy's own BLAS entry points, for the compiled plans (`_infer.Plan`) to call without Python.

A plan's matrix products must be NumPy's bit for bit (the compiled pass is checked against the
step-by-step runner for equality), so they go to the very library `np.matmul` calls, with the
arguments it passes (ConvPlan.native_steps). NumPy does not export that library's functions, so
they are looked up in it by name: threadpoolctl lists the BLAS libraries loaded in the process
(NumPy's among them once NumPy is imported), and each is searched for the CBLAS names NumPy's
builds use (scipy-openblas wheels: `scipy_cblas_sgemm64_`, 64-bit integers; plain builds:
`cblas_sgemm`, 32-bit). A candidate is accepted only if a plan's products with it equal
np.matmul's, bit for bit, on a few shapes of each kind (gemm, gemv; float32 and float64): a wrong
library or integer width fails that and is not used. Without an accepted one `usable()` is False
and the runner keeps its step-by-step pass.
"""
from __future__ import annotations

import ctypes

import numpy as np

from . import _infer

# (name pattern, 64-bit integers), most specific first
_NAMES = (("scipy_cblas_{}64_", True), ("cblas_{}64_", True), ("scipy_cblas_{}", False), ("cblas_{}", False))
_state: dict = {}


def usable() -> bool:
    """Whether plans can run: NumPy's CBLAS found and checked (looked up once per process)."""
    if "ok" not in _state:
        _state["ok"] = _find()
    return _state["ok"]


def _libraries():
    from threadpoolctl import ThreadpoolController
    paths = [lib.filepath for lib in ThreadpoolController().select(user_api="blas").lib_controllers]
    # NumPy's own copy first (its wheel puts it in numpy.libs or numpy/.dylibs)
    return sorted(paths, key=lambda p: "numpy" not in p)


def _find() -> bool:
    try:
        paths = _libraries()
    except Exception:  # threadpoolctl could not inspect the process: no plans, nothing breaks
        return False
    for path in paths:
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for pattern, ilp64 in _NAMES:
            try:
                fns = [ctypes.cast(getattr(lib, pattern.format(f)), ctypes.c_void_p).value
                       for f in ("sgemm", "dgemm", "sgemv", "dgemv")]
            except AttributeError:
                continue
            _infer.set_blas(*fns, ilp64)
            if _agrees():
                return True
    _infer.set_blas(0, 0, 0, 0, False)
    return False


def _agrees() -> bool:
    """A plan's gemm and gemv equal np.matmul's, bit for bit, in both precisions."""
    rng = np.random.default_rng(0)
    for dtype in (np.float32, np.float64):
        for m, k, n in ((37, 91, 53), (64, 576, 196), (10, 128, 1), (24, 9, 3)):
            a = rng.standard_normal((m, k)).astype(dtype)
            b = rng.standard_normal((1, k, n)).astype(dtype)
            want = np.matmul(a, b)
            got = np.full_like(want, np.nan)
            plan = _infer.Plan(dtype)
            if n == 1:
                plan.add(_infer.OP_GEMV, (a, b, got), (k, m, k, 1, 1, 1, 0, 0, 0))
            else:
                plan.add(_infer.OP_GEMM, (a, b, got), (_infer.NO_TRANS, _infer.NO_TRANS, m, n, k, k, n, n, 1, 0, 0, 0))
            plan.run()
            if not np.array_equal(got, want):
                return False
    return True
