"""sqnxt-models: list the zoo with input size, parameters and MACs, or one model's layer table."""
from __future__ import annotations

from .. import zoo
from ..graph.graph import layer_table
from ..io.model import load_graph
from .common import add_format_options, emit, parser, run


def _main(argv: list[str]) -> int:
    p = parser("sqnxt-models", "List the model zoo, or print one model's layers.")
    p.add_argument("name", nargs="?",
                   help="a model name, or a .prototxt / .onnx / .npz file: print its layer table")
    p.add_argument("--input-size", type=int, help="input side for a prototxt or ONNX file")
    add_format_options(p)
    args = p.parse_args(argv)

    if args.name:
        g = load_graph(args.name, args.input_size)
        footer = f"{g.name}: input {'x'.join(map(str, g.input_shape))}, {g.params:,} params, {g.macs:,} MACs"
        emit(layer_table(g), args.fmt, footer=footer)
        return 0
    rows = [zoo.summary(name) for name in zoo.names()]
    if args.fmt != "json":  # the table and CSV add the counts in millions, for reading
        rows = [dict(r, params_m=round(r["params"] / 1e6, 3), macs_m=round(r["macs"] / 1e6, 1)) for r in rows]
    emit(rows, args.fmt)
    return 0


def main(argv=None) -> int:
    return run(_main, argv)


if __name__ == "__main__":
    raise SystemExit(main())
