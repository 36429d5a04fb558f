"""Silicon area of the accelerator, an estimate at 45 nm: the PE array's MACs, the register files
and the global buffer, in mm^2. An estimate from published per-unit figures, not a layout: wires,
the network between PEs, control, the DMA engine and the DRAM interface are not counted, so
designs are compared on the area of what the emulator models (the same parts for every design).

Sources (45 nm, each figure used as published; nothing fitted):
- Arithmetic: M. Horowitz, "Computing's energy problem (and what we can do about it)", ISSCC
  2014, the area column of its 45 nm table: integer add 8-bit 36 um^2, 32-bit 137 um^2; integer
  multiply 8-bit 282 um^2, 32-bit 3495 um^2 (the same table energy_models.py takes its energies
  from). Between and beyond the anchors, the power law through them (energy_models.power_law):
  a 16x16-bit multiply is 282 x 2^1.82 = 994 um^2. A MAC is a word_bits multiplier and an
  acc_bits adder (as its energy is).
- Register files: a flip-flop per bit, the D flip-flop of the NanGate FreePDK45 Open Cell
  Library (DFF_X1, 4.522 um^2). A PE's register file holds pe.rf_words x arith.word_bits bits
  (hardware.Hardware.rf_bits): the one budget the dataflows spend.
- Global buffer: 6T SRAM cells of 0.346 um^2 (Intel's 45 nm high-k metal-gate process, Mistry
  et al., IEDM 2007), buffer.bytes x 8 of them, divided by the array efficiency below.

Parameters the sources leave open, named here with the argument for each (decided before any
figure was compared with anything; there is no published area of the paper's accelerator to
compare with):
- SRAM_ARRAY_EFFICIENCY = 0.5: the share of an SRAM macro its bit cells occupy; the rest is row
  decoders, sense amplifiers, column multiplexers, write drivers and I/O. Compiled SRAM macros of
  tens to hundreds of KB are commonly quoted at roughly 40-70 %; 0.5 is a round value inside
  that range. It scales the buffer's area only, and the same for every buffer size (a larger
  macro amortises its periphery better: larger buffers are slightly overestimated).
- RF_CELL = the flip-flop alone: the read multiplexers and write enables of a register file are
  not counted (a lower bound for the register files, by a factor below 2 for files this small).
- Nothing for the PE's pipeline registers and control, or for the wires between PEs.
"""
from __future__ import annotations

from dataclasses import dataclass

from .energy_models import power_law
from .hardware import Hardware

NODE = "45 nm"
UNIT = "mm^2"
UNIT_LABEL = f"{UNIT} ({NODE}, estimate)"
SOURCE = ('Horowitz, ISSCC 2014 (MAC); NanGate FreePDK45 DFF_X1 (register files); '
          'Mistry et al., IEDM 2007, 6T SRAM cell (global buffer)')

INT_ADD_UM2 = ((8, 36.0), (32, 137.0))        # (bits, um^2), Horowitz ISSCC 2014
INT_MULT_UM2 = ((8, 282.0), (32, 3495.0))
RF_BIT_UM2 = 4.522        # NanGate FreePDK45 DFF_X1
SRAM_BIT_UM2 = 0.346      # 45 nm 6T cell, Mistry et al., IEDM 2007
SRAM_ARRAY_EFFICIENCY = 0.5   # module doc
LEVELS = ("mac", "rf", "gb")  # the PE array's MACs, its register files, the global buffer


@dataclass(frozen=True)
class Area:
    """The estimated area of each level, in mm^2 (module doc)."""
    mac: float
    rf: float
    gb: float

    @property
    def total(self) -> float:
        return self.mac + self.rf + self.gb

    def levels(self) -> dict[str, float]:
        return {lv: getattr(self, lv) for lv in LEVELS}

    def row(self) -> dict:
        """The area as a record's fields: area_mm2 (total), area_<level>_mm2, area_unit."""
        return {"area_mm2": self.total, **{f"area_{lv}_mm2": v for lv, v in self.levels().items()},
                "area_unit": UNIT_LABEL}


def mac_um2(word_bits: int, acc_bits: int) -> float:
    """One MAC unit: a word_bits x word_bits multiplier and an acc_bits adder."""
    return power_law(INT_MULT_UM2, word_bits) + power_law(INT_ADD_UM2, acc_bits)


def area(hw: Hardware) -> Area:
    """The estimated area of `hw` (module doc), mm^2."""
    um2 = 1e-6   # mm^2 per um^2
    return Area(mac=hw.pes * mac_um2(hw.word_bits, hw.acc_bits) * um2,
                rf=hw.pes * hw.rf_bits * RF_BIT_UM2 * um2,
                gb=hw.gb_bytes * 8 * SRAM_BIT_UM2 / SRAM_ARRAY_EFFICIENCY * um2)
