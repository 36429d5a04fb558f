"""sqnxt-eval: top-1 accuracy of a weight file on a whole labelled test set, by this engine."""
from __future__ import annotations

import json

import numpy as np
from PIL import Image

from ..errors import UserError
from ..io.datasets import DATASETS, load_dataset
from ..io.images import Preprocess, preprocess
from ..io.shipped import DEFAULT_WEIGHTS
from ..runtime.threads import set_threads
from .common import Progress, parser, run
from .infer import load_runner


def prepare(images_u8, pre: Preprocess) -> np.ndarray:
    """8-bit images (a uint8 (N, H, W) grey array, or a list of (H, W) / (H, W, 3) arrays) as the
    network's float32 (N, C, crop, crop) input, exactly as sqnxt-infer would prepare the same
    images saved as PNG files."""
    if isinstance(images_u8, np.ndarray) and images_u8.ndim == 3 and pre.color == "L" and \
            images_u8.shape[1] == images_u8.shape[2] == pre.crop and (pre.resize or pre.crop) == pre.crop:
        mean = np.float32(pre.mean[0])
        std = np.float32(pre.std[0])
        return ((images_u8.astype(np.float32) - mean) / std)[:, None]  # same arithmetic, no PIL
    return np.stack([preprocess(Image.fromarray(img).convert("RGB"), pre) for img in images_u8])


def engine_accuracy(weights: str, images: np.ndarray, labels: np.ndarray, batch_size: int = 250,
                    label: str = "eval") -> tuple[int, int]:
    """(correct, total) top-1 of the engine (float32 runner) on uint8 images."""
    runner, pre, _ = load_runner(weights)
    classes = runner.graph.output_shape()[0]
    correct = 0
    with Progress(len(images), label) as bar:
        for s in range(0, len(images), batch_size):
            logits = runner(prepare(images[s:s + batch_size], pre)).reshape(-1, classes)
            correct += int((logits.argmax(1) == labels[s:s + batch_size]).sum())
            bar.update(len(logits), f"top-1 {100.0 * correct / min(s + batch_size, len(images)):.2f}%")
    return correct, len(images)


def _main(argv: list[str]) -> int:
    p = parser("sqnxt-eval", "Top-1 accuracy of weights on a labelled test set, computed by this engine.")
    p.add_argument("--weights", default=DEFAULT_WEIGHTS,
                   help=f"an .npz weight file or a shipped name (default: {DEFAULT_WEIGHTS})")
    p.add_argument("--data", default="fashion-mnist", choices=DATASETS,
                   help="the data set; its test split is used (default fashion-mnist)")
    p.add_argument("--limit", type=int, help="only the first N test images")
    p.add_argument("--batch-size", type=int, default=250, help="images per forward pass (default 250)")
    p.add_argument("--json", action="store_true", help="JSON output")
    p.add_argument("--threads", type=int,
                   help="threads for the matrix products and the kernels (default: BLAS's own, all cores)")
    args = p.parse_args(argv)
    if args.threads is not None:
        set_threads(args.threads)
    if args.batch_size < 1 or (args.limit is not None and args.limit < 1):
        raise UserError("--batch-size and --limit must be at least 1")
    images, labels = load_dataset(args.data, "test")
    images, labels = images[:args.limit], labels[:args.limit]
    correct, total = engine_accuracy(args.weights, images, labels, args.batch_size)
    top1 = 100.0 * correct / total
    if args.json:
        print(json.dumps({"weights": args.weights, "data": args.data, "images": total,
                          "correct": correct, "top1": top1}))
    else:
        print(f"{args.weights} on {args.data} test ({total} images): top-1 {top1:.2f}% ({correct}/{total})")
    return 0


def main(argv=None) -> int:
    return run(_main, argv)


if __name__ == "__main__":
    raise SystemExit(main())
