"""16-bit fixed-point operands for the emulated MAC, and magnitude pruning.

This is the emulation of *float* weights only: a per-layer fixed-point check of each MAC layer
(float in, integers through the kernels, float out), not a network anyone deploys. A quantized
file (sqnxt-quant, sqnxt_engine.quant: shift scaler, per-channel scales, calibrated activations,
requantization in integers) runs as a true integer network in emu/integer.py. One power-of-two
scale per tensor. A tensor whose largest magnitude is m gets f fractional bits, the most for which
m * 2**f still fits a signed word (f may be negative for large values); q = round(v * 2**f),
clipped. Weights are scaled from their own max |w| (per layer); a layer's input activations
from the max |x| the float runner saw at that point on the same image (calibration on the
image being run). The bias enters the accumulator at the product's scale 2**(fx + fw).
"""
from __future__ import annotations

import math

import numpy as np

from ..quant.fixedpoint import qmax


def frac_bits(max_abs: float, bits: int = 16) -> int:
    """Fractional bits of the power-of-two scale that fits max_abs in a signed `bits` word."""
    top = qmax(bits)
    if not max_abs > 0 or not math.isfinite(max_abs):
        return bits - 1
    f = math.floor(math.log2(top / max_abs))
    while max_abs * 2.0 ** f > top:  # guard log2 rounding
        f -= 1
    return f


def quantize(a: np.ndarray, f: int, bits: int = 16) -> np.ndarray:
    top = qmax(bits)
    q = np.array(a, np.float64)  # one float64 copy, scaled, rounded and clipped in place
    q *= 2.0 ** f
    np.rint(q, out=q)
    np.clip(q, -top - 1, top, out=q)
    return q.astype(np.int16 if bits <= 16 else np.int32)


def prune(w: np.ndarray, sparsity: float) -> np.ndarray:
    """Zero the round(sparsity * size) weights of smallest magnitude (ties broken by position).

    Linear time: the k-th smallest magnitude comes from a partition (a full sort of AlexNet's
    fc6 took seconds); every weight below it is zeroed, then the first ones equal to it, by
    position, until k are zero."""
    if not 0 <= sparsity < 1:
        raise ValueError(f"sparsity must be in [0, 1), got {sparsity}")
    w = np.array(w, copy=True)
    k = int(round(sparsity * w.size))
    if k:
        mag = np.abs(w).ravel()
        t = np.partition(mag, k - 1)[k - 1]
        below = mag < t
        ties = np.flatnonzero(mag == t)[:k - int(below.sum())]
        flat = w.reshape(-1)
        flat[below] = 0
        flat[ties] = 0
    return w
