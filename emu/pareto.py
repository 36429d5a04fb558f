"""The paper's Figure 7 from a sweep's database: accuracy against energy and against time.

Every record with an accuracy is a circle (area proportional to the network's parameters,
colour by network) in two panels: energy per inference, and latency at the hardware's clock.
In each panel the Pareto front (no other point is both cheaper and at least as accurate) is
drawn as a staircase and its points are labelled with their hardware. Records without an
accuracy (networks changed by zoo options, weights of unknown accuracy) are left out and counted.
"""
from __future__ import annotations

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
    area = lambda r: 30 + 420 * r["params"] / biggest  # noqa: E731  (points^2; the smallest stays visible)
    units = sorted({r["energy_unit"] for r in rs})
    fig, axes = plt.subplots(1, 2, figsize=(12, 5.2))
    for ax, (cost, xlabel, scale) in zip(axes, PANELS):
        for n in networks:
            mine = [r for r in rs if r["network"] == n]
            ax.scatter([r[cost] * scale for r in mine], [r["accuracy"] for r in mine],
                       s=[area(r) for r in mine], color=colours[n], alpha=0.55,
                       edgecolors="black", linewidths=0.5, label=n)
        front = pareto_front(rs, cost)
        xs = [r[cost] * scale for r in front]
        ys = [r["accuracy"] for r in front]
        ax.step(xs, ys, where="post", color="black", lw=1.2, ls="--", label="Pareto front")
        for r in front:
            ax.annotate(hardware_label(r), (r[cost] * scale, r["accuracy"]), xytext=(6, -10),
                        textcoords="offset points", fontsize=8)
        ax.set_xlabel(xlabel.format(unit=" / ".join(units)))
        ax.set_ylabel(f"top-1 accuracy (%)\n{_source_line(rs)}", fontsize=9)
        xs_all = [r[cost] * scale for r in rs]
        if max(xs_all) > 10 * min(xs_all):
            ax.set_xscale("log")
        ax.grid(alpha=0.3)
        ax.margins(x=0.12, y=0.15)
    handles, labels = axes[0].get_legend_handles_labels()
    for h in handles[:-1]:   # the legend's circles at one size: size stands for parameters
        h.set_sizes([60])
    fig.legend(handles, labels, loc="lower center", ncol=min(len(labels), 4), fontsize=9,
               frameon=False)
    fig.suptitle(f"Accuracy against energy and time on the emulated accelerator ({len(rs)} points; "
                 f"circle area: parameters, largest {biggest / 1e6:.2f} M)", fontsize=11)
    fig.tight_layout(rect=(0, 0.06 + 0.035 * ((len(labels) - 1) // 4), 1, 1))
    save_figure(fig, path, dpi=130, force=force)
    plt.close(fig)


def _source_line(rs: list[dict]) -> str:
    """What the accuracies are, in a few words (one data set, or several)."""
    kinds = sorted({r["accuracy_source"].split(" top-1")[0] for r in rs})
    return " and ".join(kinds) + " top-1"
