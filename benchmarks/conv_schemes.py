"""The convolution schemes ConvPlan chooses by a plan rule, on real layers: Winograd F(4,3) for the
1x3 / 3x1 layers (its float32 error; its speed beside the flat scheme's) and the direct pointwise
kernel (its speed beside the BLAS product with its epilogue), layer by layer.

    python benchmarks/conv_schemes.py [--images 100]                # Winograd's error
    python benchmarks/conv_schemes.py --speed sqnxt23v5_w1 --batch 1 [--simd avx512 avx2]
    python benchmarks/conv_schemes.py --pointwise sqnxt23v5_w1 [--batch 1] [--simd avx512 avx2]

Error: each shipped model with 1x3 or 3x1 convolutions runs in float64 on the first --images Fashion-MNIST
test images (the file's preprocessing); every such layer is then computed again from its float64
input, rounded to float32, by ConvPlan with Winograd forced on and forced off (its batch norm folded
and its clamp fused, as the runner does). Error of a layer: max |y32 - y64| over max |y64|, the
measure of tests/tolerance.py. Prints, per model, the largest over its layers of each.

Speed (--speed MODEL): each distinct 1x3 / 3x1 layer shape of the model (random weights and
input, one thread, bias and ReLU fused), ConvPlan with Winograd forced on and forced off, timed
alternately, 3 x 60 calls each (fewer at larger batches), the 25th percentile of each set and the
best set; also what the plan rule (ConvPlan.winograd_wins) chooses and the multiply-adds per image
it saves. With --simd, once per kernel clone.

Pointwise (--pointwise MODEL): each distinct 1x1 layer shape at stride 1 the same way, the direct
kernel (direct=True) against the BLAS product and its epilogue (direct=False), what the plan rule
(ConvPlan.direct_pointwise_wins) chooses, and the rate of the BLAS product alone (np.matmul, in
multiply-adds per second; the clone does not change it: OpenBLAS picks its own kernels).
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


def layer_shapes(model: str, kernels) -> dict:
    """{(kernel, padding, C, O, H, W): count} of the model's one-group, stride-1 convolutions
    with a kernel in `kernels` (1x1 ones unpadded)."""
    import collections

    from sqnxt_engine import zoo
    from sqnxt_engine.graph import ops as O

    if model == "fmnist":
        from sqnxt_engine.io.model import load_model
        from sqnxt_engine.io.shipped import shipped_weights
        graph = load_model(shipped_weights("1.0-SqNxt-23v5-fmnist"))[0]
    else:
        graph = zoo.build(model)
    shapes = collections.Counter()
    for layer in graph.layers:
        op = layer.op
        if (isinstance(op, O.Conv2d) and op.kernel in kernels and op.groups == 1 and op.stride == (1, 1)
                and (op.kernel != (1, 1) or op.padding == (0, 0, 0, 0))):
            c, h, w = layer.in_shapes[0]
            shapes[(op.kernel, op.padding, c, op.output_shape(list(layer.in_shapes))[0], h, w)] += 1
    return shapes


def timer(batch: int):
    """quartile(plan, x): the 25th percentile of max(5, 60 // batch) calls, in seconds."""
    import time

    def quartile(plan, x):
        ts = []
        for _ in range(max(5, 60 // batch)):
            t = time.perf_counter()
            plan(x)
            ts.append(time.perf_counter() - t)
        return sorted(ts)[len(ts) // 4]
    return quartile


def compare(model: str, kernels, batch: int, simds, option: str):
    """For each clone in `simds` (None: the one in use) and each layer shape of `model` with a
    kernel in `kernels`: yield (clone, shape, count, x, on, off, times), `on` and `off` the
    shape's ConvPlan (random weights, bias, ReLU) with `option` (winograd / direct) forced on and
    off, times = (seconds on, seconds off), interleaved as the module docstring says."""
    from threadpoolctl import threadpool_limits

    from sqnxt_engine import functional as F
    from sqnxt_engine.functional import _infer

    rng = np.random.default_rng(0)
    quartile = timer(batch)
    before = _infer.simd_clone()
    try:
        with threadpool_limits(1):
            for simd in simds:
                _infer.set_simd(simd or before)
                for (kernel, pad, c, o, h, w), count in layer_shapes(model, kernels).items():
                    wt, b = rng.normal(size=(o, c) + kernel), rng.normal(size=o)
                    x = rng.normal(size=(batch, c, h, w)).astype(np.float32)
                    on, off = (F.ConvPlan(wt, b, (1, 1), pad, (1, 1), 1, np.float32, (0.0, np.inf), **{option: v})
                               for v in (True, False))
                    sets = [(quartile(on, x), quartile(off, x)) for _ in range(3)]
                    times = min(t for t, _ in sets), min(t for _, t in sets)
                    yield simd or before, (kernel, pad, c, o, h, w), count, x, on, off, times
    finally:
        _infer.set_simd(before)


def speed(model: str, batch: int, simds) -> list[dict]:
    from sqnxt_engine.functional import _infer

    rows = []
    for clone, (kernel, pad, c, o, h, w), count, _, on, _, (t_on, t_off) in compare(
            model, ((1, 3), (3, 1)), batch, simds, "winograd"):
        hp, wp = h + pad[0] + pad[1], w + pad[2] + pad[3]
        saved = c * o * (3 * on.out_hw(h, w)[0] * wp - 6 * _infer.winograd_tiles(kernel[0], hp, wp)[1])
        rows.append({"clone": clone, "layer": f"{kernel[0]}x{kernel[1]} {c}->{o} {h}x{w}", "count": count,
                     "saved_per_image": saved, "rule": "winograd" if on.winograd_wins(h, w) else "flat",
                     "flat_us": round(t_off * 1e6, 1), "winograd_us": round(t_on * 1e6, 1),
                     "ratio": round(t_on / t_off, 2)})
    return rows


def pointwise(model: str, batch: int, simds) -> list[dict]:
    import functools

    from sqnxt_engine import functional as F

    rows = []
    quartile = timer(batch)
    for clone, (_, pad, c, o, h, w), count, x, _, off, (t_on, t_off) in compare(
            model, ((1, 1),), batch, simds, "direct"):
        cols = x.reshape(batch, c, h * w)
        t_mm = min(quartile(functools.partial(np.matmul, off.wmat), cols) for _ in range(3))
        plan = F.ConvPlan(off.wmat.reshape(o, c, 1, 1), None, (1, 1), pad, (1, 1), 1, np.float32)
        rows.append({"clone": clone, "layer": f"1x1 {c}->{o} {h}x{w}", "count": count,
                     "rule": "direct" if plan.direct_pointwise_wins(h, w, batch) else "blas",
                     "product_gmac_s": round(batch * o * c * h * w / t_mm / 1e9, 1),
                     "blas_us": round(t_off * 1e6, 1), "direct_us": round(t_on * 1e6, 1),
                     "ratio": round(t_on / t_off, 2)})
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=100)
    ap.add_argument("--speed", choices=["sqnxt23v5_w1", "fmnist"])
    ap.add_argument("--pointwise", choices=["sqnxt23v5_w1", "efficientnet-lite0", "fmnist"])
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--simd", nargs="+", metavar="CLONE")
    args = ap.parse_args()
    from sqnxt_engine.cli.common import format_table
    if args.speed:
        print(f"{args.speed}, batch {args.batch}, one thread: each 1x3 / 3x1 layer shape, us per call")
        print(format_table(speed(args.speed, args.batch, args.simd or [None])))
        return
    if args.pointwise:
        print(f"{args.pointwise}, batch {args.batch}, one thread: each stride-1 1x1 layer shape, us per call")
        print(format_table(pointwise(args.pointwise, args.batch, args.simd or [None])))
        return
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
