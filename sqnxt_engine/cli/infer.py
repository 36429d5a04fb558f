"""sqnxt-infer: classify images with a network and its weights."""
from __future__ import annotations

from ..errors import UserError
from ..io.files import require_regular
from ..io.shipped import DEFAULT_WEIGHTS
from ..runtime.predict import classify
from ..runtime.threads import set_threads
from .common import parser, run, to_json


def _main(argv: list[str]) -> int:
    p = parser("sqnxt-infer", "Classify images with a network's weights.")
    p.add_argument("images", nargs="+", help="image files (JPEG, PNG, ... anything Pillow reads)")
    p.add_argument("--weights", default=DEFAULT_WEIGHTS,
                   help="an .npz weight file, a shipped name, or a name to fetch (efficientnet-lite0); "
                        f"default: the shipped {DEFAULT_WEIGHTS} (Fashion-MNIST)")
    p.add_argument("--top", type=int, default=5, help="how many classes to show per image")
    p.add_argument("--batch-size", type=int, default=16, help="images per forward pass")
    p.add_argument("--json", action="store_true", help="JSON output")
    p.add_argument("--threads", type=int,
                   help="threads for the matrix products and the kernels (default: BLAS's own, all cores)")
    args = p.parse_args(argv)
    if args.threads is not None:
        set_threads(args.threads)
    if args.top < 1 or args.batch_size < 1:
        raise UserError("--top and --batch-size must be at least 1")
    for path in args.images:
        require_regular(path)
    results = classify(args.images, args.weights, args.top, args.batch_size)
    if args.json:
        print(to_json(results))
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
