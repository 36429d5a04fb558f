"""Outputs kept in the global buffer between layers (hardware `layers.keep_on_chip`).

Layers run one at a time; by default each reads its input from DRAM and writes its output back
(the kernels' counts). With keep_on_chip, a conv/fc layer P whose output only the next conv/fc
layer C reads (directly, or through a flatten, which moves no data) keeps that output in the
buffer when it fits:
- P: its tiles (input, weight, partial sums; each double-buffered when the buffer is) beside the
  whole output at output_bits, and beside its whole input instead of an input tile when P's own
  input was kept;
- C: its weight and partial-sum tiles beside the whole kept input (no input tile);
- P spills no partial sums (its accumulators leave the array as final outputs), and C fetches
  its input plainly (not through a remapped shift).
The counts that changes, and nothing else: P writes no output to DRAM (no psum DRAM writes, no
write transfers, no DMA reads of the buffer for them); C reads no input from DRAM (no input DRAM
reads or transfers, no DMA writes of them into the buffer); its array still reads every input
word from the buffer. The mappings stay the ones searched for each layer alone; the records are
re-timed and re-costed from the changed counts (timing.timing, record.recharge), so the reports
show the saving where it happens.
"""
from __future__ import annotations

from ..graph import ops as O
from .hardware import Hardware
from .record import StepRecord, recharge
from .timing import timing


def keep_on_chip(steps, records: dict[str, StepRecord], outputs: set[str], hw: Hardware) -> dict:
    """The MAC steps' records (by step name) with the outputs kept between layers (module doc)
    where hw keeps them; `steps` the runner's steps in run order, `outputs` the network's."""
    if not hw.keep_on_chip or hw.gb_split is not None:
        return records
    readers: dict[str, list] = {}
    for s in steps:
        for i in s.inputs:
            readers.setdefault(i, []).append(s)
    order = [s for s in steps if s.name in records]
    out = dict(records)
    kept_input: set[str] = set()   # MAC steps whose input is in the buffer already
    for p, c in zip(order, order[1:]):
        if p.name in outputs or _sole_mac_reader(p.name, readers, outputs) is not c:
            continue
        P, C = out[p.name], out[c.name]
        if C.shift or P.counters.psum_dram_writes != P.outputs or P.counters.psum_dram_reads:
            continue
        kept = P.outputs * hw.output_bits / 8
        if (_tiles_bytes(P, hw, with_input=p.name not in kept_input) + kept
                + (_input_bytes(P, hw) if p.name in kept_input else 0) > hw.gb_bytes
                or _tiles_bytes(C, hw, with_input=False) + kept > hw.gb_bytes):
            continue
        pc = P.counters._replace(psum_dram_writes=0, psum_write_transfers=0,
                                 psum_gb_reads=P.counters.psum_gb_reads - P.outputs)
        cc = C.counters._replace(input_dram_reads=0, input_transfers=0,
                                 input_gb_writes=C.counters.input_gb_writes - C.counters.input_dram_reads)
        out[p.name] = _recharge(P, pc, hw, 0, "output kept in the buffer")
        out[c.name] = _recharge(C, cc, hw, C.outputs, "input from the buffer")
        kept_input.add(c.name)
    return out


def _sole_mac_reader(name: str, readers: dict, outputs: set[str]):
    """The one step that reads `name`'s output, looking through a flatten, or None."""
    r = readers.get(name, [])
    while len(r) == 1 and isinstance(r[0].op, O.Flatten) and r[0].name not in outputs:
        r = readers.get(r[0].name, [])
    return r[0] if len(r) == 1 and isinstance(r[0].op, (O.Conv2d, O.Linear)) else None


def _tiles_bytes(rec: StepRecord, hw: Hardware, with_input: bool) -> float:
    """The buffer bytes of a step's tiles, each copy (double buffering) counted."""
    nbytes = hw.tile_bytes(rec.mapping.footprint(rec.conv))
    return sum(b for op, b in nbytes.items() if with_input or op != "input") * (
        2 if hw.double_buffering else 1)


def _input_bytes(rec: StepRecord, hw: Hardware) -> float:
    s = rec.conv
    return s.C * s.H * s.W * hw.input_bits / 8


def _recharge(rec: StepRecord, counters, hw: Hardware, outputs: int, note: str) -> StepRecord:
    return recharge(rec, counters, timing(rec.conv, rec.mapping, counters, hw), hw, outputs, note)
