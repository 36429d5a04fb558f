"""sqnxt-convert: published weights (PyTorch .pth, ONNX) into this project's .npz weight files."""
from __future__ import annotations

from pathlib import Path

from ..io.convert import convert
from ..zoo.preprocess import PRESETS
from .common import add_model_option, add_out_option, add_zoo_options_option, parser, run


def _main(argv: list[str]) -> int:
    p = parser("sqnxt-convert", "Convert a PyTorch .pth state dict or an ONNX model into an .npz weight file.")
    p.add_argument("src", type=Path, help="a .pth / .pt state dict or an .onnx model")
    add_out_option(p, "the .npz file to write", required=True)
    add_model_option(p, "the zoo model the weights belong to, when the keys do not say")
    add_zoo_options_option(p, "JSON options of the zoo graph, kept in the file "
                              """(e.g. '{"small_input": true, "num_classes": 10}')""")
    p.add_argument("--preprocess", choices=sorted(PRESETS),
                   help="record this preprocessing preset (for files that do not say, like ONNX)")
    p.add_argument("--labels", help="record a label set name (imagenet, fashion-mnist)")
    p.add_argument("--float16", action="store_true", help="store arrays at half precision")
    p.add_argument("--force", action="store_true", help="overwrite an existing output file")
    args = p.parse_args(argv)
    out, graph, arrays = convert(args.src, args.out, args.model, args.zoo_options,
                                 args.preprocess, args.labels, args.float16, args.force)
    print(f"{out}: {graph.name}, {len(arrays)} arrays, {graph.params:,} parameters")
    return 0


def main(argv=None) -> int:
    return run(_main, argv)


if __name__ == "__main__":
    raise SystemExit(main())
