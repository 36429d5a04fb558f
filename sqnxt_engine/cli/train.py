"""sqnxt-train: train a zoo network on Fashion-MNIST (PyTorch) and export an .npz weight file
(train/train.py has the recipe and the library it calls)."""
from __future__ import annotations

import json
import shlex
import sys
from dataclasses import asdict

from ..errors import UserError
from ..train.train import CIFAR_FORM, SMALL_INPUT, Recipe, fashion_mnist_options, train_and_export
from .common import add_out_option, add_zoo_options_option, parser, run

_RECIPE_OPTIONS = [f for f in asdict(Recipe()) if f not in ("prune", "flip")]  # prune, flip: below


def _main(argv: list[str]) -> int:
    p = parser("sqnxt-train", "Train a zoo network on Fashion-MNIST (PyTorch) and export an .npz.")
    p.add_argument("model", metavar="MODEL", help="a zoo model name, e.g. 1.0-SqNxt-23v5, ShiftResNet-20-e3")
    add_out_option(p, "the .npz weight file to write", required=True)
    add_zoo_options_option(p, f"JSON zoo options of the graph (default: the Fashion-MNIST form, for SqueezeNexts "
                                 f"{json.dumps(SMALL_INPUT)}, for the CIFAR ResNets {json.dumps(CIFAR_FORM)})")
    p.add_argument("--init", help="start from this .npz (e.g. a dense model to prune and fine-tune)")
    p.add_argument("--prune", type=float, default=0.0, help="magnitude-prune to this sparsity per layer (e.g. 0.4)")
    for field in _RECIPE_OPTIONS:
        default = getattr(Recipe(), field)
        p.add_argument(f"--{field.replace('_', '-')}", type=type(default), default=default,
                       help=f"recipe: {field}")
    p.add_argument("--no-flip", action="store_true", help="recipe: no horizontal flips")
    p.add_argument("--limit-train", type=int, help="train on the first N images only (tests)")
    p.add_argument("--limit-test", type=int, help="score on the first N test images only (tests)")
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"),
                   help="where to train: auto (CUDA when torch sees a GPU), cpu or cuda")
    p.add_argument("--float16", action="store_true", help="store the .npz at half precision")
    p.add_argument("--force", action="store_true", help="overwrite an existing output file")
    p.add_argument("--checkpoint", metavar="FILE",
                   help="keep the training state here after every epoch; if FILE exists (a run stopped "
                        "part-way), continue from it; removed when the weight file is written")
    args = p.parse_args(argv)
    for option, value, lowest in (("--limit-train", args.limit_train, 1), ("--limit-test", args.limit_test, 1),
                                  ("--threads", args.threads, 1)):
        if value is not None and value < lowest:  # a slice [:-5] would quietly drop the last five
            raise UserError(f"{option} must be at least {lowest}, got {value}")
    if args.threads > 4096:
        raise UserError(f"--threads must be at most 4096, got {args.threads}")
    options = fashion_mnist_options(args.model) if args.zoo_options is None else args.zoo_options
    recipe = Recipe(**{f: getattr(args, f) for f in _RECIPE_OPTIONS}, flip=not args.no_flip, prune=args.prune)
    record = train_and_export(args.model, args.out, options, recipe, args.init, args.limit_train,
                              args.limit_test, args.threads, args.float16, args.force,
                              command="sqnxt-train " + shlex.join(argv),
                              log=lambda msg: print(msg, file=sys.stderr, flush=True), device=args.device,
                              checkpoint=args.checkpoint)
    print(json.dumps(record, indent=2))
    return 0


def main(argv=None) -> int:
    return run(_main, argv)


if __name__ == "__main__":
    raise SystemExit(main())
