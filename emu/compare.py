"""Two traces side by side (`sqnxt-emu diff A.json B.json`): per-layer and total deltas.

A trace is `sqnxt-emu trace --json`'s object. Layers are matched by name; a layer in one trace
only is listed, not compared. For each metric (METRICS) a compared row holds A's and B's values,
the delta B - A and the relative delta (B - A) / A (None where A is 0). The layers come ordered
by the size of their delta in one metric (cycles by default), the largest first: what changed
most leads.
"""
from __future__ import annotations

import math

from ..errors import UserError
from ..io.files import read_text
from ..io.structured_text import load_json

METRICS = ("cycles", "energy", "dram_bytes", "utilisation")


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def load_trace(path) -> dict:
    """A trace --json file, checked to be one (a UserError naming the file otherwise)."""
    trace = load_json(read_text(path), str(path))   # a regular file, size and nesting bounded
    if not isinstance(trace, dict) or not isinstance(trace.get("layers"), list) \
            or not isinstance(trace.get("total"), dict):
        raise UserError(f"{path}: not a trace (make one with sqnxt-emu trace --json)")
    for i, row in enumerate(trace["layers"] + [trace["total"]]):
        where = "its total" if i == len(trace["layers"]) else f"layer {i}"
        if not isinstance(row, dict) or not isinstance(row.get("layer"), str):
            raise UserError(f"{path}: not a trace: {where} has no layer name")
        if not isinstance(row.get("dataflow", ""), (str, type(None))):
            raise UserError(f"{path}: not a trace: {where} ({row['layer']}) has a dataflow that is "
                            "not a name")
        bad = [m for m in METRICS if not _is_number(row.get(m))]
        if bad:
            raise UserError(f"{path}: not a trace: {where} ({row['layer']}) has no number for "
                            f"{', '.join(bad)}")
    names = [r["layer"] for r in trace["layers"]]
    if len(set(names)) != len(names):
        raise UserError(f"{path}: a layer name occurs twice; layers are matched by name")
    return trace


def _delta(a: dict, b: dict) -> dict:
    out = {}
    for m in METRICS:
        va, vb = a[m], b[m]
        out[f"{m}_a"], out[f"{m}_b"] = va, vb
        out[f"{m}_delta"] = vb - va
        out[f"{m}_rel"] = (vb - va) / va if va else None
    return out


def describe(trace: dict) -> str:
    """'MODEL on HARDWARE, dataflow D' of a trace."""
    return (f"{trace.get('model', '?')} on {trace.get('hardware', '?')}, "
            f"dataflow {trace.get('dataflow', '?')}")


def diff(a: dict, b: dict, sort: str = "cycles") -> dict:
    """The comparison of trace `a` with trace `b` (module doc): {"a", "b" (their descriptions),
    "sort", "layers" (compared rows, largest |delta| of `sort` first; ties in A's order),
    "only_in_a", "only_in_b" (layer names), "total" (the traces' own totals compared)}.
    Traces with no layer in common are refused."""
    if sort not in METRICS:
        raise UserError(f"unknown metric {sort!r} to sort by (choose from {', '.join(METRICS)})")
    by_name = {r["layer"]: r for r in b["layers"]}
    common = [r for r in a["layers"] if r["layer"] in by_name]
    if not common:
        raise UserError(f"the traces have no layer in common ({describe(a)}; {describe(b)})")
    rows = [{"layer": r["layer"], "dataflow_a": r.get("dataflow"),
             "dataflow_b": by_name[r["layer"]].get("dataflow"), **_delta(r, by_name[r["layer"]])}
            for r in common]
    rows.sort(key=lambda r: -abs(r[f"{sort}_delta"]))  # stable: ties keep A's order
    in_a = {r["layer"] for r in a["layers"]}
    return {"a": describe(a), "b": describe(b), "sort": sort, "layers": rows,
            "only_in_a": [r["layer"] for r in a["layers"] if r["layer"] not in by_name],
            "only_in_b": [r["layer"] for r in b["layers"] if r["layer"] not in in_a],
            "total": {"layer": "total", **_delta(a["total"], b["total"])}}


TABLE_COLUMNS = ["layer", "dataflow", "cycles_a", "cycles_b", "cycles_delta", "cycles_rel", "energy_delta",
                 "energy_rel", "dram_bytes_delta", "dram_bytes_rel", "utilisation_delta"]


def table_rows(result: dict, top: int | None = None) -> list[dict]:
    """diff()'s rows for a table: the first `top` layers (all if None) and the total, relative
    deltas as signed percentages."""
    def shown(r):
        out = dict(r)
        flows = (r.get("dataflow_a"), r.get("dataflow_b"))
        out["dataflow"] = (flows[0] or "") if flows[0] == flows[1] else f"{flows[0]} -> {flows[1]}"
        for m in METRICS:
            rel = r[f"{m}_rel"]
            out[f"{m}_rel"] = "" if rel is None else f"{rel:+.1%}"
        return out
    return [shown(r) for r in result["layers"][:top]] + [shown(result["total"])]


def summary_lines(result: dict, top: int | None = None) -> list[str]:
    """What a table of diff() leaves out: layers not shown, and those in one trace only."""
    lines = []
    hidden = len(result["layers"]) - (top if top is not None else len(result["layers"]))
    if hidden > 0:
        lines.append(f"{hidden} more layer(s) compared, with smaller {result['sort']} deltas "
                     "(--top 0 shows all)")
    for side in ("a", "b"):
        only = result[f"only_in_{side}"]
        if only:
            names = ", ".join(only[:8]) + (f", ... ({len(only)} in all)" if len(only) > 8 else "")
            lines.append(f"only in {side.upper()}: {names}")
    return lines
