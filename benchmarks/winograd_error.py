"""Winograd F(4,3)'s float32 error on the shipped models' 1x3 and 3x1 layers, beside the direct
(flat) float32 product's, both against the float64 direct result.

    python benchmarks/winograd_error.py [--images 100]

Each shipped model with 1x3 or 3x1 convolutions runs in float64 on the first --images Fashion-MNIST
test images (the file's preprocessing); every such layer is then computed again from its float64
input, rounded to float32, by ConvPlan with Winograd forced on and forced off (its batch norm folded
and its clamp fused, as the runner does). Error of a layer: max |y32 - y64| over max |y64|, the
measure of tests/tolerance.py. Prints, per model, the largest over its layers of each.
"""
from __future__ import annotations

import argparse

import numpy as np


def layer_errors(path, images: np.ndarray) -> tuple[int, float, float]:
    """(layers, worst Winograd error, worst flat error) of one weight file."""
    from sqnxt_engine import functional as F
    from sqnxt_engine.graph import ops as O
    from sqnxt_engine.graph.graph import INPUT
    from sqnxt_engine.io.model import load_model
    from sqnxt_engine.runtime import Runner
    from sqnxt_engine.runtime.predict import Classifier

    net = Classifier.load(path)
    graph, arrays, _ = load_model(path)
    runner = Runner(graph, arrays, np.float64, checked=True)
    x = net.prepare(images).astype(np.float64)
    env = {INPUT: x, **runner.run(x, capture=True)}
    layers, worst = 0, {True: 0.0, False: 0.0}
    for step in runner.steps:
        op = step.op
        if not isinstance(op, O.Conv2d) or op.kernel not in ((1, 3), (3, 1)) or op.groups != 1:
            continue
        layers += 1
        clamp = step.activation.bounds if step.act_in_run else None
        args = (step.params["weight"], step.params.get("bias"), op.stride, op.padding, op.dilation, 1)
        xin = env[step.inputs[0]]
        want = F.ConvPlan(*args, np.float64, clamp, reference=True)(xin)
        scale = float(np.abs(want).max()) or 1.0
        for winograd in (True, False):
            got = F.ConvPlan(*args, np.float32, clamp, winograd=winograd)(xin.astype(np.float32))
            worst[winograd] = max(worst[winograd], float(np.abs(got - want).max()) / scale)
    return layers, worst[True], worst[False]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=100)
    args = ap.parse_args()
    from sqnxt_engine.cli.common import format_table
    from sqnxt_engine.io.datasets import load_dataset
    from sqnxt_engine.io.shipped import manifest, shipped_weights

    images = load_dataset("fashion-mnist", "test")[0][:args.images]
    rows = []
    for name in sorted(manifest()):
        layers, win, flat = layer_errors(shipped_weights(name), images)
        if layers:
            rows.append({"model": name, "layers_1x3_3x1": layers, "winograd_f32_max_rel": f"{win:.2e}",
                         "flat_f32_max_rel": f"{flat:.2e}"})
    print(f"{args.images} Fashion-MNIST test images; error: max |y32 - y64| / max |y64| per layer, "
          "largest over the model's 1x3 and 3x1 layers")
    print(format_table(rows))


if __name__ == "__main__":
    main()
