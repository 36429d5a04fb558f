"""The co-design loop (sqnxt-codesign): networks and hardware searched together, accuracy measured
by training (train/train.py) and cost by the emulator (the sweep's points and records, sweep.py).

A search file (TOML) crosses network axes with a sweep's hardware table:

    [network]
    model = "1.0-SqNxt-23"          # a paper-family SqueezeNext, trained in its Fashion-MNIST form
    [network.axes]                  # each list an axis; every combination is a candidate
    width = [1.0, 0.75]             # SqueezeNextSpec fields (zoo/squeezenext.py) ...
    depths = [[6, 6, 8, 1], [2, 4, 14, 1]]
    small_stem_kernel = [3, 5]      # the 28x28 stem's kernel
    spatial = ["separable", "shift"]
    prune = [0.0, 0.4]              # ... and the pruning level (below)

    [hardware]                      # exactly a sweep's [hardware] table (sweep.py)
    base = "16x16"
    points = [{ pe = { rows = 8, cols = 8 } }, { pe = { rows = 16, cols = 16 } }]
    [hardware.grid]
    buffer.bytes = [32768, 131072]

    [emulation]
    dataflow = "best"               # a list makes it an axis, as in a sweep
    seed = 0

    [training]
    rungs = [{ train_images = 4000, epochs = 2 }, { train_images = 20000, epochs = 4 }]
    keep = 0.34                     # the fraction of a rung's candidates trained on the next
    test_images = 2000              # the first N of the test split score every rung
    threads = 1                     # torch threads per training job
    recipe = { batch_size = 64, warmup_steps = 20 }   # Recipe fields (train.py) over its defaults

Axes: every SqueezeNextSpec field but those fixing the Fashion-MNIST form (small_input,
input_size, in_channels, num_classes, stem_stride, family) and stem_kernel (the ImageNet stem's,
unused by it); `prune` is the fraction of every conv and fc weight tensor pruned by magnitude at
initialisation, its mask kept through training (sqnxt-train --prune without --init), and the
emulation's sparsity (the emulator prunes its seeded weights to the same fraction per layer).
Precision is a hardware axis (arith.word_bits in the hardware table); the accuracy stays the
float32 one, which the records' accuracy_source says.

Successive halving: rung 0 (the proxy schedule: a subset of the training split, few epochs)
trains every candidate; each later rung trains the best `keep` fraction of the previous rung's
candidates (by that rung's accuracy, ties by name; at least one) with its longer schedule, from
scratch (the cosine schedule depends on the epochs). Training records go into the `training`
table of the sweep database (sweep.ResultsDB, its marker and checks), keyed by the sha256 of the
candidate's zoo network, the recipe, the images, the torch threads and the package version; a
job stored is never trained again, and a job in flight keeps a checkpoint per epoch (train/
checkpoint.py, in DB.checkpoints/) from which a killed run continues with the same weights. The
last rung's jobs leave their trained networks as the engine's weight files, DB.weights/KEY.npz
(sqnxt-train's export), so the best can be evaluated on the whole test split and shipped without
training it again.

The emulation is a sweep (sweep.run_sweep: the same records, keys, executors and resumption) of
every candidate on every hardware point. For the Pareto view, one record per candidate and
hardware point is added to the `points` table: the emulation's record with the candidate's
accuracy at the last rung it reached (its schedule in accuracy_source, its rung in `rung`), the
network named by the candidate's short label, keyed by the emulation's key and the candidate's
training identity, and replaced as the candidate reaches later rungs. `sqnxt-emu pareto DB`
draws them (records without an accuracy, the plain emulation ones, are left out).
"""
from __future__ import annotations

import hashlib
import itertools
import json
import math
import os
import re
import socket
import sqlite3
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from datetime import UTC, datetime
from math import prod
from pathlib import Path

from .. import __version__, limits
from ..errors import UserError
from ..io.files import read_text
from ..io.network_spec import NetworkSpec
from ..io.structured_text import load_json, load_toml
from ..progress import progress_bar
from ..zoo.squeezenext import SqueezeNextSpec
from . import sweep as SW
from .hardware import _check


class SearchError(UserError):
    """A malformed search file; the message names the file and the key."""


# the Fashion-MNIST form every candidate is trained in (train.py's SMALL_INPUT), fixed
FORM_FIELDS = ("small_input", "input_size", "in_channels", "num_classes", "stem_stride", "family",
               "stem_kernel")
