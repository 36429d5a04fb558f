"""The compiled inference kernels (sqnxt_engine/functional/_infer.pyx) equal the NumPy reference they replace:
every convolution scheme with a fused bias and clamp, in float32 and float64, with each clone of
the hot loops this CPU runs (avx512, avx2, baseline: forced through set_simd), and max pooling
with padding and ceil mode; and they give the same result on any number of threads."""
import contextlib
import os
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from sqnxt_engine import functional as F
from sqnxt_engine.functional import _infer

from tolerance import WINOGRAD_REL, assert_close

CLAMPS = [None, (0.0, np.inf), (0.0, 6.0), (-0.5, 0.5)]
# the clones of _infer_simd.h this CPU can run (on x86-64 with GCC 12+: avx512 where present, avx2,
# baseline; elsewhere the one portable set)
CLONES = [name for name, ok in _infer.simd_clones().items() if ok]


@contextlib.contextmanager
def forced(name):
    """The kernels' clone forced to `name`, then back to what it was."""
    before = _infer.simd_clone()
    _infer.set_simd(name)
    try:
        assert _infer.simd_clone() == name
        yield
    finally:
        _infer.set_simd(before)


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
    # phased None: the plan's rule (a layer of up to 4 channels in is "phased"); False keeps such
    # small layers on the gathering schemes (flat, im2col, winograd) so that those stay covered
    return dict(n=draw(st.integers(1, 3)), groups=groups, cg=cg, og=og, kernel=kernel, stride=stride,
                dil=dil, pad=pad, h=h, w=w, bias=draw(st.booleans()), clamp=draw(st.sampled_from(CLAMPS)),
                dtype=draw(st.sampled_from([np.float32, np.float64])), seed=draw(st.integers(0, 2**16)),
                phased=draw(st.sampled_from([None, False])), interleave=draw(st.sampled_from([None, True, False])))


def _plans(case, band_bytes=None):
    rng = np.random.default_rng(case["seed"])
    c = case["groups"] * case["cg"]
    x = rng.normal(size=(case["n"], c, case["h"], case["w"])).astype(case["dtype"])
    wt = rng.normal(size=(case["groups"] * case["og"], case["cg"]) + case["kernel"])
    b = rng.normal(size=case["groups"] * case["og"]) if case["bias"] else None
    args = (wt, b, case["stride"], case["pad"], case["dil"], case["groups"], case["dtype"], case["clamp"])
    fast = F.ConvPlan(*args, phased=case.get("phased"), interleave=case.get("interleave"))
    ref = F.ConvPlan(*args, reference=True)
    if band_bytes is not None:
        fast.BAND_BYTES = band_bytes
    return x, fast, ref


def _tol(dtype):
    """Relative to the output's largest magnitude: the two sides sum in different orders (BLAS
    blocks by instruction set and by the shape of each call), see tests/tolerance.py."""
    return 1e-5 if dtype == np.float32 else 1e-12


@pytest.mark.parametrize("clone", CLONES)
@given(case=plan_cases(), band_bytes=st.sampled_from([None, 64]))
def test_compiled_plan_equals_numpy_reference(clone, case, band_bytes):
    """band_bytes=64 forces the im2col scheme into one-row bands (the band loop and its epilogue).
    Every clone within the same tolerance: the AVX2 and AVX-512 ones fuse multiply-adds, the
    baseline does not, none reorders the taps (_infer_simd.h)."""
    x, fast, ref = _plans(case, band_bytes)
    assert not fast.reference and ref.reference
    with forced(clone):
        got = fast(x)
    want = ref(x)
    assert got.shape == want.shape and got.dtype == want.dtype == np.dtype(case["dtype"])
    assert got.flags.c_contiguous
    assert_close(got, want, _tol(case["dtype"]))


