"""The paper's hardware results, re-run on the emulator: Table 3 and Figure 6.

Table 3: each network on each configuration (`emulate` with the per-layer faster dataflow and
the paper's 40% weight sparsity, seeded random weights and input), its cycles and energy; time
normalised as the paper does, to the fastest network of each configuration *among those run*.
The paper's columns (sqnxt_engine/data/paper/paper_table3.csv) are renormalised the same way, to the
fastest of the same networks in the paper, so a subset (--models) compares like with like; for
all 13 networks that leaves the published figures unchanged.

Figure 6: per-layer cycles of 1.0-SqNxt-23 v1-v5 on each array (every charged step: the MAC
layers, and steps without MACs where the hardware charges them, one item per stage and kind),
layers of the same configuration summed into one item as in the paper, with the first network's
efficiency (dense MACs per cycle divided by the number of PEs, the paper's metric) and
utilisation (MACs performed per cycle per PE) lines. A configuration: the stage (the
layer name's first part) and the layer's input and output channels, kernel, stride and groups.
The feature-map size is left out so that the same layer lines up across the variants: the
authors' v1 maps a 227 input to 55x55 in stage 1, v2-v5 (5x5 stem) to 56x56. A network whose
layers are not named by stage (an ONNX model's module paths) has no stage to sum within: each
of its layers is an item of its own, named by its place and op (figures.layer_labels).
"""
from __future__ import annotations

import csv
import math
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, wait
from dataclasses import dataclass, field, replace
from functools import lru_cache
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path

from ..errors import UserError
from ..graph import ops as O
from ..io.network_spec import NetworkSpec
from ..progress import progress_bar
from .figures import COLUMN_WIDTH, mark_stages, paper_figure
from .hardware import EYERISS, PRESETS, load_hardware, with_overrides
from .network import NetworkResult, Reference, conv_shape, emulate_reference, reference
from .output import save_figure
from .workers import available_cpus, pool, worker_count

TABLE3_MODELS = ("AlexNet", "SqueezeNet-v1.0", "SqueezeNet-v1.1", "TinyDarknet", "1.0-SqNxt-23",
                 "1.0-SqNxt-23v2", "1.0-SqNxt-23v3", "1.0-SqNxt-23v4", "1.0-SqNxt-23v5",
                 "MobileNet-v1", "2.0-SqNxt-23", "2.0-SqNxt-23v4", "2.0-SqNxt-23v5")
FIGURE6_MODELS = ("1.0-SqNxt-23", "1.0-SqNxt-23v2", "1.0-SqNxt-23v3", "1.0-SqNxt-23v4",
                  "1.0-SqNxt-23v5")
CONFIGS = ("8x8", "16x16")
# the paper's spelling of a zoo name, where they differ
PAPER_NAMES = {"SqueezeNet-v1.0": "SqueezeNet v1.0", "SqueezeNet-v1.1": "SqueezeNet v1.1",
               "TinyDarknet": "Tiny Darknet", "MobileNet-v1": "MobileNet"}
# paper_table3.csv columns of each configuration
PAPER_COLUMNS = {"8x8": ("time_8x8_32kb", "energy_8x8_32kb"),
                 "16x16": ("time_16x16_128kb", "energy_16x16_128kb")}
REFERENCE_FILE = "paper_table3.csv"


def packaged_reference() -> Traversable:
    """The paper's Table 3 as installed with the package (sqnxt_engine/data/paper/)."""
    return resources.files("sqnxt_engine.data") / "paper" / REFERENCE_FILE


def find_reference(path: str | None) -> Path | Traversable | None:
    """The reference file: `path` if given (an error if missing), else the packaged table
    (None only if the installation lacks it)."""
    if path:
        p = Path(path)
        if p.is_dir():
            p = p / REFERENCE_FILE
        if not p.is_file():
            raise UserError(f"{path}: no such file")
        return p
    packaged = packaged_reference()
    return packaged if packaged.is_file() else None


