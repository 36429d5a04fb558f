"""What a quantized file may hold: one declared schema, checked once, before any work.

Every reader of a quantized file (sqnxt-infer, sqnxt-eval, sqnxt-emu trace / eval) builds its
QuantizedModel through QuantizedModel.from_arrays, which calls `validate`; the quantizer calls it
on what it is about to write, so it never writes a file this refuses. A failed check is one
UserError line (exit 2 on the command line) naming the file's entry and the rule it breaks.

The schema, per entry (bits: the file's `bits`, 8 or 16; A: the accumulator's width):
  tensors      scale finite, in [float32's smallest normal, float32's largest / 2**16];
               (lo, hi) one of the two code ranges of `bits` (code_range: signed symmetric,
               or unsigned for a tensor >= 0 by construction).
  accumulator  16 to 48 bits, wrap or saturate (Accumulator).
  steps        one record per fused step of the graph, in the graph's order: name = the last
               node it covers, covers = consecutive sole-consumer nodes from a node of its
               kind, inputs = that first node's inputs; every graph node covered exactly once.
  <step>.<array>, by step kind (ARRAYS): integers only, of the shapes and ranges below.
    weight       the graph's weight shape; codes in [-qmax(W), qmax(W)], W the file's
                 `weight_bits` (2..bits, narrower weights than activations; default bits).
    bias         (K,); |bias| < 2**(A-1) (it is loaded into the accumulator).
    multiplier   mac (K,) in [0, 2**min(31, 63-A)) (the product with the accumulator fits
                 63 bits); add, concat (one per input), mul (1,), avgpool / gap (one per output
                 position) in [0, 2**MULT_BITS]; and no product of a multiplier with the largest
                 sum it scales may leave 62 bits.
    shift        1..62 (mac (K,); concat one per input; add, mul, avgpool, gap one).
    lo, hi       (K,) for mac and clamp, (C,) for add; lo <= hi, both within the output
                 tensor's code range.
    lut          (input hi - input lo + 1,) output codes within the output tensor's range.
    weight_shift (K,) in 0..15, mac only (the shift scaler's s_o, informational).
"""
from __future__ import annotations

import math

import numpy as np

from ..errors import UserError
from ..graph.graph import INPUT, Graph
from .fixedpoint import OPERAND_BITS, Accumulator, qmax

FORMAT = 1
BITS = (8, 16)
MULT_BITS = 30  # fixedpoint.common_shift_multipliers' multipliers are at most 2**30
MAX_SHIFT = 62
# a scale's codes have values within float32 (the runner's output type) and the scale is a
# normal float32 number (the quantizer flushes smaller weights: plan.flush_denormals)
SCALE_MIN, SCALE_MAX = float(np.finfo(np.float32).tiny), float(np.finfo(np.float32).max) / 2 ** 16
WEIGHT_SHIFT_MAX = 15  # weights.SHIFT_BITS = 4
# the arrays each step kind carries in a quantized file (`<step>.<array>`)
ARRAYS = {"mac": ("weight", "bias", "multiplier", "shift", "lo", "hi"),
          "add": ("multiplier", "shift", "lo", "hi"),
          "concat": ("multiplier", "shift"),
          "mul": ("multiplier", "shift"),
          "avgpool": ("multiplier", "shift"), "gap": ("multiplier", "shift"),
          "clamp": ("lo", "hi"), "lut": ("lut",),
          "maxpool": (), "flatten": (), "identity": (), "shift": (), "resize": (), "slice": ()}
OPTIONAL = {"mac": ("weight_shift",)}


def code_range(bits: int, nonnegative: bool) -> tuple[int, int]:
    """The codes of an activation tensor: signed symmetric, or unsigned [0, 2**bits - 1] capped
    at the 16-bit operand's 2**15 - 1 for a tensor >= 0 by construction."""
    if nonnegative:
        return 0, min((1 << bits) - 1, qmax(OPERAND_BITS))
    return -qmax(bits), qmax(bits)


def _fail(msg: str):
    raise UserError(msg)


def check_bits(bits) -> int:
    if isinstance(bits, bool) or not isinstance(bits, int) or bits not in BITS:
        _fail(f"bits is {bits!r}; a quantized file has 8 or 16")
    return bits


