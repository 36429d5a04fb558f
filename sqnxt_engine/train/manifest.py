"""Add trained weight files to weights/MANIFEST.json, measuring what the manifest states.

    python -m sqnxt_engine.train.manifest weights/1.0-SqNxt-23v5-fmnist.npz [...]

For each .npz (written by sqnxt-train, beside its .train.json record): the sha256 and size of the
file, its sparsity, the training record (recipe, command, seed, time), and the top-1 on the whole
Fashion-MNIST test split measured twice on the very arrays in the file: by this engine (the
float32 NumPy runner, as sqnxt-eval) and by PyTorch (the torch module built from the same graph).
"""
from __future__ import annotations

import argparse
import json
import shlex
import time
from pathlib import Path

from ..io.datasets import load_dataset
from ..io.files import write_atomic
from ..io.model import load_model
from ..io.shipped import MANIFEST
from ..io.weights import sha256_file
from ..runtime.predict import engine_accuracy
from .torch_graph import GraphModule
from .train import convert_args, sparsity_of, torch_accuracy


def measure(path: Path) -> dict:
    graph, arrays, meta = load_model(path)
    images, labels = load_dataset("fashion-mnist", "test")
    t0 = time.time()
    correct, total = engine_accuracy(str(path), images, labels, label=path.stem)
    engine_seconds = time.time() - t0
    model = GraphModule(graph)
    model.load_arrays(arrays)
    torch_top1 = torch_accuracy(model, images, labels)
    zeros, weights = sparsity_of(arrays, graph)
    record_path = path.with_suffix(".train.json")
    record = json.loads(record_path.read_text()) if record_path.is_file() else {}
    return {
        "file": path.name, "sha256": sha256_file(path), "bytes": path.stat().st_size,
        "architecture": graph.name, "zoo_options": meta.get("zoo_options", {}),
        "params": graph.params, "macs": graph.macs,
        "dataset": "fashion-mnist (Debian dataset-fashion-mnist; 60,000 train, 10,000 test)",
        "stored_dtype": meta.get("stored_dtype", "float32"),
        "weight_sparsity": round(zeros / weights, 4), "zero_weights": zeros, "conv_fc_weights": weights,
        "test_images": total, "engine_top1": round(100.0 * correct / total, 2),
        "torch_top1": round(torch_top1, 2), "engine_eval_seconds": round(engine_seconds, 1),
        "torch_top1_float32_before_export": record.get("torch_top1_float32"),
        "seed": record.get("recipe", {}).get("seed"), "recipe": record.get("recipe"),
        "init": record.get("init"), "train_command": record.get("command"),
        "convert_command": "sqnxt-convert " + shlex.join(convert_args(
            f"{path.stem}.pth", path.name, graph.name, meta.get("zoo_options", {}),
            meta.get("stored_dtype") == "float16")),
        "training_seconds": record.get("training_seconds"),
        # epochs, torch threads and device of each stretch of the run; more than one when it was
        # stopped and continued from its checkpoint
        "training_parts": record.get("parts"),
        "training_machine": record.get("machine"), "torch_version": record.get("torch"),
        "preprocess": {k: meta.get(k) for k in ("input_size", "resize", "color", "mean", "std")},
        "labels": meta.get("labels"),
    }


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m sqnxt_engine.train.manifest", description=__doc__.splitlines()[0])
    p.add_argument("files", nargs="+", type=Path, help=".npz files in the weights folder")
    args = p.parse_args(argv)
    folder = args.files[0].parent
    out = folder / MANIFEST
    data = json.loads(out.read_text()) if out.is_file() else {"weights": {}}
    for path in args.files:
        if path.parent != folder:
            raise SystemExit(f"{path}: all files must be in {folder}")
        entry = measure(path)
        data["weights"][path.stem] = entry
        print(f"{path.stem}: engine {entry['engine_top1']:.2f}%, torch {entry['torch_top1']:.2f}%, "
              f"sparsity {entry['weight_sparsity']:.1%}, {entry['bytes']:,} bytes", flush=True)
    data["weights"] = dict(sorted(data["weights"].items()))
    text = json.dumps(data, indent=2) + "\n"
    write_atomic(out, lambda f: f.write(text.encode()), force=True)  # an update of the manifest
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
