"""The one tolerance for float outputs computed through BLAS (convolutions lowered to matrix
products, fully connected layers), shared by the test files (tests/ is on pytest's path).

BLAS picks its blocking, so its order of summation, by the instruction set (OpenBLAS's AVX2
Haswell kernels differ from its AVX-512 SkylakeX ones), by the number of threads and by the shape
of the call (a batch of 7 is not a batch of 3). Each output then moves by a few roundings of the
terms summed into it, whatever its own size: an output that is small because its terms cancel
moves as much as the largest one. A per-element relative tolerance (rtol) fails on such outputs
by chance of the machine; a bound relative to the largest output does not, and still catches any
real error (a wrong slice, a wrong weight, a wrong order), which moves outputs by a sizeable part
of their range.

To see the other instruction set on an AVX-512 machine: OPENBLAS_CORETYPE=Haswell pytest ...
(threadpoolctl.threadpool_info() names the kernel OpenBLAS runs)."""
from __future__ import annotations

import numpy as np


def assert_close(got, want, rel: float, err_msg: str = "") -> None:
    """Every element of `got` within `rel` times max|want| of `want` (shapes equal)."""
    got, want = np.asarray(got), np.asarray(want)
    assert got.shape == want.shape, f"shape {got.shape} != {want.shape} {err_msg}"
    scale = float(np.abs(want).max()) if want.size else 0.0
    np.testing.assert_allclose(got, want, rtol=0, atol=rel * scale, err_msg=err_msg)


# Winograd F(4,3) (ConvPlan's "winograd" scheme, 1x3 and 3x1 kernels): its transforms scale the
# inputs by up to 5 and the products' results by up to 8 before they cancel, so an output carries
# a few roundings of terms larger than itself. Measured against float64: 1.5e-6 of the largest
# output on the shipped models' layers in float32 (benchmarks/conv_schemes.py; the direct
# product's 4.5e-7), 1.3e-6 on 400 random shapes, 2.4e-15 in float64. A wrong tap or tile moves
# outputs by a sizeable part of their range, far above these bounds.
WINOGRAD_REL = {np.dtype(np.float32): 1e-5, np.dtype(np.float64): 1e-12}
