"""sqnxt-emu: the accelerator emulator's command line.

  sqnxt-emu trace [--model NAME | --weights FILE] [--hw 16x16|8x8|FILE] [--dataflow os|ws|best|...]
                  [--sparsity 0.4] [--seed 0] [--json | --csv] [--plot out.png] [--force]
"""
from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

from .. import zoo
from ..cli.common import add_format_options, emit, parser, run
from ..errors import UserError
from ..runtime import random_weights
from .hardware import load_hardware
from .network import emulate
from .search import DATAFLOW_CHOICES

DEFAULT_MODEL = "1.0-SqNxt-23"
COLUMNS = ["layer", "shape", "dataflow", "mapping", "macs", "cycles", "macs_per_cycle",
           "utilisation", "dram_bytes", "e_mac", "e_rf", "e_pe", "e_gb", "e_dram", "energy"]


def _sparsity(v: str) -> float:
    try:
        f = float(v)
    except ValueError:
        raise UserError(f"--sparsity must be a number in [0, 1), got {v!r}") from None
    if not 0 <= f < 1:
        raise UserError(f"--sparsity must be in [0, 1), got {v}")
    return f


def _trace(args) -> int:
    hw = load_hardware(args.hw)
    if args.weights:
        from ..io.model import load_model
        graph, weights, _ = load_model(args.weights)
    else:
        graph = zoo.build(args.model)
        weights = random_weights(graph, args.seed)
    if args.plot:
        _check_out(args.plot, args.force)
    res = emulate(graph, weights, hw, args.dataflow, args.sparsity, seed=args.seed,
                  progress=True)
    rows = [r.row() for r in res.layers]
    total = res.total_row()
    rel = res.max_abs_diff / res.max_abs_ref if res.max_abs_ref else 0.0
    compare = (f"emulated vs float output: max |diff| {res.max_abs_diff:.4g} "
               f"({rel:.2e} of max |float| {res.max_abs_ref:.4g}), top-1 "
               f"{'agrees' if res.top1_match else 'DIFFERS'}")
    overflow = [r.name for r in res.layers if r.overflow_bits is not None]
    if args.fmt == "json":
        import json
        print(json.dumps({"model": graph.name, "hardware": hw.name, "dataflow": args.dataflow,
                          "sparsity": args.sparsity, "layers": rows, "total": total,
                          "max_abs_diff": res.max_abs_diff, "max_abs_float": res.max_abs_ref,
                          "top1_match": res.top1_match, "acc_overflow_layers": overflow}, indent=2))
    elif args.fmt == "csv":
        emit(rows + [total], "csv", COLUMNS)
    else:
        header = (f"{graph.name} on {hw.describe()}\ndataflow {args.dataflow}, weight sparsity "
                  f"{args.sparsity:g}, energy in units of one MAC")
        print(header)
        emit(rows + [total], "table", COLUMNS, footer=compare)
        if overflow:
            print(f"warning: {hw.acc_bits}-bit accumulators overflowed in {len(overflow)} layer(s): "
                  f"{', '.join(overflow[:5])}")
    if args.fmt != "table":
        print(compare, file=sys.stderr)
    if args.plot:
        _plot_trace(res, args.plot)
    return 0


def _check_out(path: str, force: bool) -> None:
    p = Path(path)
    if p.exists() and not force:
        raise UserError(f"{path}: exists (use --force to overwrite)")
    if not p.parent.exists():
        raise UserError(f"{path}: folder {p.parent} does not exist")


def _plot_trace(res, path: str) -> None:
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise UserError("--plot needs matplotlib (pip install matplotlib)") from None
    names = [r.name for r in res.layers]
    cycles = [r.cycles for r in res.layers]
    eff = [r.dense_macs / r.cycles if r.cycles else 0 for r in res.layers]
    fig, ax = plt.subplots(figsize=(max(8, len(names) * 0.12), 4))
    ax.bar(range(len(names)), cycles, color="tab:blue")
    ax.set_ylabel("cycles")
    ax.set_xlabel("layer")
    ax2 = ax.twinx()
    ax2.plot(range(len(names)), eff, "k--", lw=1)
    ax2.set_ylabel("MACs / cycle")
    ax.set_title(f"{res.model} on {res.hw.name}, dataflow {res.dataflow}")
    fig.tight_layout()
    _save_atomic(fig, path)
    plt.close(fig)


def _save_atomic(fig, path: str) -> None:
    d = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(suffix=".png", dir=d)
    os.close(fd)
    try:
        fig.savefig(tmp, dpi=120)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes it private; give it a normal file's mode
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _main(argv: list[str]) -> int:
    p = parser("sqnxt-emu", "Emulate networks on the SqueezeNext paper's accelerator.")
    sub = p.add_subparsers(dest="command", required=True)
    t = sub.add_parser("trace", help="per-layer cycles, efficiency and energy of one network")
    t.add_argument("--debug", action="store_true", help="show the traceback of an error")
    t.add_argument("--model", default=DEFAULT_MODEL, help=f"a zoo model (default {DEFAULT_MODEL})")
    t.add_argument("--weights", help="a .npz weight file (its model); default: seeded random weights")
    t.add_argument("--hw", default="16x16", help="preset 8x8 / 16x16, or a hardware TOML file")
    t.add_argument("--dataflow", default="best", choices=list(DATAFLOW_CHOICES),
                   help="ws, os (SOC-MOP), best (the faster per layer), or one OS variant")
    t.add_argument("--sparsity", type=_sparsity, default=0.4,
                   help="prune conv/fc weights by magnitude to this fraction of zeros (paper: 0.4)")
    t.add_argument("--seed", type=int, default=0, help="seed of the random weights and input")
    t.add_argument("--plot", help="write per-layer cycles and MACs/cycle as a PNG")
    t.add_argument("--force", action="store_true", help="overwrite an existing --plot file")
    add_format_options(t)
    # subparsers of an ArgumentParser subclass keep its one-line error()
    args = p.parse_args(argv)
    if args.command == "trace":
        return _trace(args)
    return 2


def main(argv=None) -> int:
    return run(_main, argv)


if __name__ == "__main__":
    raise SystemExit(main())
