"""Figures of one trace, made to be printed in a paper: `sqnxt-emu trace --plot` (per-layer
cycles) and `--roofline` (per-layer roofline). Table 3's and Figure 6's are in reports.py and
share the style and helpers here.

Conventions of every figure: sized in inches at the width it is printed at (COLUMN_WIDTH, one
column of a two-column paper, or a multiple), fonts in points at that size (PAPER_STYLE), so
the labels read as they are; layers named by stage (the layer name's first part) and name, or,
in a network whose names are module paths (ONNX), by place and op (layer_labels);
dataflows coloured (DATAFLOW_COLOURS) and named in a legend; legends outside the data.

Roofline: per layer, the MACs performed per cycle against the MACs performed per DRAM byte
(operational intensity), under two roofs: the array's (one MAC per PE per cycle) and the DRAM's
(hardware.dram_bytes_per_cycle x intensity). Performed MACs, not dense ones: the MACs an OS
layer skips on zero weights cost no cycle, and counting them would put points above the roofs.
A point at the DRAM roof is bound by DRAM bandwidth; one far below both roofs loses its cycles to
something else (fill/drain, DMA latency, an array the layer does not fill: `trace --breakdown`).
"""
from __future__ import annotations

import contextlib
import re

from ..kernels import DATAFLOWS, Dataflow
from .output import pyplot, save_figure

COLUMN_WIDTH = 3.5  # inches
PAPER_STYLE = {"font.size": 7, "axes.titlesize": 7, "axes.labelsize": 7, "xtick.labelsize": 6,
               "ytick.labelsize": 6, "legend.fontsize": 6, "lines.markersize": 3.5,
               "axes.linewidth": 0.6, "xtick.major.width": 0.6, "ytick.major.width": 0.6}
DATAFLOW_COLOURS = dict(zip(DATAFLOWS, ("tab:blue", "tab:orange", "tab:green", "tab:purple",
                                        "tab:red")))
NO_MACS_COLOUR = "0.6"   # the steps without MACs (shift copies, timed pools and adds)
STAGE_MARKERS = "osD^v<>ph*"


@contextlib.contextmanager
def paper_figure(*args, **kw):
    """(plt, fig, axes) of plt.subplots(*args, **kw) drawn in PAPER_STYLE; closed on exit."""
    plt = pyplot()
    with plt.rc_context(PAPER_STYLE):
        fig, axes = plt.subplots(*args, **kw)
        try:
            yield plt, fig, axes
        finally:
            plt.close(fig)


_PATH_NAME = re.compile(r"[A-Za-z_]\w*(\.\w+)*")   # stage2.unit1.conv3, fc, conv1


def named_by_stage(names) -> bool:
    """Whether layers are named stage.unit.layer (the zoo's, or any network's with such names),
    so that a name's first part is its stage; an imported network's module paths
    ('/features/features.0/Conv') are not."""
    return all(_PATH_NAME.fullmatch(n) for n in names)


def step_op(rec) -> str:
    """A step's op for a figure: its kind, a depthwise or grouped conv named as such."""
    s = rec.conv
    if s is not None and s.groups > 1:
        return "dwconv" if s.groups == s.C else "gconv"
    return rec.kind


def layer_labels(steps) -> list[tuple[str, str]]:
    """(label, group) of each step for a figure. Layers named by stage: the name without its
    stage, and the stage; any other network (an ONNX model's module paths, where the stem and
    the head can both end in '0/Conv'): the step's place in the run and its op ('1 conv',
    '2 dwconv', ..., '19 fc'), grouped by op."""
    names = [r.name for r in steps]
    if named_by_stage(names):
        return [(n.partition(".")[2] or n, stage(n)) for n in names]
    return [(f"{i} {step_op(r)}", step_op(r)) for i, r in enumerate(steps, 1)]


def stage(layer: str) -> str:
    """The stage a layer belongs to: its name's first part ('stage2' of 'stage2.unit1.conv3')."""
    return layer.split(".")[0]


def stage_spans(names) -> list[tuple[str, int, int]]:
    """(stage, first index, last index + 1) of each run of consecutive layers of one stage."""
    spans: list[list] = []
    for i, n in enumerate(names):
        if spans and spans[-1][0] == stage(n):
            spans[-1][2] = i + 1
        else:
            spans.append([stage(n), i, i + 1])
    return [tuple(s) for s in spans]


