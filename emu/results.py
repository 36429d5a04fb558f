"""Results from Python as rows: lists of flat dicts, one per layer or per sweep point, with the
same fields as `sqnxt-emu trace --csv` and `sqnxt-emu sweep --export`. A list of dicts is what
`pandas.DataFrame(rows)` (or polars, or csv.DictWriter) takes:

    from sqnxt_engine.emu.results import trace_rows, sweep_rows
    rows = trace_rows("net.onnx", hw="8x8")        # or a zoo name, an .npz, a NetworkResult
    points = sweep_rows("sweep.sqlite")             # every point of a sweep database

A trace's rows are its charged steps in run order and a last row named "total": cycles, the
cycle parts (cycles_<part>), energy by level (e_<level>) and its unit, the access counts
(count_<counter>), latency_ms and edp per step, fps in the total; the hardware's estimated area
is the same on every row (area_mm2, area_<level>_mm2).
"""
from __future__ import annotations

from .metrics import performance, summary


def timed_rows(res) -> tuple[list[dict], dict, dict]:
    """A NetworkResult's step rows and total row with each one's latency_ms and edp (the total's
    fps too), and the run's metrics.summary (latency, fps, EDP, area)."""
    def timed(row, cycles, fps: bool):   # the unrounded cycles, as summary's
        p = performance(cycles, row["energy"], res.hw)
        return {**row, "latency_ms": p["latency_ms"], "fps": p["fps"] if fps else None, "edp": p["edp"]}
    return ([timed(r.row(), r.cycles, False) for r in res.steps],
            timed(res.total_row(), res.cycles, True), summary(res.cycles, res.energy.total, res.hw))


def result_rows(res) -> list[dict]:
    """A NetworkResult as flat rows (module doc)."""
    rows, total, s = timed_rows(res)
    out = []
    for r in rows + [total]:
        counts = r.pop("counts")
        out.append({"model": res.model, "hardware": res.hw.name, **r,
                    **{f"count_{k}": v for k, v in counts.items()},
                    "energy_unit": res.hw.energy.unit, "edp_unit": s["edp_unit"],
                    **{k: v for k, v in s.items() if k.startswith("area")}})
    return uniform(out)


def uniform(rows: list[dict]) -> list[dict]:
    """The rows with every key any of them has (None where a row has none: a step's `shift`, a
    parameter of one energy model), in the order the keys first appear."""
    keys = list(dict.fromkeys(k for r in rows for k in r))
    return [{k: r.get(k) for k in keys} for r in rows]


def trace_rows(network, hw="16x16", dataflow: str = "best", sparsity: float = 0.4,
               seed: int = 0, zoo_options: dict | None = None) -> list[dict]:
    """`sqnxt-emu trace` as rows (module doc). network: a NetworkResult already run, or what
    --model / --weights take (a zoo name, with zoo_options, or an .npz, .onnx or .prototxt
    path); hw: a preset name, a hardware file's path or a Hardware; seeded random weights (zoo)
    and input."""
    from .network import NetworkResult
    if isinstance(network, NetworkResult):
        return result_rows(network)
    from ..io.network_spec import NetworkSpec
    from .hardware import Hardware, load_hardware
    from .network import emulate
    graph, weights, _, _ = NetworkSpec.parse(str(network), zoo_options, seed).load()
    hardware = hw if isinstance(hw, Hardware) else load_hardware(hw)
    return result_rows(emulate(graph, weights, hardware, dataflow, sparsity, seed=seed))


def sweep_rows(db) -> list[dict]:
    """Every point of a sweep database (a path) as the rows `sweep --export` writes: the
    record's columns, latency_ms, fps, edp, the area, every hardware parameter (hw.<key>) and
    when and where it ran."""
    from .sweep import open_results
    results = open_results(db)
    try:
        return uniform(results.rows())
    finally:
        results.close()
