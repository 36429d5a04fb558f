"""One record for every step the accelerator charges, and the one function that costs it.

A network runs on the emulated accelerator as a sequence of steps; each step that costs
something becomes a StepRecord: a MAC layer (conv or fc, through the loop-nest kernels), a
shift copied through the buffer (emu/shift.py), and, where the hardware times them
(`layers.non_mac_cycles`), the steps without MACs that move data (pools, adds, activations,
the squeeze-excitation multiply). Every record is made by `charge` from the step's counters
and timing (timing.py, the only place a Timing is made): energy = counts x the hardware's
per-access energies (energy.py), so a record's cycles are the sum of its `timing.parts` and its
energy the sum of its levels, whatever the step. Every report (the trace table, --breakdown,
--json, --csv, the plots, figure6, diff, the sweep's records and pareto) reads these records.

A step without MACs is a pass streamed through the buffer (`stream_counters`,
timing.stream_timing): its input words fetched from DRAM into the buffer and read by the array,
its output words written by the array into the buffer and by the DMA back to DRAM. Its outputs
are final, so they move at output_bits everywhere (timing.stream_bits) and are written to DRAM
as outputs (energy.energy's `outputs`).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from ..kernels import ConvShape, Counters, Mapping
from .energy import Energy, energy
from .hardware import Hardware
from .timing import Timing, stream_bits, stream_timing


@dataclass
class StepRecord:
    """What one charged step cost. `conv` and `mapping` are set for MAC steps only."""
    name: str              # the layer's name (a MAC step: the conv or fc the step covers)
    kind: str              # the op's kind: "conv", "fc", "shift", "maxpool", "add", ...
    shape: str             # what the step computes, for a table ("64x56x56 -> ...")
    how: str               # a MAC step's mapping (search.mapping_str), else how it is charged
    counters: Counters
    timing: Timing
    energy: Energy
    dense_macs: int = 0
    conv: ConvShape | None = None
    mapping: Mapping | None = None
    outputs: int = 0       # final output words, written to DRAM at output_bits
    streamed: bool = False  # a pass without MACs streamed through the buffer (its outputs move
                            # at output_bits at every level: timing.stream_bits)
    overflow_bits: int | None = None  # bits a partial sum needed, if it overflowed acc_bits
    acc_fit_bits: int = 0  # float path: input fractional bits given up so the sums fit acc_bits
    shift: str | None = None  # the shift whose remap this layer's input fetch performs

    @property
    def has_macs(self) -> bool:
        return self.mapping is not None

    @property
    def cycles(self) -> float:
        return self.timing.total

    @property
    def dataflow(self) -> str:
        """A MAC step's dataflow; a step without MACs is named by its op kind."""
        return self.mapping.dataflow if self.mapping is not None else self.kind

    def row(self) -> dict:
        """The step as a report's row: the table's columns, the energy by level, the cycle
        parts (cycles_<part>) and every access count."""
        r = {"layer": self.name, "kind": self.kind, "shape": self.shape,
             "dataflow": self.dataflow, "mapping": self.how, "macs": self.dense_macs,
             "cycles": round(self.cycles),
             "macs_per_cycle": self.dense_macs / self.cycles if self.cycles else 0.0,
             "utilisation": self.counters.utilisation,
             "dram_bytes": round(self.timing.dram_bytes), "outputs": self.outputs,
             "streamed": self.streamed}
        for lv, e in self.energy.levels().items():
            r[f"e_{lv}"] = e
        r["energy"] = self.energy.total
        if self.shift:
            r["shift"] = self.shift
        r.update({f"cycles_{part}": v for part, v in self.timing.parts.items()})
        r["counts"] = self.counters.to_dict()  # every access count: energy = counts x table
        return r


def charge(name: str, kind: str, shape: str, how: str, counters: Counters, timing: Timing,
           hw: Hardware, outputs: int, bits: dict[str, int] | None = None, **mac) -> StepRecord:
    """The record of one step: its energy from its counters on hw (`outputs`: its final output
    words, written to DRAM at output_bits; bits: the operands' widths, energy.access_energy's).
    mac: a MAC step's dense_macs, conv and mapping; `streamed` for a pass without MACs."""
    return StepRecord(name, kind, shape, how, counters, timing,
                      energy(counters, hw, outputs, bits), outputs=outputs, **mac)


def recharge(rec: StepRecord, counters: Counters, timing: Timing, hw: Hardware, outputs: int,
             note: str) -> StepRecord:
    """The same step with other counts (a MAC step's data kept on chip, emu/onchip.py): costed as
    charge costs, every other field kept, `note` added to its shape."""
    return dataclasses.replace(rec, shape=f"{rec.shape}, {note}", counters=counters, timing=timing,
                               energy=energy(counters, hw, outputs), outputs=outputs)


def stream_counters(read_words: int, written_words: int, ops: int, hw: Hardware) -> Counters:
    """The accesses of a pass without MACs (module doc): inputs DRAM -> buffer -> array, outputs
    array -> buffer -> DRAM, `ops` element operations at one per PE per cycle."""
    cycles = -(-ops // hw.pes)
    return Counters(input_dram_reads=read_words, input_gb_writes=read_words,
                    input_gb_reads=read_words, psum_gb_writes=written_words,
                    psum_gb_reads=written_words, psum_dram_writes=written_words,
                    cycles=cycles, pe_slots=cycles * hw.pes,
                    input_transfers=int(read_words > 0),
                    psum_write_transfers=int(written_words > 0))


def stream_step(name: str, kind: str, shape: str, how: str, read_words: int, written_words: int,
                ops: int, hw: Hardware) -> StepRecord:
    """The record of a step without MACs streamed through the buffer (module doc)."""
    counters = stream_counters(read_words, written_words, ops, hw)
    return charge(name, kind, shape, how, counters, stream_timing(counters, hw), hw, written_words,
                  stream_bits(hw), streamed=True)
