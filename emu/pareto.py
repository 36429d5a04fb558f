"""The paper's Figure 7 from a sweep's database: accuracy against energy and against time.

Every record with an accuracy is a circle (area proportional to the network's parameters,
colour by network) in two panels: energy per inference, and latency at the hardware's clock.
In each panel the Pareto front (no other point is both cheaper and at least as accurate) is
drawn as a staircase and its points are labelled with their hardware. Records without an
accuracy (networks changed by zoo options, weights of unknown accuracy) are left out and counted.
"""
from __future__ import annotations

from ..errors import UserError
from .output import pyplot, save_figure

# (record field, axis label, scale to the axis' unit)
PANELS = (("energy", "energy per inference ({unit})", 1.0),
          ("latency_s", "latency per inference (ms)", 1e3))


def pareto_front(records: list[dict], cost: str) -> list[dict]:
    """The records no other beats: lower `cost` at equal or higher accuracy, or higher accuracy
    at equal or lower cost; by increasing cost."""
    front, best = [], float("-inf")
    for r in sorted(records, key=lambda r: (r[cost], -r["accuracy"])):
        if r["accuracy"] > best:
            front.append(r)
            best = r["accuracy"]
    return front


def hardware_label(r: dict) -> str:
    """A point's hardware in a few characters: array, buffer, and what else differs from the
    paper's accelerator (word width, dataflow, sparsity)."""
    parts = [f"{r['pe_rows']}x{r['pe_cols']}", f"{r['gb_bytes'] / 1024:g} KB"]
    if r["word_bits"] != 16:
        parts.append(f"{r['word_bits']}-bit")
    if r["dataflow"] != "best":
        parts.append(r["dataflow"])
    if r["sparsity"] != 0.4:
        parts.append(f"sparsity {r['sparsity']:g}")
    return ", ".join(parts)


def with_accuracy(records: list[dict]) -> list[dict]:
    return [r for r in records if r.get("accuracy") is not None]


def fronts(records: list[dict]) -> dict[str, list[dict]]:
    """{cost field: its Pareto front} for both panels."""
    rs = with_accuracy(records)
    return {cost: pareto_front(rs, cost) for cost, _, _ in PANELS}


def plot_pareto(records: list[dict], path, force: bool = False) -> None:
    rs = with_accuracy(records)
    plt = pyplot()
    networks = list(dict.fromkeys(r["network"] for r in rs))
    colours = {n: plt.get_cmap("tab10")(i % 10) for i, n in enumerate(networks)}
    biggest = max(r["params"] for r in rs)
    area = lambda params: 400 * params / biggest  # noqa: E731  (points^2, proportional to size)
    units = sorted({r["energy_unit"] for r in rs})
    if len(units) > 1:  # one axis cannot show pJ beside MAC units
        raise UserError(f"the records' energies are in different units ({', '.join(units)}): plot "
                        "the hardware of one energy model at a time")
    fig, axes = plt.subplots(1, 2, figsize=(12, 5.2))
    for ax, (cost, xlabel, scale) in zip(axes, PANELS):
        for n in networks:
            mine = [r for r in rs if r["network"] == n]
            ax.scatter([r[cost] * scale for r in mine], [r["accuracy"] for r in mine],
                       s=[area(r["params"]) for r in mine], color=colours[n], alpha=0.55,
                       edgecolors="black", linewidths=0.5)
        front = pareto_front(rs, cost)
        xs = [r[cost] * scale for r in front]
        ys = [r["accuracy"] for r in front]
        ax.step(xs, ys, where="post", color="black", lw=1.2, ls="--")
        ax.scatter(xs, ys, s=[area(r["params"]) for r in front], facecolors="none",
                   edgecolors="black", linewidths=1.6)
        for r in front:
            ax.annotate(hardware_label(r), (r[cost] * scale, r["accuracy"]), xytext=(10, 10),
                        textcoords="offset points", fontsize=8,
                        bbox={"boxstyle": "round,pad=0.2", "fc": "white", "ec": "none", "alpha": 0.85})
        ax.set_xlabel(xlabel.format(unit=units[0]))
        ax.set_ylabel(f"{_source_line(rs)} (%)")
        xs_all = [r[cost] * scale for r in rs]
        if max(xs_all) > 10 * min(xs_all):
            ax.set_xscale("log")
        ax.grid(alpha=0.3)
        ax.margins(x=0.12, y=0.15)
    # the legend: networks by colour (at one size), then the size scale and the front
    from matplotlib.lines import Line2D
    handles = [Line2D([], [], ls="", marker="o", markersize=8, color=colours[n], alpha=0.7,
                      markeredgecolor="black", markeredgewidth=0.5) for n in networks]
    labels = list(networks)
    for params in _size_steps(biggest):
        handles.append(Line2D([], [], ls="", marker="o", markersize=area(params) ** 0.5,
                              color="lightgrey", markeredgecolor="black", markeredgewidth=0.5))
        labels.append(f"{params / 1e6:g} M parameters")
    handles.append(Line2D([], [], color="black", ls="--", marker="o", markersize=8,
                          markerfacecolor="none", markeredgewidth=1.6))
    labels.append("Pareto front")
    fig.legend(handles, labels, loc="lower center", ncol=min(len(labels), 4), fontsize=9,
               frameon=False, labelspacing=1.2)
    fig.suptitle(f"Accuracy against energy and time on the emulated accelerator ({len(rs)} "
                 "points; circle area proportional to parameters)", fontsize=11)
    fig.tight_layout(rect=(0, 0.05 + 0.06 * ((len(labels) + 3) // 4), 1, 1))
    save_figure(fig, path, dpi=130, force=force)
    plt.close(fig)


def _size_steps(biggest: float) -> list[float]:
    """Two round parameter counts for the size legend: the biggest network's, rounded to one
    significant figure, and half of it."""
    import math
    step = 10 ** math.floor(math.log10(biggest))
    top = round(biggest / step) * step
    return [top / 2, top]


def _source_line(rs: list[dict]) -> str:
    """What the accuracies are, in a few words (one data set, or several)."""
    kinds = sorted({r["accuracy_source"].split(" top-1")[0] for r in rs})
    return " and ".join(kinds) + " top-1"