def read_paper_table3(path: Path | Traversable) -> dict[tuple[str, str], tuple[float, float]]:
    """{(zoo name, config): (time, energy)} from paper_table3.csv."""
    by_paper = {PAPER_NAMES.get(m, m): m for m in TABLE3_MODELS}
    out = {}
    try:
        with path.open(newline="", encoding="utf-8") as f:
            for row in csv.DictReader(f):
                model = by_paper.get(row.get("model", ""))
                if model is None:
                    continue
                for cfg, (tc, ec) in PAPER_COLUMNS.items():
                    out[(model, cfg)] = (float(row[tc]), float(row[ec]))
    except (KeyError, ValueError) as e:
        raise UserError(f"{path}: not the paper's Table 3 ({e})") from None
    return out


@dataclass
class Runs:
    """Emulates networks, sharing one search cache between them (identical layer shapes with
    as many zero weights on the same hardware are searched once per process, on those zeros
    spread evenly: network.kernel_layer).
    jobs > 1: `run_all` spreads the (model, config) emulations over that many worker
    processes (None: one per CPU; never more than the networks or the CPUs, workers.py, with
    `note` told when the jobs asked for are lowered); the search is exact and the weights
    seeded, so the results are the same."""
    sparsity: float = 0.4
    seed: int = 0
    dataflow: str = "best"
    progress: bool = False
    jobs: int | None = 1
    note: Callable[[str], None] | None = None
    cache: dict = field(default_factory=dict)
    results: dict = field(default_factory=dict)   # (model, config) -> NetworkResult
    # hardware parameters (TOML keys, "pipeline.fill_drain") changed on every configuration
    overrides: dict = field(default_factory=dict)
    # report name -> what to build or load, for the names that are no plain zoo model or preset
    networks: dict = field(default_factory=dict)  # -> NetworkSpec (a zoo model with options, a file)
    hardware: dict = field(default_factory=dict)  # -> a hardware TOML file

    def add_network(self, spec: NetworkSpec) -> str:
        """Make `spec` runnable by its report name (spec.name), which is returned."""
        if spec.name in self.networks and self.networks[spec.name] != spec:
            raise UserError(f"two networks are both named {spec.name!r}")
        if spec.file is not None or spec.zoo_options:
            self.networks[spec.name] = spec
        return spec.name

    def add_hardware(self, source: str) -> str:
        """Make a preset or a hardware TOML file runnable by its name (a file's `name` key, else
        its stem), which is returned; a file may not take a preset's name or another file's."""
        if source in PRESETS:
            return source
        name = load_hardware(source).name
        if name in PRESETS:
            raise UserError(f"{source}: is named {name!r}, a preset's name: give it another `name` "
                            "in the file")
        if self.hardware.get(name, source) != source:
            raise UserError(f"{source} and {self.hardware[name]} are both named {name!r}: give one "
                            "another `name` in the file")
        self.hardware[name] = source
        return name

    def run(self, model: str, config: str) -> NetworkResult:
        """The emulation of a network on a hardware, by their names (a zoo model or one of
        `networks`, a preset or one of `hardware`): run once per Runs, then remembered."""
        if (model, config) not in self.results:
            self.results[(model, config)] = self._emulate(model, config, [config])
        return self.results[(model, config)]

    def _emulate(self, model: str, config: str, configs: list[str]) -> NetworkResult:
        """The emulation of model on config, in this process, on a float pass shared with the
        model's other configs in `configs` (run one after another: _reference)."""
        return _emulate(self.networks.get(model, model), self.hardware.get(config, config),
                        self.sparsity, self.seed, self.dataflow, self.overrides, self.progress,
                        self.cache, [self.hardware.get(c, c) for c in configs])

    def run_all(self, pairs) -> None:
        """Emulate every (model, config) of `pairs` not run yet: in this process if jobs is 1
        (one progress bar per network), else in a pool of `jobs` processes, one task per model
        (its configs one after another, sharing its weights; one bar over the models)."""
        todo: dict[str, list[str]] = {}
        for model, config in dict.fromkeys(pairs):
            if (model, config) not in self.results:
                todo.setdefault(model, []).append(config)
        jobs = available_cpus() if self.jobs is None else self.jobs
        workers = worker_count(jobs, len(todo))
        if self.jobs is not None and workers < self.jobs and self.note and len(todo) > 1:
            self.note(f"--jobs {self.jobs} lowered to {workers} ({len(todo)} networks to emulate, "
                      f"{available_cpus()} CPUs available)")
        if workers <= 1:
            for model, configs in todo.items():
                for config in configs:
                    self.results[(model, config)] = self._emulate(model, config, configs)
                _reference.cache_clear()   # (its weights' codes and sums: not while the next is made)
            return
        settings = (self.sparsity, self.seed, self.dataflow, self.overrides)
        pending = {m: _layer_shapes(self.networks.get(m, m)) for m in todo}
        searched: dict = {}   # the searches of the tasks done, given to each task started after
        with progress_bar(len(todo), f"networks ({workers} processes)", self.progress) as bar, \
                pool(workers) as workers_pool:
            running: dict = {}      # future -> its network
            started: dict = {}      # network -> its layer shapes

            def start():
                """A task is started when a worker is free: the first network left that shares
                the fewest layer shapes with the networks running (the SqueezeNext variants
                share most of theirs: started after the one running has finished, they get its
                searches instead of repeating them)."""
                if not pending:
                    return
                busy = set().union(*(started[m] for m in running.values()))
                m = min(pending, key=lambda m: len(pending[m] & busy))
                started[m] = pending.pop(m)
                running[workers_pool.submit(_emulate_in_worker, self.networks.get(m, m),
                                            [self.hardware.get(c, c) for c in todo[m]],
                                            *settings, searched)] = m
            for _ in range(workers):
                start()
            while running:
                for done in wait(running, return_when=FIRST_COMPLETED).done:
                    model = running.pop(done)
                    results, new = done.result()
                    searched.update(new)
                    for config, result in zip(todo[model], results):
                        self.results[(model, config)] = result
                    bar.update()
                    start()


