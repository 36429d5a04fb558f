"""Energy of a layer: access counts times the energy of one access, by level and operand.

Levels: mac (one per performed MAC), rf (register-file reads and writes), pe (PE-to-PE
transfers), gb (global-buffer reads and writes), dram (DRAM reads and writes). Every count is one
word of its operand, at that operand's width (hardware.operand_bits: inputs and weights at
arith.input_bits / weight_bits, partial sums at acc_bits, except a layer's final outputs, written
to DRAM requantised to output_bits, as timing.py's DRAM bytes count them), and costs its level's
per-access energy at that width once: the emulator adds nothing that is not a counter, so energy
== counts x per-access energy exactly. The per-access energies come from the hardware's [energy]
model (hardware.EnergyTable): the paper's Eyeriss-normalised table (MAC = 1, the same at every
size; with energy.per_bit an access of b bits costs b / 16 of its level's entry, the table being
Eyeriss's 16-bit accesses), or horowitz-45nm (pJ at 45 nm; energy_models.py): a register file
and the global buffer priced as SRAMs of their size read at the operand's width, a PE-to-PE
transfer as the receiving PE's register-file write (the source has no figure for the short wire
between neighbours, which is not modelled), DRAM per bit, the MAC as a multiply of the wider
operand's width and an acc_bits add.
`counters` is anything with the kernels' Counters fields (input_rf_reads, ..., macs).
"""
from __future__ import annotations

from dataclasses import dataclass

from ..kernels import OPERANDS
from . import energy_models as EM
from .hardware import HOROWITZ, Hardware

LEVELS = ("mac", "rf", "pe", "gb", "dram")
TABLE_BITS = 16   # the width of the accesses eyeriss-normalised's entries price (module doc)
MEMORY_LEVELS = LEVELS[1:]
# counter kinds (kernels.Counters) summed into each memory level
LEVEL_KINDS = {"rf": ("rf_reads", "rf_writes"), "pe": ("pe_transfers",),
               "gb": ("gb_reads", "gb_writes"), "dram": ("dram_reads", "dram_writes")}


@dataclass(frozen=True)
class Energy:
    """Energy of one layer (or a sum): by level, and by operand within each memory level."""
    mac: float
    rf: float
    pe: float
    gb: float
    dram: float
    by_operand: tuple[tuple[str, str, float], ...]  # (level, operand, energy)

    @property
    def total(self) -> float:
        return self.mac + self.rf + self.pe + self.gb + self.dram

    def levels(self) -> dict[str, float]:
        return {lv: getattr(self, lv) for lv in LEVELS}

    def operand(self, level: str, operand: str) -> float:
        return sum(e for lv, op, e in self.by_operand if lv == level and op == operand)

    def __add__(self, other: Energy) -> Energy:
        if not isinstance(other, Energy):
            return NotImplemented
        acc: dict[tuple[str, str], float] = {}
        for lv, op, e in self.by_operand + other.by_operand:
            acc[(lv, op)] = acc.get((lv, op), 0.0) + e
        return Energy(*(getattr(self, lv) + getattr(other, lv) for lv in LEVELS),
                      tuple((lv, op, e) for (lv, op), e in acc.items()))

    def __radd__(self, other):
        return self if other == 0 else self.__add__(other)


def accesses(counters, level: str, operand: str):
    """Word accesses of one operand at one memory level (an int, or an array for the search's
    columns of many mappings)."""
    return sum(getattr(counters, f"{operand}_{kind}") for kind in LEVEL_KINDS[level])


@dataclass(frozen=True)
class AccessEnergy:
    """The energy of one MAC and of one word's access at each memory level, by operand, on one
    hardware, in `unit`."""
    unit: str
    mac: float
    words: tuple[tuple[str, str, float], ...]  # (level, operand, energy of one access)
    output_write: float  # one final output word written to DRAM (output_bits wide)

    def of(self, level: str, operand: str) -> float:
        return next(e for lv, op, e in self.words if lv == level and op == operand)


def access_energy(hw: Hardware, bits: dict[str, int] | None = None) -> AccessEnergy:
    """The per-access energies of hw's [energy] model (module doc), each operand's word at
    bits[op] (default hw.operand_bits; a streamed step's outputs: timing.stream_bits)."""
    t = hw.energy
    bits = hw.operand_bits if bits is None else bits
    if t.model != HOROWITZ:
        def per_word(level, b):
            return getattr(t, level) * (b / TABLE_BITS if t.per_bit else 1)
        return AccessEnergy(t.unit, t.mac, tuple((lv, op, per_word(lv, bits[op]))
                                                 for lv in MEMORY_LEVELS for op in OPERANDS),
                            per_word("dram", hw.output_bits))
    rf_bytes = hw.rf_bits / 8
    per_bits = {"rf": lambda b: EM.sram_pj(rf_bytes, b),
                "pe": lambda b: EM.sram_pj(rf_bytes, b),  # the receiving PE's register write
                "gb": lambda b: EM.sram_pj(hw.gb_bytes, b),
                "dram": lambda b: b * t.dram_pj_per_bit}
    return AccessEnergy(t.unit, EM.int_mac_pj(max(hw.input_bits, hw.weight_bits), hw.acc_bits),
                        tuple((lv, op, per_bits[lv](bits[op]))
                              for lv in MEMORY_LEVELS for op in OPERANDS),
                        per_bits["dram"](hw.output_bits))


def energy(counters, hw: Hardware, outputs: int, bits: dict[str, int] | None = None) -> Energy:
    """counts x per-access energies of one layer with `outputs` final output words (bits: as
    access_energy's)."""
    unit = access_energy(hw, bits)
    per = list(_by_operand(counters, unit, outputs))
    totals = {lv: 0.0 for lv in LEVELS}
    totals["mac"] = int(counters.macs) * unit.mac
    for level, _, e in per:
        totals[level] += e
    return Energy(**totals, by_operand=tuple(per))


def energy_total(counters, hw: Hardware, outputs: int):
    """energy(...).total for columns of many mappings (the search's objective): arrays in,
    an array out, summed in the same order."""
    unit = access_energy(hw)
    totals = {lv: 0.0 for lv in LEVELS}
    totals["mac"] = counters.macs * unit.mac
    for level, _, e in _by_operand(counters, unit, outputs):
        totals[level] = totals[level] + e
    return sum(totals[lv] for lv in LEVELS)


def _by_operand(counters, unit: AccessEnergy, outputs):
    """(level, operand, energy) of each memory level and operand (module doc): the outputs'
    write-back to DRAM at the output price, spilled partial sums at the psum price."""
    for level, op, e_one in unit.words:
        n = accesses(counters, level, op)
        if (level, op) == ("dram", "psum"):
            yield level, op, outputs * unit.output_write + (n - outputs) * e_one
        else:
            yield level, op, n * e_one
