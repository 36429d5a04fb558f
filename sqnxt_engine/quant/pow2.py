"""Power-of-two threshold search (HPTQ: Habi et al. 2021, "HPTQ: Hardware-Friendly Post Training
Quantization", arXiv 2109.09113): every threshold is a power of two, chosen among candidate
powers of two by the smallest quantization error instead of taken from the largest value.

A threshold t = 2**M gives a symmetric quantizer of step t / 2**(b-1) (signed) or t / 2**b
(unsigned, a tensor >= 0 by construction), codes clipped to the tensor's code range
(schema.code_range): values beyond the largest code are clipped, the rest rounded.

  weights      one threshold per output channel (per-channel thresholds). Channel thresholds
               that are powers of two differ by powers of two: they are the shift scaler's
               per-channel shifts s_o = M_max - M_o on one layer-wise scale 2**M_max / 2**(b-1),
               so the file keeps one requantization multiplier per layer (weights.py). s_o is
               4 bits (0..15): a channel whose best M_o lies more than 15 below the layer's
               M_max gets M_max - 15.
  activations  one threshold per tensor (per-tensor), searched over every value of every
               calibration image in the float network.
With both, each layer's requantization ratio (input step x weight step / output step) is a
power of two: its multiplier is 2**(multiplier bits - 1) and the whole rescaling a shift.

Open parameters (the paper's own settings are not at hand; only its abstract and the
documentation of its authors' implementation, Sony's Model Compression Toolkit, were read):

ERROR_P = 2: the error measured is the mean of |x - Q_t(x)|**p over the tensor's values, with
    p = 2 (the mean squared error). Argument: the benchmark's figure of merit, a layer's SQNR
    10 log10(sum x**2 / sum (x - q)**2), is a function of exactly this sum, so the candidate
    of least MSE is the candidate of best SQNR for that tensor alone; and it is the documented
    default of the authors' implementation for both weights and activations
    (QuantizationConfig: activation_error_method=MSE, weights_error_method=MSE, l_p_value=2).
CANDIDATES = 8: the candidates are 2**M for M = ceil(log2 max|x|) - j, j = 0..8 (9 of them).
    j = 0 is the smallest power of two at or above the largest value (it clips by less than
    one step: the largest code is one step below t); each step down halves the step and
    clips more. Argument: at 8 bits, the last candidate, max/256 or less, is below one step of
    the unclipped quantizer (max/127): every value the unclipped quantizer rounds to a nonzero
    code but the largest is then clipped, so a further candidate can only win on a tensor
    whose values are nearly all zero at 8 bits anyway. Powers above the first clip nothing more
    and only coarsen the step, so none is tried. A tensor that is all zeros gets t = 1.
"""
from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np

from ..graph.graph import INPUT
from .fixedpoint import qmax
from .plan import FloatPlan
from .schema import code_range

ERROR_P = 2
CANDIDATES = 8


def candidate_exponents(top: np.ndarray | float) -> np.ndarray:
    """The candidates' exponents M, (..., CANDIDATES + 1), largest first, for largest values
    `top` (0 where top is 0: t = 1)."""
    top = np.asarray(top, np.float64)
    first = np.zeros(top.shape, np.int64)
    live = top > 0
    first[live] = np.ceil(np.log2(top[live])).astype(np.int64)
    return first[..., None] - np.arange(CANDIDATES + 1)


def errors(a: np.ndarray, exps: np.ndarray, hi: int) -> np.ndarray:
    """sum |a - Q_t(a)|**ERROR_P over the last axis of `a` (|values|, (..., n)) for each
    threshold t = 2**M of `exps` ((..., J)): step t / (hi + 1), codes 0..hi of |a| (a symmetric
    signed quantizer's error on |x| is its error on x). Returns (..., J), float64 sums. Works in
    a's precision if float32 (calibration tensors: the values in steps, scaled by powers of
    two, round exactly), float64 otherwise."""
    a = np.asarray(a)
    a = a if a.dtype == np.float32 else a.astype(np.float64)
    exps = np.asarray(exps, np.int64)
    bits = int(math.log2(hi + 1))
    out = np.empty(exps.shape, np.float64)
    d = np.empty_like(a)
    q = np.empty_like(a)
    for j in range(exps.shape[-1]):
        np.multiply(a, np.ldexp(1.0, bits - exps[..., j])[..., None].astype(a.dtype), out=d)  # in steps
        np.minimum(np.rint(d, out=q), hi, out=q)
        np.abs(np.subtract(d, q, out=d), out=d)
        err = np.sum(np.square(d, out=d) if ERROR_P == 2 else d ** ERROR_P, axis=-1, dtype=np.float64)
        out[..., j] = err * np.ldexp(1.0, exps[..., j] - bits) ** ERROR_P
    return out


def best_exponents(a: np.ndarray, hi: int) -> np.ndarray:
    """Per row of `a` ((K, n)): the exponent M of the candidate of least error (ties: the larger
    threshold)."""
    a = np.abs(np.asarray(a, np.float64))
    exps = candidate_exponents(a.max(axis=1, initial=0.0))
    return exps[np.arange(len(a)), np.argmin(errors(a, exps, hi), axis=1)]


def weight_exponents(w: np.ndarray, bits: int, per_channel: bool, shift_max: int) -> np.ndarray:
    """The weights' threshold exponents M_o per output channel (K,): searched per channel and
    kept within `shift_max` of the largest (per_channel), or one for the whole layer."""
    rows = np.asarray(w, np.float64).reshape(len(w), -1)
    if not per_channel:
        return np.repeat(best_exponents(rows.reshape(1, -1), qmax(bits)), len(w))
    m = best_exponents(rows, qmax(bits))
    live = np.abs(rows).max(axis=1, initial=0.0) > 0
    if not live.any():
        return np.zeros(len(w), np.int64)
    top = int(m[live].max())
    m[~live] = top  # an all-zero channel: shift 0, as the shift scaler gives it
    return np.maximum(m, top - shift_max)


def activation_thresholds(plan: FloatPlan, tops: dict[str, float], batches: Iterable[np.ndarray],
                          bits: int, skip: tuple[str, ...] = ()) -> dict[str, float]:
    """{tensor: its power-of-two threshold} over the calibration images `batches` (the float
    plan run again), candidates from `tops` (each tensor's largest |value|, calibrate 'max');
    steps whose kind is in `skip` (they keep their input's scale) keep their largest value."""
    run = plan.executor(np.float32)
    nonneg = plan.nonnegative()
    names = [INPUT] + [s.name for s in plan.steps if s.kind not in skip]
    his = {n: code_range(bits, nonneg[n])[1] for n in names}
    exps = {n: candidate_exponents(tops[n]) for n in names}
    total = {n: np.zeros(CANDIDATES + 1) for n in names}
    for x in batches:
        env = run(x)
        for n in names:
            total[n] += errors(np.abs(env[n], dtype=np.float32).reshape(1, -1), exps[n][None], his[n])[0]
    return {**tops, **{n: float(np.ldexp(1.0, int(exps[n][np.argmin(total[n])]))) for n in names}}
