"""Pareto fronts of a sweep's records over any two recorded metrics, and their figure.

`sqnxt-emu pareto DB --x METRIC --y METRIC [--size METRIC]`: METRICS names what a record holds
(latency, energy, EDP, area, DRAM bytes, accuracy, ...) and whether less or more is better. A
record is on the front when no other record is at least as good on both metrics and better on
one. Without --x and --y: the paper's Figure 7 (accuracy against energy and against latency)
when a record has an accuracy, else energy against latency, a hardware-only front.

The figure (one panel per pair): colour by network, a marker shape per hardware (its label,
metrics.hardware_label: "8x8, 32 KB, 45 nm"), the front drawn as a staircase with its points
labelled and the dominated points faded; --size scales the markers' area by a metric. The title
sits above the panels and the legend beside them, outside the data.
"""
from __future__ import annotations

import math

from ..errors import UserError
from .figures import COLUMN_WIDTH, paper_figure
from .metrics import design_parts, hardware_label
from .output import save_figure

# name -> (record field, axis label, better: "min" or "max")
METRICS = {
    "latency": ("latency_ms", "latency per inference (ms)", "min"),
    "energy": ("energy", "energy per inference ({energy_unit})", "min"),
    "edp": ("edp", "energy-delay product ({edp_unit})", "min"),
    "area": ("area_mm2", "area ({area_unit})", "min"),
    "dram": ("dram_bytes", "DRAM traffic per inference (bytes)", "min"),
    "cycles": ("cycles", "cycles per inference", "min"),
    "fps": ("fps", "frames per second", "max"),
    "utilisation": ("utilisation", "utilisation", "max"),
    "params": ("params", "parameters", "min"),
    "accuracy": ("accuracy", "{accuracy} (%)", "max"),
}
MARKERS = "os^Dv<>PXph*dH8"   # the 15 filled markers
LABEL_CHARS = 40   # a front point's label is wrapped at this width, to stay near its point


def check_metric(name: str, option: str) -> str:
    if name not in METRICS:
        raise UserError(f"{option} {name!r}: not a metric (one of {', '.join(METRICS)})")
    return name


def value(r: dict, metric: str):
    """A record's value of a metric (METRICS); a record from before the metric existed is a
    UserError saying so."""
    field = METRICS[metric][0]
    if field == "latency_ms" and field not in r:   # records older than latency_ms
        return r["latency_s"] * 1e3
    if field not in r:
        raise UserError(f"a record of {r.get('network')!r} on {r.get('hardware')!r} has no {field} "
                        "(made by an earlier version of sqnxt-emu): sweep again into a new --db")
    v = r[field]
    if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float))
                          or not math.isfinite(v)):   # a database may hold anything
        raise UserError(f"not a sweep record: {field} is {v!r:.40}")
    return v


def _sign(metric: str) -> int:
    return 1 if METRICS[metric][2] == "min" else -1


def pareto_front(records: list[dict], x: str, y: str = "accuracy") -> list[dict]:
    """The records no other beats on metrics x and y (module doc), by x from best to worst.
    Records without a value of x or y (no accuracy) take no part."""
    rs = [r for r in records if value(r, x) is not None and value(r, y) is not None]
    sx, sy = _sign(x), _sign(y)
    front, best = [], float("inf")
    for r in sorted(rs, key=lambda r: (sx * value(r, x), sy * value(r, y))):
        if sy * value(r, y) < best:
            front.append(r)
            best = sy * value(r, y)
    return front


def default_views(records: list[dict]) -> list[tuple[str, str]]:
    """(x, y) of the figure without --x/--y: Figure 7 when a record has an accuracy."""
    if any(r.get("accuracy") is not None for r in records):
        return [("energy", "accuracy"), ("latency", "accuracy")]
    return [("latency", "energy")]


def fronts(records: list[dict], views: list[tuple[str, str]] | None = None) -> dict[str, list[dict]]:
    """{"Y-vs-X": its front} for each view (default_views when None)."""
    return {f"{y}-vs-{x}": pareto_front(records, x, y) for x, y in views or default_views(records)}


def front_row(r: dict, x: str, y: str) -> dict:
    """A front point as --json and the table show it."""
    out = {"network": r["network"], "hardware": r["hardware"], "label": point_label(r),
           x: value(r, x), y: value(r, y)}
    for k in ("accuracy", "accuracy_source", "params"):
        out.setdefault(k, r.get(k))
    return out


