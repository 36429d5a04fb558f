"""Integer arithmetic of the quantized datapath: the accumulator, and requantization by one
integer multiplier and a rounding right shift (the gemmlowp / TFLite integer-only scheme).

Every function here takes and returns int64 NumPy arrays and never rounds through floats: the
NumPy integer runner and the emulator call the same functions after their accumulators, so
they agree bit for bit. Floats appear only when a model is built (choosing multipliers from
real scales), never when it runs.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..errors import UserError

OVERFLOW_MODES = ("wrap", "saturate")
# The datapath's operands are 16-bit signed words (the paper's 16-bit MAC): weight and activation
# codes must fit one, whatever width they were quantized to.
OPERAND_BITS = 16


def qmax(bits: int) -> int:
    """The largest code of a symmetric signed `bits`-bit word (its smallest is -qmax or one less)."""
    return (1 << (bits - 1)) - 1


@dataclass(frozen=True)
class Accumulator:
    """The MAC's wide accumulator: `bits` wide (signed), and what a sum that leaves its range
    becomes.

    wrap: two's complement wrap-around, what an adder without overflow logic computes. Wrapping
    is arithmetic modulo 2**bits, so the result is the same whatever order the partial sums were
    added in: every dataflow and loop order of the emulator gives the same integers.
    saturate: the sum is clamped to the range when it leaves the accumulator (an accumulator
    with guard bits and a saturating write-back, as DSPs have). A per-partial-sum saturating
    adder would make the result depend on the loop order; this definition does not.

    The requantization multiplier gets the bits the accumulator leaves in a 63-bit product:
    `multiplier_bits` = min(31, 63 - bits) (31 for a 32-bit accumulator, as in gemmlowp).
    An emulated accelerator's accumulator may be up to 64 bits wide (int64 holds every sum);
    a quantized file's is 16 to 48 (schema.check_file_accumulator): its multiplier needs bits."""
    bits: int = 32
    overflow: str = "wrap"

    def __post_init__(self):
        if not 16 <= self.bits <= 64:
            raise UserError(f"accumulator width must be 16 to 64 bits, got {self.bits}")
        if self.overflow not in OVERFLOW_MODES:
            raise UserError(f"overflow must be one of {', '.join(OVERFLOW_MODES)}, got {self.overflow!r}")

    @property
    def multiplier_bits(self) -> int:
        return min(31, 63 - self.bits)

    def apply(self, acc: np.ndarray) -> np.ndarray:
        """The accumulator's content for exact int64 sums `acc`."""
        if self.bits >= 64:  # int64 sums: nothing to wrap or clamp
            return acc
        lim = 1 << (self.bits - 1)
        if self.overflow == "saturate":
            return np.clip(acc, -lim, lim - 1)
        return ((acc + lim) & ((1 << self.bits) - 1)) - lim

    def overflows(self, acc: np.ndarray) -> int:
        """How many of the exact sums leave the accumulator's range."""
        if self.bits >= 64:
            return 0
        lim = 1 << (self.bits - 1)
        return int(np.count_nonzero((acc < -lim) | (acc >= lim)))


def quantize_multiplier(real: float, bits: int) -> tuple[int, int]:
    """(m, r) with m < 2**bits and real ~= m * 2**-r, m holding `bits` significant bits.
    Raises when real needs a left shift (r < 1), which no layer of a sensible model does."""
    if not (real >= 0 and math.isfinite(real)):
        raise UserError(f"requantization scale {real} is not a finite non-negative number")
    if real == 0:
        return 0, 1
    frac, exp = math.frexp(real)  # real = frac * 2**exp, frac in [0.5, 1)
    m = round(frac * (1 << bits))
    if m == 1 << bits:
        m, exp = m // 2, exp + 1
    r = bits - exp
    if r < 1:
        raise UserError(f"requantization scale {real:.3g} is too large for a right shift")
    if r > 62:  # below the smallest step of any output code: the result is 0
        return 0, 1
    return m, r


def rounding_shift(v: np.ndarray, shift) -> np.ndarray:
    """v / 2**shift rounded to nearest, ties toward +infinity (add half, arithmetic shift);
    shift >= 1, a scalar or an array broadcast against v."""
    shift = np.asarray(shift, np.int64)
    return (v + (np.int64(1) << (shift - 1))) >> shift


def requantize(acc: np.ndarray, multiplier, shift, lo, hi) -> np.ndarray:
    """clamp(round(acc * multiplier / 2**shift), lo, hi): the output stage of every layer.
    multiplier, shift, lo and hi broadcast against acc (per output channel: shaped (K, 1, 1))."""
    y = rounding_shift(acc * np.asarray(multiplier, np.int64), shift)
    return np.clip(y, lo, hi)


def common_shift_multipliers(ratios, bits: int = 30) -> tuple[np.ndarray, int]:
    """Multipliers m_i and one shift r with ratios[i] ~= m_i * 2**-r, the largest m_i below
    2**bits: how an add (or an average pool) brings several inputs to one output scale before a
    single rounding."""
    ratios = np.asarray(ratios, np.float64)
    top = float(ratios.max()) if ratios.size else 0.0
    if not (top > 0 and math.isfinite(top)):
        return np.zeros(ratios.shape, np.int64), 1
    r = bits - math.frexp(top)[1]
    if r < 1:
        raise UserError(f"rescaling ratio {top:.3g} is too large for a right shift")
    r = min(r, 62)
    return np.rint(ratios * 2.0 ** r).astype(np.int64), r
