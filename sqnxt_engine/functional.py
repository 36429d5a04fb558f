"""NumPy implementations of the operators' arithmetic, on NCHW batches.

Kept free of graph types so that the IR, the runners and the tests can all call the same code.
"""
from __future__ import annotations

import numpy as np


def out_size(size: int, kernel: int, stride: int, pad_lo: int, pad_hi: int,
             dilation: int = 1, ceil_mode: bool = False) -> int:
    """Output extent of a window sweep. In ceil mode the last window must start inside the
    input or its leading padding (the PyTorch and Caffe rule)."""
    span = size + pad_lo + pad_hi - dilation * (kernel - 1) - 1
    if span < 0:
        return 0
    if not ceil_mode:
        return span // stride + 1
    n = -(-span // stride) + 1
    if (n - 1) * stride >= size + pad_lo:
        n -= 1
    return n


def _pad(x: np.ndarray, top: int, bottom: int, left: int, right: int, value: float) -> np.ndarray:
    if top == bottom == left == right == 0:
        return x
    n, c, h, w = x.shape
    out = np.full((n, c, h + top + bottom, w + left + right), value, dtype=x.dtype)
    # negative padding (crop) never occurs: callers pass non-negative pads
    out[:, :, top:top + h, left:left + w] = x
    return out


def _windows(xp: np.ndarray, kh: int, kw: int, sh: int, sw: int, dh: int, dw: int,
             ho: int, wo: int):
    """Yield (i, j, view) for every kernel tap: view[n, c, y, x] = xp[n, c, y*sh + i*dh, x*sw + j*dw]."""
    for i in range(kh):
        for j in range(kw):
            r0, c0 = i * dh, j * dw
            yield i, j, xp[:, :, r0:r0 + (ho - 1) * sh + 1:sh, c0:c0 + (wo - 1) * sw + 1:sw]


def conv2d(x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None = None,
           stride=(1, 1), padding=(0, 0, 0, 0), dilation=(1, 1), groups: int = 1) -> np.ndarray:
    """2-D convolution (cross-correlation), NCHW input, OIHW weight, padding (top, bottom, left, right).

    Three schemes, each chosen where it moves the least memory: 1x1 kernels are one matrix
    product; depthwise kernels accumulate shifted slices; other stride-1 kernels are one matrix
    product per tap over shifted views of the padded input (no im2col copy); strided kernels
    gather the taps once (im2col) and do one matrix product per group.
    """
    n, c, h, w = x.shape
    o, cg, kh, kw = weight.shape
    sh, sw = stride
    dh, dw = dilation
    top, bottom, left, right = padding
    ho = out_size(h, kh, sh, top, bottom, dh)
    wo = out_size(w, kw, sw, left, right, dw)
    og = o // groups
    weight = weight.astype(x.dtype, copy=False)

    if kh == kw == 1:
        xs = _pad(x, top, bottom, left, right, 0.0)[:, :, : (ho - 1) * sh + 1: sh, : (wo - 1) * sw + 1: sw]
        if groups == 1:
            y = np.matmul(weight.reshape(o, c), xs.reshape(n, c, ho * wo))
        else:
            xg = xs.reshape(n, groups, cg, ho * wo)
            y = np.matmul(weight.reshape(groups, og, cg), xg).reshape(n, o, ho * wo)
        y = y.reshape(n, o, ho, wo)
    elif cg == 1 and og == 1:  # depthwise: im2col would waste a matrix product per channel
        xp = _pad(x, top, bottom, left, right, 0.0)
        y = np.zeros((n, o, ho, wo), dtype=x.dtype)
        wflat = weight.reshape(o, kh, kw)
        for i, j, view in _windows(xp, kh, kw, sh, sw, dh, dw, ho, wo):
            y += view * wflat[:, i, j][None, :, None, None]
    elif sh == sw == 1:
        y = _conv_shifted(x, weight, padding, dilation, groups, ho, wo)
    else:
        xp = _pad(x, top, bottom, left, right, 0.0)
        s = xp.strides
        taps = np.lib.stride_tricks.as_strided(
            xp, (n, c, kh, kw, ho, wo), (s[0], s[1], s[2] * dh, s[3] * dw, s[2] * sh, s[3] * sw),
            writeable=False)
        cols = taps.reshape(n, groups, cg * kh * kw, ho * wo)  # the one copy
        y = np.matmul(weight.reshape(groups, og, cg * kh * kw), cols).reshape(n, o, ho, wo)
    if bias is not None:
        y += bias.astype(x.dtype, copy=False)[None, :, None, None]
    return y


def _conv_shifted(x, weight, padding, dilation, groups, ho, wo):
    """Stride-1 convolution as a sum over taps of W[:, :, i, j] @ (input shifted by the tap).

    The padded input is flattened per channel with its padded row length `wp`; the tap (i, j) is
    then the contiguous run starting at i*dh*wp + j*dw, and every output row is computed over the
    full padded width (wp - wo wasted columns per row, cropped at the end). No im2col copy is
    made: each product reads a strided view of the padded input directly.
    """
    n, c, _, _ = x.shape
    o, cg, kh, kw = weight.shape
    og = o // groups
    top, bottom, left, right = padding
    dh, dw = dilation
    xp = _pad(x, top, bottom + 1, left, right, 0.0)  # one spare row: the last tap's run may overhang
    wp = xp.shape[3]
    flat = xp.reshape(n, groups, cg, -1)
    run = ho * wp
    y = np.empty((n, groups, og, run), dtype=x.dtype)
    tmp = np.empty_like(y) if kh * kw > 1 else None
    wg = weight.reshape(groups, og, cg, kh, kw)
    for t, (i, j) in enumerate((i, j) for i in range(kh) for j in range(kw)):
        start = i * dh * wp + j * dw
        view = flat[:, :, :, start:start + run]
        wt = np.ascontiguousarray(wg[:, :, :, i, j])
        if t == 0:
            np.matmul(wt, view, out=y)
        else:
            np.matmul(wt, view, out=tmp)
            y += tmp
    return y.reshape(n, o, ho, wp)[:, :, :, :wo]


def _pool_geometry(x, kernel, stride, padding, ceil_mode):
    kh, kw = kernel
    sh, sw = stride
    top, bottom, left, right = padding
    h, w = x.shape[2:]
    ho = out_size(h, kh, sh, top, bottom, 1, ceil_mode)
    wo = out_size(w, kw, sw, left, right, 1, ceil_mode)
    # ceil mode: windows may overhang the bottom/right beyond the explicit padding
    extra_b = max(0, (ho - 1) * sh + kh - (h + top + bottom))
    extra_r = max(0, (wo - 1) * sw + kw - (w + left + right))
    return ho, wo, extra_b, extra_r


def max_pool2d(x, kernel, stride, padding=(0, 0, 0, 0), ceil_mode=False):
    """Max pool, separably: the max over a window is the max over its rows of the max over its
    columns, so a kh x kw window costs kw + kh comparisons per output instead of kh * kw."""
    ho, wo, eb, er = _pool_geometry(x, kernel, stride, padding, ceil_mode)
    top, bottom, left, right = padding
    xp = _pad(x, top, bottom + eb, left, right + er, -np.inf)
    (kh, kw), (sh, sw) = kernel, stride
    cols = None
    for j in range(kw):
        view = xp[:, :, :, j:j + (wo - 1) * sw + 1:sw]
        cols = view.copy() if cols is None else np.maximum(cols, view, out=cols)
    out = None
    for i in range(kh):
        view = cols[:, :, i:i + (ho - 1) * sh + 1:sh]
        out = view.copy() if out is None else np.maximum(out, view, out=out)
    return out


def avg_pool2d(x, kernel, stride, padding=(0, 0, 0, 0), ceil_mode=False, count_include_pad=True):
    """Average pool. The divisor counts explicit padding when count_include_pad (PyTorch's and
    Caffe's default) but never the ceil-mode overhang."""
    ho, wo, eb, er = _pool_geometry(x, kernel, stride, padding, ceil_mode)
    top, bottom, left, right = padding
    xp = _pad(x, top, bottom + eb, left, right + er, 0.0)
    total = np.zeros(x.shape[:2] + (ho, wo), dtype=x.dtype)
    for _, _, view in _windows(xp, kernel[0], kernel[1], stride[0], stride[1], 1, 1, ho, wo):
        total += view
    h, w = x.shape[2:]
    mask = np.zeros((1, 1, h + top + bottom + eb, w + left + right + er), dtype=x.dtype)
    if count_include_pad:
        mask[:, :, : h + top + bottom, : w + left + right] = 1
    else:
        mask[:, :, top:top + h, left:left + w] = 1
    count = np.zeros((1, 1, ho, wo), dtype=x.dtype)
    for _, _, view in _windows(mask, kernel[0], kernel[1], stride[0], stride[1], 1, 1, ho, wo):
        count += view
    return total / count


def lrn(x, size: int, alpha: float, beta: float, k: float):
    """Local response normalisation across channels: x / (k + alpha/size * sum_window x^2)^beta."""
    sq = x * x
    c = x.shape[1]
    half = size // 2
    acc = np.zeros_like(x)
    padded = np.concatenate([np.zeros_like(sq[:, :half]), sq,
                             np.zeros_like(sq[:, : size - 1 - half])], axis=1)
    for i in range(size):
        acc += padded[:, i:i + c]
    return x / (k + (alpha / size) * acc) ** beta


def batch_norm(x, gamma, beta, mean, var, eps):
    scale, shift = bn_scale_shift(gamma, beta, mean, var, eps)
    shape = (1, -1) + (1,) * (x.ndim - 2)
    return x * scale.astype(x.dtype).reshape(shape) + shift.astype(x.dtype).reshape(shape)


def bn_scale_shift(gamma, beta, mean, var, eps):
    """Batch norm as y = x * scale + shift, computed in float64 so folding loses nothing."""
    scale = np.asarray(gamma, np.float64) / np.sqrt(np.asarray(var, np.float64) + eps)
    shift = np.asarray(beta, np.float64) - np.asarray(mean, np.float64) * scale
    return scale, shift
