"""Energy of a layer: access counts times the normalised cost per access, by level and operand.

Levels (hardware.EnergyTable): mac (one per performed MAC), rf (register-file reads and writes),
pe (PE-to-PE transfers), gb (global-buffer reads and writes), dram (DRAM reads and writes).
Every count is one word (an operand or a partial sum) and costs the table's figure once: the
emulator adds nothing that is not a counter, so energy == counts x table exactly.
`counters` is anything with the kernels' Counters fields (input_rf_reads, ..., macs).
"""
from __future__ import annotations

from dataclasses import dataclass

from .hardware import OPERANDS, EnergyTable

LEVELS = ("mac", "rf", "pe", "gb", "dram")
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


def accesses(counters, level: str, operand: str) -> int:
    """Word accesses of one operand at one memory level."""
    return sum(int(getattr(counters, f"{operand}_{kind}")) for kind in LEVEL_KINDS[level])


def energy(counters, table: EnergyTable) -> Energy:
    """counts x unit costs."""
    per = []
    totals = {lv: 0.0 for lv in LEVELS}
    totals["mac"] = int(counters.macs) * table.mac
    for level in ("rf", "pe", "gb", "dram"):
        unit = getattr(table, level)
        for op in OPERANDS:
            e = accesses(counters, level, op) * unit
            per.append((level, op, e))
            totals[level] += e
    return Energy(**totals, by_operand=tuple(per))