AXES = tuple(f.name for f in fields(SqueezeNextSpec) if f.name not in FORM_FIELDS) + ("prune",)
_TOP_KEYS = ("network", "hardware", "emulation", "training")
_TRAINING_KEYS = ("rungs", "keep", "test_images", "threads", "recipe")
MAX_RUNGS = 8
FMNIST_TRAIN, FMNIST_TEST = 60_000, 10_000  # the split sizes: a subset is the first N


@dataclass(frozen=True)
class Candidate:
    """One network of the search: the zoo model, its axis values, and its pruning level."""
    model: str
    options: str  # the axis values without prune, canonical JSON
    prune: float

    @property
    def zoo_options(self) -> dict:
        from ..train.train import SMALL_INPUT
        return {**SMALL_INPUT, **json.loads(self.options)}

    @property
    def label(self) -> str:
        """A short name for reports: the axis values, e.g. `w1 d2-4-14-1 k5 separable p0.4`."""
        short = {"width": "w", "depths": "d", "small_stem_kernel": "k", "groups": "g"}
        parts = []
        for k, v in json.loads(self.options).items():
            v = "-".join(map(str, v)) if isinstance(v, list) else f"{v:g}" if isinstance(v, float) else v
            parts.append(f"{short.get(k, k + '=' if k not in ('spatial', 'wiring') else '')}{v}")
        return " ".join(parts + [f"p{self.prune:g}"])

    def network(self, seed: int = 0) -> NetworkSpec:
        return NetworkSpec.of(self.model, self.zoo_options, seed=seed)


@dataclass(frozen=True)
class Rung:
    train_images: int
    epochs: int


@dataclass(frozen=True)
class Search:
    name: str
    candidates: tuple[Candidate, ...]
    points: tuple[SW.Point, ...]  # every candidate on every hardware point (the emulation sweep)
    rungs: tuple[Rung, ...]
    keep: float
    test_images: int
    threads: int
    recipe: dict  # Recipe fields over its defaults (epochs and prune come from rung and candidate)

    def points_of(self, c: Candidate) -> list[SW.Point]:
        options = c.network().zoo_options
        return [p for p in self.points if p.network.zoo_options == options and p.sparsity == c.prune]


def _canonical(value) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def load_search(path: str | Path) -> Search:
    """Read and validate a search file (module doc): every candidate built once (an unknown
    option is refused here, not in a worker), counts bounded before anything is expanded."""
    path = Path(path)
    where = path.name
    doc = _only(load_toml(read_text(path), where), _TOP_KEYS, where, "")
    if "network" not in doc:
        raise SearchError(f"{where}: network is missing ([network] with model and axes)")
    net = _only(SW._table(doc["network"], where, "network"), ("model", "axes"), where, "network.")
    model = _check(where, "network.model", "str", net.get("model", "1.0-SqNxt-23"))
    axes = SW._table(net.get("axes", {}), where, "network.axes")
    for k, v in _only(axes, AXES, where, "network.axes.", "axis").items():
        if not isinstance(v, list) or not v:
            raise SearchError(f"{where}: network.axes.{k} must be a non-empty list, got {v!r:.60}")
        if len({_canonical(x) for x in v}) < len(v):
            raise SearchError(f"{where}: network.axes.{k} lists a value twice")
    emulation = SW._table(doc.get("emulation", {}), where, "emulation")
    if "sparsity" in emulation:
        raise SearchError(f"{where}: emulation.sparsity is the candidate's network.axes.prune here")
    emu_axes = SW._emulation_axes(emulation, where)  # dataflow, sparsity (the default), seed
    dataflows, seeds = emu_axes[0], emu_axes[2]
    hw_table = SW._table(doc.get("hardware", {}), where, "hardware")
    n_candidates = prod(len(v) for v in axes.values())
    n_points = n_candidates * SW._hardware_count(hw_table, where) * len(dataflows) * len(seeds)
    if n_points > limits.current().max_sweep_points:  # counted before anything is expanded
        raise SearchError(f"{where}: {n_candidates:,} candidates make {n_points:,} emulation points, "
                          f"more than max_sweep_points ({limits.current().max_sweep_points:,}); "
                          "narrow the axes, or raise the limit with --resource-limit max_sweep_points=N")
    training = _training(SW._table(doc.get("training", {}), where, "training"), where)
    candidates = _candidates(model, axes, where)
    hardware = SW._hardware_points(hw_table, where, path.parent)
    points = tuple(SW.Point(c.network(seed), hw, overrides, dataflow, c.prune, seed)
                   for c in candidates for hw, overrides in hardware
                   for dataflow in dataflows for seed in seeds)
    return Search(path.stem, candidates, points, **training)


