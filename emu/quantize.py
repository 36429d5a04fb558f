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
    a = np.asarray(a)
    out = np.empty(a.shape, np.int16 if bits <= 16 else np.int32)
    src, dst = a.reshape(-1), out.reshape(-1)
    for i in range(0, src.size, _BLOCK):  # a float64 copy of one block at a time, scaled,
        q = np.array(src[i:i + _BLOCK], np.float64)  # rounded and clipped in place
        q *= 2.0 ** f
        np.rint(q, out=q)
        np.clip(q, -top - 1, top, out=q)
        dst[i:i + _BLOCK] = q
    return out


def quantized_zeros(a: np.ndarray, f: int, bits: int = 16) -> int:
    """The zeros of quantize(a, f, bits), counted block by block (no full copy of a)."""
    flat = np.asarray(a).reshape(-1)
    return sum(int(np.count_nonzero(quantize(flat[i:i + _BLOCK], f, bits) == 0))
               for i in range(0, flat.size, _BLOCK))


def prune(w: np.ndarray, sparsity: float, in_place: bool = False) -> np.ndarray:
    """Zero the round(sparsity * size) weights of smallest magnitude (ties broken by position):
    a copy, or w itself with in_place=True (a C-contiguous array).

    Linear time: the k-th smallest magnitude comes from a partition (a full sort of AlexNet's
    fc6 took seconds); every weight below it is zeroed, then the first ones equal to it, by
    position, until k are zero. Beside w, one array of its magnitudes is made (partitioned in
    place) and the rest goes in blocks of _BLOCK weights."""
    if not 0 <= sparsity < 1:
        raise ValueError(f"sparsity must be in [0, 1), got {sparsity}")
    if in_place and not w.flags.c_contiguous:
        raise ValueError("pruning in place needs a C-contiguous array")
    w = w if in_place else np.array(w, copy=True, order="C")
    k = int(round(sparsity * w.size))
    if k:
        flat = w.reshape(-1)
        mag = np.abs(flat)
        mag.partition(k - 1)
        t = mag[k - 1]
        del mag
        blocks = range(0, flat.size, _BLOCK)
        ties = k - sum(int(np.count_nonzero(np.abs(flat[i:i + _BLOCK]) < t)) for i in blocks)
        for i in blocks:
            part = flat[i:i + _BLOCK]
            a = np.abs(part)
            if ties:
                tied = np.flatnonzero(a == t)[:ties]
                part[tied] = 0
                ties -= len(tied)
            part[a < t] = 0
    return w


_BLOCK = 1 << 20
