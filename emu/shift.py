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
  other steps without MACs (record.stream_step: layers run one at a time, so the shift's
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

import numpy as np

from ..functional import shift_groups
from ..graph import ops as O
from .hardware import Hardware
from .record import StepRecord, stream_step


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


def copy_record(name: str, op: O.Shift, shape, hw: Hardware, form: str = "copy") -> StepRecord:
    """The record of a shift of a C x H x W tensor copied through the buffer (module doc): a
    pass without MACs (record.stream_step), one element operation per word written."""
    read, written = moved_words(op, shape)
    c, h, w = shape
    return stream_step(name, op.kind, f"{c}x{h}x{w} {op.describe()}", form, read, written,
                       written, hw)


def shift_offsets(op: O.Shift, channels: int) -> np.ndarray:
    """The shifted fetch's (dy, dx) per input channel (kernels.execute's shift=)."""
    return np.ascontiguousarray(op.offsets(channels), np.int64)