def check_file_accumulator(acc: Accumulator | int) -> None:
    """A quantized model's accumulator (or its width): 16 to 48 bits (its requantization
    multiplier takes min(31, 63 - bits) bits of a 63-bit product)."""
    bits = acc if isinstance(acc, int) else acc.bits
    if not 16 <= bits <= 48:
        _fail(f"accumulator width must be 16 to 48 bits, got {bits}")


def check_tensor(name: str, scale: float, lo: int, hi: int, bits: int) -> None:
    if not (math.isfinite(scale) and scale > 0):
        _fail(f"tensor {name}: scale {scale!r} is not a finite positive number")
    if not SCALE_MIN <= scale <= SCALE_MAX:
        _fail(f"tensor {name}: scale {scale:.3g} is outside [{SCALE_MIN:.3g}, {SCALE_MAX:.3g}]")
    if (lo, hi) not in (code_range(bits, False), code_range(bits, True)):
        _fail(f"tensor {name}: codes [{lo}, {hi}] are not a {bits}-bit code range "
              f"({code_range(bits, False)} or {code_range(bits, True)})")


def check_structure(graph: Graph, records: list[tuple[str, str, tuple, tuple]], kind_of) -> None:
    """records: (name, kind, inputs, covers) per step, in file order (see the module doc)."""
    sole = {n: c[0] for n, c in graph.consumers().items() if len(c) == 1 and n not in graph.outputs}
    seen, available = set(), {INPUT}
    order = [n.name for n in graph.nodes]
    at = 0
    for name, kind, inputs, covers in records:
        if not covers or name != covers[-1]:
            _fail(f"step {name}: its name must be the last node it covers")
        if at >= len(order) or covers[0] != order[at]:
            _fail(f"step {name}: starts at {covers[0]}, the graph's next node is "
                  f"{order[at] if at < len(order) else '(none)'}")
        for a, b in zip(covers, covers[1:]):
            if sole.get(a) != b:
                _fail(f"step {name}: {b} is not the sole consumer of {a}")
        node = graph[covers[0]]
        if kind_of(node.op) != kind:
            _fail(f"step {name}: {covers[0]} is a {node.op.kind}, not a {kind} step")
        if tuple(inputs) != tuple(node.inputs):
            _fail(f"step {name}: inputs {list(inputs)} are not {covers[0]}'s {list(node.inputs)}")
        missing = [i for i in inputs if i not in available]
        if missing:
            _fail(f"step {name}: input {missing[0]} is computed by no earlier step")
        for c in covers:
            if c in seen:
                _fail(f"step {name}: {c} is covered twice")
            seen.add(c)
        at += len(covers)
        while at < len(order) and order[at] in seen:
            at += 1
        available.add(name)
    left = [n for n in order if n not in seen]
    if left:
        _fail(f"graph node {left[0]} is computed by no step")
    if any(o not in available for o in graph.outputs):
        _fail("the graph's output is no step's output")


def _ints(key: str, a: np.ndarray, shape: tuple, lo: int, hi: int) -> np.ndarray:
    if a.dtype.kind not in "iu":
        _fail(f"{key} holds {a.dtype} values; a quantized file holds integers")
    if tuple(a.shape) != tuple(shape):
        _fail(f"{key} has shape {tuple(a.shape)}, the step needs {tuple(shape)}")
    if a.size:
        amin, amax = int(a.min()), int(a.max())
        if amin < lo or amax > hi:
            bad = amin if amin < lo else amax
            _fail(f"{key} holds {bad}, outside [{lo}, {hi}]")
    return a.astype(np.int64)


def check_weight_bits(weight_bits, bits: int) -> int:
    """The file's weight width: 2 to its `bits` (absent: `bits`)."""
    if weight_bits is None:
        return bits
    if isinstance(weight_bits, bool) or not isinstance(weight_bits, int) or not 2 <= weight_bits <= bits:
        _fail(f"weight_bits is {weight_bits!r}; a {bits}-bit file's weights have 2 to {bits} bits")
    return weight_bits


