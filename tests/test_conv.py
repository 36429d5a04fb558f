"""The runner's convolution equals a naive six-loop reference for every configuration."""
import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from sqnxt_engine.functional import conv2d

from strategies import conv_geometries
from tolerance import assert_close


def naive_conv(x, w, b, stride, pad, dil, groups):
    """Algorithm 1 written plainly: for k, y, x, c, j, i — in float64."""
    n, c, h, wd = x.shape
    o, cg, kh, kw = w.shape
    t, bo, l, r = pad
    ho = (h + t + bo - dil[0] * (kh - 1) - 1) // stride[0] + 1
    wo = (wd + l + r - dil[1] * (kw - 1) - 1) // stride[1] + 1
    og = o // groups
    out = np.zeros((n, o, ho, wo))
    for nn in range(n):
        for k in range(o):
            g = k // og
            for yy in range(ho):
                for xx in range(wo):
                    acc = 0.0 if b is None else float(b[k])
                    for ci in range(cg):
                        for j in range(kh):
                            for i in range(kw):
                                iy = yy * stride[0] - t + j * dil[0]
                                ix = xx * stride[1] - l + i * dil[1]
                                if 0 <= iy < h and 0 <= ix < wd:
                                    acc += x[nn, g * cg + ci, iy, ix] * w[k, ci, j, i]
                    out[nn, k, yy, xx] = acc
    return out


@given(conv_geometries(max_hw=9, max_dilation=2), st.integers(1, 2), st.booleans(),
       st.integers(0, 2**16))
def test_conv2d_matches_naive_loops(layer, n, bias, seed):
    groups, cg, og, kernel = layer.groups, layer.cg, layer.kg, layer.kernel
    stride, dil, pad, h, w = layer.stride, layer.dilation, layer.pad, layer.H, layer.W
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, groups * cg, h, w))
    wt = rng.normal(size=(groups * og, cg) + kernel)
    b = rng.normal(size=groups * og) if bias else None
    got = conv2d(x, wt, b, stride, pad, dil, groups)
    want = naive_conv(x, wt, b, stride, pad, dil, groups)
    assert got.shape == want.shape
    assert_close(got, want, 1e-10)


def test_conv2d_keeps_float32():
    x = np.ones((1, 2, 4, 4), np.float32)
    assert conv2d(x, np.ones((3, 2, 3, 3)), None, padding=(1, 1, 1, 1)).dtype == np.float32
