"""The figures a paper quotes, derived in one place from a run's cycles and energy and the
hardware: latency in ms at the hardware's clock, frames per second, the energy-delay product
and the estimated area (area.py); and the hardware's every parameter as flat columns.

- latency_ms = cycles / clock (one inference, batch 1, layers one after another, as emulated)
- fps = 1000 / latency_ms (inferences per second, one after another)
- edp = energy x latency in seconds, in the energy's unit times seconds (edp_unit)
"""
from __future__ import annotations

from .area import area
from .hardware import Hardware, parameters

HW_PREFIX = "hw."   # the columns of the hardware's parameters: hw.<section.key>


def latency_ms(cycles: float, hw: Hardware) -> float:
    return cycles / (hw.clock_mhz * 1e3)


def performance(cycles: float, energy: float, hw: Hardware) -> dict:
    """latency_ms, fps, edp and edp_unit of a run of `cycles` and `energy` on `hw` (module doc)."""
    ms = latency_ms(cycles, hw)
    return {"latency_ms": ms, "fps": 1e3 / ms if ms else None, "edp": energy * ms / 1e3,
            "edp_unit": f"{hw.energy.unit} x s"}


def summary(cycles: float, energy: float, hw: Hardware) -> dict:
    """performance() and the hardware's estimated area (area.Area.row) together."""
    return {**performance(cycles, energy, hw), **area(hw).row()}


def hardware_columns(hw: Hardware) -> dict:
    """Every parameter `hw` runs with (hardware.parameters: defaults and derived values
    included) as flat columns hw.<section.key>; a table or a list as its text."""
    def flat(v):
        if isinstance(v, dict):
            return ", ".join(f"{k} {x:g}" for k, x in v.items())
        if isinstance(v, tuple):
            return ",".join(v)
        return v
    return {HW_PREFIX + k: flat(v) for k, v in parameters(hw).items()}


def summary_line(cycles: float, energy: float, hw: Hardware) -> str:
    """summary() in one line, for a table's footer."""
    s = summary(cycles, energy, hw)
    a = area(hw)
    return (f"latency {s['latency_ms']:.4g} ms at {hw.clock_mhz:g} MHz ({s['fps']:.4g} frames/s), "
            f"EDP {s['edp']:.4g} {s['edp_unit']}; area {a.total:.3g} {s['area_unit']}: MACs "
            f"{a.mac:.3g}, register files {a.rf:.3g}, buffer {a.gb:.3g}")


def design_parts(r: dict) -> dict[str, str]:
    """A design's main parameters in words, from a record's hw.* columns (or the record's own
    columns, for records made before them): array, buffer, precision, accumulator, clock and
    node ("45 nm" under the horowitz-45nm energy model, else "")."""
    def g(key, column, default=None):   # a number only: a database may hold anything
        for v in (r.get(HW_PREFIX + key), r.get(column), default):
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                return v
        return float("nan")
    return {"array": f"{g('pe.rows', 'pe_rows'):g}x{g('pe.cols', 'pe_cols'):g}",
            "buffer": f"{g('buffer.bytes', 'gb_bytes') / 1024:g} KB",
            "precision": _precision(g),
            "accumulator": _accumulator(g, r.get(HW_PREFIX + "arith.overflow", "wrap")),
            "clock": f"{g('clock.mhz', 'clock_mhz', 500.0):g} MHz",
            "node": "45 nm" if r.get(HW_PREFIX + "energy.model") == "horowitz-45nm" else ""}


def _precision(g) -> str:
    """'16-bit', or '16-bit datapath, 8/8-bit operands' where the operands are narrower
    (arith.input_bits / weight_bits)."""
    word = g("arith.word_bits", "word_bits", 16)
    ops = (g("arith.input_bits", "", word), g("arith.weight_bits", "", word))
    if ops == (word, word):
        return f"{word:g}-bit"
    return f"{word:g}-bit datapath, {ops[0]:g}/{ops[1]:g}-bit operands"


def _accumulator(g, overflow) -> str:
    """'32-bit accumulator', '24-bit saturating accumulator' (arith.acc_bits, arith.overflow)."""
    return f"{g('arith.acc_bits', '', 32):g}-bit{' saturating' if overflow == 'saturate' else ''} accumulator"


# the paper's: left unsaid
UNSAID = {"precision": "16-bit", "accumulator": "32-bit accumulator", "clock": "500 MHz", "node": ""}


def hardware_label(r: dict, leave_out=()) -> str:
    """A design in a few words, design_parts but those at the paper's values (UNSAID) and those
    in `leave_out`: "8x8, 32 KB, 8-bit, 45 nm"."""
    return ", ".join(v for k, v in design_parts(r).items()
                     if v != UNSAID.get(k) and k not in leave_out)