@lru_cache(maxsize=1)  # the configs of a model run one after another: build and draw once
def _reference(model: str | NetworkSpec, seed: int, sparsity: float,
               weight_bits: tuple[int, ...]) -> Reference:
    """A network (named as reports name it) with seeded random weights for a zoo model or a
    graph-only file, pruned in place, and its float pass (network.reference), which the
    network's emulations on every configuration share; the float weights then give way to
    their codes at each of `weight_bits` (Reference.keep_codes), all the emulations read."""
    spec = model if isinstance(model, NetworkSpec) else NetworkSpec.of(model)
    graph, weights, _, _ = replace(spec, seed=seed).load()
    ref = reference(graph, weights, sparsity, seed=seed, in_place=True)
    del weights   # (the runner's steps hold the arrays now: keep_codes drops them)
    ref.keep_codes(weight_bits)
    return ref


def _layer_shapes(model: str | NetworkSpec) -> frozenset:
    """The conv and fc layer shapes of a zoo model, from its graph alone (cheap: no weights);
    none for a network file (reading it is not cheap)."""
    spec = model if isinstance(model, NetworkSpec) else NetworkSpec.of(model)
    if spec.model is None:
        return frozenset()
    from .. import zoo
    try:
        return frozenset(conv_shape(layer.op, layer.in_shapes[0])
                         for layer in zoo.build(spec.model, **spec.options).layers
                         if isinstance(layer.op, (O.Conv2d, O.Linear)))
    except UserError:   # (a layer the kernels cannot run: the emulation says so)
        return frozenset()


def _emulate(model: str | NetworkSpec, config: str, sparsity: float, seed: int, dataflow: str,
             overrides: dict, progress: bool, cache: dict, configs: list[str]) -> NetworkResult:
    """model on config, on the float pass shared by its emulations on `configs` (config among
    them): their weight widths are the codes kept."""
    hw = with_overrides(config, overrides)
    widths = tuple(sorted({with_overrides(c, overrides).weight_bits for c in configs}))
    return emulate_reference(_reference(model, seed, sparsity, widths), hw, dataflow, progress,
                             cache)


_WORKER_CACHE: dict = {}  # a worker process's search cache, kept between its tasks