def point_label(r: dict, leave_out=()) -> str:
    """A point's hardware label (metrics.hardware_label, less `leave_out`), with its dataflow and
    sparsity where not the paper's."""
    parts = [hardware_label(r, leave_out)]
    if r["dataflow"] != "best":
        parts.append(r["dataflow"])
    if r["sparsity"] != 0.4:
        parts.append(f"sparsity {r['sparsity']:g}")
    return ", ".join(p for p in parts if p)


def _ordered(values) -> list:
    """Distinct values in the numeric order of the numbers in them ("8x8, 32 KB" < "8x8, 128 KB"
    < "16x16, 32 KB"), then as text."""
    import re
    return sorted(set(values), key=lambda v: ([float(n) for n in re.findall(r"\d+(?:\.\d+)?", str(v))],
                                              str(v)))


def encoding(records: list[dict]) -> tuple:
    """How the figure tells points apart: (marker of a record, colour key of a record, marker
    legend [(value, marker)], colour keys in order, what the colour names, design parts common
    to all, what the marker names). One network: the marker follows the first design part that varies (the array), the
    colour the others together; several networks: the colour follows the network, the marker the
    design, or the first design part that varies when there are more designs than markers."""
    parts = {id(r): design_parts(r) for r in records}
    names = list(next(iter(parts.values())))
    varying = [k for k in names if len({p[k] for p in parts.values()}) > 1]
    common = [k for k in names if k not in varying]
    networks = list(dict.fromkeys(r["network"] for r in records))
    if len(networks) == 1 and varying:
        shape_of = lambda r: parts[id(r)][varying[0]]  # noqa: E731
        shape_what = varying[0]
        colour_of = lambda r: ", ".join(parts[id(r)][k] for k in varying[1:]) or "-"  # noqa: E731
        colour_keys = _ordered(colour_of(r) for r in records)
        what = ", ".join(varying[1:])
    else:
        shape_of = lambda r: hardware_label(r, common) or hardware_label(r)  # noqa: E731
        shape_what = "design"
        if len({shape_of(r) for r in records}) > len(MARKERS) and varying:   # markers would repeat:
            shape_of = lambda r: parts[id(r)][varying[0]]  # noqa: E731   (the front's labels name the rest)
            shape_what = varying[0]
        colour_of = lambda r: r["network"]  # noqa: E731
        colour_keys, what = networks, "network"
    shapes = _ordered(shape_of(r) for r in records)
    marker = {v: MARKERS[i % len(MARKERS)] for i, v in enumerate(shapes)}
    return (lambda r: marker[shape_of(r)], colour_of, list(marker.items()), colour_keys, what,
            common, shape_what)


def axis_label(metric: str, rs: list[dict]) -> str:
    """The axis label of a metric, with the records' unit; energies of two units are refused."""
    fields = {}
    for key in ("energy_unit", "edp_unit", "area_unit"):
        units = sorted({r[key] for r in rs if r.get(key)})
        if len(units) > 1 and metric in ("energy", "edp", "area"):
            raise UserError(f"the records' {key.replace('_', ' ')}s differ ({', '.join(units)}): "
                            "plot the hardware of one energy model at a time")
        fields[key] = units[0] if units else "?"
    fields["accuracy"] = _source_line(rs) if metric == "accuracy" else ""
    return METRICS[metric][1].format(**fields).replace("^2", "\u00b2")