def mark_stages(ax, names, min_width: int = 3) -> None:
    """Thin separators between the stages of x positions 0..n-1 and each stage's name above the
    axes (names of spans narrower than `min_width` positions are left to the tick labels)."""
    for name, a, b in stage_spans(names):
        if a:
            ax.axvline(a - 0.5, color="0.75", lw=0.5, zorder=0)
        if b - a >= min_width:
            ax.text((a + b - 1) / 2, 1.01, name, transform=ax.get_xaxis_transform(),
                    ha="center", va="bottom", fontsize=6)


def dataflow_legend_handles(flows, no_macs: bool = False):
    """Legend patches for the dataflows in `flows`, in DATAFLOWS' order (`no_macs`: and one for
    the steps without MACs)."""
    from matplotlib.patches import Patch
    return ([Patch(color=DATAFLOW_COLOURS[d], label=d.title) for d in DATAFLOWS if d in set(flows)]
            + ([Patch(color=NO_MACS_COLOUR, label="no MACs")] if no_macs else []))


def step_colour(rec) -> str:
    """A step's bar colour: its dataflow's, or NO_MACS_COLOUR."""
    return DATAFLOW_COLOURS[Dataflow(rec.dataflow)] if rec.has_macs else NO_MACS_COLOUR


def plot_trace(res, path, log: bool = False, force: bool = False) -> None:
    """Per-step cycles of a NetworkResult (every charged step) as bars coloured by dataflow, with
    its dense MACs per cycle; steps named under the bars, stages above; `log`: a log scale for
    the cycles."""
    layers = res.steps
    names = [r.name for r in layers]
    labels = [label for label, _ in layer_labels(layers)]
    flows = [Dataflow(r.dataflow) for r in layers if r.has_macs]
    width = max(COLUMN_WIDTH * 2, 0.085 * len(names) + 1.2)
    with paper_figure(figsize=(width, 3.2)) as (plt, fig, ax):
        x = range(len(layers))
        ax.bar(x, [r.cycles for r in layers], 0.8, color=[step_colour(r) for r in layers])
        ax.set_ylabel("cycles" + (" (log scale)" if log else ""))
        if log:
            ax.set_yscale("log")
        ax.set_xticks(list(x))
        ax.set_xticklabels(labels, rotation=90, fontsize=5)
        ax.set_xlim(-0.6, len(layers) - 0.4)
        if named_by_stage(names):
            mark_stages(ax, names)
        ax2 = ax.twinx()
        ax2.plot(x, [r.dense_macs / r.cycles if r.cycles else 0 for r in layers], "k.:", lw=0.7,
                 label="dense MACs / cycle")
        ax2.set_ylabel("dense MACs / cycle")
        ax2.set_ylim(bottom=0)
        handles = (dataflow_legend_handles(flows, len(flows) < len(layers))
                   + ax2.get_legend_handles_labels()[0])
        # the title on a line of its own, the legend below it: neither over the other
        fig.suptitle(f"{res.model} on {res.hw.name}, dataflow {res.dataflow}", y=0.995, fontsize=7)
        fig.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, 0.945),
                   ncol=len(handles), frameon=False)
        fig.tight_layout(rect=(0, 0, 1, 0.88))
        save_figure(fig, path, force=force)


def roofline_points(res) -> list[dict]:
    """Per MAC layer of a NetworkResult: its roofline point (module doc) and what it is made of.
    The steps without MACs have no point (no MAC performed: no operational intensity)."""
    out = []
    labels = dict(zip(map(id, res.steps), layer_labels(res.steps)))
    for r in res.mac_steps:
        macs, nbytes = r.counters.macs, r.timing.dram_bytes
        label, group = labels[id(r)]
        out.append({"layer": r.name, "label": label, "stage": group, "dataflow": r.dataflow,
                    "macs": macs, "dram_bytes": nbytes, "cycles": r.cycles,
                    "intensity": macs / nbytes if nbytes else None,
                    "macs_per_cycle": macs / r.cycles if r.cycles else 0.0})
    return out