@pytest.mark.parametrize("clone", CLONES)
@pytest.mark.parametrize("c,h,w,kernel,stride,dil,pad,n", [
    (1152, 7, 7, (5, 5), (1, 1), (1, 1), (2, 2, 2, 2), 1),      # EfficientNet-Lite0's last stage
    (24, 14, 14, (5, 5), (2, 2), (1, 1), (1, 2, 1, 2), 2),      # strided, uneven padding
    (21, 9, 13, (3, 5), (1, 2), (2, 1), (2, 2, 0, 3), 3),       # channels not a multiple of 4
    (6, 3, 2, (5, 5), (1, 1), (1, 1), (2, 2, 2, 2), 2),         # taps clipped on both sides
    (16, 30, 17, (7, 3), (3, 1), (1, 3), (0, 0, 3, 3), 1),      # no padding down, dilated across
])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_depthwise_interleaved_equals_phase_planes(clone, c, h, w, kernel, stride, dil, pad, n, dtype):
    """The interleaved form (channels in the lanes, taps clipped at the borders) and the
    phase-plane form sum the same taps in the same order: equal within the clones' tolerance on
    partial channel blocks (the scalar transposes), clipped taps, strides, dilations and batches
    (a run of channels never crosses an image)."""
    rng = np.random.default_rng(c + h)
    wt, b = rng.normal(size=(c, 1) + kernel), rng.normal(size=c)
    x = rng.normal(size=(n, c, h, w)).astype(dtype)
    inter, phases = (F.ConvPlan(wt, b, stride, pad, dil, c, dtype, (-0.5, 6.0), interleave=i) for i in (True, False))
    with forced(clone):
        got = inter(x)
    assert got.flags.c_contiguous
    assert_close(got, phases(x), _tol(dtype))


def test_depthwise_interleave_rule():
    """Interleaved at a stride above 1 or on outputs at most DEPTHWISE_INTERLEAVE_MAX_WIDTH wide."""
    def plan(stride):
        return F.ConvPlan(np.ones((8, 1, 3, 3)), None, stride, (1, 1, 1, 1), (1, 1), 8, np.float32)

    m = F.ConvPlan.DEPTHWISE_INTERLEAVE_MAX_WIDTH
    assert m == 28
    assert plan((1, 1)).depthwise_interleaves(m, m) and not plan((1, 1)).depthwise_interleaves(m, m + 1)
    assert plan((2, 2)).depthwise_interleaves(56, 56) and plan((1, 2)).depthwise_interleaves(112, 56)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("kernel,stride", [((5, 5), (1, 1)), ((3, 3), (2, 2)), ((5, 5), (2, 2))])