def _emulate_in_worker(model, configs, sparsity, seed, dataflow, overrides,
                       searched: dict) -> tuple[list[NetworkResult], dict]:
    """A task of run_all: the network on each config, with the searches other workers made
    before the task started (`searched`, merged into this worker's cache; a search's result
    depends on its key alone, so results never depend on which worker searched first), and
    the searches this task made."""
    for key, choice in searched.items():
        _WORKER_CACHE.setdefault(key, choice)
    before = set(_WORKER_CACHE)
    results = [_emulate(model, c, sparsity, seed, dataflow, overrides, False, _WORKER_CACHE,
                        configs) for c in configs]
    _reference.cache_clear()   # the network's codes and sums are not kept into the next task
    return results, {k: v for k, v in _WORKER_CACHE.items() if k not in before}


def paper_config(hw) -> str | None:
    """The paper's configuration a hardware has the array and buffer of (its presets CONFIGS,
    "8x8": 8x8 PEs and 32 KB, "16x16": 16x16 and 128 KB), or None: a variant of a preset
    (another energy table, fill/drain, ...) is compared with the paper's figures for its array
    and buffer."""
    return _paper_arrays().get((hw.pe_rows, hw.pe_cols, hw.gb_bytes))


@lru_cache(maxsize=1)
def _paper_arrays() -> dict[tuple[int, int, int], str]:
    """(rows, cols, buffer bytes) -> the paper's configuration, read from its presets."""
    return {(h.pe_rows, h.pe_cols, h.gb_bytes): c for c in CONFIGS for h in [load_hardware(c)]}


def table3(models, configs, runs: Runs, paper: dict | None) -> list[dict]:
    """One row per (model, config), configs outermost: cycles, normalised time, energy, and the
    paper's figures for the configuration of the same array and buffer (paper_config;
    renormalised to the same networks) with our/paper ratios."""
    runs.run_all([(m, cfg) for cfg in configs for m in models])
    rows = []
    for cfg in configs:
        part = []
        for m in models:
            res = runs.run(m, cfg)
            part.append({"model": m, "config": cfg, "cycles": round(res.cycles),
                         "macs": res.macs, "energy": res.energy.total,
                         "energy_unit": res.hw.energy.unit, "objective": res.hw.objective})
        fastest = min(r["cycles"] for r in part)
        pcfg = paper_config(runs.run(models[0], cfg).hw)
        have = [paper[(r["model"], pcfg)] for r in part if (r["model"], pcfg) in paper] if paper else []
        paper_fastest = min((t for t, _ in have), default=None)
        for r in part:
            r["time"] = r["cycles"] / fastest
            pt, pe = (paper or {}).get((r["model"], pcfg), (None, None))
            if runs.run(r["model"], cfg).hw.energy.model != EYERISS:
                pe = None  # the paper's energies are Eyeriss-normalised: no ratio across units
            r["paper_time"] = None if pt is None else pt / paper_fastest
            r["paper_energy"] = pe
            r["time_ratio"] = None if pt is None else r["time"] / r["paper_time"]
            r["energy_ratio"] = None if pe is None else r["energy"] / pe
        rows += part
    return rows


def table3_wide(rows: list[dict], configs) -> tuple[list[dict], list[str]]:
    """The long rows as one line per model (as the paper prints it) and its columns."""
    by_model: dict[str, dict] = {}
    for r in rows:
        w = by_model.setdefault(r["model"], {"model": r["model"]})
        c = r["config"]
        w.update({f"{c} time": r["time"], f"{c} paper": r["paper_time"], f"{c} t/p": r["time_ratio"],
                  f"{c} energy": r["energy"], f"{c} paper E": r["paper_energy"],
                  f"{c} E/p": r["energy_ratio"]})
    cols = ["model"] + [f"{c} {k}" for c in configs
                        for k in ("time", "paper", "t/p", "energy", "paper E", "E/p")]
    return list(by_model.values()), cols


