"""sqnxt-infer: classify images with a network and its weights."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..errors import UserError
from ..io.images import Preprocess, load_batch
from ..io.labels import labels_for
from ..io.model import load_model
from ..io.shipped import DEFAULT_WEIGHTS
from ..quant import QuantizedModel, is_quantized
from ..runtime import Runner
from .common import parser, run


def softmax(logits: np.ndarray) -> np.ndarray:
    z = logits.astype(np.float64) - logits.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def load_runner(weights: str):
    """(runner, preprocessing, meta) for a weight file or name, checked to fit each other. A
    quantized file (sqnxt-quant's) runs through the pure-integer runner."""
    graph, arrays, meta = load_model(weights, quantized=None)
    pre = Preprocess.from_meta({**graph.meta, **meta})
    if pre.channels != graph.input_shape[0]:
        raise UserError(f"{weights}: preprocessing gives {pre.channels} channels, "
                        f"{graph.name} takes {graph.input_shape[0]}")
    if is_quantized(meta):
        return QuantizedModel.from_arrays(graph, arrays, meta, source=weights), pre, meta
    return Runner(graph, arrays), pre, meta


def classify(paths: list[str], weights: str, top: int = 5, batch_size: int = 16) -> list[dict]:
    """Per image: its path and the top `top` classes as {class_id, label, probability}."""
    runner, pre, meta = load_runner(weights)
    graph = runner.graph
    labels = labels_for(meta, graph.output_shape()[0])
    results = []
    for start in range(0, len(paths), batch_size):
        chunk = paths[start:start + batch_size]
        probs = softmax(runner(load_batch(chunk, pre)).reshape(len(chunk), -1))
        for path, p in zip(chunk, probs):
            best = np.argsort(-p, kind="stable")[:top]
            results.append({"path": str(path), "top": [
                {"class_id": int(i), "label": labels[i], "probability": float(p[i])} for i in best]})
    return results


def _main(argv: list[str]) -> int:
    p = parser("sqnxt-infer", "Classify images with a network's weights.")
    p.add_argument("images", nargs="+", help="image files (JPEG, PNG, ... anything Pillow reads)")
    p.add_argument("--weights", default=DEFAULT_WEIGHTS,
                   help="an .npz weight file, a shipped name, or a name to fetch (efficientnet-lite0); "
                        f"default: the shipped {DEFAULT_WEIGHTS} (Fashion-MNIST)")
    p.add_argument("--top", type=int, default=5, help="how many classes to show per image (default 5)")
    p.add_argument("--batch-size", type=int, default=16, help="images per forward pass (default 16)")
    p.add_argument("--json", action="store_true", help="JSON output")
    args = p.parse_args(argv)
    if args.top < 1 or args.batch_size < 1:
        raise UserError("--top and --batch-size must be at least 1")
    for path in args.images:
        if not Path(path).is_file():
            raise UserError(f"{path}: no such file")
    results = classify(args.images, args.weights, args.top, args.batch_size)
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    for r in results:
        print(r["path"])
        for t in r["top"]:
            print(f"  {t['probability']:7.2%}  {t['class_id']:4d}  {t['label']}")
    return 0


def main(argv=None) -> int:
    return run(_main, argv)


if __name__ == "__main__":
    raise SystemExit(main())
