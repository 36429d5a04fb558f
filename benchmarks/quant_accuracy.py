"""Accuracy of post-training quantization: float, int16 layer-wise, int8 layer-wise, int8 + the
per-channel binary shift scaler, int8 + cross-layer equalization, int8 per-channel, the shift
scaler with equalization, bias correction and the power-of-two threshold search (sqnxt-quant
--pow2-search; "power-of-two weights": the search for the weights only) in combination (all
through this engine's pure-integer runner, sqnxt-eval's), and onnxruntime's static int8 quantization (per-channel
weights, QDQ, uint8 activations, MinMax calibration) of the same folded network as the peer.

(a) EfficientNet-Lite0 with its published ImageNet weights (depthwise: the shift scaler's target
    case). Photos: foolbox's 20 labelled ImageNet JPEGs and 15 photographs bundled with
    scikit-image. Two folds, so that no photo is classified by a model calibrated on it:
    calibrated on the scikit-image photos, the 20 ImageNet photos are classified (top-1 against
    their labels, agreement with float, per-layer SQNR); calibrated on the 20 ImageNet photos,
    the scikit-image photos are classified (agreement with float). "agree" counts all 35.
(b) The shipped Fashion-MNIST SqueezeNexts on the full 10,000-image test split, calibrated on
    the first 500 images of the train split (sqnxt-quant's default).

SQNR (dB) per MAC layer: 10 log10(sum f^2 / sum (f - q)^2) between the float network's layer
output f and the integer network's dequantized output q on the same images (errors of earlier
layers included), over the evaluated images (Fashion-MNIST: the first 1000); the table gives the
mean and the minimum over the layers, --layers prints every layer.

    python benchmarks/quant_accuracy.py [--models efficientnet-lite0 1.0-SqNxt-23v5-fmnist ...]
                                        [--activations auto] [--json] [--layers]

Needs onnx and onnxruntime, scikit-image, and the package registry for the EfficientNet weights
and foolbox's photos (the test install).
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from sqnxt_engine.cli.common import format_table
from sqnxt_engine.graph.graph import INPUT
from sqnxt_engine.io.datasets import load_dataset
from sqnxt_engine.io.images import Preprocess, batch_from_arrays
from sqnxt_engine.io.model import load_model
from sqnxt_engine.quant import quantize_network
from sqnxt_engine.quant.plan import FloatPlan

CONFIGS = [("float", None, None), ("int16 layer-wise", 16, "layer"), ("int8 layer-wise", 8, "layer"),
           ("int8 + shift scaler", 8, "shift-scaler"), ("int8 + equalization", 8, "equalize"),
           ("int8 per-channel", 8, "per-channel"), ("onnxruntime int8 per-channel QDQ", 8, "onnxruntime"),
           ("int8 + equalization + shift scaler", 8, "equalize-shift-scaler"),
           ("int8 + shift scaler + bias correction", 8, "shift-scaler+bc"),
           ("int8 + equalization + shift scaler + bias correction", 8, "equalize-shift-scaler+bc"),
           ("int8 + shift scaler + power-of-two search", 8, "shift-scaler+pow2"),
           ("int8 + equalization + shift scaler + power-of-two search", 8, "equalize-shift-scaler+pow2"),
           ("int8 + shift scaler + bias correction + power-of-two search", 8, "shift-scaler+bc+pow2"),
           ("int8 + equalization + shift scaler + bias correction + power-of-two search", 8,
            "equalize-shift-scaler+bc+pow2"),
           ("int8 + equalization + shift scaler + bias correction + power-of-two weights", 8,
            "equalize-shift-scaler+bc+pow2w")]
SKIMAGE_PHOTOS = ["astronaut", "chelsea", "coffee", "rocket", "camera", "hubble_deep_field",
                  "immunohistochemistry", "retina", "coins", "moon", "stereo_motorcycle", "brick",
                  "grass", "gravel", "page"]
FMNIST_MODELS = ["1.0-SqNxt-23v5-fmnist", "1.0-SqNxt-23-fmnist", "1.0-SqNxt-23v5-fmnist-pruned40",
                 "1.0-SqNxt-23-fmnist-pruned40", "ResNet-20-fmnist"]
BATCH = 250
SQNR_IMAGES = 1000  # SQNR over the first 1000 evaluated images (a float64 reference run each)


def skimage_photos() -> list[np.ndarray]:
    import skimage.data

    out = []
    for name in SKIMAGE_PHOTOS:
        img = getattr(skimage.data, name)()
        img = img[0] if isinstance(img, tuple) else img  # stereo pair: the left view
        out.append(np.asarray(img, np.uint8))
    return out


def batches(x: np.ndarray, size: int = BATCH):
    return [x[s:s + size] for s in range(0, len(x), size)]


# --- the peer: the folded float network as ONNX, quantized by onnxruntime -------------------

def to_onnx(plan: FloatPlan, path: Path) -> None:
    """The plan's folded float network as an ONNX model (opset 13), input 'input'."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    nodes, inits = [], []

    def const(name, a):
        inits.append(numpy_helper.from_array(np.asarray(a, np.float32), name))
        return name

    for s in plan.steps:
        out = s.name if s.lo is None else s.name + ".pre"
        op = s.op
        if s.kind == "mac" and s.weight.ndim == 4:
            t, b, l, r = op.padding
            nodes.append(helper.make_node("Conv", [s.inputs[0], const(s.name + ".w", s.weight),
                                                   const(s.name + ".b", s.bias)], [out],
                                          strides=list(op.stride), pads=[t, l, b, r],
                                          dilations=list(op.dilation), group=op.groups))
        elif s.kind == "mac":
            nodes.append(helper.make_node("Gemm", [s.inputs[0], const(s.name + ".w", s.weight),
                                                   const(s.name + ".b", s.bias)], [out], transB=1))
        elif s.kind == "add":
            acc = s.inputs[0]
            for i, other in enumerate(s.inputs[1:]):
                name = out if i == len(s.inputs) - 2 else f"{s.name}.sum{i}"
                nodes.append(helper.make_node("Add", [acc, other], [name]))
                acc = name
        elif s.kind == "concat":
            nodes.append(helper.make_node("Concat", list(s.inputs), [out], axis=1))
        elif s.kind in ("maxpool", "avgpool"):
            t, b, l, r = op.padding
            kw = dict(kernel_shape=list(op.kernel), strides=list(op.stride), pads=[t, l, b, r],
                      ceil_mode=int(op.ceil_mode))
            if s.kind == "avgpool":
                kw["count_include_pad"] = int(op.count_include_pad)
            nodes.append(helper.make_node("MaxPool" if s.kind == "maxpool" else "AveragePool",
                                          [s.inputs[0]], [out], **kw))
        elif s.kind == "gap":
            nodes.append(helper.make_node("GlobalAveragePool", [s.inputs[0]], [out]))
        elif s.kind == "flatten":
            nodes.append(helper.make_node("Flatten", [s.inputs[0]], [out], axis=1))
        else:  # identity, clamp
            nodes.append(helper.make_node("Identity", [s.inputs[0]], [out]))
        if s.lo is not None:
            hi = float(s.hi[0])
            if not np.all(s.hi == hi) or not np.all(s.lo == 0):
                raise ValueError(f"{s.name}: per-channel clamps have no ONNX operator")
            if np.isinf(hi):
                nodes.append(helper.make_node("Relu", [out], [s.name]))
            else:
                nodes.append(helper.make_node("Clip", [out, const(s.name + ".lo", 0.0),
                                                       const(s.name + ".hi", hi)], [s.name]))
    g = plan.graph
    x = helper.make_tensor_value_info(INPUT, TensorProto.FLOAT, ["n", *g.input_shape])
    y = helper.make_tensor_value_info(g.outputs[0], TensorProto.FLOAT, ["n", *g.output_shape()])
    model = helper.make_model(helper.make_graph(nodes, g.name, [x], [y], inits),
                              opset_imports=[helper.make_opsetid("", 13)])
    onnx.checker.check_model(model)
    onnx.save(model, str(path))


