"""sqnxt-emu: the accelerator emulator's command line.

  sqnxt-emu trace [--model NAME [--zoo-options JSON] | --weights FILE.npz|.onnx|.prototxt]
                  [--image PATH] [--hw 16x16|8x8|FILE] [--dataflow os|ws|best|...]
                  [--sparsity 0.4] [--seed 0] [--json | --csv] [--plot FIG] [--roofline FIG]
                  [--log] [--breakdown] [--force]            (FIG: .png, .pdf or .svg)
  sqnxt-emu table3 [--models A,B{JSON},FILE,...] [--zoo-options JSON] [--hw 8x8,16x16,FILE]
                   [--reference PATH] [--out DIR] [--figure-format png|pdf|svg] [--force] [--jobs N]
  sqnxt-emu figure6 [--models ...] [--zoo-options JSON] [--hw 8x8,16x16,FILE] [--out DIR]
                    [--figure-format png|pdf|svg] [--log] [--force] [--jobs N]
  sqnxt-emu diff A.json B.json [--sort cycles|energy|dram_bytes|utilisation] [--top N] [--json]
  sqnxt-emu eval --weights QUANTIZED.npz [--data fashion-mnist] [--limit N] [--hw 16x16]
                 [--dataflow best] [--json]
  sqnxt-emu sweep SWEEP.toml [--db FILE.sqlite] [--jobs N | --scheduler ADDRESS]
                  [--export FILE.csv|.parquet] [--plot FILE] [--force] [--json]
  sqnxt-emu pareto DB.sqlite [--x METRIC --y METRIC] [--size METRIC] [--out FILE] [--force] [--json]
  sqnxt-emu hardware [16x16|8x8|FILE] [--json]
  sqnxt-emu export [--model NAME | --weights FILE] --format scalesim|timeloop|zigzag [--hw HW]
                   [--out FILE] [--force]

A quantized weight file (sqnxt-quant's) runs in integers (emu/integer.py): trace compares the
emulated codes with the NumPy integer runner's, eval measures top-1 on a test set.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from ..cli.common import (
    add_format_options,
    add_out_option,
    add_safety_options,
    add_zoo_options_option,
    emit,
    note,
    parser,
    run,
    subcommand,
    to_json,
)
from ..errors import UserError
from ..io.datasets import DATASETS
from ..io.files import check_out
from ..io.model import is_quantized
from ..io.network_spec import NetworkSpec, refuse_graph_file, split_networks
from ..quant.model import QuantizedModel
from . import compare as C
from . import fidelity as F
from . import reports as R
from .area import UNIT_LABEL as AREA_UNIT
from .breakdown import breakdown_columns, breakdown_row, describe_parts, energy_per_access
from .figures import plot_roofline, plot_trace
from .hardware import DERIVED, load_hardware, resolved
from .metrics import summary_line
from .network import emulate, non_mac_line
from .output import FIGURE_FORMATS, figure_out, output_set, pyplot, write_csv
from .results import timed_rows
from .search import DATAFLOW_CHOICES
from .workers import available_cpus

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


def _seed(v: str) -> int:
    if not v.isdigit():  # NumPy's generators take non-negative seeds only
        raise UserError(f"--seed must be a non-negative integer, got {v!r}")
    return int(v)


def _trace(args) -> int:
    hw = load_hardware(args.hw)
    if args.weights:
        if args.model:
            note(f"--model {args.model} is ignored: --weights {args.weights} names its own model")
        spec = NetworkSpec.of(file=args.weights, zoo_options=args.zoo_options, seed=args.seed)
    else:
        spec = NetworkSpec.of(args.model or DEFAULT_MODEL, args.zoo_options, seed=args.seed)
    graph, weights, meta, _ = spec.load(quantized=None)
    for figure in (args.plot, args.roofline):  # fail now, not after the emulation
        if figure:
            figure_out(figure, args.force)
    if is_quantized(meta):
        return _trace_quantized(args, hw, QuantizedModel.from_arrays(graph, weights, meta, args.weights))
    x = _input(args.image, graph, meta) if args.image else None
    res = emulate(graph, weights, hw, args.dataflow, args.sparsity, x=x, seed=args.seed,
                  progress=True)
    rel = res.max_abs_diff / res.max_abs_ref if res.max_abs_ref else 0.0
    compare = (f"emulated vs float output: max |diff| {res.max_abs_diff:.4g} "
               f"({rel:.2e} of max |float| {res.max_abs_ref:.4g}), top-1 "
               f"{'agrees' if res.top1_match else 'DIFFERS'}")
    overflow = [r.name for r in res.steps if r.overflow_bits is not None]
    fitted = {r.name: r.acc_fit_bits for r in res.steps if r.acc_fit_bits}
    header = (f"{graph.name} on {hw.describe()}\ndataflow {args.dataflow}, weight sparsity "
              f"{args.sparsity:g}, energy in {hw.energy.unit}")
    warning = (f"warning: {hw.acc_bits}-bit accumulators overflowed in {len(overflow)} layer(s): "
               f"{', '.join(overflow[:5])}" if overflow else
               f"note: {len(fitted)} layer(s) took inputs up to {max(fitted.values())} bit(s) coarser so "
               f"their sums fit the {hw.acc_bits}-bit accumulator: {', '.join(list(fitted)[:5])}"
               if fitted else "")
    charged = {r.name: r.cycles for r in res.steps}
    return _emit_trace(args, res, lambda rows, total: {
        "model": graph.name, "hardware": hw.name, "dataflow": args.dataflow,
        "objective": hw.objective, "sparsity": args.sparsity, "layers": rows, "total": total,
        "max_abs_diff": res.max_abs_diff, "max_abs_float": res.max_abs_ref,
        "top1_match": res.top1_match, "acc_overflow_layers": overflow, "acc_fit_layers": fitted,
        "non_mac_steps": [{"step": name, "op": kind, "cycles": charged.get(name)}
                          for name, kind in res.non_mac_steps.items()]},
        header, f"{compare}\n{non_mac_line(res)}", warning)


def _emit_trace(args, res, fields, header: str, footer: str, warning: str) -> int:
    """A trace's per-layer rows as --json (fields(rows, total) gives the object, with the
    energy per access that turns the rows' counts into their energy), --csv or a table with
    `header`, `footer` and `warning` (--breakdown: the cycle parts' columns); the footer also
    goes to stderr with --json and --csv; then --plot and --roofline."""
    rows, total, perf = timed_rows(res)
    columns = COLUMNS
    if args.breakdown:   # the parts unrounded in CSV, in whole cycles with the DRAM share in a table
        columns = breakdown_columns(share=args.fmt == "table")
        if args.fmt == "table":
            rows, total = [breakdown_row(r) for r in rows], breakdown_row(total)
    unit = res.hw.energy.unit
    if args.fmt == "json":
        print(to_json({**fields(rows, total), "energy_unit": unit, "performance": perf,
                       "energy_per_access": energy_per_access(res.hw)}))
    elif args.fmt == "csv":
        if "energy" in columns:  # the unit beside the energies (--breakdown shows cycles only)
            columns = columns + list(TIMED_COLUMNS) + ["edp_unit", "energy_unit"]
        emit([{**r, "energy_unit": unit, "edp_unit": perf["edp_unit"]} for r in rows + [total]],
             "csv", columns)
    else:
        print(header)
        emit(rows + [total], "table", columns, footer=footer)
        print(summary_line(res.cycles, res.energy.total, res.hw))
        if args.breakdown:
            print("cycles: " + describe_parts(res.cycle_parts()))
            by_kind = res.cycles_by_kind()
            if len(by_kind) > 1:
                print("cycles by step: " + describe_parts(by_kind))
        print("\n".join(F.network_lines({res.hw.name: res})))
        if warning:
            print(warning)
    if args.fmt != "table":
        print(footer, file=sys.stderr)
    if args.plot:
        plot_trace(res, args.plot, args.log, args.force)
    if args.roofline:
        plot_roofline(res, args.roofline, force=args.force)
    return 0


TIMED_COLUMNS = ("latency_ms", "fps", "edp")   # metrics.performance, per step and in total


def _trace_quantized(args, hw, model) -> int:
    """trace of a quantized file: integer codes between layers, compared with the NumPy integer
    runner (pruning does not apply: the file's weights are what the hardware holds)."""
    from .integer import check_made_for, trace_quantized
    from .network import NetworkResult
    graph = model.graph
    differs = check_made_for(model, hw, args.any_hardware)  # before any work
    if args.sparsity != 0.4:
        note("--sparsity is ignored: a quantized file's weights are used as they are")
    x = (_input(args.image, graph, model.meta)[0] if args.image else
         np.random.default_rng(args.seed).standard_normal(graph.input_shape).astype(np.float32))
    run, cmp = trace_quantized(model, x, hw, args.dataflow)
    hw = run.hw   # storing and moving the file's widths (integer.hardware_for)
    res = NetworkResult(graph.name, hw, args.dataflow, 0.0, run.steps)
    acc = run.accumulator
    exact = ("bit-exact in every layer" if cmp["bit_exact"]
             else f"DIFFERS in {len(cmp['differing_layers'])} layer(s): " + ", ".join(cmp["differing_layers"][:5]))
    line = (f"emulated ({acc.bits}-bit {acc.overflow} accumulator) vs the file's integer path "
            f"({model.accumulator.bits}-bit {model.accumulator.overflow}): max |diff| {cmp['max_abs_diff']} "
            f"(output codes), {exact}")
    header = (f"{graph.name}, int{model.bits} {model.info['method']}, on {hw.describe()}\n"
              f"dataflow {args.dataflow}, integer codes between layers, energy in {hw.energy.unit}")
    warning = (f"warning: the {acc.bits}-bit accumulator overflowed ({acc.overflow}) in "
               f"{len(run.overflow_layers)} layer(s): {', '.join(run.overflow_layers[:5])}"
               if run.overflow_layers else "")
    quantization = {k: model.info[k] for k in ("bits", "method", "activations")}
    if not cmp["bit_exact"]:
        note(f"the hardware changes this file's results: {differs or 'its emulated codes differ'}")
    code = _emit_trace(args, res, lambda rows, total: {
        "model": graph.name, "quantization": quantization, "hardware": hw.name,
        "dataflow": args.dataflow, "objective": hw.objective, "layers": rows, "total": total,
        "max_abs_diff": cmp["max_abs_diff"], "bit_exact": cmp["bit_exact"],
        "differing_layers": cmp["differing_layers"],
        "accumulator": {"bits": acc.bits, "overflow": acc.overflow},
        "file_accumulator": {"bits": model.accumulator.bits, "overflow": model.accumulator.overflow},
        "acc_overflow_layers": run.overflow_layers}, header, line, warning)
    return EXIT_NOT_EXACT if args.require_exact and not cmp["bit_exact"] else code


def _eval(args) -> int:
    """Top-1 of a quantized file on a test set, every image through the emulated datapath."""
    import time

    from ..io.datasets import load_dataset
    from ..io.images import Preprocess, batch_from_arrays
    from ..progress import progress_bar
    from ..quant.model import load_quantized
    from .integer import emulate_dataset
    refuse_graph_file(args.weights, "sqnxt-emu eval")
    if args.limit is not None and args.limit < 1:
        raise UserError("--limit must be at least 1")
    from .integer import check_made_for
    hw = load_hardware(args.hw)
    model = load_quantized(args.weights)
    differs = check_made_for(model, hw, args.any_hardware)  # before any work
    images, labels = load_dataset(args.data, "test")
    images, labels = images[:args.limit], labels[:args.limit]
    x = batch_from_arrays(images, Preprocess.from_meta({**model.graph.meta, **model.meta}))
    t0 = time.perf_counter()
    with progress_bar(len(x), "emulating") as bar:
        r = emulate_dataset(model, x, labels, hw, args.dataflow, bar.update)
    r = {"weights": args.weights, "data": args.data, "hardware": hw.name, "dataflow": args.dataflow,
         **r, "energy_unit": hw.energy.unit, "seconds": round(time.perf_counter() - t0, 1)}
    exact = r["bit_exact_images"] == r["images"]
    code = EXIT_NOT_EXACT if args.require_exact and not exact else 0
    if not exact:
        note(f"the hardware changes this file's results: the emulated logits differ from the file's "
             f"integer path on {r['images'] - r['bit_exact_images']}/{r['images']} images"
             + (f" ({differs})" if differs else ""))
    if args.json:
        print(to_json(r))
        return code
    acc, facc = r["accumulator"], r["file_accumulator"]
    print(f"{args.weights} on {args.data} test ({r['images']} images), emulated on {hw.name} "
          f"({args.dataflow}), {acc['bits']}-bit accumulator ({acc['overflow']}): top-1 {r['top1']:.2f}% "
          f"({r['correct']}/{r['images']})")
    agree = (f"emulated logits bit-exact on all {r['images']} images" if exact else
             f"emulated logits equal on {r['bit_exact_images']}/{r['images']} images (NOT bit-exact)")
    print(f"  the file's integer path ({facc['bits']}-bit {facc['overflow']} accumulator): top-1 "
          f"{r['numpy_top1']:.2f}%; {agree}")
    print(f"  per image: {r['cycles_per_image']:,.0f} cycles, energy {r['energy_per_image']:,.0f} "
          f"{r['energy_unit']}; {r['mapping_searches']} mapping searches (once per layer); {r['seconds']:.1f} s")
    if r["acc_overflow_layers"]:
        print(f"  warning: accumulator overflow in {', '.join(r['acc_overflow_layers'][:5])}")
    return code


def _hardware(args) -> int:
    """Every parameter a preset or hardware file runs with, and where its value comes from."""
    hw, rows = resolved(args.hw)
    if args.json:
        print(to_json({"name": hw.name, "parameters": [
            {"key": k, "value": v, "origin": o} for k, v, o in rows]}))
        return 0
    print(hw.describe())
    def spelled(v):   # as a hardware file writes it
        if isinstance(v, bool):
            return str(v).lower()
        if isinstance(v, float):
            return f"{v:g}"
        if isinstance(v, dict):
            return ", ".join(f"{op} {frac:g}" for op, frac in v.items())
        if isinstance(v, tuple):
            return ", ".join(v)
        return str(v)
    emit([{"parameter": k, "value": spelled(v),
           "origin": o + (f" ({DERIVED[k]})" if o == "derived" else "")} for k, v, o in rows],
         "table", ["parameter", "value", "origin"])
    return 0


# ---- validate: the emulator against published hardware (emu/validate.py) -----------------

def _validate(args) -> int:
    """Every reference figure beside the emulator's, with ratio, band and PASS / FAIL."""
    from .validate import validate
    suites = validate()
    if args.json:
        print(to_json({s: {"title": v["title"], "source": v["source"],
                           "rows": [r.to_dict() for r in v["rows"]]} for s, v in suites.items()}))
        return 0
    for v in suites.values():
        print(f"{v['title']}\n  source: {v['source']}")
        emit([{"item": r.item, "quantity": r.quantity, "reference": f"{r.reference:g}",
               "emulator": f"{r.emulator:.4g}", "ratio": f"{r.ratio:.3f}", "band": r.band_str(),
               "status": r.status, "note": r.note} for r in v["rows"]], "table",
             ["item", "quantity", "reference", "emulator", "ratio", "band", "status", "note"])
        print()
    rows = [r for v in suites.values() for r in v["rows"]]
    judged = [r for r in rows if r.status != "-"]
    print(f"{sum(r.status == 'PASS' for r in judged)} of {len(judged)} banded figures pass; "
          f"{len(rows) - len(judged)} figures have no published band")
    return 0


def _input(path: str, graph, meta: dict) -> np.ndarray:
    """One image preprocessed as the weights (or the zoo graph) ask, as the network's input."""
    from ..io.images import load_batch
    from ..zoo.preprocess import for_network
    x = load_batch([path], for_network(graph.input_shape, graph.meta, meta))
    if x.shape[1:] != tuple(graph.input_shape):
        raise UserError(f"{path}: preprocessed to {x.shape[1:]}, but {graph.name} takes "
                        f"{tuple(graph.input_shape)}")
    return x


def _outputs(out: str | None, stem: str, force: bool, fmt: str = "png") -> tuple[Path, Path] | None:
    """(csv, figure) paths in --out DIR (made if need be), checked before the work starts."""
    if out is None:
        return None
    d = Path(out)
    if d.exists() and not d.is_dir():
        raise UserError(f"{out}: not a folder")
    pyplot()  # fail now, not after the emulation, if matplotlib is missing
    d.mkdir(parents=True, exist_ok=True)
    return check_out(d / f"{stem}.csv", force), check_out(d / f"{stem}.{fmt}", force)


def _jobs(v: str) -> int:
    if not v.isdigit() or int(v) < 1:
        raise UserError(f"--jobs must be a positive integer, got {v!r}")
    return int(v)


def _runs(args) -> tuple[R.Runs, list[str], list[str]]:
    """The Runs of table3 / figure6 and the report names of --models and --hw in it."""
    runs = R.Runs(sparsity=args.sparsity, seed=args.seed, progress=True, jobs=args.jobs, note=note)
    models = [runs.add_network(NetworkSpec.parse(word, args.zoo_options, args.seed))
              for word in split_networks(args.models)]
    configs = [runs.add_hardware(source.strip()) for source in args.hw.split(",") if source.strip()]
    for what, names in (("models", models), ("hw", configs)):
        if not names:
            raise UserError(f"--{what} needs at least one name")
    return runs, models, configs


def _table3(args) -> int:
    runs, models, configs = _runs(args)
    files = _outputs(args.out, "table3", args.force, args.figure_format)
    ref = R.find_reference(args.reference)
    paper = R.read_paper_table3(ref) if ref else None
    note = (f"paper columns from {ref}" if ref else
            f"{R.REFERENCE_FILE} missing from this installation ({R.packaged_reference()}; "
            "--reference PATH): printing without the paper's columns")
    rows = R.table3(models, configs, runs, paper)
    cols = ["model", "config", "cycles", "time", "paper_time", "time_ratio", "energy",
            "paper_energy", "energy_ratio", "macs", "energy_unit", "objective"]
    if args.fmt == "json":
        print(to_json(rows))
    elif args.fmt == "csv":
        emit(rows, "csv", cols)
    else:
        objectives = " / ".join(dict.fromkeys(r["objective"] for r in rows))
        print(f"Table 3 on the emulator: dataflow best per layer (search objective {objectives}), "
              f"weight sparsity {args.sparsity:g}, "
              f"seed {args.seed}; time normalised to the fastest network of each configuration "
              "(the paper's too, among the same networks); energy in "
              f"{' / '.join(dict.fromkeys(r['energy_unit'] for r in rows))}")
        wide, wcols = R.table3_wide(rows, configs)
        if not paper:
            wcols = [c for c in wcols if not c.endswith(("paper", "paper E", "t/p", "E/p"))]
        emit(wide, "table", wcols)
        steps = F.step_rows(rows)
        if steps:
            print("The co-design steps: ratios of the later network to the earlier (paper: its "
                  "Table 3; macs: what MAC count alone predicts)")
            emit(steps, "table", ["config", "step", "change", "cycles", "paper_time", "macs", "energy",
                                  "paper_energy"])
        print("\n".join(F.table3_lines(rows)))
        print("\n".join(F.network_lines({c: runs.results[(F.V1, c)] for c in configs
                                          if (F.V1, c) in runs.results})))
    print(note, file=sys.stderr if args.fmt != "table" else sys.stdout)
    if files:
        with output_set(args.force):  # the CSV and the PNG appear together or not at all
            write_csv(files[0], rows, cols)
            R.plot_table3(rows, configs, files[1])
    return 0


def _figure6(args) -> int:
    runs, models, configs = _runs(args)
    files = _outputs(args.out, "figure6", args.force, args.figure_format)
    rows = R.figure6(models, configs, runs)
    cols = ["config", "objective", "group", "label", "layer_config", "model", "layers", "macs", "cycles",
            "efficiency", "utilisation"]
    if args.fmt == "json":
        print(to_json(rows))
    else:
        emit(rows, args.fmt, cols)
        if args.fmt == "table":
            print("\n".join(F.network_lines({c: runs.results[(models[0], c)] for c in configs})))
    if files:
        with output_set(args.force):
            write_csv(files[0], rows, cols)
            R.plot_figure6(rows, models, configs, files[1], log=args.log)
    return 0


def _diff(args) -> int:
    """Two trace --json files compared layer by layer (emu/compare.py)."""
    if args.top < 0:
        raise UserError(f"--top must be 0 (all) or more, got {args.top}")
    result = C.diff(C.load_trace(args.a), C.load_trace(args.b), args.sort)
    if args.json:
        print(to_json(result))
        return 0
    top = args.top or None
    print(f"A: {args.a} ({result['a']})\nB: {args.b} ({result['b']})\n"
          f"delta = B - A, relative to A; layers by |{args.sort} delta|, largest first")
    emit(C.table_rows(result, top), "table", C.TABLE_COLUMNS)
    for line in C.summary_lines(result, top):
        print(line)
    return 0


def _sweep(args) -> int:
    """Run a sweep file's points not in the database yet, then report, export and plot."""
    from . import sweep as SW
    if args.export:
        check_out(args.export, args.force)
        SW.check_export(args.export)
    if args.plot:
        figure_out(args.plot, args.force)  # a known format and matplotlib: checked before the sweep
    spec = SW.load_sweep(args.file)
    for line in spec.notes:
        note(line)
    db = SW.ResultsDB(args.db or f"{Path(args.file).stem}.sqlite")
    try:
        run = SW.run_sweep(spec, db, args.jobs or available_cpus(), args.scheduler, progress=True,
                           note=note if args.jobs else None)
        records = db.records()
        keys = {p.key for p in spec.points}
        mine = [r for r in records if r["key"] in keys]
        summary = (f"{run.points} points: {run.computed} computed "
                   f"({run.points_per_second:.2f} points/s), {run.skipped} already in {db.path}")
        if args.json:
            print(to_json({"sweep": args.file, "db": str(db.path), "points": run.points,
                           "computed": run.computed, "skipped": run.skipped,
                           "seconds": run.seconds, "records": mine}))
        else:
            emit(mine, "table", ["network", "label", "dataflow", "sparsity", "cycles", "latency_ms",
                                 "fps", "energy", "edp", "area_mm2", "dram_bytes", "utilisation",
                                 "accuracy"])
            sources = sorted({r["accuracy_source"] for r in mine if r["accuracy_source"]})
            units = " / ".join(dict.fromkeys(r["energy_unit"] for r in mine)) or "-"
            if len(sources) > 1:   # (a precision sweep's: one per measurement)
                print(f"energy in {units}; area in {AREA_UNIT}; accuracy:")
                print("\n".join(f"  {s}" for s in sources))
            else:
                print(f"energy in {units}; area in {AREA_UNIT}; accuracy: {sources[0] if sources else 'none'}")
        print(summary, file=sys.stderr if args.json else sys.stdout)
        if args.export:
            SW.export(db, args.export, args.force)
        if args.plot:
            from .pareto import plot_pareto
            plot_pareto(mine, args.plot, force=args.force)
    finally:
        db.close()
    return 0


def _pareto(args) -> int:
    """Pareto fronts of a sweep database over two metrics (emu/pareto.py), as a table, --json
    and a figure."""
    from . import pareto as P
    from .sweep import open_results
    views = _pareto_views(args)
    if args.out:
        figure_out(args.out, args.force)
    db = open_results(args.db)
    try:
        records = db.records()
    finally:
        db.close()
    views = views or P.default_views(records)
    fronts = P.fronts(records, views)
    if args.json:
        print(to_json({name: [P.front_row(r, x, y) for r in front]
                       for (x, y), (name, front) in zip(views, fronts.items())}))
    else:
        for (x, y), front in zip(views, fronts.values()):
            print(f"Pareto front, {y} against {x} ({len(front)} of {len(records)} points):")
            rows = [P.front_row(r, x, y) for r in front]
            known = ["accuracy", "accuracy_source"] if any(r["accuracy"] is not None for r in rows) else []
            emit(rows, "table", list(dict.fromkeys(["network", "label", x, y, *known])))
    if args.out:
        P.plot_pareto(records, args.out, views, args.size, args.force)
    return 0


def _pareto_views(args) -> list[tuple[str, str]] | None:
    """[(x, y)] of --x and --y (both or neither), checked before the database is read."""
    from .pareto import check_metric
    if args.size:
        check_metric(args.size, "--size")
    if (args.x is None) != (args.y is None):
        raise UserError("--x and --y go together: name both metrics, or neither for the default view")
    if args.x is None:
        return None
    if args.x == args.y:
        raise UserError(f"--x and --y are both {args.x!r}: a front needs two metrics")
    return [(check_metric(args.x, "--x"), check_metric(args.y, "--y"))]


def _export(args) -> int:
    """A network's conv and fc layers in a peer simulator's workload format (emu/export.py)."""
    from ..io.files import write_atomic
    from .export import conv_layers, export_text
    if args.out:
        check_out(args.out, args.force)
    hw = load_hardware(args.hw)
    spec = (NetworkSpec.of(file=args.weights, zoo_options=args.zoo_options) if args.weights
            else NetworkSpec.of(args.model or DEFAULT_MODEL, args.zoo_options))
    graph = spec.load()[0]
    text = export_text(graph, args.format, hw)
    if not args.out:
        sys.stdout.write(text)
        return 0
    write_atomic(args.out, lambda f: f.write(text.encode("utf-8")), args.force)
    print(f"{args.out}: {len(conv_layers(graph))} conv and fc layers of {graph.name} as {args.format}")
    return 0


def _export_parser(sub) -> None:
    from .export import FORMATS
    e = subcommand(sub, "export", "A network's conv and fc layers in a peer simulator's workload "
                   "format: SCALE-Sim's topology CSV, Timeloop problems or ZigZag's workload YAML.")
    add_safety_options(e)
    add_zoo_options_option(e, "options of the zoo model (SqueezeNextSpec fields)")
    e.add_argument("--model", help=f"a zoo model (default {DEFAULT_MODEL}; --weights overrides it)")
    e.add_argument("--weights", help="a network file instead: .npz, .onnx or .prototxt")
    e.add_argument("--format", required=True, choices=FORMATS, help="the peer's format")
    e.add_argument("--hw", default="16x16", help="the hardware whose word and accumulator widths "
                   "ZigZag's operand precisions take (preset or TOML file; default 16x16)")
    add_out_option(e, "write to this file (default: stdout)")
    e.add_argument("--force", action="store_true", help="overwrite an existing --out file")


def _sweep_parsers(sub) -> None:
    s = subcommand(sub, "sweep", "Networks x hardware parameters from a TOML sweep file, one record "
                   "per point in a SQLite database (resumable), exported as CSV or Parquet.")
    add_safety_options(s)
    s.add_argument("file", help="the sweep file (docs/sweeps.md)")
    s.add_argument("--db", help="the results database (default: NAME.sqlite in this folder, NAME "
                   "the sweep file's name); points it holds are not computed again")
    s.add_argument("--jobs", type=_jobs, default=None,
                   help="compute this many points at once, in worker processes (default: the CPUs "
                   f"available, here {available_cpus()}; never more than the points or the CPUs); "
                   "the records do not depend on it")
    s.add_argument("--scheduler", metavar="ADDRESS", help="run the points on this Dask scheduler "
                   "(e.g. tcp://host:8786) instead of local processes")
    s.add_argument("--export", metavar="FILE", help="write the sweep's records as .csv or .parquet")
    s.add_argument("--plot", metavar="FILE", help="write the default Pareto view (sqnxt-emu "
                   "pareto's) of this sweep's records")
    s.add_argument("--force", action="store_true", help="overwrite existing --export / --plot files")
    s.add_argument("--json", action="store_true", help="the records as JSON")
    pa = subcommand(sub, "pareto", "Pareto fronts of a sweep database over any two metrics "
                    "(default: the paper's Figure 7, accuracy against energy and time, or energy "
                    "against latency without accuracies), as a table, JSON and a figure.")
    add_safety_options(pa)
    pa.add_argument("db", help="a sweep database (sqnxt-emu sweep --db)")
    from .pareto import METRICS
    for flag, what in (("--x", "the horizontal axis"), ("--y", "the vertical axis"),
                       ("--size", "the markers' area")):
        pa.add_argument(flag, metavar="METRIC", help=f"the metric of {what}: {', '.join(METRICS)}")
    add_out_option(pa, "write the figure to this file")
    pa.add_argument("--force", action="store_true", help="overwrite an existing --out file")
    pa.add_argument("--json", action="store_true", help="the Pareto fronts as JSON")


def _emulation_options(p) -> None:
    """What every emulating subcommand takes: --debug, --resource-limit, --sparsity, --seed,
    --zoo-options."""
    add_safety_options(p)
    add_zoo_options_option(p, "options of the zoo model(s), e.g. "
                           """'{"depths": [3, 5, 12, 1], "stem_kernel": 3}' (SqueezeNextSpec fields; """
                           "the network is then named with them)")
    p.add_argument("--sparsity", type=_sparsity, default=0.4,
                   help="prune conv/fc weights by magnitude to this fraction of zeros (paper: 0.4)")
    p.add_argument("--seed", type=_seed, default=0, help="seed of the random weights and input")


def _report_options(p, models) -> None:
    _emulation_options(p)
    p.add_argument("--models", default=",".join(models),
                   help="comma-separated networks (default: the paper's): zoo models, zoo models "
                   """with their own options (NAME{"depths": [3,5,12,1]}), .onnx, .prototxt or .npz files""")
    p.add_argument("--hw", default=",".join(R.CONFIGS),
                   help="comma-separated presets (8x8, 16x16) or hardware TOML files, each named in "
                   "the tables by its `name` key or file stem (default 8x8,16x16)")
    add_out_option(p, "write <command>.csv and the figure into this folder (made if need be)", metavar="DIR")
    p.add_argument("--figure-format", choices=FIGURE_FORMATS, default="png",
                   help="the --out figure's format (default png)")
    p.add_argument("--force", action="store_true", help="overwrite existing files in --out")
    p.add_argument("--jobs", type=_jobs, default=None,
                   help="emulate this many networks at once, in worker processes (default: the "
                   f"CPUs available, here {available_cpus()}; never more than the networks or the "
                   "CPUs; 1: one after another in this process); the results do not depend on it")
    add_format_options(p)


def _quantized_options(p) -> None:
    p.add_argument("--any-hardware", action="store_true", help="a quantized file: run it on hardware "
                   "whose accumulator or words differ from the file's (refused without it), and state "
                   "where the results differ from the file's own integer path")
    p.add_argument("--require-exact", action="store_true", help="a quantized file: exit status 3 when "
                   "the emulated codes differ from the file's own integer path")


EXIT_NOT_EXACT = 3  # --require-exact: the hardware changed the file's results


def _main(argv: list[str]) -> int:
    p = parser("sqnxt-emu", "Emulate networks on the SqueezeNext paper's accelerator.")
    sub = p.add_subparsers(dest="command", required=True)
    t = subcommand(sub, "trace", "Per-layer cycles, efficiency and energy of one network.")
    _emulation_options(t)
    t.add_argument("--model", help=f"a zoo model (default {DEFAULT_MODEL}; --weights overrides it)")
    t.add_argument("--weights", help="a network file instead of a zoo model: a .npz weight file (its "
                   "model, or the graph it carries), an .onnx model (its own weights) or a "
                   ".prototxt (the graph, with seeded random weights); default: the zoo model with "
                   "seeded random weights")
    t.add_argument("--image", help="an image file, preprocessed as the weights say (default: a "
                   "seeded random input)")
    t.add_argument("--hw", default="16x16", help="preset 8x8 / 16x16, or a hardware TOML file")
    t.add_argument("--dataflow", default="best", choices=list(DATAFLOW_CHOICES),
                   help="ws, os (SOC-MOP), best (the faster per layer), or one OS variant")
    t.add_argument("--plot", help="write per-layer cycles and MACs/cycle as a figure (.png, .pdf "
                   "or .svg)")
    t.add_argument("--roofline", metavar="FILE", help="write the per-layer roofline (MACs per cycle "
                   "against MACs per DRAM byte, under the array's and the DRAM's roofs) as a figure")
    t.add_argument("--log", action="store_true", help="--plot: cycles on a log scale")
    t.add_argument("--force", action="store_true", help="overwrite an existing --plot / --roofline file")
    t.add_argument("--breakdown", action="store_true", help="where the cycles go: array, buffer "
                   "stall, fill/drain, DRAM edges and stall per layer (always in --json)")
    _quantized_options(t)
    add_format_options(t)
    t3 = subcommand(sub, "table3", "The paper's Table 3 (time, energy) on the emulator, beside the paper's.")
    _report_options(t3, R.TABLE3_MODELS)
    t3.add_argument("--reference", help=f"another copy of the paper's {R.REFERENCE_FILE} (default: the one "
                    "installed with the package, sqnxt_engine/data/paper/)")
    f6 = subcommand(sub, "figure6", "The paper's Figure 6: per-layer cycles of 1.0-SqNxt-23 v1-v5.")
    _report_options(f6, R.FIGURE6_MODELS)
    f6.add_argument("--log", action="store_true", help="the figure's cycles on a log scale")
    ev = subcommand(sub, "eval", "Top-1 of a quantized file on a test set, every image through the "
                    "emulated integer datapath, with cycles and energy per image.")
    ev.add_argument("--debug", action="store_true", help="show the traceback of an error")
    ev.add_argument("--weights", required=True, help="a quantized .npz (made by sqnxt-quant; an ONNX "
                    "model or a zoo model with options: sqnxt-convert, then sqnxt-quant)")
    ev.add_argument("--data", default="fashion-mnist", choices=DATASETS, help="the data set; its test split is used")
    ev.add_argument("--limit", type=int, help="only the first N test images")
    ev.add_argument("--hw", default="16x16", help="preset 8x8 / 16x16, or a hardware TOML file")
    ev.add_argument("--dataflow", default="best", choices=list(DATAFLOW_CHOICES),
                    help="ws, os (SOC-MOP), best (the faster per layer), or one OS variant")
    ev.add_argument("--json", action="store_true", help="JSON output")
    _quantized_options(ev)
    d = subcommand(sub, "diff", "Two traces (sqnxt-emu trace --json files) compared: per-layer "
                   "and total deltas of cycles, energy, DRAM bytes and utilisation.")
    d.add_argument("--debug", action="store_true", help="show the traceback of an error")
    d.add_argument("a", metavar="A.json", help="the trace compared against (deltas are B - A)")
    d.add_argument("b", metavar="B.json", help="the other trace")
    d.add_argument("--sort", default="cycles", choices=C.METRICS,
                   help="order the layers by the size of this delta")
    d.add_argument("--top", type=int, default=20, help="layers in the table (0: all; --json has all)")
    d.add_argument("--json", action="store_true", help="JSON output")
    _sweep_parsers(sub)
    _export_parser(sub)
    h = subcommand(sub, "hardware", "Every parameter of a preset or hardware file, with where its "
                   "value comes from (the file, the documented default, or derived from others).")
    h.add_argument("--debug", action="store_true", help="show the traceback of an error")
    h.add_argument("hw", nargs="?", default="16x16", help="preset 8x8 / 16x16 / 16x16-45nm, or a "
                   "hardware TOML file (default 16x16)")
    h.add_argument("--json", action="store_true", help="JSON output")
    v = subcommand(sub, "validate", "The emulator against published hardware: SCALE-Sim's "
                   "systolic RTL, Eyeriss JSSC'17 Table V, Eyeriss ISCA'16 Figure 10 (ratio, band, "
                   "PASS/FAIL per figure; docs/validation.md).")
    v.add_argument("--debug", action="store_true", help="show the traceback of an error")
    v.add_argument("--json", action="store_true", help="JSON output")
    # subparsers of an ArgumentParser subclass keep its one-line error()
    args = p.parse_args(argv)
    return {"trace": _trace, "table3": _table3, "figure6": _figure6, "eval": _eval,
            "diff": _diff, "sweep": _sweep, "pareto": _pareto,
            "hardware": _hardware, "validate": _validate, "export": _export}[args.command](args)


def main(argv=None) -> int:
    return run(_main, argv)


if __name__ == "__main__":
    raise SystemExit(main())
