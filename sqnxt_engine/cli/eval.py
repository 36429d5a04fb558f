"""sqnxt-eval: top-1 accuracy of a weight file on a whole labelled test set, by this engine."""
from __future__ import annotations

from ..errors import UserError
from ..io.datasets import DATASETS, load_dataset
from ..io.shipped import DEFAULT_WEIGHTS
from ..runtime.predict import engine_accuracy
from ..runtime.threads import set_threads
from .common import parser, run, to_json


def _main(argv: list[str]) -> int:
    p = parser("sqnxt-eval", "Top-1 accuracy of weights on a labelled test set, computed by this engine.")
    p.add_argument("--weights", default=DEFAULT_WEIGHTS, help="an .npz weight file or a shipped name")
    p.add_argument("--data", default="fashion-mnist", choices=DATASETS,
                   help="the data set; its test split is used")
    p.add_argument("--limit", type=int, help="only the first N test images")
    p.add_argument("--batch-size", type=int, default=250, help="images per forward pass")
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
        print(to_json({"weights": args.weights, "data": args.data, "images": total,
                          "correct": correct, "top1": top1}))
    else:
        print(f"{args.weights} on {args.data} test ({total} images): top-1 {top1:.2f}% ({correct}/{total})")
    return 0


def main(argv=None) -> int:
    return run(_main, argv)


if __name__ == "__main__":
    raise SystemExit(main())