def _only(table: dict, known, where: str, prefix: str, what: str = "key") -> dict:
    """The table, if every key in it is one of `known`; else a SearchError naming the first other."""
    for k in table:
        if k not in known:
            raise SearchError(f"{where}: unknown {what} {prefix}{k} (expected {', '.join(known)})")
    return table


def _candidates(model: str, axes: dict, where: str) -> tuple[Candidate, ...]:
    from .. import zoo
    from ..zoo.squeezenext import spec_from_name
    try:
        model = zoo.canonical(model)
    except UserError as e:
        raise SearchError(f"{where}: network.model: {e}") from None
    spec = spec_from_name(model)
    if spec is None or spec.family != "paper":
        raise SearchError(f"{where}: network.model must be a paper-family SqueezeNext "
                          f"(e.g. 1.0-SqNxt-23), got {model!r}")
    names = list(axes)
    out = []
    for combo in itertools.product(*(axes[k] for k in names)):
        values = dict(zip(names, combo))
        prune = values.pop("prune", 0.0)
        try:
            prune = SW._emulation_value(where, "network.axes.prune", "fraction", prune)
        except SW.SweepError as e:
            raise SearchError(str(e)) from None
        c = Candidate(model, _canonical(values), float(prune))
        try:
            zoo.build(model, **c.zoo_options)
        except UserError as e:
            raise SearchError(f"{where}: network.axes {_canonical(values)[:120]}: {e}") from None
        out.append(c)
    return tuple(out)


def _training(v: dict, where: str) -> dict:
    from ..train.train import Recipe
    _only(v, _TRAINING_KEYS, where, "training.")

    def whole(key, x, lo, hi):
        if isinstance(x, bool) or not isinstance(x, int) or not lo <= x <= hi:
            raise SearchError(f"{where}: {key} must be a whole number from {lo:,} to {hi:,}, got {x!r:.40}")
        return x
    rungs = v.get("rungs", [{"train_images": 4000, "epochs": 2}])
    if not isinstance(rungs, list) or not 1 <= len(rungs) <= MAX_RUNGS:
        raise SearchError(f"{where}: training.rungs must be a list of 1 to {MAX_RUNGS} tables")
    out = []
    for i, r in enumerate(rungs):
        r = SW._table(r, where, f"training.rungs[{i}]")
        if set(r) != {"train_images", "epochs"}:
            raise SearchError(f"{where}: training.rungs[{i}] needs train_images and epochs (only)")
        out.append(Rung(whole(f"training.rungs[{i}].train_images", r["train_images"], 1, FMNIST_TRAIN),
                        whole(f"training.rungs[{i}].epochs", r["epochs"], 1, 1000)))
    keep = v.get("keep", 0.5)
    if isinstance(keep, bool) or not isinstance(keep, (int, float)) or not 0 < keep <= 1:
        raise SearchError(f"{where}: training.keep must be a fraction in (0, 1], got {keep!r:.40}")
    recipe = SW._table(v.get("recipe", {}), where, "training.recipe")
    known = [f.name for f in fields(Recipe) if f.name not in ("epochs", "prune")]
    for k in recipe:
        if k not in known:
            raise SearchError(f"{where}: unknown key training.recipe.{k} (expected {', '.join(known)}; "
                              "epochs come from the rungs, prune from network.axes)")
    try:
        Recipe(**recipe)
    except (UserError, TypeError) as e:
        raise SearchError(f"{where}: training.recipe: {e}") from None
    return {"rungs": tuple(out), "keep": float(keep), "recipe": dict(sorted(recipe.items())),
            "test_images": whole("training.test_images", v.get("test_images", 2000), 1, FMNIST_TEST),
            "threads": whole("training.threads", v.get("threads", 1), 1, 256)}


# ---- training jobs ---------------------------------------------------------------------------