def check_step(step, graph: Graph, tensors: dict, bits: int, acc: Accumulator,
               weight_bits: int | None = None) -> None:
    """One step's arrays against the schema (step: an IntegerStep with its arrays filled;
    weight_bits: the file's weight width, default bits)."""
    a, k, key = step.arrays, step.kind, lambda n: f"{step.covers[0]}.{n}"  # noqa: E731
    out = tensors[step.name]
    ins = [tensors[i] for i in step.inputs]
    shape = graph.shapes[step.name]
    channels = shape[0]
    big = lambda t: max(abs(t.lo), abs(t.hi))  # noqa: E731
    if k == "mac":
        want = graph.param_shapes()[f"{step.covers[0]}.weight"]
        wq = qmax(weight_bits or bits)
        w = _ints(key("weight"), a["weight"], want, -wq, wq)
        lim = 1 << (acc.bits - 1)
        _ints(key("bias"), a["bias"], (channels,), -lim + 1, lim - 1)
        _ints(key("multiplier"), a["multiplier"], (channels,), 0, (1 << acc.multiplier_bits) - 1)
        _ints(key("shift"), a["shift"], (channels,), 1, MAX_SHIFT)
        if step.weight_shift is not None:
            _ints(key("weight_shift"), np.asarray(step.weight_shift), (channels,), 0, WEIGHT_SHIFT_MAX)
        if w.size and int(np.abs(w).reshape(len(w), -1).sum(axis=1).max()) * big(ins[0]) >= 1 << 62:
            _fail(f"{key('weight')}: its sums may leave int64")
    elif k in ("add", "concat", "mul", "avgpool", "gap"):
        if k in ("add", "concat"):
            mshape = (len(step.inputs),)
            sums = [big(t) for t in ins]
        elif k == "mul":
            mshape, sums = (1,), [big(ins[0]) * big(ins[1])]
        else:
            from .model import window_counts
            _, h, w_ = graph.shapes[step.inputs[0]]
            counts = window_counts(step.op, h, w_)
            mshape, sums = counts.shape, [int(counts.max()) * big(ins[0])]
        m = _ints(key("multiplier"), a["multiplier"], mshape, 0, 1 << MULT_BITS)
        top = int(m.max(initial=0)) * (sum(sums) if k == "add" else max(sums))
        if top >= 1 << 62:
            _fail(f"{key('multiplier')}: multiplier times its sum reaches {top:.3g}, past 2**62")
        shifts = (len(step.inputs),) if k == "concat" else ()
        _ints(key("shift"), np.asarray(a["shift"]), shifts, 1, MAX_SHIFT)
    if k in ("mac", "add", "clamp"):
        lo = _ints(key("lo"), a["lo"], (channels,), out.lo, out.hi)
        hi = _ints(key("hi"), a["hi"], (channels,), out.lo, out.hi)
        if np.any(lo > hi):
            _fail(f"{key('lo')} exceeds {key('hi')} in channel {int(np.argmax(lo > hi))}")
    if k == "lut":
        x = ins[0]
        _ints(key("lut"), a["lut"], (x.hi - x.lo + 1,), out.lo, out.hi)
    if k in ("maxpool", "flatten", "identity", "shift", "resize", "slice", "clamp"):
        x = ins[0]
        if (out.scale, out.lo, out.hi) != (x.scale, x.lo, x.hi):
            _fail(f"tensor {step.name}: a {k} step keeps its input's scale and codes")


def validate(model) -> None:
    """The whole model (a QuantizedModel) against the schema; the first failure as a UserError."""
    info = model.info
    bits = check_bits(info.get("bits"))
    weight_bits = check_weight_bits(info.get("weight_bits"), bits)
    for name, t in model.tensors.items():
        check_tensor(name, t.scale, t.lo, t.hi, bits)
    check_file_accumulator(model.accumulator)
    for s in model.steps:
        check_step(s, model.graph, model.tensors, bits, model.accumulator, weight_bits)


def mac_bound(step, x_big: int) -> np.ndarray:
    """The worst |sum| per output channel of a mac step: sum |weight codes| * the largest input
    code, plus |bias| (what the accumulator must hold whatever the input)."""
    w = np.abs(step.arrays["weight"].astype(np.int64)).reshape(len(step.arrays["weight"]), -1)
    return w.sum(axis=1) * x_big + np.abs(step.arrays["bias"].astype(np.int64))


