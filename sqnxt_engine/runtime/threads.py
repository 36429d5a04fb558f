"""How many threads inference uses: the BLAS library's (the matrix products, through NumPy), the
compiled inference kernels' (functional/_infer.pyx, when built with OpenMP), and the Runner's
(a batch split into slices, or each step of its compiled pass split over _infer's own threads).

BLAS threads are set through threadpoolctl: NumPy does not expose its BLAS's thread count, the
environment variables (OPENBLAS_NUM_THREADS, MKL_NUM_THREADS...) are read only when the library
loads, and threadpoolctl knows each BLAS's own call (OpenBLAS, MKL, BLIS, Apple Accelerate).
"""
from __future__ import annotations

from ..errors import UserError
from ..functional import _infer

_threads = 1  # what set_threads was last given (1 until it is called)
_blas = None   # threadpoolctl's controller, found once: finding the libraries costs milliseconds


def set_threads(n: int) -> None:
    """Use n threads for inference from now on, in this process (BLAS, the kernels, and the
    Runner's split: a batch of at least 2n images into n slices, a smaller one by splitting each
    step of the compiled pass). Until called, BLAS uses its own default (all cores, for
    OpenBLAS), the kernels one thread, and nothing is split."""
    global _threads
    if not isinstance(n, int) or n < 1:
        raise UserError(f"the thread count must be a positive integer, got {n!r}")
    _blas_controller().limit(limits=n, user_api="blas")  # not used as a context: the limit stays
    _infer.set_threads(n)
    _threads = n


def inference_threads() -> int:
    """The thread count set_threads was given, 1 until it is called."""
    return _threads


def single_threaded_blas():
    """A context in which BLAS runs on one thread (the Runner's splits, whose own threads are the
    parallelism)."""
    return _blas_controller().limit(limits=1, user_api="blas")


def _blas_controller():
    global _blas
    if _blas is None:
        from threadpoolctl import ThreadpoolController
        _blas = ThreadpoolController()
    return _blas

