"""sqnxt-models: list the zoo with input size, parameters and MACs, or one model's layer table."""
from __future__ import annotations

from .. import zoo
from ..graph.graph import layer_table
from .common import add_format_options, emit, parser, run


def _main(argv: list[str]) -> int:
    p = parser("sqnxt-models", "List the model zoo, or print one model's layers.")
    p.add_argument("name", nargs="?", help="a model name: print its layer table")
    add_format_options(p)
    args = p.parse_args(argv)

    if args.name:
        g = zoo.build(args.name)
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


def main(argv=None) -> int:
    return run(_main, argv)


if __name__ == "__main__":
    raise SystemExit(main())