def plot_table3(rows: list[dict], configs, path) -> None:
    """Table 3 as a figure at column width: per configuration, the normalised time and the
    energy of each network, the emulator's bar beside the paper's where it has one."""
    models = list(dict.fromkeys(r["model"] for r in rows))
    with_paper = any(r["paper_time"] is not None for r in rows)
    height = 0.8 + 2 * (0.45 + 0.08 * len(models) * (2 if with_paper else 1))
    with paper_figure(2, len(configs), figsize=(COLUMN_WIDTH, height), sharey=True,
                      squeeze=False) as (plt, fig, axes):
        y = range(len(models))
        bar = 0.4 if with_paper else 0.8
        for j, cfg in enumerate(configs):
            part = {r["model"]: r for r in rows if r["config"] == cfg}
            unit = next(iter(part.values()))["energy_unit"]
            for i, (key, pkey, label, scale) in enumerate((
                    ("time", "paper_time", "normalised time", 1),
                    ("energy", "paper_energy", f"energy / 10$^9$\n{unit}", 1e9))):
                ax = axes[i][j]
                shift = bar / 2 if with_paper else 0
                ax.barh([k - shift for k in y], [part[m][key] / scale for m in models], bar,
                        label="emulator", color="tab:blue")
                if with_paper:
                    ax.barh([k + shift for k in y], [(part[m][pkey] or 0) / scale for m in models],
                            bar, label="paper", color="tab:orange")
                ax.set_xlabel(label)
                ax.set_title(f"{cfg} PE array", fontsize=7)
                ax.grid(axis="x", lw=0.3, color="0.85")
                ax.set_axisbelow(True)
        axes[0][0].set_yticks(list(y))
        axes[0][0].set_yticklabels(models)
        axes[0][0].set_ylim(len(models) - 0.5, -0.5)   # the first network on top
        if with_paper:
            fig.legend(*axes[0][0].get_legend_handles_labels(), loc="upper center", ncol=2,
                       frameon=False)
        fig.tight_layout(rect=(0, 0, 1, 0.97 if with_paper else 1), h_pad=0.6)
        save_figure(fig, path)


# ---- Figure 6 -------------------------------------------------------------------------------

def figure6(models, configs, runs: Runs) -> list[dict]:
    """One row per (config, layer group, model): the summed cycles and MACs of the model's layers
    of that configuration, the group's efficiency (dense MACs / cycles / PEs, the paper's
    metric) and its utilisation (MACs performed / cycles / PEs: the zero weights SOC-MOP skips
    are no work, so it never exceeds 1). Groups are ordered by where they first occur in a
    network (relative depth), so v2's 5x5 stem comes first."""
    from .figures import layer_labels, named_by_stage, stage
    runs.run_all([(m, cfg) for cfg in configs for m in models])
    rows = []
    for cfg in configs:
        hw = runs.run(models[0], cfg).hw   # the configuration's, the same for every model
        groups: dict[str, dict] = {}  # shape -> {label, pos, seen, per model sums}
        for mi, m in enumerate(models):
            res = runs.run(m, cfg)
            n = len(res.steps)
            by_stage = named_by_stage(r.name for r in res.steps)
            for li, (rec, (label, _)) in enumerate(zip(res.steps, layer_labels(res.steps))):
                # layers named by stage: summed over the stage's layers of one configuration;
                # any other network's layers one by one (no stage to sum within)
                key = layer_config(rec) if by_stage else f"{label}: {layer_config(rec, '')}"
                g = groups.setdefault(key, {"label": rec.name if by_stage else label,
                                            "stage": stage(rec.name) if by_stage else "",
                                            "pos": li / n, "seen": (mi, li), "sums": {}})
                g["pos"] = min(g["pos"], li / n)
                s = g["sums"].setdefault(m, [0, 0.0, 0, 0])
                s[0] += rec.dense_macs
                s[1] += rec.cycles
                s[2] += 1
                s[3] += rec.counters.macs
        order = sorted(groups.items(), key=lambda kv: (kv[1]["pos"], kv[1]["seen"]))
        for gi, (key, g) in enumerate(order):
            for m in models:
                macs, cycles, nl, performed = g["sums"].get(m, (0, 0.0, 0, 0))
                rows.append({"config": cfg, "objective": hw.objective, "group": gi,
                             "stage": g["stage"], "label": g["label"], "layer_config": key,
                             "model": m, "layers": nl, "macs": macs, "cycles": round(cycles),
                             "efficiency": macs / cycles / hw.pes if macs and cycles else None,
                             "utilisation": performed / cycles / hw.pes if macs and cycles else None})
    return rows


