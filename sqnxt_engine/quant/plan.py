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
          (O.Flatten, "flatten"), (O.Dropout, "identity"), (O.ReLU, "clamp"), (O.ReLU6, "clamp"),
          (O.Shift, "shift"), (O.Resize, "resize"), (O.Slice, "slice"), (O.Mul, "mul"),
          (O.HardSwish, "lut"), (O.HardSigmoid, "lut"), (O.Sigmoid, "lut"), (O.SiLU, "lut"),
          (O.LeakyReLU, "lut")]
_CLAMPS = {O.ReLU: (0.0, np.inf), O.ReLU6: (0.0, 6.0)}
QUANTIZABLE = ("conv, fc, batch norm after a conv or fc, relu, relu6, hard-swish, hard-sigmoid, "
               "sigmoid, silu, leaky relu (lookup tables), add, concat, mul, shift, nearest resize, "
               "slice, max/average pool, flatten, dropout")


def kind_of(op: O.Op) -> str | None:
    """The integer step kind of an op, None where the integer datapath has none."""
    if isinstance(op, O.Resize) and op.mode != "nearest":
        return None
    for cls, kind in _KINDS:
        if type(op) is cls:
            return kind
    return None


def unsupported(graph: Graph) -> None:
    """Refuse, in one line naming every one, the nodes the integer datapath cannot run (a batch
    norm is run only folded into the conv or fc before it)."""
    consumers = graph.consumers()
    folded = {n.name for n in graph.nodes if isinstance(n.op, O.BatchNorm) and n.inputs[0] in graph
              and isinstance(graph[n.inputs[0]].op, MAC) and len(consumers[n.inputs[0]]) == 1
              and n.inputs[0] not in graph.outputs}
    bad = [f"{n.name} ({n.op.describe() if isinstance(n.op, O.Resize) else n.op.kind})"
           for n in graph.nodes if n.name not in folded and kind_of(n.op) is None]
    if bad:
        raise UserError(f"the integer datapath has no step for {len(bad)} node(s): {', '.join(bad)} "
                        f"(quantizable: {QUANTIZABLE})")


def flush_denormals(a: np.ndarray) -> np.ndarray:
    """a with every value below float32's smallest normal number in magnitude set to 0: a weight
    that small contributes nothing a 16-bit code can hold, and dividing by a scale made from it
    overflows (a layer of denormal weights once gave biases of -2**63)."""
    a = np.where(np.abs(a) < np.finfo(np.float32).tiny, 0.0, a)
    return a


@dataclass
class PlanStep:
    name: str  # the name of the last node the step computes (the runner's step name)
    kind: str  # a step kind of schema.ARRAYS: mac, add, concat, lut, shift, ...
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
        unsupported(graph)
        steps = []
        for s in fused_steps(graph, weights):
            kind = kind_of(s.op)
            channels = graph.shapes[s.name][0]
            lo = hi = None
            covers, name = s.covers, s.name
            lut = s.activation is not None and type(s.activation) not in _CLAMPS
            if lut:  # the activation runs as its own lookup-table step on the requantized codes
                covers, name = s.covers[:-1], s.covers[-2]
            elif kind == "clamp" or s.activation is not None:
                act = s.op if kind == "clamp" else s.activation
                a, b = _CLAMPS[type(act)]
                lo, hi = np.full(channels, a), np.full(channels, b)
            w = b_ = None
            if kind == "mac":
                w = flush_denormals(np.array(s.params["weight"], np.float64))
                b_ = flush_denormals(np.array(s.params.get("bias", np.zeros(len(w))), np.float64))
            steps.append(PlanStep(name, kind, s.op, s.inputs, covers, w, b_, lo, hi))
            if lut:
                steps.append(PlanStep(s.name, "lut", s.activation, (name,), (s.covers[-1],)))
        return cls(graph, steps)

    def nonnegative(self) -> dict[str, bool]:
        """Per tensor: whether it is >= 0 by construction (a clamp at 0, or pooling, flattening
        or concatenating such tensors): those get unsigned activation codes."""
        out = {INPUT: False}
        for s in self.steps:
            if s.lo is not None:
                out[s.name] = bool((s.lo >= 0).all())
            elif s.kind in ("maxpool", "avgpool", "gap", "flatten", "identity", "concat", "shift",
                            "resize", "slice", "mul"):
                out[s.name] = all(out[i] for i in s.inputs)
            elif s.kind == "lut":
                out[s.name] = isinstance(s.op, (O.HardSigmoid, O.Sigmoid))
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
