"""Energy per access that follows the hardware: the `horowitz-45nm` model's anchors and formulas.

Source: M. Horowitz, "Computing's energy problem (and what we can do about it)", ISSCC 2014,
Digest of Technical Papers, pp. 10-14: the table of rough energy costs per operation in a 45 nm
process at 0.9 V. Its figures used here, and nothing else from it:

  memory, one 64-bit access:  SRAM 8 KB 10 pJ, 32 KB 20 pJ, 1 MB 100 pJ;  DRAM 1.3-2.6 nJ
  integer add:                8-bit 0.03 pJ, 32-bit 0.1 pJ
  integer multiply:           8-bit 0.2 pJ, 32-bit 3.1 pJ

Between two anchors the energy follows the power law through them (straight in log-log); beyond
the outer anchors, the nearest segment's law is extended. So every anchor is reproduced exactly
and the exponent is the source's own: SRAM alpha = log(20/10)/log(32/8) = 0.5 from 8 to 32 KB
and log(100/20)/log(1024/32) = 0.464 from 32 KB to 1 MB (the square-root growth of a memory
whose bit lines and word lines lengthen with the side of the array); multiplier
log(3.1/0.2)/log(4) = 1.98 (an array multiplier's n^2); adder log(0.1/0.03)/log(4) = 0.87
(a ripple adder's n). An SRAM access's energy is taken as proportional to its width (bits read
out of the 64 of the anchors): a narrower access drives fewer bit lines and sense amplifiers.
DRAM: the middle of the source's range, 1.95 nJ per 64 bits (30.5 pJ per bit), by default.
The source gives no area for memories; emu/area.py estimates areas from it and two other sources.
"""
from __future__ import annotations

import math

NODE = "45 nm"
UNIT = f"pJ ({NODE})"
SOURCE = 'Horowitz, "Computing\'s energy problem", ISSCC 2014, 45 nm, 0.9 V'

SRAM_ANCHOR_BITS = 64
SRAM_ANCHORS = ((8 * 1024, 10.0), (32 * 1024, 20.0), (1024 * 1024, 100.0))  # (bytes, pJ)
DRAM_ACCESS_BITS = 64
DRAM_ACCESS_PJ = (1300.0, 2600.0)  # the source's range for one 64-bit access
DRAM_PJ_PER_BIT = sum(DRAM_ACCESS_PJ) / 2 / DRAM_ACCESS_BITS
INT_ADD = ((8, 0.03), (32, 0.1))    # (bits, pJ)
INT_MULT = ((8, 0.2), (32, 3.1))


def _segment(points, x: float) -> tuple[tuple[float, float], float]:
    """The anchor a power law through `points` starts from at x, and that segment's exponent
    (the outer segments extend beyond the outer anchors)."""
    i = 0
    while i < len(points) - 2 and x > points[i + 1][0]:
        i += 1
    (x0, y0), (x1, y1) = points[i], points[i + 1]
    return (x0, y0), math.log(y1 / y0) / math.log(x1 / x0)


def exponent(points, x: float) -> float:
    """The power-law exponent the model uses at x."""
    return _segment(points, x)[1]


def power_law(points, x: float) -> float:
    """The value at x of the piecewise power law through `points` (sorted by x)."""
    (x0, y0), alpha = _segment(points, x)
    return y0 * (x / x0) ** alpha


def sram_pj(size_bytes: float, width_bits: float) -> float:
    """One access of `width_bits` to an SRAM of `size_bytes`."""
    return power_law(SRAM_ANCHORS, size_bytes) * width_bits / SRAM_ANCHOR_BITS


def int_mac_pj(word_bits: int, acc_bits: int) -> float:
    """One integer MAC: a word_bits x word_bits multiply and an acc_bits add."""
    return power_law(INT_MULT, word_bits) + power_law(INT_ADD, acc_bits)
