"""Does each change of sqnxt-train's recipe help? Short runs on a subset, scored on held-out images.

Trains one zoo network (its Fashion-MNIST form) once per recipe variant, from the same seed, on the
first --train images of the Fashion-MNIST train split, and scores top-1 on the last --val images of
the train split (never the test split: recipe choices must not be tuned on it). Variants:

  old        crop + flip only, no label smoothing (sqnxt-train's defaults)
  +erase     old + random erasing (--erase-p 0.5)
  +smooth    old + label smoothing (--label-smoothing 0.1)
  new        old + random erasing + label smoothing

It also prints the time per training image and epoch, as wall-clock time and as this process's
CPU time (time.process_time: with --threads 1 the work itself, much less sensitive than the wall
clock to other jobs on a shared machine); retrain.sh's time estimate is made from the CPU time.
Short runs favour the variant with the least regularisation; read the figures as "does it hurt or
help at this budget", not as the full-length gain.

    nice -n 10 python benchmarks/recipe_ablation.py --arch ShiftResNet-20-e3 --train 10000 \
        --val 5000 --epochs 3 --threads 1 [--json out.json]
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import replace

VARIANTS = {
    "old": {},
    "+erase": {"erase_p": 0.5},
    "+smooth": {"label_smoothing": 0.1},
    "new": {"erase_p": 0.5, "label_smoothing": 0.1},
}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--arch", default="ShiftResNet-20-e3")
    p.add_argument("--train", type=int, default=10000, help="training images (the first N)")
    p.add_argument("--val", type=int, default=5000, help="held-out images (the last N of the train split)")
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    p.add_argument("--json", help="also write the rows here")
    args = p.parse_args(argv)
    if args.train + args.val > 60000:
        p.error("--train + --val must not exceed the 60,000 training images")

    import torch

    from sqnxt_engine import zoo
    from sqnxt_engine.io.datasets import load_dataset
    from sqnxt_engine.train.torch_graph import GraphModule
    from sqnxt_engine.train.train import Recipe, fashion_mnist_options, torch_accuracy, train

    torch.set_num_threads(args.threads)
    images, labels = load_dataset("fashion-mnist", "train")
    x_tr, y_tr = images[:args.train], labels[:args.train]
    x_val, y_val = images[-args.val:], labels[-args.val:]
    arch = zoo.canonical(args.arch)
    graph = zoo.build(arch, **fashion_mnist_options(arch))
    rows = []
    for variant in args.variants:
        recipe = replace(Recipe(epochs=args.epochs), **VARIANTS[variant])
        torch.manual_seed(recipe.seed)
        model = GraphModule(graph)
        t0, c0 = time.time(), time.process_time()
        train(model, x_tr, y_tr, recipe, log=lambda m, v=variant: print(f"  {v}: {m}", file=sys.stderr, flush=True))
        seconds, cpu = time.time() - t0, time.process_time() - c0
        acc = torch_accuracy(model, x_val, y_val)
        rows.append({"variant": variant, "arch": arch, "train_images": args.train, "epochs": args.epochs,
                     "val_top1": round(acc, 2), "seconds": round(seconds, 1),
                     "cpu_seconds": round(cpu, 1),
                     "ms_per_image_epoch": round(1000 * seconds / (args.train * args.epochs), 3),
                     "cpu_ms_per_image_epoch": round(1000 * cpu / (args.train * args.epochs), 3),
                     "load_average_1min": round(os.getloadavg()[0], 1)})
        print(f"{variant:8s} val top-1 {acc:6.2f}%  {seconds:7.1f} s wall, {cpu:7.1f} s CPU: "
              f"{rows[-1]['cpu_ms_per_image_epoch']:.3f} ms CPU per image-epoch "
              f"(load average {rows[-1]['load_average_1min']})", flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"command": "python benchmarks/recipe_ablation.py " + " ".join(argv or sys.argv[1:]),
                       "threads": args.threads, "rows": rows}, f, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