def layer_config(rec, where: str | None = None) -> str:
    """The configuration a Figure 6 item sums over (see the module doc), after `where` (default
    the layer's stage); a step without MACs (timed, or a copied shift) by its op kind."""
    where = rec.name.split(".")[0] if where is None else where   # its stage (figures.stage)
    prefix = f"{where}: " if where else ""
    s = rec.conv
    if s is None:
        return f"{prefix}{rec.kind}"
    g = f" g{s.groups}" if s.groups > 1 else ""
    st = f"/{s.stride[0]}" if s.stride != (1, 1) else ""
    return f"{prefix}{s.C} -> {s.K} {s.R}x{s.S}{st}{g}"


def plot_figure6(rows: list[dict], models, configs, path, log: bool = False) -> None:
    """Figure 6 at column width: per configuration, each layer group's cycles for every model
    and the first model's efficiency; groups named by layer and kernel under the bars, stages
    above; the legend above the panels; `log`: cycles on a log scale."""
    with paper_figure(len(configs), 1, figsize=(COLUMN_WIDTH, 0.5 + 2.35 * len(configs)),
                      squeeze=False) as (plt, fig, axes):
        width = 0.85 / len(models)
        for ax, cfg in zip(axes[:, 0], configs):
            part = [r for r in rows if r["config"] == cfg]
            n = max(r["group"] for r in part) + 1
            names, ticks = [""] * n, [""] * n
            for r in part:  # the first layer's name and the kernel (v1's 7x7 stem beside v2's 5x5)
                names[r["group"]] = r["stage"]
                short = r["label"].split(".")[-1]   # the stage is above, the unit varies
                ticks[r["group"]] = f"{short} {r['layer_config'].split()[-1]}"
            # linear: cycles in units of a power of ten, named in the axis label (matplotlib's
            # offset text would sit among the stage names)
            power = 0 if log else max(0, int(math.log10(max(r["cycles"] for r in part) or 1)))
            for i, m in enumerate(models):
                mine = sorted((r for r in part if r["model"] == m), key=lambda r: r["group"])
                ax.bar([r["group"] - 0.425 + (i + 0.5) * width for r in mine],
                       [r["cycles"] / 10 ** power for r in mine], width, label=m, lw=0)
            if log:
                ax.set_yscale("log")
            ax.set_ylabel("cycles" + (" (log scale)" if log else f" ($10^{power}$)" if power else ""))
            ax.set_xticks(range(n))
            ax.set_xticklabels(ticks, rotation=90, fontsize=5)
            ax.set_xlim(-0.6, n - 0.4)
            mark_stages(ax, names)
            ax.text(0.99, 0.96, f"{cfg} PE array", transform=ax.transAxes, ha="right", va="top",
                    fontsize=7)
            ax2 = ax.twinx()
            first = sorted((r for r in part if r["model"] == models[0] and r["efficiency"] is not None),
                           key=lambda r: r["group"])
            ax2.plot([r["group"] for r in first], [r["efficiency"] for r in first], "k:",
                     marker=".", lw=0.8, ms=2.5, label=f"{models[0]}: dense MACs/cycle/PE")
            ax2.plot([r["group"] for r in first], [r["utilisation"] for r in first], "-",
                     color="0.45", marker="x", lw=0.6, ms=2, label=f"{models[0]}: utilisation")
            ax2.set_ylabel("MACs / cycle / PE")
            ax2.set_ylim(bottom=0)
        h1, l1 = axes[0, 0].get_legend_handles_labels()
        h2, l2 = ax2.get_legend_handles_labels()
        ncol = 2   # the lines' labels are long: three columns overflow a column's width
        rows = -(-len(h1 + h2) // ncol)
        fig.legend(h1 + h2, l1 + l2, loc="upper center", ncol=ncol, frameon=False,
                   columnspacing=1.0, handlelength=1.5)
        fig.tight_layout(rect=(0, 0, 1, 1 - (0.11 * rows + 0.08) / fig.get_figheight()), h_pad=0.8)
        save_figure(fig, path)
