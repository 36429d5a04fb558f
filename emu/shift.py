"""The shift (Wu et al., arXiv 1711.08141) on the emulated accelerator: no MACs, only data movement,
in the form hardware `layers.shift` names (hardware.py):

- "remap" (default): an address remap of the consumer's input fetch. A shift whose output goes
  only to a 1x1 convolution (no padding, no groups, no dilation) is not a step of its own: that
  convolution runs through the loop-nest kernels with a shifted fetch (kernels.execute(...,
  shift=offsets)), reading input channel c at (y*sy + dy_c, x*sx + dx_c); the border is neither
  fetched from DRAM nor read from the buffer, so the consumer's input DRAM reads, buffer writes and
  buffer reads drop by the border's share, and the array's work (MACs, cycles) is unchanged. Its
  cost therefore shows in the consumer's row, which the trace marks (`remap_plan`).
- "copy": a pass of its own through the buffer (`copy_record`), charged like the emulator's
  other layers without MACs (timing.elementwise_cycles: layers run one at a time, so the shift's
  input is in DRAM, written there by its producer as the kernels count, and its output goes back
  there for its consumer). Per channel that moves (offset not (0, 0); the others stay where they
  are, the pass working in place): its H*W - border words are fetched from DRAM into the buffer
  and read out by the array, which writes the channel's H*W shifted words, zeros entering at the
  border, into the buffer, from where the DMA writes them back to DRAM. One streamed DMA transfer
  each way, one element operation per PE per cycle. A shift not followed by such a convolution
  (none in the zoo's CSC modules or shift SqueezeNext) falls back to copy under "remap", and its
  row says so.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..functional import shift_groups
from ..graph import ops as O
from ..kernels import Counters
from .energy import Energy, energy
from .hardware import Hardware
from .timing import Timing, elementwise_cycles


def remappable(op, in_shape) -> bool:
    """Whether a conv can fetch its input through a shift's remap: a 1x1 convolution without
    padding, groups or dilation (kernels.execute's shifted fetch)."""
    return (isinstance(op, O.Conv2d) and tuple(op.kernel) == (1, 1) and not any(op.padding)
            and op.groups == 1 and tuple(op.dilation) == (1, 1) and len(in_shape) == 3)


def remap_plan(steps, graph, hw: Hardware) -> tuple[dict[str, O.Shift], dict[str, str]]:
    """For the runner's steps: ({consumer conv step name: the shift it fetches through},
    {shift step name: how it is charged}) under hw.shift. A shift is remapped when its only
    consumer is a remappable conv; otherwise it is copied."""
    consumers: dict[str, list] = {}
    for s in steps:
        for i in s.inputs:
            consumers.setdefault(i, []).append(s)
    remap, form = {}, {}
    for s in steps:
        if not isinstance(s.op, O.Shift):
            continue
        users = consumers.get(s.name, [])
        fits = (len(users) == 1 and s.name not in graph.outputs
                and remappable(users[0].op, graph.shapes[s.name]))
        if hw.shift == "copy":
            form[s.name] = "copy"
        elif fits:
            remap[users[0].name] = s.op
            form[s.name] = f"remap into {users[0].covers[0]}"
        else:
            form[s.name] = "copy (no 1x1 convolution fetches it: remap impossible)"
    return remap, form


def moved_words(op: O.Shift, shape) -> tuple[int, int]:
    """(words read, words written) by the copy of a C x H x W tensor: per channel with a
    nonzero offset, its in-image source words and all H*W of its output."""
    c, h, w = shape
    read = written = 0
    for sl, dy, dx in shift_groups(c, op.kernel, op.dilation, op.assignment):
        if dy == 0 and dx == 0:
            continue
        n = len(range(c)[sl])
        read += n * max(0, h - abs(dy)) * max(0, w - abs(dx))
        written += n * h * w
    return read, written


@dataclass
class ShiftCopyRecord:
    """A shift charged as a copy through the buffer (module doc): the same interface as
    network.LayerRecord for reports (no MACs, no mapping)."""
    name: str
    shape: tuple[int, int, int]
    op: O.Shift
    form: str
    counters: Counters
    timing: Timing
    energy: Energy
    dense_macs: int = 0
    overflow_bits: int | None = None

    @property
    def cycles(self) -> float:
        return self.timing.total

    def row(self) -> dict:
        c, h, w = self.shape
        r = {"layer": self.name, "shape": f"{c}x{h}x{w} {self.op.describe()}",
             "dataflow": "shift", "mapping": self.form, "macs": 0, "cycles": round(self.cycles),
             "macs_per_cycle": 0.0, "utilisation": 0.0,
             "dram_bytes": round(self.timing.dram_bytes)}
        for lv, e in self.energy.levels().items():
            r[f"e_{lv}"] = e
        r["energy"] = self.energy.total
        r["shift"] = self.form
        return r


def copy_record(name: str, op: O.Shift, shape, hw: Hardware, form: str = "copy") -> ShiftCopyRecord:
    """Counters, cycles and energy of a shift of a C x H x W tensor copied through the buffer."""
    read, written = moved_words(op, shape)
    ops = written                             # one element operation per word written
    array = -(-ops // hw.pes)
    counters = Counters(input_dram_reads=read, input_gb_writes=read, input_gb_reads=read,
                        psum_gb_writes=written, psum_gb_reads=written, psum_dram_writes=written,
                        cycles=array, pe_slots=array * hw.pes,
                        input_transfers=int(read > 0), psum_write_transfers=int(written > 0))
    words = read + written
    nbytes = words * hw.word_bytes
    buffer = 2 * words / hw.gb_words_per_cycle
    total = elementwise_cycles(read, written, ops, hw) if words else 0.0
    tm = Timing(array, buffer, 0, hw.dram_latency_cycles + nbytes / hw.dram_bytes_per_cycle
                if words else 0.0, total - max(array, buffer) if words else 0.0, total,
                nbytes, int(read > 0) + int(written > 0))
    # every word written to DRAM is a final output (word_bits wide under a sized energy model)
    return ShiftCopyRecord(name, tuple(shape), op, form, counters, tm, energy(counters, hw, written))


def shift_offsets(op: O.Shift, channels: int) -> np.ndarray:
    """The shifted fetch's (dy, dx) per input channel (kernels.execute's shift=)."""
    return np.ascontiguousarray(op.offsets(channels), np.int64)
