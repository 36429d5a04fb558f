"""The comparison the two papers invite: spatial convolutions against shifts, on Fashion-MNIST and on
the emulated accelerator. Conv ResNet-20 against ShiftResNet-20 (eps 3 and 6), and 1.0-SqNxt-23v5
against its shift form (1.0-Shift-SqNxt-23v5), all in their Fashion-MNIST forms (sqnxt-train's).

Per network: top-1 on the Fashion-MNIST test split by this engine where trained weights exist (the
shipped file `<model>-fmnist` of weights/MANIFEST.json, or `<model>-fmnist.npz` in --weights-dir),
else "not trained" and seeded random weights (--seed), so every other column is measured now and
the table fills in as trained files appear; parameters and MACs (the graph's counts); emulated
cycles and energy of one test image (the first), dense weights, best dataflow per layer, on the
8x8 and 16x16 presets with the hardware's shift = "remap" and shift = "copy" (emu/shift.py: the
consumer 1x1 conv's shifted fetch, or a pass of its own through the buffer); each relative to
its conv network on the same array and form (x). The conv networks have no shift: both forms
give them the same figures.

    python benchmarks/shift_vs_conv.py [--limit-test 10000] [--weights-dir weights] [--json out.json]
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

# each model, and the conv network it is compared with (itself for the conv networks)
VERSUS = {"ResNet-20": "ResNet-20", "ShiftResNet-20-e3": "ResNet-20", "ShiftResNet-20-e6": "ResNet-20",
          "1.0-SqNxt-23v5": "1.0-SqNxt-23v5", "1.0-Shift-SqNxt-23v5": "1.0-SqNxt-23v5"}
ARRAYS = ("8x8", "16x16")
SHIFT_FORMS = ("remap", "copy")   # hardware layers.shift (emu/hardware.py)


def trained_file(model: str, weights_dir: Path | None) -> str | None:
    """The trained Fashion-MNIST weights of `model`: a shipped name or a path, or None."""
    from sqnxt_engine.io.shipped import shipped_name
    name = f"{model}-fmnist"
    if weights_dir is not None and (weights_dir / f"{name}.npz").is_file():
        return str(weights_dir / f"{name}.npz")
    return shipped_name(name)


def top1_cell(top1) -> str:
    return top1 if isinstance(top1, str) else f"{top1:.2f}%"


def measure(model: str, args, images, labels, cache: dict) -> dict:
    import dataclasses

    from sqnxt_engine import zoo
    from sqnxt_engine.cli.eval import engine_accuracy
    from sqnxt_engine.emu.hardware import load_hardware
    from sqnxt_engine.emu.network import emulate
    from sqnxt_engine.io.model import load_model
    from sqnxt_engine.runtime import random_weights
    from sqnxt_engine.train.train import fashion_mnist_options, normalise

    source = trained_file(model, args.weights_dir)
    if source is not None:
        graph, weights, _ = load_model(source)
        correct, total = engine_accuracy(source, images, labels, label=model)
        top1 = round(100.0 * correct / total, 2)
    else:
        graph = zoo.build(model, **fashion_mnist_options(model))
        weights = random_weights(graph, args.seed)
        top1 = None
    row = {"model": model, "weights": Path(source).name if source else f"random (seed {args.seed})",
           "top1": "not trained" if top1 is None else top1, "params": graph.params,
           "macs": graph.macs}
    x = normalise(images[:1])
    for hw_name in ARRAYS:
        hw = load_hardware(hw_name)
        for form in SHIFT_FORMS:
            res = emulate(graph, weights, dataclasses.replace(hw, shift=form), "best", 0.0, x=x,
                          cache=cache.setdefault(hw_name, {}))   # searches do not depend on form
            key = f"{hw_name}_{form}"
            row[f"cycles_{key}"] = round(res.cycles)
            row[f"energy_{key}"] = round(res.energy.total)
            row[f"e_dram_{key}"] = round(res.energy.levels()["dram"])  # what data movement decides
            row[f"top1_agrees_{key}"] = res.top1_match
    print(f"  {model}: done", file=sys.stderr, flush=True)
    return row


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--limit-test", type=int, default=10000, help="test images for top-1 (default all)")
    p.add_argument("--weights-dir", type=Path, help="a folder of <model>-fmnist.npz files to prefer")
    p.add_argument("--seed", type=int, default=0, help="seed of the random weights of untrained models")
    p.add_argument("--json", help="also write the rows here")
    args = p.parse_args(argv)

    from sqnxt_engine.cli.common import format_table
    from sqnxt_engine.io.datasets import load_dataset

    images, labels = load_dataset("fashion-mnist", "test")
    images, labels = images[:args.limit_test], labels[:args.limit_test]
    cache: dict = {}
    rows = {model: measure(model, args, images, labels, cache) for model in VERSUS}
    table, printed = [], []
    for model, conv in VERSUS.items():
        r = dict(rows[model], vs=conv)
        for hw_name in ARRAYS:
            line = {"model": model, "vs": "-" if conv == model else conv, "top-1": top1_cell(r["top1"]),
                    "params": r["params"], "MACs": f"{r['macs'] / 1e6:.1f}M", "array": hw_name}
            for form in SHIFT_FORMS:
                for what in ("cycles", "energy"):
                    key = f"{what}_{hw_name}_{form}"
                    r[f"{key}_x"] = round(r[key] / rows[conv][key], 3)
                    v = f"{r[key]:,}" if what == "cycles" else f"{r[key] / 1e6:.1f}M"
                    line[f"{what} {form} (x)"] = f"{v} ({r[key + '_x']:.3f})"
            line["DRAM energy remap / copy"] = (f"{r[f'e_dram_{hw_name}_remap'] / 1e6:.1f}M / "
                                                f"{r[f'e_dram_{hw_name}_copy'] / 1e6:.1f}M")
            printed.append(line)
        table.append(r)
    command = "python benchmarks/shift_vs_conv.py " + " ".join(sys.argv[1:] if argv is None else argv)
    print(f"{command}\n(top-1: {len(images):,} Fashion-MNIST test images, engine float32; cycles and "
          f"energy: one test image, all layers the emulator charges, dense weights, energy in units "
          f"of one MAC; x: relative to `vs` on the same array and shift form)")
    print(format_table(printed))
    if args.json:
        Path(args.json).write_text(json.dumps({"command": command, "rows": table}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
