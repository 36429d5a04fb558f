"""The compiled inference kernels (sqnxt_engine/functional/_infer.pyx) equal the NumPy reference they replace:
every convolution scheme with a fused bias and clamp, in float32 and float64, and max pooling
with padding and ceil mode; and they give the same result on any number of threads."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from sqnxt_engine import functional as F
from sqnxt_engine.functional import _infer

from tolerance import assert_close

CLAMPS = [None, (0.0, np.inf), (0.0, 6.0), (-0.5, 0.5)]


@st.composite
def plan_cases(draw):
    groups = draw(st.sampled_from([1, 1, 2, "dw"]))
    kernel = draw(st.sampled_from([(1, 1), (3, 3), (1, 3), (3, 1), (5, 5), (7, 7)]))
    cg, og = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    if groups == "dw":
        groups, cg, og = draw(st.integers(1, 6)), 1, 1
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    dil = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    pad = tuple(draw(st.integers(0, 3)) for _ in range(4))
    h, w = draw(st.integers(1, 14)), draw(st.integers(1, 14))
    if F.out_size(h, kernel[0], stride[0], pad[0], pad[1], dil[0]) <= 0 or \
            F.out_size(w, kernel[1], stride[1], pad[2], pad[3], dil[1]) <= 0:
        h, w = h + dil[0] * kernel[0], w + dil[1] * kernel[1]
    return dict(n=draw(st.integers(1, 3)), groups=groups, cg=cg, og=og, kernel=kernel, stride=stride,
                dil=dil, pad=pad, h=h, w=w, bias=draw(st.booleans()), clamp=draw(st.sampled_from(CLAMPS)),
                dtype=draw(st.sampled_from([np.float32, np.float64])), seed=draw(st.integers(0, 2**16)))


def _plans(case, band_bytes=None):
    rng = np.random.default_rng(case["seed"])
    c = case["groups"] * case["cg"]
    x = rng.normal(size=(case["n"], c, case["h"], case["w"])).astype(case["dtype"])
    wt = rng.normal(size=(case["groups"] * case["og"], case["cg"]) + case["kernel"])
    b = rng.normal(size=case["groups"] * case["og"]) if case["bias"] else None
    args = (wt, b, case["stride"], case["pad"], case["dil"], case["groups"], case["dtype"], case["clamp"])
    fast, ref = F.ConvPlan(*args), F.ConvPlan(*args, reference=True)
    if band_bytes is not None:
        fast.BAND_BYTES = band_bytes
    return x, fast, ref


def _tol(dtype):
    """Relative to the output's largest magnitude: the two sides sum in different orders (BLAS
    blocks by instruction set and by the shape of each call), see tests/tolerance.py."""
    return 1e-5 if dtype == np.float32 else 1e-12


@given(plan_cases(), st.sampled_from([None, 64]))
def test_compiled_plan_equals_numpy_reference(case, band_bytes):
    """band_bytes=64 forces the im2col scheme into one-row bands (the band loop and its epilogue)."""
    x, fast, ref = _plans(case, band_bytes)
    assert not fast.reference and ref.reference
    got, want = fast(x), ref(x)
    assert got.shape == want.shape and got.dtype == want.dtype == np.dtype(case["dtype"])
    assert got.flags.c_contiguous
    assert_close(got, want, _tol(case["dtype"]))


@st.composite
def pool_cases(draw):
    kernel = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    pad = (draw(st.integers(0, kernel[0] // 2)), draw(st.integers(0, kernel[0] // 2)),
           draw(st.integers(0, kernel[1] // 2)), draw(st.integers(0, kernel[1] // 2)))
    h = draw(st.integers(kernel[0], 12))
    w = draw(st.integers(kernel[1], 12))
    return (draw(st.integers(1, 2)), draw(st.integers(1, 4)), h, w, kernel, stride, pad,
            draw(st.booleans()), draw(st.sampled_from([np.float32, np.float64])), draw(st.integers(0, 2**16)))


@given(pool_cases())
def test_compiled_max_pool_equals_numpy_reference(case):
    n, c, h, w, kernel, stride, pad, ceil, dtype, seed = case
    x = np.random.default_rng(seed).normal(size=(n, c, h, w)).astype(dtype)
    got = F.max_pool2d(x, kernel, stride, pad, ceil)
    want = F.max_pool2d_reference(x, kernel, stride, pad, ceil)
    assert got.dtype == want.dtype
    np.testing.assert_array_equal(got, want)


@pytest.mark.skipif(not _infer.has_openmp(), reason="built without OpenMP: the kernels run serially")
def test_threads_do_not_change_results():
    case = dict(n=3, groups=8, cg=1, og=1, kernel=(5, 5), stride=(2, 2), dil=(1, 1), pad=(1, 2, 1, 2),
                h=13, w=11, bias=True, clamp=(0.0, 6.0), dtype=np.float32, seed=1)
    x, fast, _ = _plans(case)
    before = _infer.threads()
    try:
        _infer.set_threads(1)
        one = fast(x)
        _infer.set_threads(3)
        np.testing.assert_array_equal(fast(x), one)
    finally:
        _infer.set_threads(before)


def test_batch_split_over_threads_equals_one_pass():
    """With set_threads(n) the Runner splits a batch of at least 2n images into n slices run side
    by side. The outputs are the same, in order, up to rounding: a fully connected layer's product
    has the batch as its rows, and BLAS picks its blocking (so its summation order) by size and by
    instruction set, which moves logits near zero by much more than 1e-5 of themselves (1.3e-5 with
    OpenBLAS's AVX2 kernels): the bound is relative to the largest logit (tests/tolerance.py)."""
    from threadpoolctl import threadpool_limits

    from sqnxt_engine import zoo
    from sqnxt_engine.runtime import Runner, random_weights, set_threads
    from sqnxt_engine.runtime import threads as T

    graph = zoo.build("1.0-SqNxt-23v5", num_classes=10, input_size=32)
    runner = Runner(graph, random_weights(graph, 0))
    x = np.random.default_rng(0).normal(size=(7,) + graph.input_shape).astype(np.float32)
    before = T.inference_threads()
    # the context puts BLAS's own thread limits back afterwards (set_threads changes them for good)
    with threadpool_limits(limits=None, user_api="blas"):
        try:
            set_threads(1)
            whole = runner(x)
            set_threads(3)  # 7 images: slices of 3, 2, 2
            assert_close(runner(x), whole, 1e-5)
            np.testing.assert_allclose(runner(x[:5]), runner.run(x[:5])[graph.outputs[0]], rtol=0)  # not split
        finally:
            set_threads(before)