def onnxruntime_int8(plan: FloatPlan, calib: np.ndarray, workdir: Path):
    """A function x -> logits of onnxruntime's static int8 quantization of the plan."""
    import onnxruntime as ort
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.it = iter(batches(calib, 16))

        def get_next(self):
            b = next(self.it, None)
            return None if b is None else {INPUT: b}

    f32, q8 = workdir / "float.onnx", workdir / "int8.onnx"
    to_onnx(plan, f32)
    quantize_static(str(f32), str(q8), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    sess = ort.InferenceSession(str(q8), opts, providers=["CPUExecutionProvider"])
    return lambda x: sess.run(None, {INPUT: np.ascontiguousarray(x, np.float32)})[0]


# --- running one configuration ------------------------------------------------------------

def evaluate(graph, arrays, meta, bits, method, rule, calib, x, sqnr: bool):
    """(predictions on x, per-layer SQNR {layer: dB} or {}, seconds) of one configuration."""
    t0 = time.perf_counter()
    if bits is None:
        plan = FloatPlan.from_weights(graph, arrays)
        run = plan.executor(np.float32)
        preds = np.concatenate([run(b)[graph.outputs[0]] for b in batches(x)]).argmax(1)
        return preds, {}, time.perf_counter() - t0
    if method == "onnxruntime":
        with tempfile.TemporaryDirectory() as tmp:
            run = onnxruntime_int8(FloatPlan.from_weights(graph, arrays), calib, Path(tmp))
            preds = np.concatenate([run(b) for b in batches(x)]).argmax(1)
        return preds, {}, time.perf_counter() - t0
    # "+bc": with bias correction; "+pow2": power-of-two threshold search (weights and
    # activations, sqnxt-quant --pow2-search); "+pow2w": for the weights only
    method, *extras = method.split("+")
    model, plan = quantize_network(graph, arrays, batches(calib, 16), len(calib), bits, method,
                                   "pow2" if "pow2" in extras else rule, meta=meta,
                                   bias_correction="bc" in extras, pow2_weights="pow2" in extras or "pow2w" in extras,
                                   batches_again=lambda: batches(calib, 16))
    macs = [s.name for s in plan.steps if s.kind == "mac"]
    signal = dict.fromkeys(macs, 0.0)
    noise = dict.fromkeys(macs, 0.0)
    ref = plan.executor(np.float64) if sqnr else None
    preds = []
    for i, b in enumerate(batches(x)):
        measure = sqnr and i * BATCH < SQNR_IMAGES
        codes = model.run_codes(model.quantize_input(b), capture=measure)
        out = graph.outputs[0]
        preds.append(codes[out].reshape(len(b), -1).argmax(1))
        if measure:
            f = ref(b)
            for name in macs:
                q = model.dequantize(name, codes[name])
                signal[name] += float(np.sum(f[name] ** 2))
                noise[name] += float(np.sum((f[name] - q) ** 2))
    db = {n: 10 * np.log10(signal[n] / noise[n]) if noise[n] > 0 else float("inf") for n in macs} if sqnr else {}
    return np.concatenate(preds), db, time.perf_counter() - t0


def efficientnet_rows(rule: str, layers: bool, configs=CONFIGS) -> tuple[list[dict], dict]:
    graph, arrays, meta = load_model("efficientnet-lite0")
    pre = Preprocess.from_meta({**graph.meta, **meta})
    labelled, labels = load_dataset("imagenet-samples")
    x_in = batch_from_arrays(labelled, pre)
    x_sk = batch_from_arrays(skimage_photos(), pre)
    rows, per_layer, float_preds = [], {}, None
    for label, bits, method in configs:
        p_in, db, t1 = evaluate(graph, arrays, meta, bits, method, rule, x_sk, x_in, sqnr=True)
        p_sk, _, t2 = evaluate(graph, arrays, meta, bits, method, rule, x_in, x_sk, sqnr=False)
        preds = np.concatenate([p_in, p_sk])
        if float_preds is None:
            float_preds = preds
        _add_row(rows, per_layer, "efficientnet-lite0", label, p_in, labels, preds, float_preds,
                 db, t1 + t2)
    return rows, per_layer


def _add_row(rows: list, per_layer: dict, model: str, label: str, preds, labels, all_preds,
             float_preds, db: dict, seconds: float) -> None:
    """One configuration's row (top-1 of `preds` on `labels`, agreement of `all_preds` with
    float's), its per-layer SQNR kept, and the row echoed on stderr as it finishes."""
    row = {"model": model, "config": label, "top1": 100.0 * float((preds == labels).mean()),
           "images": len(labels), "agree": f"{int((all_preds == float_preds).sum())}/{len(all_preds)}"}
    row.update(_sqnr_summary(db))
    row["seconds"] = round(seconds, 1)
    rows.append(row)
    if db:
        per_layer[label] = db
    print(format_table([row]).splitlines()[-1], file=sys.stderr)


def _sqnr_summary(db: dict) -> dict:
    if not db:
        return {"sqnr_mean_db": None, "sqnr_min_db": None, "worst_layer": None}
    finite = {k: v for k, v in db.items() if np.isfinite(v)}
    worst = min(finite, key=finite.get)
    return {"sqnr_mean_db": round(float(np.mean(list(finite.values()))), 1),
            "sqnr_min_db": round(finite[worst], 1), "worst_layer": worst}


def fmnist_rows(name: str, rule: str, configs=CONFIGS) -> tuple[list[dict], dict]:
    graph, arrays, meta = load_model(name)
    pre = Preprocess.from_meta({**graph.meta, **meta})
    train, _ = load_dataset("fashion-mnist", "train")
    test, labels = load_dataset("fashion-mnist", "test")
    calib, x = batch_from_arrays(train[:500], pre), batch_from_arrays(test, pre)
    rows, per_layer, float_preds = [], {}, None
    for label, bits, method in configs:
        preds, db, t = evaluate(graph, arrays, meta, bits, method, rule, calib, x, sqnr=bits is not None)
        float_preds = preds if float_preds is None else float_preds
        _add_row(rows, per_layer, name, label, preds, labels, preds, float_preds, db, t)
    return rows, per_layer


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", nargs="+", default=["efficientnet-lite0", *FMNIST_MODELS])
    ap.add_argument("--activations", default="auto", help="activation range rule (sqnxt-quant's default)")
    ap.add_argument("--configs", nargs="+", metavar="LABEL", help="only these configurations (their labels "
                    "as the table prints them; float always runs first, the reference for agreement)")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--layers", action="store_true", help="also print every layer's SQNR")
    args = ap.parse_args()
    configs = CONFIGS if not args.configs else [CONFIGS[0]] + [c for c in CONFIGS[1:] if c[0] in args.configs]
    if args.configs and len(configs) != 1 + len(set(args.configs) - {CONFIGS[0][0]}):
        ap.error(f"--configs: the labels are {', '.join(c[0] for c in CONFIGS)}")
    rows, layers = [], {}
    for name in args.models:
        r, db = efficientnet_rows(args.activations, args.layers, configs) if name == "efficientnet-lite0" \
            else fmnist_rows(name, args.activations, configs)
        rows += r
        layers[name] = db
    if args.json:
        print(json.dumps({"rows": rows, "layers": layers} if args.layers else rows, indent=1))
        return
    print(f"activations: {args.activations}; top1 in %, agree: same top-1 class as float")
    print(format_table(rows))
    if args.layers:
        for name, per in layers.items():
            for config, db in per.items():
                print(f"\n{name}, {config}: SQNR dB per layer")
                print(format_table([{"layer": k, "sqnr_db": round(v, 1)} for k, v in db.items()]))


if __name__ == "__main__":
    main()
