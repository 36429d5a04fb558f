"""Empirical bias correction (Nagel et al., "Data-Free Quantization Through Weight Equalization
and Bias Correction", ICCV 2019, section 4.2, with the expectation taken over calibration images
instead of batch-norm statistics): quantizing a layer's weights W to W~ shifts the mean of its
output channel o by E[(W~ - W) x]_o, a bias the next layers see as a systematic error. Per conv
and fc layer, over the calibration images run through the quantized network (so the inputs are
the codes the layer really sees, dequantized): the mean over images and positions of the float
weights' output minus the integer weights' output, per output channel, is added to the bias (in
accumulator units, rounded). All layers are corrected from one run of the uncorrected network
(one pass over the calibration images; Nagel et al. correct layer by layer, which would take
one pass per layer)."""
from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np

from .plan import FloatPlan


def correct_biases(model, plan: FloatPlan, batches: Callable[[], Iterable[np.ndarray]]) -> int:
    """Correct every mac step's bias of `model` in place (see the module doc); returns how many
    layers were corrected. batches() yields the calibration images (float batches) again."""
    by_name = {s.name: s for s in plan.steps}
    layers = []
    for step in (s for s in model.steps if s.kind == "mac"):
        p = by_name[step.name]
        sw = np.asarray(step.weight_scale, np.float64)
        # the float weights minus the dequantized codes: the layer's weight error, as a conv
        err_w = p.weight - step.arrays["weight"].astype(np.float64) * sw.reshape((-1,) + (1,) * (p.weight.ndim - 1))
        conv = p.op.prepare({"weight": err_w, "bias": np.zeros(len(err_w))}, np.float64)
        layers.append((step, sw, model.tensors[step.inputs[0]].scale, conv, np.zeros(len(err_w)), [0]))
    for x in batches():
        codes = model.run_codes(model.quantize_input(x), capture=True)
        for step, _, sx, conv, total, count in layers:
            y = conv([codes[step.inputs[0]].astype(np.float64) * sx])
            total += y.sum(axis=(0,) + tuple(range(2, y.ndim)))
            count[0] += y.size // y.shape[1]
    lim = (1 << (model.accumulator.bits - 1)) - 1
    for step, sw, sx, _, total, count in layers:
        shift = total / max(count[0], 1) / (sx * sw)  # the mean error in accumulator units
        step.arrays["bias"] = np.clip(step.arrays["bias"] + np.rint(shift).astype(np.int64), -lim, lim)
    return len(layers)
