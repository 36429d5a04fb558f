"""sqnxt-models: list the zoo with input size, parameters and MACs, or one model's layer table."""
from __future__ import annotations

from pathlib import Path

from .. import zoo
from ..errors import UserError
from ..graph.graph import layer_table
from .common import add_format_options, emit, parser, run


def _main(argv: list[str]) -> int:
    p = parser("sqnxt-models", "List the model zoo, or print one model's layers.")
    p.add_argument("name", nargs="?",
                   help="a model name, or a .prototxt / .onnx / .npz file: print its layer table")
    p.add_argument("--input-size", type=int, help="input side for a prototxt or ONNX file")
    add_format_options(p)
    args = p.parse_args(argv)

    if args.name:
        g = graph_of(args.name, args.input_size)
        rows = layer_table(g)
        footer = f"{g.name}: input {'x'.join(map(str, g.input_shape))}, {g.params:,} params, {g.macs:,} MACs"
        emit(rows, args.fmt, footer=footer)
        return 0
    rows = []
    for name in zoo.names():
        g = zoo.build(name)
        rows.append({"name": name, "input_size": g.input_shape[1], "params": g.params, "macs": g.macs,
                     "params_m": round(g.params / 1e6, 3), "macs_m": round(g.macs / 1e6, 1)})
    if args.fmt == "json":
        rows = [{k: r[k] for k in ("name", "input_size", "params", "macs")} for r in rows]
    emit(rows, args.fmt)
    return 0


def graph_of(name: str, input_size: int | None = None):
    """A zoo model by name, or the network a .prototxt, .onnx or .npz file describes."""
    path = Path(name)
    suffix = path.suffix.lower()
    if suffix not in (".prototxt", ".onnx", ".npz"):
        return zoo.build(name)
    if not path.is_file():
        raise UserError(f"{path}: no such file")
    if suffix == ".prototxt":
        from ..io.prototxt import read_prototxt
        return read_prototxt(path, input_shape=input_size)
    if suffix == ".onnx":
        from ..io.onnx_import import read_onnx
        shape = None if input_size is None else (3, input_size, input_size)
        return read_onnx(path, input_shape=shape)[0]
    from ..io.model import load_model
    return load_model(path)[0]


def main(argv=None) -> int:
    return run(_main, argv)


if __name__ == "__main__":
    raise SystemExit(main())