@dataclass(frozen=True)
class Job:
    """One candidate trained with one rung's schedule."""
    candidate: Candidate
    rung: int
    recipe: str  # the full Recipe, canonical JSON
    train_images: int
    test_images: int
    threads: int

    @property
    def key(self) -> str:
        doc = {"model": self.candidate.model, "zoo_options": self.candidate.zoo_options,
               "recipe": json.loads(self.recipe), "data": "fashion-mnist", "train_images": self.train_images,
               "test_images": self.test_images, "threads": self.threads, "version": __version__}
        return hashlib.sha256(_canonical(doc).encode()).hexdigest()

    @property
    def epochs(self) -> int:
        return json.loads(self.recipe)["epochs"]


def jobs_of(search: Search, rung: int, candidates) -> list[Job]:
    from ..train.train import Recipe
    r = search.rungs[rung]
    return [Job(c, rung, _canonical(asdict(Recipe(**search.recipe, epochs=r.epochs, prune=c.prune))),
                r.train_images, search.test_images, search.threads) for c in candidates]


def train_job(job: Job, checkpoints: str | None = None, weights: str | None = None) -> tuple[dict, dict]:
    """(record, run info) of one training job: the candidate built from the zoo, trained with
    the recipe on the first train_images of Fashion-MNIST's training split (on the CPU, `threads`
    torch threads), scored on the first test_images of its test split. With `checkpoints` (a
    folder) the state is kept there after every epoch and a stopped job continues from it; with
    `weights` (a folder) the trained network is written there as the engine's weight file
    KEY.npz (sqnxt-train's export), before the job's record is returned."""
    import numpy as np
    import torch

    from .. import zoo
    from ..io.datasets import load_dataset
    from ..train.checkpoint import Checkpoint
    from ..train.torch_graph import GraphModule
    from ..train.train import (
        Recipe,
        export_weights,
        magnitude_masks,
        run_record,
        torch_accuracy,
        train,
        write_run_record,
    )
    t0 = time.perf_counter()
    recipe = Recipe(**json.loads(job.recipe))
    torch.set_num_threads(job.threads)
    torch.manual_seed(recipe.seed)
    np.random.seed(recipe.seed)
    c = job.candidate
    graph = zoo.build(c.model, **c.zoo_options)
    model = GraphModule(graph)
    x, y = load_dataset("fashion-mnist", "train")
    xt, yt = load_dataset("fashion-mnist", "test")
    masks = magnitude_masks(model, recipe.prune) if recipe.prune else None
    saver = None
    setting = {"threads": job.threads, "device": "cpu"}
    if checkpoints:
        Path(checkpoints).mkdir(exist_ok=True)
        saver = Checkpoint(Path(checkpoints) / f"{job.key}.npz", {"job": job.key}, setting)
    seconds = train(model, x[:job.train_images], y[:job.train_images], recipe, masks, log=lambda m: None,
                    device="cpu", checkpoint=saver)
    accuracy = torch_accuracy(model, xt[:job.test_images], yt[:job.test_images])
    if weights:
        Path(weights).mkdir(exist_ok=True)
        out = Path(weights) / f"{job.key}.npz"
        export_weights(model, out, c.model, c.zoo_options, force=True, log=lambda m: None)
        # beside it, sqnxt-train's record of the run (what `python -m sqnxt_engine.train.manifest`
        # reads to ship the file): the time and parts over every stop, which the checkpoint
        # holds and loses when it is removed below
        run = {**run_record(recipe, seconds, saver, setting), "init": None,
               "command": f"sqnxt-codesign (job {job.key})",
               "torch_top1_float32": None}   # on the job's test images only, not all 10,000
        write_run_record(out.with_suffix(".train.json"), run, force=True)
    record = {"key": job.key, "network": c.label, "model": c.model, "zoo_options": c.zoo_options,
              "prune": c.prune, "rung": job.rung, "epochs": recipe.epochs,
              "train_images": job.train_images, "test_images": job.test_images,
              "threads": job.threads, "recipe": asdict(recipe), "accuracy": accuracy,
              "params": graph.params, "macs": graph.macs, "version": __version__}
    info = {"finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "worker": f"{socket.gethostname()}:{os.getpid()}", "seconds": time.perf_counter() - t0}
    if saver:
        saver.remove()
    return record, info


# ---- the database: the sweep's, with a training table ------------------------------------------

TRAINING_COLUMNS = ("network", "rung", "epochs", "train_images", "test_images", "accuracy")
TRAINING_FIELDS = {"key": str, "network": str, "rung": int, "epochs": int, "train_images": int,
                   "test_images": int, "accuracy": (int, float), "params": int, "macs": int}


class CodesignDB(SW.ResultsDB):
    """A sweep database (its marker, checks and `points` table) with a `training` table: one
    row per training job, the record as JSON beside its columns and its run's."""

    def __init__(self, path, readonly: bool = False):
        super().__init__(path, readonly)
        cols = ", ".join(f'"{c}"' for c in TRAINING_COLUMNS + SW.RUN_COLUMNS)
        try:
            if not readonly:
                self.conn.execute(f"CREATE TABLE IF NOT EXISTS training (key TEXT PRIMARY KEY, {cols}, "
                                  "record TEXT NOT NULL)")
            have = [r[1] for r in self.conn.execute("PRAGMA table_info(training)")]
        except sqlite3.Error as e:
            raise UserError(f"{self.path}: cannot open the training table ({e})") from None
        if have != ["key", *TRAINING_COLUMNS, *SW.RUN_COLUMNS, "record"]:
            raise UserError(f"{self.path}: its training table has other columns; use a new --db")

    def trained(self) -> dict[str, dict]:
        """{key: training record}, each checked (the database may have been written by anyone)."""
        rows = self._query("SELECT record FROM training ORDER BY key")[1]
        out = {}
        for i, (r,) in enumerate(rows):
            where = f"{self.path}: training record {i}"
            record = SW.check_record(load_json(r, where) if isinstance(r, str) else r, where,
                                     TRAINING_FIELDS, "training record")
            out[record["key"]] = record
        return out

    def add_training(self, record: dict, info: dict) -> None:
        self.add(record, info, "training", TRAINING_COLUMNS)


# ---- running ---------------------------------------------------------------------------------

_BUDGET = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(epochs?|h)\s*$")


@dataclass(frozen=True)
class Budget:
    """What one command may spend on training: candidate-epochs (an epoch over a job's own
    training subset), or hours of wall time; None: no bound."""
    epochs: float | None = None
    hours: float | None = None

    @classmethod
    def parse(cls, text: str | None) -> Budget:
        if text is None:
            return cls()
        m = _BUDGET.match(text)
        if not m or float(m[1]) <= 0:
            raise UserError(f"--budget must be N epochs or N h (e.g. 48epochs, 2.5h), got {text!r:.40}")
        return cls(epochs=float(m[1])) if m[2].startswith("epoch") else cls(hours=float(m[1]))


@dataclass
class CodesignRun:
    trained: int = 0
    skipped: int = 0
    epochs: int = 0
    stopped_by_budget: bool = False
    emulation: SW.SweepRun | None = None


def run_codesign(search: Search, db: CodesignDB, scheduler=None, budget: Budget = Budget(),
                 progress: bool = False, log: Callable[[str], None] | None = None) -> CodesignRun:
    """Emulate every candidate on every hardware point (a sweep), train the rungs (successive
    halving) within the budget, and write the Pareto records (module doc). Everything stored is
    kept; the same call continues where a killed or budget-stopped one left off."""
    run = CodesignRun()
    client = scheduler
    if isinstance(scheduler, str):
        try:
            from distributed import Client
        except ImportError:
            raise UserError(SW.DASK_HINT) from None
        client = SW._connect(Client, scheduler)
    t0 = time.monotonic()
    try:
        run.emulation = SW.run_sweep(SW.Sweep(search.name, search.points), db, 1, client, progress)
        candidates = list(search.candidates)
        for rung in range(len(search.rungs)):
            jobs = jobs_of(search, rung, candidates)
            done = db.trained()
            todo = [j for j in jobs if j.key not in done]
            run.skipped += len(jobs) - len(todo)
            allowed = []
            for j in todo:   # the epochs budget is decided before the jobs start
                if budget.epochs is not None and run.epochs + j.epochs > budget.epochs:
                    run.stopped_by_budget = True
                    break
                run.epochs += j.epochs
                allowed.append(j)
            with progress_bar(len(todo), f"codesign {search.name} rung {rung}", progress) as bar:
                # the last rung's trained networks are kept (DB.weights/KEY.npz): the best can be
                # evaluated on the whole test split and shipped without training it again
                weights = str(db.path) + ".weights" if rung == len(search.rungs) - 1 else None
                for record, info in _train_results(allowed, client, str(db.path) + ".checkpoints",
                                                   weights, budget, t0, run):
                    db.add_training(record, info)
                    run.trained += 1
                    bar.update()
                    if log:
                        log(f"rung {rung}: {record['network']}: {record['accuracy']:.2f}% "
                            f"({info['seconds']:.0f} s)")
            done = db.trained()
            if any(j.key not in done for j in jobs):
                run.stopped_by_budget = True
                break
            ranked = sorted(jobs, key=lambda j: (-done[j.key]["accuracy"], j.candidate.label))
            candidates = [j.candidate for j in ranked[:max(1, math.ceil(search.keep * len(ranked)))]]
        write_front_records(search, db)
    finally:
        if client is not scheduler:
            client.close()
    return run


def _train_results(jobs: list[Job], client, checkpoints: str, weights: str | None, budget: Budget,
                   t0: float, run):
    """(record, info) of each job as it finishes: here one at a time, or on the Dask cluster,
    each keeping its checkpoints in `checkpoints` and, if given, its weight file in `weights`
    either way. An hours budget stops starting jobs here, and cancels those not finished on a
    cluster."""
    def over() -> bool:
        return budget.hours is not None and time.monotonic() - t0 > budget.hours * 3600
    if client is None:
        for j in jobs:
            if over():
                run.stopped_by_budget = True
                return
            yield train_job(j, checkpoints, weights)
        return
    from distributed import as_completed
    # the checkpoints' folder is the database's: workers on this machine (a LocalCluster) or on a
    # shared file system continue a stopped job from it, as a run here does
    futures = [client.submit(train_job, j, checkpoints, weights, key=f"sqnxt-codesign-{j.key}", pure=False)
               for j in jobs]
    try:
        for f in as_completed(futures):
            yield f.result()
            if over():
                run.stopped_by_budget = True
                return
    finally:
        client.cancel(futures)


def last_rungs(search: Search, trained: dict[str, dict]) -> dict[Candidate, dict]:
    """{candidate: its training record of the last rung it reached in this search}."""
    out = {}
    for rung in range(len(search.rungs)):
        for j in jobs_of(search, rung, search.candidates):
            if j.key in trained:
                out[j.candidate] = trained[j.key]
    return out


def front_key(point: SW.Point, search: Search, c: Candidate) -> str:
    """A Pareto record's key: the emulation point's and the candidate's training identity
    (its zoo network, the recipe and the rungs), not the rung reached, so that a later rung
    replaces the record."""
    doc = {"emulation": point.key, "candidate": c.zoo_options, "prune": c.prune,
           "recipe": search.recipe, "rungs": [asdict(r) for r in search.rungs],
           "test_images": search.test_images, "threads": search.threads}
    return hashlib.sha256(_canonical(doc).encode()).hexdigest()


def write_front_records(search: Search, db: CodesignDB) -> int:
    """Add (or replace) the Pareto records of every trained candidate (module doc)."""
    emulated = {r["key"]: r for r in db.records()}
    count = 0
    now = datetime.now(UTC).isoformat(timespec="seconds")
    for c, t in last_rungs(search, db.trained()).items():
        for p in search.points_of(c):
            if p.key not in emulated:
                continue
            source = (f"Fashion-MNIST test top-1 (float32, first {t['test_images']:,} test images) after "
                      f"{t['epochs']} epochs on {t['train_images']:,} training images (sqnxt-codesign "
                      f"{search.name}, rung {t['rung']})")
            record = {**emulated[p.key], "key": front_key(p, search, c), "network": c.label,
                      "accuracy": t["accuracy"], "accuracy_source": source, "rung": t["rung"],
                      "emulation_key": p.key, "training_key": t["key"]}
            db.add(record, {"finished_at": now, "worker": "sqnxt-codesign", "seconds": 0.0})
            count += 1
    return count


def spearman(a: list[float], b: list[float]) -> float:
    """Spearman's rank correlation (ties get their average rank); nan under two pairs or a
    constant side."""
    import numpy as np

    def ranks(v):
        v = np.asarray(v, float)
        order = v.argsort(kind="stable")
        r = np.empty(len(v))
        r[order] = np.arange(len(v), dtype=float)
        for x in np.unique(v):   # average rank of ties
            r[v == x] = r[v == x].mean()
        return r
    if len(a) < 2:
        return float("nan")
    ra, rb = ranks(a), ranks(b)
    if ra.std() == 0 or rb.std() == 0:
        return float("nan")
    return float(np.corrcoef(ra, rb)[0, 1])


def summary(search: Search, db: CodesignDB) -> dict:
    """The candidates (accuracy per rung, parameters, MACs, energy and latency on their cheapest
    hardware point), the rank agreement of each rung
    with the next over the candidates trained on both, and the Pareto fronts of the search."""
    from .pareto import pareto_front, value
    trained = db.trained()
    rows = {c: {"candidate": c.label} for c in search.candidates}
    for rung in range(len(search.rungs)):
        for j in jobs_of(search, rung, search.candidates):
            t = trained.get(j.key)
            if t:
                rows[j.candidate].update(params=t["params"], macs=t["macs"])
                rows[j.candidate][f"rung{rung}"] = t["accuracy"]
    emulated = {r["key"]: r for r in db.records()}
    for c, row in rows.items():   # the candidate's cheapest hardware point in each cost
        mine = [emulated[p.key] for p in search.points_of(c) if p.key in emulated]
        if mine:
            row["energy_min"] = min(r["energy"] for r in mine)
            row["latency_ms_min"] = min(r["latency_s"] for r in mine) * 1e3
    agreement = []
    for rung in range(1, len(search.rungs)):
        both = [r for r in rows.values() if f"rung{rung}" in r and f"rung{rung - 1}" in r]
        agreement.append({"rungs": [rung - 1, rung], "candidates": len(both),
                          "spearman": spearman([r[f"rung{rung - 1}"] for r in both],
                                               [r[f"rung{rung}"] for r in both])})
    keys = {front_key(p, search, c) for c in search.candidates for p in search.points_of(c)}
    mine = [r for k, r in emulated.items() if k in keys]
    return {"candidates": list(rows.values()), "rank_agreement": agreement,
            "fronts": {column: [{"network": r["network"], "hardware": r["hardware"],
                                 "dataflow": r["dataflow"], column: value(r, metric),
                                 "accuracy": r["accuracy"], "rung": r["rung"]}
                                for r in pareto_front(mine, metric)]
                       for metric, column in (("energy", "energy"), ("latency", "latency_ms"))}}


# ---- the command -----------------------------------------------------------------------------

def _main(argv: list[str]) -> int:
    from ..cli.common import emit, parser, to_json
    p = parser("sqnxt-codesign", "Search networks and hardware together: accuracy by training "
               "(successive halving), cost by the emulator, one SQLite database (resumable).")
    p.add_argument("search", metavar="SEARCH.toml", help="the search file (docs/codesign.md)")
    p.add_argument("--db", required=True, help="the results database (a sweep database: sqnxt-emu "
                   "pareto draws it); what it holds is not computed again")
    p.add_argument("--scheduler", metavar="ADDRESS", help="run the emulation and the training jobs on "
                   "this Dask scheduler (e.g. tcp://host:8786)")
    p.add_argument("--budget", help="stop starting training jobs past N candidate-epochs (`48epochs`) "
                   "or N hours (`2.5h`); the same command continues")
    p.add_argument("--json", action="store_true", help="the summary as JSON")
    args = p.parse_args(argv)
    budget = Budget.parse(args.budget)
    search = load_search(args.search)
    db = CodesignDB(args.db)
    try:
        run = run_codesign(search, db, args.scheduler, budget, progress=True,
                           log=lambda m: print(m, file=sys.stderr, flush=True))
        result = summary(search, db)
    finally:
        db.close()
    line = (f"{len(search.candidates)} candidates x {len(search.points) // len(search.candidates)} "
            f"hardware points: {run.trained} training jobs run ({run.epochs} candidate-epochs), "
            f"{run.skipped} already in {args.db}."
            + ("; stopped by the budget: the same command continues" if run.stopped_by_budget else ""))
    if args.json:
        print(to_json({"search": args.search, "db": args.db, **result}))
        print(line, file=sys.stderr)
        return 0
    rungs = [f"rung{i}" for i in range(len(search.rungs))]
    emit(result["candidates"], "table", ["candidate", "params", "macs", "energy_min", "latency_ms_min", *rungs])
    for a in result["rank_agreement"]:
        print(f"rank agreement, rung {a['rungs'][0]} against rung {a['rungs'][1]}: Spearman "
              f"{a['spearman']:.3f} over {a['candidates']} candidates")
    for cost, front in result["fronts"].items():
        print(f"Pareto front, accuracy against {cost.replace('_', ' ')}:")
        emit(front, "table", ["network", "hardware", "dataflow", cost, "accuracy", "rung"])
    print(line)
    return 0


def main(argv=None) -> int:
    from ..cli.common import run
    return run(_main, argv)


if __name__ == "__main__":
    raise SystemExit(main())
