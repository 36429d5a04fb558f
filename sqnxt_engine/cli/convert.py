"""sqnxt-convert: published weights (PyTorch .pth, ONNX) into this project's .npz weight files."""
from __future__ import annotations

import json
from pathlib import Path

from .. import zoo
from ..errors import UserError
from ..io.images import PRESETS
from ..io.model import save_model
from ..io.weights import sha256_file
from .common import parser, run


def convert_pth(src: Path, arch: str | None, zoo_options: dict | None = None):
    """(graph, arrays, meta) from a state dict: pytorchcv's SqueezeNext keys are recognised,
    keys already in this project's naming (our training export) need --arch, and the zoo options
    of the graph they were trained on (e.g. the small-input form) need --zoo-options."""
    from ..io.convert_pytorchcv import convert_pytorchcv, recognise_pytorchcv
    from ..io.pth import read_pth
    from ..zoo.efficientnet import efficientnet_lite0_weights, recognise_efficientnet_lite

    state = read_pth(src)
    if recognise_efficientnet_lite(state):
        name, arrays = arch or recognise_efficientnet_lite(state), efficientnet_lite0_weights(state)
    else:
        name = arch or recognise_pytorchcv(state)
        arrays = convert_pytorchcv(state)  # keys already in this project's naming pass unchanged
    if name is None:
        raise UserError(f"{src}: cannot tell the architecture from its keys; name it with --arch")
    options = dict(zoo_options or {})
    classifier = zoo.build(name, **options).param_shapes()
    last_fc = [k for k in classifier if k.endswith(".weight") and len(classifier[k]) == 2][-1]
    if last_fc in arrays and arrays[last_fc].shape[0] != classifier[last_fc][0]:
        options["num_classes"] = int(arrays[last_fc].shape[0])  # fine-tuned to other classes
    graph = zoo.build(name, **options)
    meta = dict(graph.meta)
    if options:
        meta["zoo_options"] = options
    return graph, arrays, meta


def convert_onnx(src: Path, arch: str | None, zoo_options: dict | None = None):
    if zoo_options:
        raise UserError(f"{src}: an ONNX model carries its own graph; --zoo-options does not apply")
    from ..io.onnx_import import read_onnx

    graph, arrays = read_onnx(src)
    meta = {"architecture": arch or graph.name}
    return graph, arrays, meta


def _json_object(text: str) -> dict:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as e:
        raise UserError(f"--zoo-options is not JSON ({e})") from None
    if not isinstance(value, dict):
        raise UserError("--zoo-options must be a JSON object")
    return value


def _main(argv: list[str]) -> int:
    p = parser("sqnxt-convert", "Convert a PyTorch .pth state dict or an ONNX model into an .npz weight file.")
    p.add_argument("src", type=Path, help="a .pth / .pt state dict or an .onnx model")
    p.add_argument("-o", "--output", type=Path, required=True, help="the .npz file to write")
    p.add_argument("--arch", help="the zoo model the weights belong to, when the keys do not say")
    p.add_argument("--zoo-options", type=_json_object, default={},
                   help='JSON options of the zoo graph, kept in the file (e.g. \'{"small_input": true, "num_classes": 10}\')')
    p.add_argument("--preprocess", choices=sorted(PRESETS),
                   help="record this preprocessing preset (for files that do not say, like ONNX)")
    p.add_argument("--labels", help="record a label set name (imagenet, fashion-mnist)")
    p.add_argument("--float16", action="store_true", help="store arrays at half precision")
    p.add_argument("--force", action="store_true", help="overwrite an existing output file")
    args = p.parse_args(argv)

    if not args.src.is_file():
        raise UserError(f"{args.src}: no such file")
    if args.output.exists() and not args.force:
        raise UserError(f"{args.output}: exists (use --force to overwrite)")
    if args.arch:
        args.arch = zoo.canonical(args.arch)
    is_onnx = args.src.suffix.lower() == ".onnx"
    graph, arrays, meta = (convert_onnx if is_onnx else convert_pth)(args.src, args.arch, args.zoo_options)
    if args.preprocess:
        pre = PRESETS[args.preprocess]
        meta.update(input_size=pre.crop, resize=pre.resize, color=pre.color, mean=list(pre.mean),
                    std=list(pre.std), resize_filter=pre.resize_filter)
    if args.labels:
        meta["labels"] = args.labels
    meta.update(source=args.src.name, sha256=sha256_file(args.src))
    out = save_model(args.output, graph, arrays, meta, force=args.force, float16=args.float16,
                     in_zoo=not is_onnx)
    print(f"{out}: {graph.name}, {len(arrays)} arrays, {graph.params:,} parameters")
    return 0


def main(argv=None) -> int:
    return run(_main, argv)


if __name__ == "__main__":
    raise SystemExit(main())
