"""sqnxt-infer: classify images with a network and its weights."""
from __future__ import annotations

from ..errors import UserError
from ..io.files import require_regular
from ..io.labels import LABEL_SETS, read_labels
from ..io.shipped import DEFAULT_WEIGHTS
from ..runtime.predict import classify
from ..runtime.threads import set_threads
from .common import parser, run, to_json


def _positive(option: str):
    def parse(text: str) -> int:
        if not text.isdigit() or int(text) < 1:
            raise UserError(f"{option} must be a positive integer, got {text!r}")
        return int(text)
    return parse


def _numbers(option: str):
    def parse(text: str) -> tuple[float, ...]:
        try:
            return tuple(float(v) for v in text.split(","))
        except ValueError:
            raise UserError(f"{option} takes numbers separated by commas, got {text!r}") from None
    return parse


def _main(argv: list[str]) -> int:
    p = parser("sqnxt-infer", "Classify images with a network's weights.")
    p.add_argument("images", nargs="+", help="image files (JPEG, PNG, ... anything Pillow reads)")
    p.add_argument("--weights", default=DEFAULT_WEIGHTS,
                   help="an .npz weight file, a shipped name, or a name to fetch (efficientnet-lite0); "
                        f"default: the shipped {DEFAULT_WEIGHTS} (Fashion-MNIST); or an .onnx model")
    p.add_argument("--input-size", type=_positive("--input-size"), metavar="N",
                   help="resize the shorter side to N and take the centre N x N (default: as the "
                        "weights' metadata says, else the network's input side)")
    p.add_argument("--mean", type=_numbers("--mean"), metavar="M[,M,M]",
                   help="subtract this per channel, in 0-255 pixel units and the network's channel "
                        "order (default: the metadata's)")
    p.add_argument("--std", type=_numbers("--std"), metavar="S[,S,S]",
                   help="then divide by this per channel, in pixel units (default: the metadata's)")
    p.add_argument("--labels", metavar="FILE",
                   help=f"class names, one per line in class order, or a known set ({', '.join(LABEL_SETS)}) "
                        "(default: the metadata's)")
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
    preprocess = {key: value for key, value in (("input_size", args.input_size), ("resize", args.input_size),
                                                 ("mean", args.mean), ("std", args.std)) if value is not None}
    labels = read_labels(args.labels) if args.labels else None
    results = classify(args.images, args.weights, args.top, args.batch_size, preprocess, labels)
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