def plot_roofline(res, path, labelled: int = 6, force: bool = False) -> None:
    """The roofline of a NetworkResult (module doc), log-log, points coloured by dataflow and
    shaped by stage; the `labelled` layers with the most cycles named beside their points (one
    name where layers of the same shape sit on the same point)."""
    import numpy as np
    from matplotlib.lines import Line2D
    hw = res.hw
    points = [p for p in roofline_points(res) if p["intensity"]]
    peak, bpc = hw.pes, hw.dram_bytes_per_cycle
    ridge = peak / bpc
    xs = np.array([p["intensity"] for p in points])
    ys = np.array([p["macs_per_cycle"] for p in points])
    lo, hi = min(xs.min(), ridge) / 3, max(xs.max(), ridge) * 3
    with paper_figure(figsize=(COLUMN_WIDTH, 3.5)) as (plt, fig, ax):
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlim(lo, hi)
        ax.set_ylim(min(ys.min(), bpc * lo) / 2, peak * 2.5)
        grid = np.geomspace(lo, hi, 200)
        ax.plot(grid, np.minimum(peak, bpc * grid), color="0.2", lw=1, zorder=1)
        ax.text(hi / 1.15, peak * 1.1, f"array: {peak} MACs/cycle", ha="right", va="bottom",
                fontsize=6)
        stages = list(dict.fromkeys(p["stage"] for p in points))
        marker = {s: STAGE_MARKERS[i % len(STAGE_MARKERS)] for i, s in enumerate(stages)}
        for s in stages:
            for d in DATAFLOWS:
                mine = [p for p in points if p["stage"] == s and p["dataflow"] == d]
                if mine:
                    ax.scatter([p["intensity"] for p in mine], [p["macs_per_cycle"] for p in mine],
                               marker=marker[s], s=14, color=DATAFLOW_COLOURS[d], alpha=0.8,
                               edgecolors="none", zorder=2)
        ax.set_xlabel("operational intensity (MACs performed / DRAM byte)")
        ax.set_ylabel("MACs performed / cycle")
        ax.set_title(f"{res.model} on {hw.name}: roofline of {len(points)} layers", fontsize=7)
        flows = dataflow_legend_handles([Dataflow(p["dataflow"]) for p in points])
        shapes = [Line2D([], [], ls="", marker=marker[s], color="0.4", label=s) for s in stages]
        rows = -(-len(shapes) // 4)
        fig.legend(handles=shapes, loc="lower center", ncol=4, frameon=False,
                   bbox_to_anchor=(0.5, 0))
        fig.legend(handles=flows, loc="lower center", ncol=2, frameon=False,
                   bbox_to_anchor=(0.5, 0.035 * rows + 0.01))
        fig.tight_layout(rect=(0, 0.035 * (rows + 1) + 0.02, 1, 1))
        fig.canvas.draw()   # the layout settled, names are placed in pixels
        at = lo * 2   # the DRAM roof's label, along its line, left of the points
        (x0, y0), (x1, y1) = ax.transData.transform([(at, bpc * at), (ridge, peak)])
        ax.text(at, bpc * at * 1.25, f"DRAM: {bpc:g} B/cycle", fontsize=6, ha="left", va="bottom",
                rotation=np.degrees(np.arctan2(y1 - y0, x1 - x0)), rotation_mode="anchor")
        taken: list[tuple] = []   # boxes of the names placed, in pixels: no name over another
        pt = fig.dpi / 72
        for p in sorted(points, key=lambda p: -p["cycles"]):
            if len(taken) == labelled:
                break
            x, y = ax.transData.transform((p["intensity"], p["macs_per_cycle"]))
            w, h = len(p["label"]) * 5 * 0.55 * pt, 6 * pt
            box = (x - w / 2, y - 4 * pt - h, x + w / 2, y - 4 * pt)
            if any(box[0] < b[2] and b[0] < box[2] and box[1] < b[3] and b[1] < box[3]
                   for b in taken):
                continue
            taken.append(box)
            ax.annotate(p["label"], (p["intensity"], p["macs_per_cycle"]), fontsize=5,
                        xytext=(0, -4), textcoords="offset points", va="top", ha="center")
        save_figure(fig, path, force=force)