def test_depthwise_clones_agree(dtype, kernel, stride):
    """EfficientNet-Lite0's depthwise shapes on a 14x14 plane (runs of many vector blocks and a
    partial one): every clone equals the reference within tolerance, and the clones agree with
    each other as closely (the baseline's separate multiply and add rounds twice where the others
    round once)."""
    case = dict(n=2, groups=24, cg=1, og=1, kernel=kernel, stride=stride, dil=(1, 1),
                pad=(kernel[0] // 2,) * 4, h=14, w=14, bias=True, clamp=(0.0, 6.0), dtype=dtype, seed=3)
    x, fast, ref = _plans(case)
    want = ref(x)
    got = {}
    for name in CLONES:
        with forced(name):
            got[name] = fast(x)
        assert_close(got[name], want, _tol(dtype), err_msg=name)
    for name in CLONES:
        assert_close(got[name], got[CLONES[0]], _tol(dtype), err_msg=name)


@st.composite
def winograd_cases(draw):
    """1x3 and 3x1 kernels as ConvPlan's winograd scheme takes them: SqueezeNext's paddings
    ((1, 1, 0, 0) for 3x1, (0, 0, 1, 1) for 1x3) among any others up to 2, planes from 1 to 23
    (whole and partial tiles, a 3x1's 2-row plane), batches of 1 to 3."""
    kernel = draw(st.sampled_from([(1, 3), (3, 1)]))
    usual = (1, 1, 0, 0) if kernel == (3, 1) else (0, 0, 1, 1)
    pad = draw(st.one_of(st.just(usual), st.tuples(*[st.integers(0, 2)] * 4)))
    h, w = draw(st.integers(1, 23)), draw(st.integers(1, 23))
    h = max(h, 3 - pad[0] - pad[1]) if kernel == (3, 1) else h
    w = max(w, 3 - pad[2] - pad[3]) if kernel == (1, 3) else w
    return dict(n=draw(st.integers(1, 3)), groups=1, cg=draw(st.integers(2, 12)), og=draw(st.integers(1, 12)),
                kernel=kernel, stride=(1, 1), dil=(1, 1), pad=pad, h=h, w=w, bias=draw(st.booleans()),
                clamp=draw(st.sampled_from(CLAMPS)), dtype=draw(st.sampled_from([np.float32, np.float64])),
                seed=draw(st.integers(0, 2**16)))


@pytest.mark.parametrize("clone", CLONES)
@given(case=winograd_cases())
def test_winograd_equals_direct_convolution(clone, case):
    """Winograd F(4,3) forced on equals the NumPy direct convolution within WINOGRAD_REL, with
    each clone of its transforms. The bound is relative to the largest output before the clamp:
    a clamp to (-0.5, 0.5) keeps the sums' rounding, not their range."""
    x, _, ref = _plans(case)
    rng = np.random.default_rng(case["seed"])
    wt = rng.normal(size=(case["og"], case["cg"]) + case["kernel"])
    b = rng.normal(size=case["og"]) if case["bias"] else None
    plan = F.ConvPlan(wt, b, (1, 1), case["pad"], (1, 1), 1, case["dtype"], case["clamp"], winograd=True)
    ref = F.ConvPlan(wt, b, (1, 1), case["pad"], (1, 1), 1, case["dtype"], case["clamp"], reference=True)
    assert plan.scheme == "winograd"
    with forced(clone):
        got = plan(x)
    want = ref(x)
    unclamped = F.ConvPlan(wt, b, (1, 1), case["pad"], (1, 1), 1, case["dtype"], reference=True)(x)
    assert got.dtype == want.dtype and got.flags.c_contiguous
    scale = float(np.abs(unclamped).max()) / max(float(np.abs(want).max()), 1e-30)
    assert_close(got, want, WINOGRAD_REL[np.dtype(case["dtype"])] * max(scale, 1.0))


def _spy_winograd(monkeypatch):
    """Count the calls of the Winograd input transform."""
    calls = []
    real = _infer.winograd_input
    monkeypatch.setattr(_infer, "winograd_input", lambda *a: calls.append(a[2]) or real(*a))
    return calls


def test_winograd_plan_rule(monkeypatch):
    """The plan rule (ConvPlan.winograd_wins): Winograd where it saves at least
    WINOGRAD_MIN_SAVED multiply-adds per image on the input's size, flat elsewhere; never on the
    reference path, for other kernels, or when turned off (the integer runner's exact sums)."""
    rng = np.random.default_rng(0)

    def plan(o, c, kernel, **kw):
        pad = (1, 1, 0, 0) if kernel == (3, 1) else (0, 0, 1, 1)
        return F.ConvPlan(rng.normal(size=(o, c) + kernel), None, (1, 1), pad, (1, 1), 1, np.float32, **kw)

    big = plan(64, 32, (1, 3))  # sqnxt23v5_w1's 1x3 32->64 layer at 14x14: 64*32*(3*14*16 - 6*56) saved
    assert big.scheme == "winograd" and big.winograd_wins(14, 14)
    assert 64 * 32 * (3 * 14 * 16 - 6 * 56) >= F.ConvPlan.WINOGRAD_MIN_SAVED
    small = plan(16, 8, (3, 1))  # the Fashion-MNIST model's 3x1 8->16 at 14x14: 16*8*(3*196 - 6*56)
    assert small.scheme == "winograd" and not small.winograd_wins(14, 14)
    assert small.winograd_wins(55, 55)  # the same kernel on sqnxt23v5_w1's 55x55 planes
    # a 3x1 on a 2-row plane: one tile of 4 rows for 2, 6 multiplies per 2 outputs, nothing saved
    assert not plan(512, 512, (3, 1)).winograd_wins(2, 2)
    calls = _spy_winograd(monkeypatch)
    big(rng.normal(size=(1, 32, 14, 14)).astype(np.float32))
    small(rng.normal(size=(1, 8, 14, 14)).astype(np.float32))
    assert calls == [1]  # only the 1x3 plan used Winograd (kh 1)
    assert plan(64, 32, (1, 3), winograd=False).scheme == "flat"
    assert plan(64, 32, (1, 3), reference=True).scheme == "flat"
    assert plan(64, 32, (1, 3), winograd=True).winograd_wins(14, 14)
    monkeypatch.setattr(F.ConvPlan, "WINOGRAD", False)
    assert plan(64, 32, (1, 3)).scheme == "flat"
    with pytest.raises(ValueError, match="Winograd"):
        F.ConvPlan(np.ones((4, 4, 3, 3)), None, (1, 1), (1, 1, 1, 1), (1, 1), 1, np.float32, winograd=True)
    with pytest.raises(ValueError, match="Winograd"):
        plan(64, 32, (1, 3), winograd=True, reference=True)


def test_winograd_forced_on_small_planes_is_used(monkeypatch):
    """winograd=True uses Winograd whatever the rule says (the tests above rely on it)."""
    calls = _spy_winograd(monkeypatch)
    p = F.ConvPlan(np.ones((2, 2, 3, 1)), None, (1, 1), (1, 1, 0, 0), (1, 1), 1, np.float32, winograd=True)
    assert not p.winograd_wins(3, 3)
    p(np.ones((1, 2, 3, 3), np.float32))
    assert calls == [3]


def test_winograd_scratch_is_per_thread():
    """Plans run side by side in threads (the Runner's batch split) each use their own thread's
    Winograd buffers: results equal the serial ones."""
    from concurrent.futures import ThreadPoolExecutor
    rng = np.random.default_rng(5)
    plans = [F.ConvPlan(rng.normal(size=(24, 16) + k), rng.normal(size=24), (1, 1), pad, (1, 1), 1,
                        np.float32, (0.0, 6.0), winograd=True)
             for k, pad in [((1, 3), (0, 0, 1, 1)), ((3, 1), (1, 1, 0, 0))]]
    xs = [rng.normal(size=(2, 16, h, h)).astype(np.float32) for h in (9, 17, 30)]
    jobs = [(p, x) for p in plans for x in xs] * 4
    serial = [p(x) for p, x in jobs]
    with ThreadPoolExecutor(3) as pool:
        parallel = list(pool.map(lambda job: job[0](job[1]), jobs))
    for a, b in zip(serial, parallel):
        np.testing.assert_array_equal(a, b)


def _spy_pointwise(monkeypatch):
    """Count the calls of the direct pointwise kernel."""
    calls = []
    real = _infer.pointwise
    monkeypatch.setattr(_infer, "pointwise", lambda *a: calls.append(a[0].shape) or real(*a))
    return calls


@pytest.mark.parametrize("clone", CLONES)
@given(o=st.integers(1, 40), c=st.integers(1, 40), h=st.integers(1, 20), w=st.integers(1, 20),
       n=st.integers(1, 3), bias=st.booleans(), clamp=st.sampled_from(CLAMPS),
       dtype=st.sampled_from([np.float32, np.float64]), seed=st.integers(0, 2**16))
def test_direct_pointwise_equals_the_blas_product(clone, o, c, h, w, n, bias, clamp, dtype, seed):
    """The direct 1x1 kernel (direct=True) equals the BLAS product with its epilogue (direct=False)
    with each clone, every number of output channels (whole blocks and a partial last one) and
    of pixels (vector blocks, single vectors, the last few outputs)."""
    rng = np.random.default_rng(seed)
    wt, b = rng.normal(size=(o, c, 1, 1)), rng.normal(size=o) if bias else None
    x = rng.normal(size=(n, c, h, w)).astype(dtype)
    direct, blas = (F.ConvPlan(wt, b, (1, 1), (0, 0, 0, 0), (1, 1), 1, dtype, clamp, direct=d) for d in (True, False))
    assert direct.direct and not blas.direct
    with forced(clone):
        got = direct(x)
    want = blas(x)
    assert got.dtype == want.dtype and got.flags.c_contiguous
    assert_close(got, want, _tol(dtype))


def test_direct_pointwise_plan_rule(monkeypatch):
    """The direct kernel for one image where a 1x1 layer (stride 1, unpadded, one group, compiled
    path) has a plane of at least POINTWISE_DIRECT_PIXELS pixels and an input of at most
    POINTWISE_DIRECT_BYTES, or at most POINTWISE_DIRECT_MAX channels in and out; BLAS elsewhere."""
    def plan(o, c, stride=(1, 1), pad=(0, 0, 0, 0), groups=1, **kw):
        return F.ConvPlan(np.ones((o, c // groups, 1, 1)), None, stride, pad, (1, 1), groups, np.float32, **kw)

    assert not plan(16, 8).direct   # off by default (ConvPlan.DIRECT: the compiled pass does not mirror it)
    monkeypatch.setattr(F.ConvPlan, "DIRECT", True)
    m, px = F.ConvPlan.POINTWISE_DIRECT_MAX, F.ConvPlan.POINTWISE_DIRECT_PIXELS
    assert plan(m, m).direct_pointwise_wins(2, 2) and plan(8, 16).direct_pointwise_wins(1, 1)
    assert plan(m, m).direct_pointwise_wins(224, 224)  # any size with few channels
    assert not plan(m, m).direct_pointwise_wins(14, 14, 2)  # BLAS for several images
    # 28x28 and more with an input of at most POINTWISE_DIRECT_BYTES (float32: 256 KB)
    assert px == 28 * 28 and F.ConvPlan.POINTWISE_DIRECT_BYTES == 256 * 1024
    assert plan(240, 40).direct_pointwise_wins(28, 28)  # 40 * 784 * 4 = 125 KB
    assert not plan(40, 144).direct_pointwise_wins(28, 28)  # 451 KB
    assert not plan(m + 1, 8).direct_pointwise_wins(27, 28) and not plan(8, m + 1).direct_pointwise_wins(14, 14)
    for p in (plan(16, 16, stride=(2, 2)), plan(16, 16, pad=(1, 1, 1, 1)), plan(16, 16, groups=2),
              plan(16, 16, reference=True), plan(16, 16, direct=False)):
        assert not p.direct
    calls = _spy_pointwise(monkeypatch)
    big, small = plan(64, 64), plan(16, 8)
    for p, n, hw in ((big, 1, 28), (big, 1, 14), (small, 1, 4), (small, 2, 4), (plan(64, 128, direct=True), 2, 2)):
        p(np.ones((n, p.cg, hw, hw), np.float32))
    assert calls == [(1, 64, 784), (1, 8, 16), (2, 128, 4)]  # not the 64->64 on 14x14, nor 2 images
    monkeypatch.setattr(F.ConvPlan, "DIRECT", False)
    assert not plan(16, 16).direct and plan(16, 16, direct=True).direct
    with pytest.raises(ValueError, match="direct kernel"):
        plan(16, 16, stride=(2, 2), direct=True)
    with pytest.raises(ValueError, match="direct kernel"):
        F.ConvPlan(np.ones((4, 4, 3, 3)), None, (1, 1), (1, 1, 1, 1), (1, 1), 1, np.float32, direct=True)


@pytest.mark.parametrize("clone", CLONES)
@pytest.mark.parametrize("o,c,h,w,kernel,stride,dil,pad,n", [
    (64, 3, 61, 59, (7, 7), (2, 2), (1, 1), (1, 1, 1, 1), 1),    # SqueezeNext's stem, smaller
    (32, 3, 49, 47, (3, 3), (2, 2), (1, 1), (0, 1, 0, 1), 2),    # EfficientNet's
    (13, 1, 28, 28, (3, 3), (1, 1), (1, 1), (1, 1, 1, 1), 3),    # a partial channel block
    (9, 2, 300, 5, (5, 3), (1, 2), (2, 1), (3, 0, 2, 1), 2),     # tall: many bands per image
    (17, 4, 40, 9, (1, 5), (3, 1), (1, 2), (0, 0, 4, 4), 1),
])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_phased_equals_the_gathered_product(clone, o, c, h, w, kernel, stride, dil, pad, n, dtype):
    """The phased kernel (phased=True) equals the gather-and-multiply schemes (phased=False) with
    each clone: partial channel blocks, bands of rows (a tall plane spans many), strides, dilations
    and uneven padding, several images."""
    rng = np.random.default_rng(o + h)
    wt, b = rng.normal(size=(o, c) + kernel), rng.normal(size=o)
    x = rng.normal(size=(n, c, h, w)).astype(dtype)
    phased, gathered = (F.ConvPlan(wt, b, stride, pad, dil, 1, dtype, (0.0, 6.0), phased=p) for p in (True, False))
    assert phased.scheme == "phased" and gathered.scheme in ("flat", "im2col")
    with forced(clone):
        got = phased(x)
    assert got.flags.c_contiguous
    assert_close(got, gathered(x), _tol(dtype))


@st.composite
def phased_pool_cases(draw):
    k, stride = draw(st.integers(1, 7)), draw(st.integers(1, 2))
    h, w = draw(st.integers(k, 40)), draw(st.integers(k, 50))
    pad = draw(st.integers(0, k // 2))
    ho, wo = (h + 2 * pad - k) // stride + 1, (w + 2 * pad - k) // stride + 1
    pk = draw(st.integers(1, min(4, ho, wo)))
    return (draw(st.integers(1, 2)), draw(st.integers(1, 3)), draw(st.integers(1, 20)), h, w, k, stride,
            pad, pk, draw(st.integers(1, 3)), draw(st.integers(0, pk // 2)), draw(st.booleans()),
            draw(st.sampled_from([np.float32, np.float64])), draw(st.integers(0, 2**16)))


@pytest.mark.parametrize("clone", CLONES)
@given(case=phased_pool_cases())
def test_phased_pool_equals_the_convolution_then_the_pool(clone, case):
    """phased_pool (a max pool over a phased convolution, its rows pooled band by band) gives
    max_pool2d of phased_conv's output bit for bit: windows over two bands, strides above and
    below the window, padding and ceil mode, windows left empty, several images."""
    n, c, o, h, w, k, stride, pad, pk, ps, pp, ceil, dtype, seed = case
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, c, h, w)).astype(dtype)
    wt, b = _infer.phased_weights(rng.normal(size=(o, c, k, k)), dtype), rng.normal(size=o).astype(dtype)
    ho, wo = (h + 2 * pad - k) // stride + 1, (w + 2 * pad - k) // stride + 1
    conv = np.empty((n, o, ho, wo), dtype)
    with forced(clone):
        _infer.phased_conv(x, wt, b, conv, k, k, stride, stride, 1, 1, pad, pad, 0.0, np.inf)
        want = F.max_pool2d(conv, (pk, pk), (ps, ps), (pp,) * 4, ceil)
        got = np.full_like(want, np.nan)
        _infer.phased_pool(x, wt, b, got, k, k, stride, stride, 1, 1, pad, pad, ho, wo, 0.0, np.inf,
                           pk, pk, ps, ps, pp, pp)
    np.testing.assert_array_equal(got, want)


def test_phased_plan_rule():
    """Phased where a layer is not 1x1, has one group and at most PHASED_MAX_CHANNELS channels in,
    on the compiled path; forcing it elsewhere is a ValueError."""
    def plan(o, c, kernel=(3, 3), groups=1, **kw):
        return F.ConvPlan(np.ones((o, c // groups) + kernel), None, (2, 2), (1, 1, 1, 1), (1, 1), groups,
                          np.float32, **kw)

    m = F.ConvPlan.PHASED_MAX_CHANNELS
    assert m == 4
    assert plan(64, 3, (7, 7)).scheme == plan(8, m).scheme == plan(8, 1, (1, 3)).scheme == "phased"
    assert plan(8, m + 1).scheme == "im2col" and plan(8, 3, phased=False).scheme == "im2col"
    assert plan(8, 3, (1, 1)).scheme == "pointwise" and plan(8, 8, groups=8).scheme == "depthwise"
    assert plan(1, 1).scheme == "depthwise" and plan(1, 1, phased=True).scheme == "phased"
    assert plan(8, 4, groups=2).scheme == "im2col" and plan(8, 3, reference=True).scheme == "im2col"
    for bad in (dict(c=5), dict(c=3, kernel=(1, 1)), dict(c=4, groups=2), dict(c=3, reference=True)):
        with pytest.raises(ValueError, match="phased kernel"):
            plan(8, bad.pop("c"), phased=True, **bad)


def test_set_simd_refuses_unknown_clones():
    before = _infer.simd_clone()
    with pytest.raises(ValueError, match="no kernel clone 'neon'"):
        _infer.set_simd("neon")
    assert _infer.simd_clone() == before
    for name, ok in _infer.simd_clones().items():
        if not ok:
            with pytest.raises(ValueError, match="cannot run"):
                _infer.set_simd(name)
    _infer.set_simd("auto")
    assert _infer.simd_clone() == CLONES[0]  # the best this CPU runs
    _infer.set_simd(before)


@pytest.mark.parametrize("value", CLONES[-1:] + ["bogus"])
def test_environment_variable_forces_a_clone(value):
    """SQNXT_SIMD picks the clone when the module loads; a value that names no clone this CPU runs
    is ignored with a warning (it must not stop every import of the package)."""
    code = "from sqnxt_engine.functional import _infer; print(_infer.simd_clone())"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=os.path.dirname(__file__),
                       env=dict(os.environ, SQNXT_SIMD=value), check=True)
    if value == "bogus":
        assert r.stdout.strip() == CLONES[0]
        assert "SQNXT_SIMD ignored" in r.stderr
    else:
        assert r.stdout.strip() == value and not r.stderr


@st.composite
def pool_cases(draw):
    kernel = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    pad = (draw(st.integers(0, kernel[0] // 2)), draw(st.integers(0, kernel[0] // 2)),
           draw(st.integers(0, kernel[1] // 2)), draw(st.integers(0, kernel[1] // 2)))
    h = draw(st.integers(kernel[0], 12))
    w = draw(st.integers(kernel[1], 40))
    return (draw(st.integers(1, 2)), draw(st.integers(1, 4)), h, w, kernel, stride, pad,
            draw(st.booleans()), draw(st.sampled_from([np.float32, np.float64])), draw(st.integers(0, 2**16)))


@pytest.mark.parametrize("clone", CLONES)
@given(case=pool_cases())
def test_compiled_max_pool_equals_numpy_reference(clone, case):
    """Bit for bit (a maximum rounds nothing), with each clone of the column pass; widths up to 40
    give the vector loops whole vectors and tails."""
    n, c, h, w, kernel, stride, pad, ceil, dtype, seed = case
    x = np.random.default_rng(seed).normal(size=(n, c, h, w)).astype(dtype)
    with forced(clone):
        got = F.max_pool2d(x, kernel, stride, pad, ceil)
    want = F.max_pool2d_reference(x, kernel, stride, pad, ceil)
    assert got.dtype == want.dtype
    np.testing.assert_array_equal(got, want)


@given(st.integers(1, 5), st.integers(1, 300), st.sampled_from([np.float32, np.float64]),
       st.integers(0, 2**16))
def test_global_average_pool_is_the_exact_mean_rounded_once(planes, size, dtype, seed):
    """Summed in double, so each float32 mean is the exact one rounded once (math.fsum's); the
    float64 ones within a few units in the last place. Sizes past 4 give the four running sums
    and a tail."""
    import math
    x = np.random.default_rng(seed).normal(size=(planes, 1, 1, size)).astype(dtype) * 1e3
    got = F.global_avg_pool(x)
    assert got.shape == (planes, 1, 1, 1) and got.dtype == dtype
    want = np.array([math.fsum(row.tolist()) / size for row in x.reshape(planes, size)])
    if dtype == np.float32:
        np.testing.assert_array_equal(got.ravel(), want.astype(np.float32))
    else:
        np.testing.assert_allclose(got.ravel(), want, rtol=4e-16 * max(size, 4), atol=0)


def _depthwise_case():
    case = dict(n=3, groups=8, cg=1, og=1, kernel=(5, 5), stride=(2, 2), dil=(1, 1), pad=(1, 2, 1, 2),
                h=13, w=11, bias=True, clamp=(0.0, 6.0), dtype=np.float32, seed=1)
    x, fast, _ = _plans(case)
    return fast, x


def _phased_case():
    """Rows split over threads: a share may start inside an image and inside a band."""
    rng = np.random.default_rng(2)
    p = F.ConvPlan(rng.normal(size=(20, 3, 7, 7)), rng.normal(size=20), (2, 2), (3, 3, 3, 3), (1, 1), 1,
                   np.float32, (0.0, np.inf))
    return p, rng.normal(size=(3, 3, 90, 45)).astype(np.float32)


@pytest.mark.skipif(not _infer.has_openmp(), reason="built without OpenMP: the kernels run serially")
@pytest.mark.parametrize("case", [_depthwise_case, _phased_case])
def test_threads_do_not_change_results(case):
    plan, x = case()
    before = _infer.threads()
    try:
        _infer.set_threads(1)
        one = plan(x)
        _infer.set_threads(3)
        np.testing.assert_array_equal(plan(x), one)
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
