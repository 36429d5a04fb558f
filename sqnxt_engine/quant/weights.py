"""Symmetric weight quantization of one layer: layer-wise, with the per-channel binary shift
scaler, or per-channel.

The shift scaler is the natural reading of arXiv 2008.05767's abstract (only the abstract is at
hand; MODELS.md spells the reading out), not the authors' code:
  r_o = max |W_o| per output channel o, R = max_o r_o (the layer's range);
  s_o = clip(floor(log2(R / r_o)), 0, 15), a 4-bit shift (s_o = 0 for an all-zero channel);
  W'_o = W_o * 2**s_o, so every channel's range lies in (R/2, R] unless s_o hit 15;
  one layer-wise scale R / qmax for W', codes round(W' / scale) (to nearest, ties to even).
Channel o's weights are then worth code * scale * 2**-s_o: the inverse shift is a power of two
that joins the right shift of requantization (fixedpoint.requantize) at no cost.

With `pow2` (pow2.py, HPTQ's threshold search) the thresholds are powers of two chosen by the
least quantization error: 'shift-scaler' gets one per output channel, M_o, so that s_o =
max_o M_o - M_o (at most 15) and the layer-wise scale is 2**max_o M_o / 2**(bits-1); 'layer'
one for the layer. Values beyond a threshold are clipped.

Codes are symmetric, zero point 0, in [-qmax, qmax] with qmax = 2**(bits-1) - 1 (the most
negative code is left unused so that negation is exact).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import UserError
from .fixedpoint import qmax
from .pow2 import weight_exponents

SHIFT_BITS = 4  # the paper's 4-bit shift: shifts 0..15
METHODS = ("layer", "shift-scaler", "per-channel")


@dataclass
class QuantizedWeight:
    codes: np.ndarray  # int8 or int16, the layer's weight shape
    scale: np.ndarray  # float64 (K,): channel o's weights are codes[o] * scale[o]
    shifts: np.ndarray  # uint8 (K,): the shift scaler's s_o (zeros for the other methods)
    layer_scale: float  # the one scale of layer-wise codes (method 'per-channel': max of scale)


def channel_ranges(w: np.ndarray) -> np.ndarray:
    """max |W_o| per output channel (axis 0)."""
    return np.abs(np.asarray(w, np.float64)).reshape(len(w), -1).max(axis=1)


def shift_scaler(w: np.ndarray) -> np.ndarray:
    """The 4-bit per-channel shifts s_o (see the module doc)."""
    r = channel_ranges(w)
    top = r.max() if r.size else 0.0
    s = np.zeros(len(r), np.int64)
    live = r > 0
    s[live] = np.floor(np.log2(top / r[live]))
    return np.clip(s, 0, (1 << SHIFT_BITS) - 1).astype(np.uint8)


def quantize_weight(w: np.ndarray, bits: int, method: str, pow2: bool = False) -> QuantizedWeight:
    """Codes and per-channel real scales of a folded weight (K, ...) by `method`; `pow2`:
    power-of-two thresholds by search (see the module doc; not with 'per-channel')."""
    if not 2 <= bits <= 16:  # 8 or 16; fewer where a layer is fitted to an accumulator (accfit.py)
        raise UserError(f"weight bits must be 2 to 16, got {bits}")
    if method not in METHODS:
        raise UserError(f"unknown weight quantization {method!r} ({', '.join(METHODS)})")
    w = np.asarray(w, np.float64)
    k, q = len(w), qmax(bits)
    per_channel_shape = (k,) + (1,) * (w.ndim - 1)
    shifts = np.zeros(k, np.uint8)
    if pow2:
        if method == "per-channel":
            raise UserError("the power-of-two threshold search goes with layer-wise weights or the "
                            "shift scaler, not per-channel scales")
        m = weight_exponents(w, bits, method == "shift-scaler", (1 << SHIFT_BITS) - 1)
        top = int(m.max()) if k else 0
        shifts = (top - m).astype(np.uint8)
        scale = np.ldexp(1.0, m - (bits - 1))
        layer_scale = float(np.ldexp(1.0, top - (bits - 1)))
        codes = np.rint(w / scale.reshape(per_channel_shape))
    elif method == "per-channel":
        r = channel_ranges(w)
        scale = np.where(r > 0, r / q, 1.0)
        layer_scale = float(scale.max())
        codes = np.rint(w / scale.reshape(per_channel_shape))
    else:
        if method == "shift-scaler":
            shifts = shift_scaler(w)
        up = np.ldexp(1.0, shifts.astype(np.int64))  # 2**s_o, exact
        top = float(channel_ranges(w).max()) if k else 0.0
        layer_scale = top / q if top > 0 else 1.0
        codes = np.rint(w * up.reshape(per_channel_shape) / layer_scale)
        scale = layer_scale / up
    codes = np.clip(codes, -q, q).astype(np.int8 if bits <= 8 else np.int16)
    return QuantizedWeight(codes, scale, shifts, layer_scale)
