"""How many threads inference uses: the BLAS library's (the matrix products, through NumPy) and
the compiled inference kernels' (kernels/_infer.pyx, when built with OpenMP).

BLAS threads are set through threadpoolctl: NumPy does not expose its BLAS's thread count, the
environment variables (OPENBLAS_NUM_THREADS, MKL_NUM_THREADS...) are read only when the library
loads, and threadpoolctl knows each BLAS's own call (OpenBLAS, MKL, BLIS, Apple Accelerate).
"""
from __future__ import annotations

from ..errors import UserError
from ..kernels import _infer


def set_threads(n: int) -> None:
    """Use n threads for inference from now on, in this process (BLAS and the kernels).
    Until called, BLAS uses its own default (all cores, for OpenBLAS) and the kernels one thread."""
    if not isinstance(n, int) or n < 1:
        raise UserError(f"the thread count must be a positive integer, got {n!r}")
    from threadpoolctl import threadpool_limits
    threadpool_limits(limits=n, user_api="blas")  # not used as a context: the limit stays
    _infer.set_threads(n)


def kernel_threads() -> int:
    """The compiled kernels' thread count (1 in a build without OpenMP, whatever was set)."""
    return _infer.threads() if _infer.has_openmp() else 1
