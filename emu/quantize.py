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
    return sum(zero_count(quantize(flat[i:i + _BLOCK], f, bits))
               for i in range(0, flat.size, _BLOCK))


def zero_count(a: np.ndarray) -> int:
    """The zeros of an array, counted block by block (no boolean array of the whole)."""
    flat = np.asarray(a).reshape(-1)
    return sum(int(np.count_nonzero(flat[i:i + _BLOCK] == 0)) for i in range(0, flat.size, _BLOCK))


def prune(w: np.ndarray, sparsity: float, in_place: bool = False) -> np.ndarray:
    """Zero the round(sparsity * size) weights of smallest magnitude (ties broken by position):
    a copy, or w itself with in_place=True (a C-contiguous array).

    Linear time: the k-th smallest magnitude t is selected (kth_magnitude; a full sort of
    AlexNet's fc6 took seconds); every weight below it is zeroed, then the first ones equal to
    it, by position, until k are zero. Float weights are read a block of _BLOCK at a time,
    with no copy of the whole array (AlexNet's fc6: 151 MB of magnitudes before)."""
    if not 0 <= sparsity < 1:
        raise ValueError(f"sparsity must be in [0, 1), got {sparsity}")
    if in_place and not w.flags.c_contiguous:
        raise ValueError("pruning in place needs a C-contiguous array")
    w = w if in_place else np.array(w, copy=True, order="C")
    k = int(round(sparsity * w.size))
    if k:
        flat = w.reshape(-1)
        t, ties = kth_magnitude(flat, k)
        for i in range(0, flat.size, _BLOCK):
            part = flat[i:i + _BLOCK]
            a = np.abs(part)
            if ties:
                tied = np.flatnonzero(a == t)[:ties]
                part[tied] = 0
                ties -= len(tied)
            part[a < t] = 0
    return w


def kth_magnitude(flat: np.ndarray, k: int):
    """(t, ties): the k-th smallest |value| of a 1-D array (k >= 1; NaN above every number, as
    a sort puts it) and how many values of magnitude t are among the k smallest.

    Floats: a radix selection on the magnitudes' bit patterns (sign cleared, an unsigned
    integer as ordered as the magnitude), 16 bits at a time from the top, one histogram of the
    values still in the running per pass over blocks of _BLOCK; other dtypes: a partition of a
    copy of the magnitudes."""
    if flat.dtype.kind != "f" or flat.dtype.itemsize not in (2, 4, 8):
        mag = np.abs(flat)
        mag.partition(k - 1)
        t = mag[k - 1]
        del mag
        return t, k - sum(int(np.count_nonzero(np.abs(flat[i:i + _BLOCK]) < t))
                          for i in range(0, flat.size, _BLOCK))
    bits = 8 * flat.dtype.itemsize
    uint = np.dtype(f"u{flat.dtype.itemsize}")
    sign_off = uint.type((1 << (bits - 1)) - 1)
    prefix, rank = 0, k   # the bits chosen so far; the rank of the k-th among values with them
    for shift in range(bits - 16, -1, -16):
        hist = np.zeros(1 << 16, np.int64)
        for i in range(0, flat.size, _BLOCK):
            v = flat[i:i + _BLOCK].view(uint) & sign_off
            if shift + 16 < bits:
                v = v[(v >> uint.type(shift + 16)) == prefix]
            hist += np.bincount(((v >> uint.type(shift)) & uint.type(0xFFFF)).astype(np.intp),
                                minlength=1 << 16)
        below = np.cumsum(hist)
        digit = int(np.searchsorted(below, rank))   # the first digit with rank values up to it
        rank -= int(below[digit - 1]) if digit else 0
        prefix = (prefix << 16) | digit
    return np.array(prefix, uint).view(flat.dtype)[()], rank


_BLOCK = 1 << 20