def plot_pareto(records: list[dict], path, views: list[tuple[str, str]] | None = None,
                size: str | None = None, force: bool = False) -> None:
    """The figure of `views` (module doc) from `records`; `size`: a metric the markers' area
    follows (default: parameters, when accuracy is on an axis)."""
    import textwrap

    from matplotlib.lines import Line2D
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter
    views = views or default_views(records)
    if size is None and any("accuracy" in v for v in views):
        size = "params"
    panels = []
    for x, y in views:
        rs = [r for r in records if value(r, x) is not None and value(r, y) is not None]
        if not rs:
            raise UserError(f"no record has both {x} and {y} (an accuracy is recorded for zoo "
                            "networks the paper lists, shipped weights, and networks whose sweep "
                            "file states one): nothing to plot")
        panels.append((x, y, rs, pareto_front(rs, x, y)))
    every = list({id(r): r for _, _, rs, _ in panels for r in rs}.values())
    networks = list(dict.fromkeys(r["network"] for r in every))
    marker_of, colour_of, markers, colour_keys, colour_what, common, marker_what = encoding(every)
    biggest = max((value(r, size) for r in every), default=1) if size else 1
    legend_chars = max(len(str(v)) for v, _ in markers + [(k, 0) for k in colour_keys])
    legend_in = 0.45 + 0.05 * legend_chars
    width = COLUMN_WIDTH * 1.2 * len(views) + legend_in
    with paper_figure(1, len(views), figsize=(width, 3.0), squeeze=False) as (plt, fig, axes):
        cmap = plt.get_cmap("tab10" if len(colour_keys) <= 10 else "tab20")
        colour = {k: cmap(i % cmap.N) for i, k in enumerate(colour_keys)}

        def area(r):
            return 14 + 70 * value(r, size) / biggest if size else 26
        for ax, (x, y, rs, front) in zip(axes[0], panels):
            on = {id(r) for r in front}
            for r in rs:
                best = id(r) in on
                ax.scatter([value(r, x)], [value(r, y)], s=area(r), marker=marker_of(r),
                           color=colour[colour_of(r)], alpha=0.95 if best else 0.3,
                           edgecolors="black" if best else "none", linewidths=0.6,
                           zorder=5 if best else 2)   # the front over the labels (4)
            ax.step([value(r, x) for r in front], [value(r, y) for r in front], where="post",
                    color="black", lw=0.7, ls="--", zorder=1)
            place = {}   # metric -> where a value sits in the panel's range, 0 to 1
            for metric, axis, setter, scale in ((x, ax.xaxis, ax.set_xlabel, ax.set_xscale),
                                                (y, ax.yaxis, ax.set_ylabel, ax.set_yscale)):
                setter(axis_label(metric, rs))
                vs = [value(r, metric) for r in rs]
                log = min(vs) > 0 and max(vs) > 10 * min(vs)
                if log:
                    scale("log")
                    axis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
                    axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
                    axis.set_minor_formatter(NullFormatter())
                t = math.log if log else float
                lo, hi = t(min(vs)), t(max(vs))
                place[metric] = lambda v, t=t, lo=lo, hi=hi: (t(v) - lo) / (hi - lo) if hi > lo else 0.5
            # labels on the side no point reaches (better than the front on both metrics), turned
            # back towards the middle at the panel's left and right edges
            for r in front:
                label = point_label(r, common)
                left = _sign(x) > 0 and place[x](value(r, x)) > 0.1 or \
                    _sign(x) < 0 and place[x](value(r, x)) > 0.9
                down = _sign(y) > 0
                text = label if len(networks) == 1 else f"{r['network']}: {label}"
                ax.annotate(textwrap.fill(text, LABEL_CHARS),
                            (value(r, x), value(r, y)), xytext=(-6 if left else 6, -4 if down else 4),
                            ha="right" if left else "left", va="top" if down else "bottom",
                            textcoords="offset points", fontsize=5, zorder=4,
                            bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none", "alpha": 0.8})
            ax.grid(alpha=0.3, lw=0.4)
            ax.margins(x=0.15, y=0.12)
        title = common and [design_parts(every[0])[k] for k in common if design_parts(every[0])[k]]
        handles = [Line2D([], [], ls="", marker=m, color="0.35", label=str(v)) for v, m in markers]
        if len(colour_keys) > 1:
            handles += [Line2D([], [], ls="", marker="s", color=colour[k], label=str(k))
                        for k in colour_keys]
        handles += [Line2D([], [], color="black", ls="--", lw=0.7, label="Pareto front"),
                    Line2D([], [], ls="", marker="o", color="0.35", alpha=0.3,
                           label="dominated (faded)")]
        columns = 1 + len(handles) // 20
        right = 1 - columns * legend_in / width   # the legend's room beside the panels
        fig.legend(handles=handles, loc="center left", bbox_to_anchor=(right, 0.5), frameon=False,
                   ncol=columns, title=f"marker: {marker_what}"
                   + (f"\ncolour: {colour_what}" if len(colour_keys) > 1 else ""),
                   title_fontsize=6)
        what = " and ".join(f"{y} against {x}" for x, y in views)
        who = networks[0] if len(networks) == 1 else f"{len(networks)} networks"
        extra = (f", all {', '.join(title)}" if title else "") + \
            (f"; marker area by {size}" if size else "")
        fig.suptitle(textwrap.fill(f"{who}: {what}, {len(every)} points{extra}", int(width * 16)),
                     fontsize=7)
        fig.tight_layout(rect=(0, 0, right, 0.96))
        save_figure(fig, path, force=force)


def _source_line(rs: list[dict]) -> str:
    """What the accuracies are, in a few words (one data set, or several)."""
    kinds = sorted({r["accuracy_source"].split("top-1")[0].strip() for r in rs if r.get("accuracy_source")}
                   - {""})   # (a precision point's source starts with its top-1: precision.py)
    return " and ".join(kinds) + " top-1" if kinds else "top-1"
