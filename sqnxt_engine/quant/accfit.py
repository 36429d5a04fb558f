"""Quantizing for a hardware's accumulator: every MAC layer's sums bounded before the file is
written, never a silent wrap.

A target (sqnxt-quant --hw FILE: the hardware's arith.acc_bits, arith.overflow and
arith.word_bits) fixes the accumulator A bits wide. Per MAC layer two bounds of |sum + bias|
in accumulator units:
  worst     max over output channels of sum |weight codes| * the largest input code + |bias|
            (schema.mac_bound): what any input could reach;
  observed  the largest |sum + bias| over the calibration images, run through the integer path.
A layer fits when its bound under the rule in force stays below 2**(A-1):
  rule "observed" (the default): observed * 2**HEADROOM_BITS. One bit of headroom: the
            calibration set is a sample (500 training images by default) and a test image may
            reach further; a sum twice the largest seen is where the margin is drawn;
  rule "worst": the worst case, which no input can overflow, at the cost of precision.
A layer that does not fit gets fewer weight bits (its weights requantized at bits - k, k the
bits by which it overflows; each bit halves the sums), the observation repeated until every
layer fits. The choice is reported per layer (its worst and observed bits and its weight bits)
and recorded in the file (quantization.accumulator_fit), with the target (quantization.hardware).
Layers whose worst case exceeds the accumulator while their observed sums fit are reported too:
an input unlike the calibration set could overflow them (the rule "worst" removes them).
"""
from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np

from ..errors import UserError
from .fixedpoint import Accumulator

RULES = ("observed", "worst")
HEADROOM_BITS = 1
MIN_WEIGHT_BITS = 2
MAX_ROUNDS = 8


@dataclass(frozen=True)
class Target:
    """The arithmetic a quantized file is made for (a hardware file's [arith])."""
    name: str
    accumulator: Accumulator
    word_bits: int

    def record(self) -> dict:
        return {"name": self.name, "acc_bits": self.accumulator.bits,
                "overflow": self.accumulator.overflow, "word_bits": self.word_bits}


def observe(model, batches: Iterable[np.ndarray]) -> dict[str, int]:
    """{mac step: largest |sum + bias|} of the model's integer path over float input batches. The
    sums pass on saturated to the accumulator (not wrapped), so a layer that overflows does not
    scramble what the layers after it see."""
    top: dict[str, int] = {}
    sat = Accumulator(model.accumulator.bits, "saturate")

    def hook(step, xs):
        sums = step.mac_sums(xs[0])
        sums = sums + step.bias_view(sums.ndim)
        top[step.name] = max(top.get(step.name, 0), int(np.abs(sums).max(initial=0)))
        return step.finish(sums, sat)
    for x in batches:
        model.run_codes(model.quantize_input(x), mac_step=hook)
    return top


def worst(model) -> dict[str, int]:
    from .schema import mac_bound
    out = {}
    for s in model.steps:
        if s.kind == "mac":
            t = model.tensors[s.inputs[0]]
            out[s.name] = int(mac_bound(s, max(abs(t.lo), abs(t.hi))).max(initial=0))
    return out


def fit(rebuild: Callable[[dict[str, int]], object], batches: Callable[[], Iterable[np.ndarray]],
        bits: int, rule: str):
    """(model, report): rebuild(weight_bits) makes the model with those layers' weights at fewer
    bits; report: one dict per layer that was narrowed or whose worst case exceeds the
    accumulator (see the module doc)."""
    if rule not in RULES:
        raise UserError(f"accumulator rule must be one of {', '.join(RULES)}, got {rule!r}")
    weight_bits: dict[str, int] = {}
    model = rebuild(weight_bits)
    lim = 1 << (model.accumulator.bits - 1)
    for _ in range(MAX_ROUNDS):
        bound = worst(model)
        if rule == "observed" and max(bound.values(), default=0) << HEADROOM_BITS >= lim:
            # observed <= worst: only a model some layer of which could overflow is run
            bound = {k: v << HEADROOM_BITS for k, v in observe(model, batches()).items()}
        over = {k: v.bit_length() - (model.accumulator.bits - 1) for k, v in bound.items() if v >= lim}
        if not over:
            break
        for name, k in over.items():
            wb = weight_bits.get(name, bits) - k
            if wb < MIN_WEIGHT_BITS:
                raise UserError(f"layer {name} cannot be represented: its sums need "
                                f"{bound[name].bit_length() + 1} bits, more than the "
                                f"{model.accumulator.bits}-bit accumulator holds with "
                                f"{MIN_WEIGHT_BITS}-bit weights")
            weight_bits[name] = wb
        model = rebuild(weight_bits)
    else:
        raise UserError(f"the accumulator fit did not settle in {MAX_ROUNDS} rounds")
    bounds = worst(model)
    flagged = [name for name, w in bounds.items() if name in weight_bits or w >= lim]
    seen = observe(model, batches()) if flagged else {}
    layer = {s.name: s.covers[0] for s in model.steps}
    report = [{"layer": layer[name], "worst_bits": bounds[name].bit_length() + 1,
               "observed_bits": seen[name].bit_length() + 1, "weight_bits": weight_bits.get(name, bits)}
              for name in flagged]
    return model, report
