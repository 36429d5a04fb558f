"""Cross-layer equalization (Nagel et al., "Data-Free Quantization Through Weight Equalization
and Bias Correction", ICCV 2019), data-free: for two convolutions A -> B where B is A's only
consumer, output channel i of A is divided by s_i and input channel i of B multiplied by s_i,
with s_i = sqrt(r1_i / r2_i) (r1_i: range of A's channel i, r2_i: range of B's weights reading
channel i), which gives both the same range sqrt(r1_i * r2_i). The network computes the same
function because A's activation commutes with a positive scale: ReLU exactly; ReLU6 because the
plan's clamps are per channel and A's upper clamp becomes 6 / s_i (Nagel et al. replace ReLU6 by
ReLU instead, which changes the network). Pairs are equalized in turn, sweeping the network
until no scale moves by more than `tol` (relative), as the paper iterates.
"""
from __future__ import annotations

import numpy as np

from ..graph import ops as O
from .plan import FloatPlan, PlanStep


def equalizable_pairs(plan: FloatPlan) -> list[tuple[PlanStep, PlanStep]]:
    """(A, B): conv steps where B reads only A's output and A's output feeds nothing else, and
    A's clamp (if any) starts at 0 (positively homogeneous)."""
    readers: dict[str, list[PlanStep]] = {}
    for s in plan.steps:
        for i in s.inputs:
            readers.setdefault(i, []).append(s)
    pairs = []
    by_name = {s.name: s for s in plan.steps}
    for b in plan.steps:
        if not (b.kind == "mac" and isinstance(b.op, O.Conv2d) and len(b.inputs) == 1):
            continue
        a = by_name.get(b.inputs[0])
        if a is None or a.kind != "mac" or not isinstance(a.op, O.Conv2d):
            continue
        if len(readers[a.name]) != 1 or a.name in plan.graph.outputs:
            continue
        if a.lo is not None and not np.all(a.lo == 0):
            continue
        pairs.append((a, b))
    return pairs


def _input_channel_ranges(b: PlanStep) -> np.ndarray:
    """max |W| over everything B reads from each of its input channels (grouped convs: channel
    i = g * cg + j is read by group g's output channels through weight column j)."""
    w = np.abs(b.weight)
    k, cg = w.shape[:2]
    g = b.op.groups
    per = w.reshape(g, k // g, cg, -1).max(axis=(1, 3))  # (groups, cg)
    return per.reshape(-1)


def _scale_input_channels(b: PlanStep, s: np.ndarray) -> None:
    k, cg = b.weight.shape[:2]
    g = b.op.groups
    w = b.weight.reshape(g, k // g, cg, -1)
    w *= s.reshape(g, 1, cg, 1)


def equalize(plan: FloatPlan, tol: float = 1e-6, max_sweeps: int = 100) -> int:
    """Equalize every pair of `plan` in place; returns the number of pairs."""
    pairs = equalizable_pairs(plan)
    for _ in range(max_sweeps):
        moved = 0.0
        for a, b in pairs:
            r1 = np.abs(a.weight).reshape(len(a.weight), -1).max(axis=1)
            r2 = _input_channel_ranges(b)
            s = np.ones_like(r1)
            live = (r1 > 0) & (r2 > 0)
            s[live] = np.sqrt(r1[live] / r2[live])
            a.weight /= s.reshape((-1,) + (1,) * (a.weight.ndim - 1))
            a.bias /= s
            if a.hi is not None:
                a.hi = a.hi / s
            _scale_input_channels(b, s)
            moved = max(moved, float(np.abs(np.log(s)).max(initial=0.0)))
        if moved < tol:
            break
    return len(pairs)
