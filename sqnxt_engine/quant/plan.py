"""The network as the quantizer sees it: the float runner's fused steps (batch norm folded into
the conv or fc before it, activations fused into their producer), in float64, with each
activation written as a per-channel clamp [lo, hi] (ReLU: [0, inf), ReLU6: [0, 6]).

The steps are graph.fusion's, as the float runner compiles them, so batch-norm folding and fusion
have one implementation. Per-channel clamps are what lets cross-layer equalization stay exact through
ReLU6: scaling channel i by 1/s_i moves its upper clamp to 6/s_i.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import UserError
from ..graph import ops as O
from ..graph.fusion import fused_steps
from ..graph.graph import INPUT, Graph, check_weights

MAC = (O.Conv2d, O.Linear)
# op type -> step kind, for the steps the integer datapath runs
_KINDS = [(O.Conv2d, "mac"), (O.Linear, "mac"), (O.Add, "add"), (O.Concat, "concat"),
          (O.MaxPool, "maxpool"), (O.AvgPool, "avgpool"), (O.GlobalAvgPool, "gap"),
          (O.Flatten, "flatten"), (O.Dropout, "identity"), (O.ReLU, "clamp"), (O.ReLU6, "clamp")]
_CLAMPS = {O.ReLU: (0.0, np.inf), O.ReLU6: (0.0, 6.0)}


def kind_of(op: O.Op) -> str:
    for cls, kind in _KINDS:
        if type(op) is cls:
            return kind
    raise UserError(f"the integer datapath has no {op.kind} (quantizable: conv, fc, batch norm "
                    "after a conv or fc, relu, relu6, add, concat, max/average pool, flatten, dropout)")


@dataclass
class PlanStep:
    name: str  # the name of the last node the step computes (the runner's step name)
    kind: str  # mac, add, concat, maxpool, avgpool, gap, flatten, identity, clamp
    op: O.Op  # the graph op of the step's first node (for a mac: with bias)
    inputs: tuple[str, ...]
    covers: tuple[str, ...]  # the graph nodes the step computes
    weight: np.ndarray | None = None  # float64, batch norm folded
    bias: np.ndarray | None = None  # float64 (K,)
    lo: np.ndarray | None = None  # float64 per-channel clamp, None: no clamp
    hi: np.ndarray | None = None


@dataclass
class FloatPlan:
    graph: Graph
    steps: list[PlanStep]

    @classmethod
    def from_weights(cls, graph: Graph, weights: dict) -> FloatPlan:
        check_weights(graph, weights)
        steps = []
        for s in fused_steps(graph, weights):
            kind = kind_of(s.op)
            channels = graph.shapes[s.name][0]
            lo = hi = None
            if kind == "clamp" or s.activation is not None:
                act = s.op if kind == "clamp" else s.activation
                if type(act) not in _CLAMPS:
                    raise UserError(f"step {s.name}: the integer datapath has no {act.kind}")
                a, b = _CLAMPS[type(act)]
                lo, hi = np.full(channels, a), np.full(channels, b)
            w = b_ = None
            if kind == "mac":
                w = np.array(s.params["weight"], np.float64)
                b_ = np.array(s.params.get("bias", np.zeros(len(w))), np.float64)
            steps.append(PlanStep(s.name, kind, s.op, s.inputs, s.covers, w, b_, lo, hi))
        return cls(graph, steps)

    def nonnegative(self) -> dict[str, bool]:
        """Per tensor: whether it is >= 0 by construction (a clamp at 0, or pooling, flattening
        or concatenating such tensors): those get unsigned activation codes."""
        out = {INPUT: False}
        for s in self.steps:
            if s.lo is not None:
                out[s.name] = bool((s.lo >= 0).all())
            elif s.kind in ("maxpool", "avgpool", "gap", "flatten", "identity", "concat"):
                out[s.name] = all(out[i] for i in s.inputs)
            else:
                out[s.name] = False
        return out

    def executor(self, dtype=np.float32):
        """A function x -> {tensor name: output} running the plan in floating point (every
        step's output, the input under 'input')."""
        prepared = []
        for s in self.steps:
            params = {"weight": s.weight.astype(dtype), "bias": s.bias.astype(dtype)} if s.kind == "mac" else {}
            fn = s.op.prepare(params, dtype)
            lo = hi = None
            if s.lo is not None:
                shape = (1, -1) + (1,) * (len(self.graph.shapes[s.name]) - 1)
                lo, hi = s.lo.astype(dtype).reshape(shape), s.hi.astype(dtype).reshape(shape)
            prepared.append((s, fn, lo, hi))

        def run(x: np.ndarray) -> dict[str, np.ndarray]:
            env = {INPUT: np.asarray(x, dtype)}
            for s, fn, lo, hi in prepared:
                y = fn([env[i] for i in s.inputs])
                if lo is not None:
                    y = np.clip(y, lo, hi)
                env[s.name] = y
            return env
        return run
