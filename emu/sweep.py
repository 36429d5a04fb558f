"""Design-space sweeps: networks x hardware parameters, one record per point, kept in SQLite.

A sweep file (TOML) names the networks, a base hardware and the parameters to vary:

    [[network]]                     # one table per network (at least one)
    model = "1.0-SqNxt-23v5"        # a zoo name (`sqnxt-models`) ...
    options = { input_size = 113 }  # ... with zoo options (SqueezeNextSpec fields), or
    # weights = "1.0-SqNxt-23-fmnist"  a shipped weight file's name, or an .npz, .onnx or
    #                                  .prototxt file (relative to the sweep file): its own graph

    [hardware]
    base = "16x16"                  # a preset or a hardware TOML file (relative to the sweep file)
    points = [{ pe = { rows = 8, cols = 8 } }, ...]   # a list of overrides (default: the base)
    [hardware.grid]                 # every combination of these lists, crossed with the points
    buffer.bytes = [32768, 131072]
    arith.word_bits = [8, 16]

    # precision = ["float", "int8", "w4a8"]  an axis of a float weight file's precisions
    #                                  (emu/precision.py), each quantized for every hardware
    #                                  point and its top-1 measured on the emulated datapath

    [accuracy]                      # with precision: what the accuracy is measured on
    data = "fashion-mnist"          # its first `images` test images (default all 10,000),
    images = 10000                  # calibrated on the first `calib_images` (500) train images

    [emulation]                     # a list instead of a value makes it an axis too
    dataflow = "best"               # ws, os, best, ... (emu/search.py)
    sparsity = 0.4                  # conv/fc weights pruned by magnitude to this fraction of zeros
    seed = 0                        # random weights (zoo networks) and the random input

Overrides are written as in a hardware file (emu/hardware.py's module doc names every key) and
merged into the base's document, which hardware_from_dict then validates: one validator for
hardware files and sweeps, and a key or value it refuses is named with the point it came from.

A network is an io.network_spec.NetworkSpec, as in every sqnxt-emu command. Each point (network,
hardware, emulation options) has a stable key: the sha256 of the canonical JSON of the network's
key (model, options and seed, or the file's sha256), the hardware as resolved
(every Hardware field), the emulation options and the package version. The record of a point is
deterministic: the same whichever executor computed it (local processes or a Dask cluster), so a
record is stored once, under its key, as soon as it is computed, and a sweep started again skips
the points its database already holds. When and where a point ran (finished_at, worker, seconds)
is kept in columns of its own, outside the record.

Accuracy is only ever a measured or published figure, with its source named: the manifest's
Fashion-MNIST test top-1 of a shipped weight file (weights/MANIFEST.json), or the paper's
ImageNet top-1 of an unmodified zoo network (sqnxt_engine/data/paper/*.csv), or the top-1 a
precision point measures on the emulated datapath (precision.py). A network changed by zoo
options, or with weights of unknown accuracy, has none.
"""
from __future__ import annotations

import csv
import hashlib
import itertools
import json
import math
import os
import socket
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from functools import lru_cache
from importlib import resources
from math import prod
from pathlib import Path

import numpy as np

from .. import __version__, limits, zoo
from ..errors import UserError
from ..io.files import is_file, read_text, require_regular, write_atomic
from ..io.network_spec import NetworkSpec
from ..io.shipped import manifest, shipped_name, shipped_weights
from ..io.structured_text import load_json, load_toml
from ..io.weights import sha256_file
from ..progress import progress_bar
from .energy import LEVELS
from .hardware import (
    DERIVED,
    Hardware,
    HardwareError,
    _check,
    hardware_document,
    hardware_from_dict,
    merge_document,
    parameters,
)
from .metrics import HW_PREFIX, hardware_columns, hardware_label, summary
from .network import emulate
from .output import write_csv
from .precision import (
    PRECISIONS,
    AccuracySettings,
    arithmetic_key,
    measure,
    measuring_order,
    shared_measurement,
)
from .search import DATAFLOW_CHOICES
from .workers import available_cpus, pool, stop, worker_count

PARQUET_HINT = "Parquet export needs pyarrow: pip install 'sqnxt-engine[parquet]'"
DASK_HINT = "--scheduler needs dask.distributed: pip install 'sqnxt-engine[dask]'"


class SweepError(UserError):
    """A malformed sweep file; the message names the file and the key."""


# ---- the sweep file ----------------------------------------------------------------------------

@dataclass(frozen=True)
class Point:
    """One sweep point: what is emulated, and its key."""
    network: NetworkSpec  # its seed is the point's
    hardware: Hardware
    overrides: str  # the hardware overrides of this point, canonical JSON (for the record)
    dataflow: str
    sparsity: float
    seed: int
    accuracy: tuple[float, str] | None = None   # (top-1 %, source) stated in the sweep file
    precision: str | None = None   # a precision.PRECISIONS name: quantized and measured
    measure: AccuracySettings | None = None   # with precision: what accuracy is measured on

    @property
    def key(self) -> str:
        doc = {"network": self.network.key(), "hardware": asdict(self.hardware),
               "emulation": {"dataflow": self.dataflow, "sparsity": self.sparsity, "seed": self.seed},
               "version": __version__}
        if self.accuracy is not None:   # (absent otherwise: the keys of earlier sweeps hold)
            doc["accuracy"] = list(self.accuracy)
        if self.precision is not None:
            doc["precision"] = {"name": self.precision, **self.measure.record()}
        return hashlib.sha256(_canonical_json(doc).encode()).hexdigest()

    @property
    def label(self) -> str:
        """The network as reports name it: with its precision, if it has one."""
        return f"{self.network.name} {self.precision}" if self.precision else self.network.name


@dataclass(frozen=True)
class Sweep:
    name: str
    points: tuple[Point, ...]
    notes: tuple[str, ...] = ()   # what the user should know (a stated derived value kept, ...)


def _canonical_json(value) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


_TOP_KEYS = ("network", "hardware", "emulation", "accuracy")
_HARDWARE_KEYS = ("base", "points", "grid")
_NETWORK_KEYS = ("model", "options", "weights", "accuracy", "precision")
_ACCURACY_KEYS = ("data", "images", "calib_images")
_EMULATION = {"dataflow": ("choice:" + ",".join(DATAFLOW_CHOICES), "best"),
              "sparsity": ("fraction", 0.4), "seed": ("seed", 0)}


def load_sweep(path: str | Path) -> Sweep:
    """Read and validate a sweep file (module doc): every point resolved, nothing emulated."""
    path = Path(path)
    where = path.name
    doc = load_toml(read_text(path), where)
    for k in doc:
        if k not in _TOP_KEYS:
            raise SweepError(f"{where}: unknown key {k!r} (expected {', '.join(_TOP_KEYS)})")
    emulation = _emulation_axes(doc.get("emulation", {}), where)
    hw_table = _table(doc.get("hardware", {}), where, "hardware")
    entries = doc.get("network")
    variants = sum(len(e["precision"]) if isinstance(e, dict) and isinstance(e.get("precision"), list)
                   else 1 for e in entries) if isinstance(entries, list) else 1
    count = variants * _hardware_count(hw_table, where) * prod(len(axis) for axis in emulation)
    if count > limits.current().max_sweep_points:   # counted before anything is expanded
        raise SweepError(f"{where}: {count:,} points, more than max_sweep_points "
                         f"({limits.current().max_sweep_points:,}); split the sweep, or raise the "
                         "limit with --resource-limit max_sweep_points=N")
    networks = _networks(entries, where, path.parent)
    settings = _accuracy_settings(doc.get("accuracy"), where,
                                  any(precisions for _, _, precisions in networks))
    if settings and any(s for s in emulation[1]):
        raise SweepError(f"{where}: precision points run the weights as the file holds them; set "
                         "emulation.sparsity = 0")
    notes: list[str] = []
    hardware = _hardware_points(hw_table, where, path.parent, notes)
    points = tuple(Point(replace(net, seed=seed), hw, overrides, dataflow, sparsity, seed, accuracy,
                         precision, settings if precision else None)
                   for net, accuracy, precisions in networks for precision in precisions or [None]
                   for hw, overrides in hardware
                   for dataflow, sparsity, seed in itertools.product(*emulation))
    return Sweep(path.stem, points, tuple(notes))


def _accuracy_settings(v, where: str, wanted: bool) -> AccuracySettings | None:
    """[accuracy] (precision.AccuracySettings), for a sweep with precision axes only."""
    if v is None:
        return AccuracySettings() if wanted else None
    if not wanted:
        raise SweepError(f"{where}: [accuracy] applies to networks with a precision axis; none has one")
    v = _table(v, where, "accuracy")
    for k in v:
        if k not in _ACCURACY_KEYS:
            raise SweepError(f"{where}: unknown key accuracy.{k} (expected {', '.join(_ACCURACY_KEYS)})")
    from ..io.datasets import DATASETS
    data = _check(where, "accuracy.data", "str", v.get("data", AccuracySettings.data))
    if data not in DATASETS or data == "imagenet-samples":
        raise SweepError(f"{where}: accuracy.data must be a data set with train and test splits "
                         f"({', '.join(d for d in DATASETS if d != 'imagenet-samples')}), got {data!r}")
    counts = {}
    for k in ("images", "calib_images"):
        n = v.get(k, getattr(AccuracySettings, k))
        if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= 1_000_000:
            raise SweepError(f"{where}: accuracy.{k} must be a whole number of images, 1 or more, "
                             f"got {n!r:.40}")
        counts[k] = n
    return AccuracySettings(data, **counts)


def _table(v, where: str, key: str) -> dict:
    if not isinstance(v, dict):
        raise SweepError(f"{where}: {key} must be a table, got {v!r:.60}")
    return v


def _networks(v, where: str, folder: Path
              ) -> list[tuple[NetworkSpec, tuple[float, str] | None, list[str] | None]]:
    """Each [[network]]'s spec, the accuracy the file states for it (or None) and its
    precision axis (or None)."""
    if v is None:
        raise SweepError(f"{where}: network is missing (one [[network]] table per network)")
    if not isinstance(v, list) or not v:
        raise SweepError(f"{where}: network must be a list of tables ([[network]]), got {v!r:.60}")
    out = []
    for i, entry in enumerate(v):
        key = f"network[{i}]"
        entry = _table(entry, where, key)
        for k in entry:
            if k not in _NETWORK_KEYS:
                raise SweepError(f"{where}: unknown key {key}.{k} (expected {', '.join(_NETWORK_KEYS)})")
        if ("model" in entry) == ("weights" in entry):
            raise SweepError(f"{where}: {key} needs model or weights (one of them)")
        accuracy = _stated_accuracy(entry["accuracy"], where, f"{key}.accuracy") \
            if "accuracy" in entry else None
        precisions = _precisions(entry, where, key) if "precision" in entry else None
        if precisions and accuracy is not None:
            raise SweepError(f"{where}: {key} states an accuracy and a precision axis; a precision "
                             "point's accuracy is measured")
        if precisions and "weights" not in entry:
            raise SweepError(f"{where}: {key}.precision needs trained weights (weights = a float "
                             "weight file); a zoo model's random weights have no accuracy to measure")
        if "weights" in entry:
            if "options" in entry:
                raise SweepError(f"{where}: {key}.options applies to a zoo model, not to weights "
                                 "(a weight file carries its own graph)")
            net = _weights_network(_check(where, f"{key}.weights", "str", entry["weights"]),
                                   where, key, folder)
            if precisions and Path(net.file).suffix.lower() != ".npz":
                raise SweepError(f"{where}: {key}.precision needs a float .npz weight file, got "
                                 f"{Path(net.file).name}")
            out.append((net, accuracy, precisions))
            continue
        model = _check(where, f"{key}.model", "str", entry["model"])
        options = _table(entry.get("options", {}), where, f"{key}.options")
        try:
            zoo.build(model, **options)  # an unknown name or option is refused now, not in a worker
            out.append((NetworkSpec.of(model, options), accuracy, None))
        except UserError as e:
            raise SweepError(f"{where}: {key}: {e}") from None
    labels = [n.name for n, _, _ in out]
    twice = sorted({lb for lb in labels if labels.count(lb) > 1})
    if twice:
        raise SweepError(f"{where}: network {twice[0]!r} is listed twice")
    return out


def _precisions(entry: dict, where: str, key: str) -> list[str]:
    v = entry["precision"]
    if not isinstance(v, list) or not v or not all(isinstance(x, str) for x in v):
        raise SweepError(f"{where}: {key}.precision must be a non-empty list of names "
                         f"({', '.join(PRECISIONS)}), got {v!r:.60}")
    for x in v:
        if x not in PRECISIONS:
            raise SweepError(f"{where}: {key}.precision: unknown precision {x!r} "
                             f"(choose from {', '.join(PRECISIONS)})")
    if len(set(v)) < len(v):
        raise SweepError(f"{where}: {key}.precision lists a value twice")
    return list(v)


def _stated_accuracy(v, where: str, key: str) -> tuple[float, str]:
    """accuracy = { top1 = 71.9, source = "..." }: a measured or published top-1 (%) and where
    it comes from, both required (an accuracy is never recorded without its source)."""
    v = _table(v, where, key)
    if set(v) != {"top1", "source"}:
        raise SweepError(f"{where}: {key} needs exactly top1 (%) and source, got "
                         f"{', '.join(sorted(v)) or 'nothing'}")
    top1 = v["top1"]
    if isinstance(top1, bool) or not isinstance(top1, (int, float)) or not 0 <= top1 <= 100:
        raise SweepError(f"{where}: {key}.top1 must be a percentage in [0, 100], got {top1!r:.40}")
    return float(top1), _check(where, f"{key}.source", "str", v["source"])


def _weights_network(name: str, where: str, key: str, folder: Path) -> NetworkSpec:
    """A shipped weight file by name (as its path, checked against the manifest, so that the
    point's key holds the file's sha256), or a network file relative to the sweep file."""
    if shipped_name(name) is not None:
        return NetworkSpec.of(file=str(shipped_weights(name)))  # checked against the manifest
    path = Path(name) if Path(name).is_absolute() else folder / name
    if not is_file(path):
        raise SweepError(f"{where}: {key}.weights: {name} is neither a shipped weight file "
                         f"({', '.join(manifest()) or 'none shipped'}) nor a network file")
    return NetworkSpec.of(file=str(path.resolve()))


def _hardware_count(v: dict, where: str) -> int:
    """How many hardware points the table makes (points x grid), without making them."""
    points = v.get("points", [{}])
    n = len(points) if isinstance(points, list) else 1
    grid = _table(v.get("grid", {}), where, "hardware.grid")
    return n * prod(len(axis) for axis in _grid_axes(grid, where, "hardware.grid", values=False))


def _hardware_points(v, where: str, folder: Path, notes: list[str] | None = None
                     ) -> list[tuple[Hardware, str]]:
    """(Hardware, overrides as canonical JSON) of every hardware point: the points list crossed
    with the grid's lists, each merged into the base document and validated as a hardware file.
    A value the base states for a derived parameter (hardware.DERIVED) is derived again from
    each point's parameters when the base's value is the one its own parameters derive (it was
    only written down); a base value that differs (a choice) is kept, and `notes` is told which
    points it holds in and what the point's parameters would derive."""
    v = _table(v, where, "hardware")
    for k in v:
        if k not in _HARDWARE_KEYS:
            raise SweepError(f"{where}: unknown key hardware.{k} (expected {', '.join(_HARDWARE_KEYS)})")
    base = _check(where, "hardware.base", "str", v.get("base", "16x16"))
    base_path = folder / base
    try:
        doc, base_where = hardware_document(base_path if is_file(base_path) else base)
    except HardwareError as e:
        raise SweepError(f"{where}: hardware.base: {e}") from None
    points = v.get("points", [{}])
    if not isinstance(points, list) or not points:
        raise SweepError(f"{where}: hardware.points must be a non-empty list of tables")
    points = [_table(p, where, f"hardware.points[{i}]") for i, p in enumerate(points)]
    axes = _grid_axes(_table(v.get("grid", {}), where, "hardware.grid"), where, "hardware.grid")
    out, seen = [], set()
    stated_derived = _stated_derived(doc, base_where)
    kept: dict[str, list] = {}
    for point in points:
        for combo in itertools.product(*axes):
            overrides = point
            for part in combo:
                overrides = merge_document(overrides, part)
            label = ",".join(f"{k}={v}" for k, v in _flatten(overrides))
            name = f"{doc.get('name', Path(base_where).stem)}[{label}]" if label else None
            merged = merge_document(doc, {**overrides, **({"name": name} if name else {})})
            try:
                hw = hardware_from_dict(merged, f"{where} ({base_where}" + (f" with {label})" if label else ")"))
                for key in stated_derived:
                    if key in dict(_flatten(overrides)):
                        continue
                    again = hardware_from_dict(_without(merged, key), base_where)
                    if parameters(again)[key] == parameters(hw)[key]:
                        continue
                    if stated_derived[key]:   # the base only wrote its derived value down
                        hw = again
                    else:
                        kept.setdefault(key, []).append((label, parameters(again)[key]))
            except HardwareError as e:
                raise SweepError(str(e)) from None
            if hw in seen:
                raise SweepError(f"{where}: hardware point {label or base!r} occurs twice")
            seen.add(hw)
            out.append((hw, _canonical_json(overrides)))
    for key, where_kept in kept.items():
        if notes is not None:
            label, value = where_kept[0]
            notes.append(f"{where}: {key} = {dict(_flatten(doc))[key]:g}, stated by {base_where}, "
                         f"is kept in {len(where_kept)} point(s) whose parameters derive another "
                         f"value (e.g. {value:g} with {label}; {DERIVED[key]}): state it in the "
                         "points, or remove it from the base to derive it")
    return out


def _without(doc: dict, key: str) -> dict:
    """doc without the dotted key (section.key)."""
    section, _, name = key.rpartition(".")
    if not section:
        return {k: v for k, v in doc.items() if k != key}
    return {**doc, section: {k: v for k, v in doc.get(section, {}).items() if k != name}}


def _stated_derived(doc: dict, where: str) -> dict[str, bool]:
    """{derived key the base states: whether its value is the one the base derives itself}."""
    flat = dict(_flatten(doc))
    out = {}
    for key in DERIVED:
        if key in flat:
            try:
                derived = parameters(hardware_from_dict(_without(doc, key), where))[key]
                out[key] = derived == parameters(hardware_from_dict(doc, where))[key]
            except HardwareError as e:
                raise SweepError(f"hardware.base: {e}") from None
    return out


def _grid_axes(grid: dict, where: str, prefix: str, values: bool = True) -> list[list]:
    """Each list in the grid (at any depth: `buffer.bytes = [...]`, or `pe = [{rows = 8, cols =
    8}, ...]` for values that go together) is an axis; its values as nested override tables
    (values=False: the lists themselves, to count them)."""
    axes = []
    for k, v in grid.items():
        if isinstance(v, list):
            if not v:
                raise SweepError(f"{where}: {prefix}.{k} is an empty list")
            axes.append([{k: x} for x in v] if values else v)
        elif isinstance(v, dict):
            inner = _grid_axes(v, where, f"{prefix}.{k}", values)
            axes += [[{k: x} for x in axis] for axis in inner] if values else inner
        else:
            raise SweepError(f"{where}: {prefix}.{k} must be a list of values (an axis), got {v!r:.60}")
    return axes


def _flatten(d: dict, prefix: str = ""):
    for k, v in d.items():
        if isinstance(v, dict):
            yield from _flatten(v, f"{prefix}{k}.")
        else:
            yield f"{prefix}{k}", v


def _emulation_axes(v, where: str) -> list[list]:
    v = _table(v, where, "emulation")
    for k in v:
        if k not in _EMULATION:
            raise SweepError(f"{where}: unknown key emulation.{k} (expected {', '.join(_EMULATION)})")
    axes = []
    for k, (kind, default) in _EMULATION.items():
        values = v.get(k, default)
        values = values if isinstance(values, list) else [values]
        if not values:
            raise SweepError(f"{where}: emulation.{k} is an empty list")
        axes.append([_emulation_value(where, f"emulation.{k}", kind, x) for x in values])
        if len(set(axes[-1])) < len(axes[-1]):
            raise SweepError(f"{where}: emulation.{k} lists a value twice")
    return axes


def _emulation_value(where: str, key: str, kind: str, x):
    try:
        if kind == "fraction":
            x = _check(where, key, "nonneg", x)
            if x >= 1:
                raise HardwareError(f"{where}: {key} must be in [0, 1), got {x!r}")
            return x
        if kind == "seed":  # NumPy's generators take non-negative seeds only
            if isinstance(x, bool) or not isinstance(x, int) or x < 0:
                raise HardwareError(f"{where}: {key} must be a non-negative integer, got {x!r}")
            return x
        return _check(where, key, kind, x)
    except HardwareError as e:
        raise SweepError(str(e)) from None


# ---- one point -----------------------------------------------------------------------------

@lru_cache(maxsize=4)  # a worker's points of one network reuse its graph and weights
def build_network(net: NetworkSpec) -> tuple:
    """(graph, weights, accuracy %, accuracy source) of a sweep network (callers must not modify
    the graph or the weights)."""
    graph, weights, _, _ = net.load()
    if net.file is not None:
        # a shipped file's measured accuracy, for the shipped file only: its bytes, not its name
        found = shipped_name(Path(net.file).name)
        entry = manifest().get(found) if found else None
        if entry and entry.get("engine_top1") is not None and \
                sha256_file(Path(net.file)) == entry.get("sha256"):
            return (graph, weights, float(entry["engine_top1"]),
                    f"{entry['dataset'].split(' ')[0]} test top-1 of the shipped weights "
                    f"(weights/MANIFEST.json, {found})")
        return graph, weights, None, None
    top1 = None if net.options else paper_top1().get(net.model)
    return (graph, weights, *(top1 or (None, None)))


@lru_cache(maxsize=1)
def paper_top1() -> dict[str, tuple[float, str]]:
    """{zoo name: (ImageNet top-1 %, source)} of the networks the paper's tables list."""
    from .reports import PAPER_NAMES
    zoo_name = {paper: z for z, paper in PAPER_NAMES.items()}
    out: dict[str, tuple[float, str]] = {}
    folder = resources.files("sqnxt_engine.data") / "paper"
    for table in ("paper_table3.csv", "paper_table1.csv", "paper_table2.csv"):
        with (folder / table).open(newline="", encoding="utf-8") as f:
            for row in csv.DictReader(f):
                name = zoo_name.get(row["model"], row["model"])
                if name in zoo.names() and name not in out:
                    out[name] = (float(row["top1"]), f"ImageNet top-1 published in the paper "
                                 f"(sqnxt_engine/data/paper/{table})")
    return out


_SEARCH_CACHE: dict = {}  # mapping searches of this process, shared by its points (keyed by hardware)


def compute_record(point: Point) -> dict:
    """The record of one point (deterministic: the same in any process or on any worker)."""
    if point.precision is not None:
        return compute_task((point,))[0][0]
    graph, weights, accuracy, source = build_network(point.network)
    if point.accuracy is not None:   # stated in the sweep file, with its source
        accuracy, source = point.accuracy[0], f"{point.accuracy[1]} (stated in the sweep file)"
    res = emulate(graph, weights, point.hardware, point.dataflow, point.sparsity, seed=point.seed,
                  cache=_SEARCH_CACHE)
    return _record(point, res, graph.params, accuracy, source)


def _precision_records(points: tuple[Point, ...]) -> list[dict]:
    """The records of one network's points of one precision (precision.py: points of the same
    arithmetic share one quantization and one measurement)."""
    from .integer import emulate_codes
    from .network import NetworkResult
    measured: dict = {}
    out = []
    for point in measuring_order(list(points)):
        hw, precision = point.hardware, PRECISIONS[point.precision]
        m = shared_measurement(measured, point, precision, hw, point.measure) or \
            measure(point.network.file, precision, hw, point.dataflow, point.measure)
        measured.setdefault(arithmetic_key(hw), m)
        if m.top1 is None:   # not run here: no costs, the source says why, the float network's size
            res, params = None, build_network(point.network)[0].params
        elif precision.bits is None:
            graph, weights, _, _ = build_network(point.network)
            res = emulate(graph, weights, hw, point.dataflow, point.sparsity, seed=point.seed,
                          cache=_SEARCH_CACHE)
            params = graph.params
        else:
            model = m.model
            x = np.random.default_rng(point.seed).standard_normal((1,) + model.graph.input_shape)
            run = emulate_codes(model, model.quantize_input(x.astype(np.float32)), hw, point.dataflow,
                                _SEARCH_CACHE)
            res = NetworkResult(model.graph.name, run.hw, point.dataflow, 0.0, run.steps)
            params = model.graph.params
        out.append({**_record(point, res, params, m.top1, m.source), **_precision_fields(point, m)})
    return out


def _precision_fields(point: Point, m) -> dict:
    precision = PRECISIONS[point.precision]
    return {"precision": point.precision, "precision_describe": precision.describe,
            "precision_settings": point.measure.record(), **(m.fields or {})}


def compute_task(points: tuple[Point, ...]) -> list[tuple[dict, dict]]:
    """(record, run info) of each point of a task (_tasks): one point, or one network's points
    of one precision."""
    t0 = time.perf_counter()
    records = _precision_records(points) if points[0].precision is not None else \
        [compute_record(p) for p in points]
    seconds = (time.perf_counter() - t0) / len(points)
    info = {"finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "worker": f"{socket.gethostname()}:{os.getpid()}", "seconds": seconds}
    return [(r, info) for r in records]


def _record(point: Point, res, params: int, accuracy, source) -> dict:
    """A point's record from its emulation result (network.NetworkResult; None: a point not run,
    its costs None)."""
    hw = point.hardware
    total = res.total_row() if res is not None else \
        dict.fromkeys(["cycles", "energy", "dram_bytes", "utilisation", *(f"e_{lv}" for lv in LEVELS)])
    net = point.network
    record = {"key": point.key, "network": point.label, "model": net.model,
              "zoo_options": net.zoo_options, "file": net.file and Path(net.file).name,
              "hardware": hw.name, "overrides": point.overrides,
              "pe_rows": hw.pe_rows, "pe_cols": hw.pe_cols, "gb_bytes": hw.gb_bytes,
              "word_bits": hw.word_bits, "clock_mhz": hw.clock_mhz, "dataflow": point.dataflow,
              "objective": hw.objective,
              "sparsity": point.sparsity, "seed": point.seed, "cycles": total["cycles"],
              "latency_s": res and res.cycles / (hw.clock_mhz * 1e6)}
    record.update({f"energy_{lv}": total[f"e_{lv}"] for lv in LEVELS})
    record.update({"energy": total["energy"], "energy_unit": hw.energy.unit,
                   "dram_bytes": total["dram_bytes"], "utilisation": total["utilisation"],
                   "macs": res and res.macs, "params": params, "accuracy": accuracy,
                   "accuracy_source": source, "top1_match": res and res.top1_match,
                   "version": __version__})
    if res is not None:
        record.update(summary(res.cycles, total["energy"], hw))   # latency_ms, fps, edp, area
    record.update(hardware_columns(hw))                        # every parameter in force
    record["label"] = hardware_label(record)
    return record


def _tasks(points: list[Point]) -> list[tuple[Point, ...]]:
    """The points in units of work: each point alone, but one network's points of one precision
    together (they share quantizations and measurements: precision.py), in sweep order."""
    groups: dict = {}
    for p in points:
        key = (p.network.key(), p.precision, p.measure) if p.precision else p.key
        groups.setdefault(key, []).append(p)
    return [tuple(g) for g in groups.values()]


# ---- the results database ------------------------------------------------------------------

# the record's fields that get a column of their own (all of it is also kept as JSON)
COLUMNS = ("network", "model", "zoo_options", "file", "hardware", "overrides", "pe_rows",
           "pe_cols", "gb_bytes", "word_bits", "clock_mhz", "dataflow", "sparsity", "seed",
           "cycles", "latency_s", *(f"energy_{lv}" for lv in LEVELS), "energy", "energy_unit",
           "dram_bytes", "utilisation", "macs", "params", "accuracy", "accuracy_source",
           "top1_match", "version")
RUN_COLUMNS = ("finished_at", "worker", "seconds")
# the record's derived figures exported beside the columns (metrics.summary, the label)
RECORD_EXTRAS = ("label", "latency_ms", "fps", "edp", "edp_unit", "area_mm2", "area_mac_mm2",
                 "area_rf_mm2", "area_gb_mm2", "area_unit", "precision", "precision_bit_exact_images",
                 "precision_refused")


# the database's marker (PRAGMA application_id: "SqNx") and its schema's version (user_version):
# a database without them that holds anything is another program's, and is never written
APPLICATION_ID = 0x53714E78
SCHEMA_VERSION = 1
BUSY_TIMEOUT_S = 5.0   # how long a write waits for another writer's lock before giving up


class ResultsDB:
    """A sweep's SQLite database: one row per point, written (and committed) as each finishes.
    WAL journal: a reader (pareto, export) never blocks the sweep writing. A database is this
    command's when it carries APPLICATION_ID, or is empty; any other file, a database of another
    program included, is refused before anything is written to it. readonly (pareto): opened
    read-only, so a read can never create, convert or change a file."""

    def __init__(self, path: str | Path, readonly: bool = False):
        self.path = Path(path)
        self.readonly = readonly
        if os.path.lexists(self.path):
            require_regular(self.path)   # a FIFO or a device would hang or feed SQLite garbage
        try:
            if readonly:
                self.conn = sqlite3.connect(f"{self.path.resolve().as_uri()}?mode=ro", uri=True,
                                            timeout=BUSY_TIMEOUT_S)
            else:
                self.conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S)
            self._check_ours()
            if not readonly:
                with self.conn:
                    self.conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
                    self.conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
                self.conn.execute("PRAGMA journal_mode=WAL")
                cols = ", ".join(f'"{c}"' for c in COLUMNS + RUN_COLUMNS)
                self.conn.execute(f"CREATE TABLE IF NOT EXISTS points (key TEXT PRIMARY KEY, {cols}, "
                                  "record TEXT NOT NULL)")
            have = [r[1] for r in self.conn.execute("PRAGMA table_info(points)")]
        except sqlite3.OperationalError as e:   # locked, read-only folder, no room
            raise UserError(f"{self.path}: cannot open the sweep database ({e})") from None
        except (sqlite3.Error, UnicodeDecodeError) as e:
            raise UserError(f"{self.path}: not a sweep database ({e})") from None
        if have != ["key", *COLUMNS, *RUN_COLUMNS, "record"]:
            raise UserError(f"{self.path}: its points table has other columns (made by another "
                            "version of sqnxt-emu sweep?); use a new --db")

    def _check_ours(self) -> None:
        """Refuse a database that is neither empty nor this command's (class doc)."""
        (app,), (version,) = (self.conn.execute("PRAGMA application_id").fetchone(),
                              self.conn.execute("PRAGMA user_version").fetchone())
        tables = sorted(n for (n,) in self.conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table'"))
        if app == APPLICATION_ID:
            if version > SCHEMA_VERSION:
                raise UserError(f"{self.path}: made by a newer sqnxt-emu (schema {version}); "
                                "use that version or a new --db")
            return
        if app == 0 and tables == ["points"] and version == 0:
            return   # written before the marker existed; its columns are checked as any
        if app != 0 or tables:
            raise UserError(f"{self.path}: not a sweep database (another program's: "
                            f"{', '.join(tables) or f'application id {app}'}); sqnxt-emu writes "
                            "only its own databases: use a new --db")
        if self.readonly:
            raise UserError(f"{self.path}: an empty database, not a sweep's (make one with "
                            "sqnxt-emu sweep --db)")

    def keys(self) -> set[str]:
        return {k for (k,) in self._query("SELECT key FROM points")[1]}

    def add(self, record: dict, info: dict, table: str = "points", columns: tuple = COLUMNS) -> None:
        """Store one point (its own transaction: a killed sweep loses only the points in
        flight). A database that cannot take it (locked, full disk, damaged) is a UserError.
        table, columns: another table of records with a key, columns and run (codesign.py's)."""
        values = [record["key"], *(_sql(record[c]) for c in columns),
                  *(info[c] for c in RUN_COLUMNS), _canonical_json(record)]
        try:
            with self.conn:
                self.conn.execute(f"INSERT OR REPLACE INTO {table} VALUES ({', '.join('?' * len(values))})",
                                  values)
        except sqlite3.Error as e:
            raise UserError(f"{self.path}: cannot store a record in {table} ({e})") from None

    # a stable order, whichever order the points finished in
    _ORDER = " ORDER BY network, pe_rows, pe_cols, gb_bytes, hardware, dataflow, sparsity, seed, key"

    def records(self) -> list[dict]:
        """Every record (network, hardware, emulation options, key order), each checked to be
        one (check_record): the database may have been written by anyone. A precision point
        the hardware cannot run (precision.py: no costs, its reason in accuracy_source) is not
        among them; rows() and the export list it."""
        out = []
        for i, (r,) in enumerate(self._query("SELECT record FROM points" + self._ORDER)[1]):
            r = load_json(r, f"{self.path}: record {i}") if isinstance(r, str) else r
            if isinstance(r, dict) and r.get("precision_refused") is not None and r.get("cycles") is None:
                continue
            out.append(check_record(r, f"{self.path}: record {i}"))
        return out

    def rows(self) -> list[dict]:
        """Every point as one flat row, in records()' order (export, results.sweep_rows): the
        database's columns, the derived figures (RECORD_EXTRAS: latency in ms, fps, EDP, area,
        the hardware's label) and every hardware parameter in force (hw.<section.key>), then
        when and where it ran. A record made before a figure existed leaves its cell empty."""
        names, rows = self._query("SELECT key, " + ", ".join(f'"{c}"' for c in COLUMNS + RUN_COLUMNS)
                                  + ", record FROM points" + self._ORDER)
        out = []
        for i, values in enumerate(rows):
            row = dict(zip(names, values))
            record = row.pop("record")
            record = load_json(record, f"{self.path}: record {i}") if isinstance(record, str) else record
            record = record if isinstance(record, dict) else {}
            run = {c: row.pop(c) for c in RUN_COLUMNS}
            extras = {k: record.get(k) for k in RECORD_EXTRAS}
            hw = {k: v for k, v in record.items() if k.startswith(HW_PREFIX)}
            out.append({**row, **extras, **hw, **run})
        return out

    def _query(self, sql: str) -> tuple[list[str], list[tuple]]:
        """(column names, rows) of a read; a damaged or locked database is a UserError."""
        try:
            cur = self.conn.execute(sql)
            return [d[0] for d in cur.description], cur.fetchall()
        except (sqlite3.Error, UnicodeDecodeError) as e:   # damaged: text that is not UTF-8
            raise UserError(f"{self.path}: cannot read the sweep database ({e})") from None

    def close(self) -> None:
        self.conn.close()


def _sql(v):
    return int(v) if isinstance(v, bool) else v


def open_results(path: str | Path) -> ResultsDB:
    """An existing sweep database, read-only (pareto)."""
    if not os.path.lexists(path):
        raise UserError(f"{path}: no such sweep database")
    require_regular(path)   # a FIFO, a folder, a device: one line each, never opened
    return ResultsDB(path, readonly=True)


# what the reports read of a record, and its type(s); the rest is kept as it is
RECORD_FIELDS = {"key": str, "network": str, "hardware": str, "dataflow": str, "cycles": (int, float),
                 "latency_s": (int, float), "energy": (int, float), "energy_unit": str,
                 "dram_bytes": (int, float), "utilisation": (int, float),
                 "accuracy": (int, float, type(None)), "accuracy_source": (str, type(None)),
                 "params": (int, type(None)), "pe_rows": int, "pe_cols": int, "gb_bytes": int,
                 "sparsity": (int, float), "seed": int}


def check_record(record, where: str, fields: dict = RECORD_FIELDS, what: str = "sweep record") -> dict:
    """A stored record checked to have every field the reports read (`fields`: name -> type(s)),
    of the right type and finite (a database is a file like any other: anyone may have written it)."""
    if not isinstance(record, dict):
        raise UserError(f"{where}: not a {what} (a JSON object)")
    for name, kind in fields.items():
        v = record.get(name)
        if name not in record or isinstance(v, bool) or not isinstance(v, kind) or \
                (isinstance(v, float) and not math.isfinite(v)):
            raise UserError(f"{where}: not a {what}: {name} is {v!r:.40}")
    return record


# ---- running -------------------------------------------------------------------------------

@dataclass
class SweepRun:
    points: int
    computed: int
    skipped: int
    seconds: float

    @property
    def points_per_second(self) -> float:
        return self.computed / self.seconds if self.seconds else 0.0


def run_sweep(sweep: Sweep, db: ResultsDB, jobs: int = 1, scheduler=None, progress: bool = False,
              on_record: Callable[[dict], None] | None = None,
              note: Callable[[str], None] | None = None) -> SweepRun:
    """Compute the points `db` does not hold yet and store each record as it finishes.
    jobs 1: in this process; jobs > 1: a pool of processes (never more than the points or the
    CPUs: workers.py; `note` is told when the jobs asked for are lowered); scheduler (an address
    or a dask.distributed Client): on that Dask cluster, stored here as results come back.
    on_record(record) is called after each point is stored. Stopped by an error, the UserError
    says how many points are stored and that the same command resumes; by Ctrl-C or SIGTERM,
    `note` is told so and the interrupt goes on."""
    done = db.keys()
    todo = [p for p in sweep.points if p.key not in done]
    tasks = _tasks(todo)
    workers = worker_count(jobs, len(tasks))
    if scheduler is None and note and todo and workers < jobs:
        note(f"--jobs {jobs} lowered to {workers} ({len(tasks)} tasks of {len(todo)} points to "
             f"compute, {available_cpus()} CPUs available)")
    t0 = time.perf_counter()
    where = (f"Dask {scheduler if isinstance(scheduler, str) else 'cluster'}" if scheduler
             else f"{workers} processes" if workers > 1 else "1 process")
    stored = 0
    try:
        with progress_bar(len(todo), f"sweep {sweep.name} ({where})", progress) as bar:
            for record, info in _results(tasks, workers, scheduler):
                db.add(record, info)
                stored += 1
                bar.update()
                if on_record:
                    on_record(record)
    except (UserError, KeyboardInterrupt) as e:
        held = (f"{len(sweep.points) - len(todo) + stored} of {len(sweep.points)} points are "
                f"stored in {db.path}; the same command computes the rest")
        if isinstance(e, UserError):
            raise UserError(f"{e}; {held}") from None
        if note:   # Ctrl-C or SIGTERM: the command still ends as interrupted
            note(f"interrupted: {held}")
        raise
    return SweepRun(len(sweep.points), len(todo), len(sweep.points) - len(todo),
                    time.perf_counter() - t0)


def _results(tasks: list[tuple[Point, ...]], workers: int, scheduler):
    """(record, info) of each point of the tasks (_tasks), in the order they finish."""
    if not tasks:
        return
    if scheduler is not None:
        yield from _dask_results(tasks, scheduler)
    elif workers <= 1:
        for t in tasks:
            yield from compute_task(t)
    else:
        from concurrent.futures import as_completed
        executor = pool(workers)
        done = False
        try:
            futures = [executor.submit(compute_task, t) for t in tasks]
            for f in as_completed(futures):
                yield from f.result()
            done = True
        finally:   # stopped early (an error, Ctrl-C, SIGTERM): the tasks in hand are dropped too
            stop(executor, wait=done)   # (a precision task runs for minutes: never waited for)


def _dask_results(tasks: list[tuple[Point, ...]], scheduler):
    try:
        from distributed import Client, as_completed
    except ImportError:
        raise UserError(DASK_HINT) from None
    client = scheduler if isinstance(scheduler, Client) else _connect(Client, scheduler)
    try:
        _check_worker_versions(client)
        # network files travel as bytes, scattered once each under their hash: the workers need
        # neither the client's file system nor its working folder
        blobs = network_blobs([t[0] for t in tasks])
        shipped = client.scatter({f"sqnxt-network-{h}": data for h, data in blobs.values()}) \
            if blobs else {}

        def blob(t: tuple[Point, ...]) -> tuple:   # (sha256, scattered bytes), () for a zoo network
            if t[0].network.file is None:
                return ()
            digest = blobs[t[0].network.file][0]
            return digest, shipped[f"sqnxt-network-{digest}"]
        # the points' keys name the task: a task resubmitted to a live cluster is computed once
        futures = [client.submit(compute_shipped, t, *blob(t), key=f"sqnxt-sweep-{_task_key(t)}",
                                 pure=False) for t in tasks]
        try:
            for f in as_completed(futures):
                yield from f.result()
        finally:
            client.cancel(futures)
    finally:
        if client is not scheduler:
            client.close()


def network_blobs(points: list[Point]) -> dict[str, tuple[str, bytes]]:
    """{network file: (its sha256, its bytes)} of these points' files, each read once; a file
    changed since the sweep was read (its hash no longer the one in the points' keys) is a
    UserError."""
    out: dict[str, tuple[str, bytes]] = {}
    for p in points:
        net = p.network
        if net.file is None or net.file in out:
            continue
        data = Path(net.file).read_bytes()
        digest = hashlib.sha256(data).hexdigest()
        if f"sha256={digest[:16]}" not in net.key():   # (net.key() hashes the file again)
            raise UserError(f"{net.file}: changed while the sweep was read; run it again")
        out[net.file] = (digest, data)
    return out


def _task_key(task: tuple[Point, ...]) -> str:
    return task[0].key if len(task) == 1 else \
        hashlib.sha256("".join(p.key for p in task).encode()).hexdigest()


def compute_shipped(task: tuple[Point, ...], digest: str | None = None, data: bytes | None = None
                    ) -> list[tuple[dict, dict]]:
    """compute_task on a Dask worker: a network file given as bytes (network_blobs) is written
    once into this machine's cache (TEMP/sqnxt-engine-networks/<sha256>/<its name>, checked
    against its hash) and the points read it there; their keys, which name the file by name and
    content, are unchanged (a task's points share one network: _tasks)."""
    if digest is not None:
        name = Path(task[0].network.file).name
        if hashlib.sha256(data).hexdigest() != digest:
            raise UserError(f"{name}: its bytes arrived damaged")
        import tempfile
        folder = Path(tempfile.gettempdir()) / "sqnxt-engine-networks" / digest
        local = folder / name
        if not local.is_file():
            folder.mkdir(parents=True, exist_ok=True)
            part = folder / f".{local.name}.{os.getpid()}.part"
            part.write_bytes(data)
            os.replace(part, local)   # atomic: another task of this worker may race
        task = tuple(replace(p, network=replace(p.network, file=str(local))) for p in task)
    return compute_task(task)


def _worker_version() -> str:
    return __version__


def _check_worker_versions(client) -> None:
    """Every worker runs this version of sqnxt-engine: a point's record depends on it."""
    found = {v for v in client.run(_worker_version).values()}
    if found - {__version__}:
        raise UserError(f"the Dask workers run sqnxt-engine {', '.join(sorted(found))}, this "
                        f"client {__version__}: install the same version on every machine")


SCHEDULER_TIMEOUT_S = 20.0   # to connect to a scheduler and hear its answer


def _connect(client_class, address: str, timeout: float | None = None):
    """A Client of the scheduler at `address`, or a UserError within `timeout` seconds: a port
    nobody listens on fails at once, but a listener that accepts and never answers would keep
    Client waiting past its own timeout, so the connection is made in a daemon thread that is
    abandoned at the deadline (default SCHEDULER_TIMEOUT_S)."""
    timeout = SCHEDULER_TIMEOUT_S if timeout is None else timeout
    box: dict = {}

    def connect():
        try:
            box["client"] = client_class(address, timeout=f"{timeout}s")
        except Exception as e:  # reported below, in the caller's thread
            box["error"] = e
    t = threading.Thread(target=connect, daemon=True, name="dask-connect")
    t.start()
    t.join(timeout)
    if "client" in box:
        return box["client"]
    e = box.get("error")
    why = f"{type(e).__name__}: {e}" if e else f"no answer in {timeout:g} s"
    raise UserError(f"--scheduler {address}: cannot reach a Dask scheduler ({why})")


# ---- export --------------------------------------------------------------------------------

EXPORT_SUFFIXES = (".csv", ".parquet")


def check_export(path: str | Path) -> None:
    suffix = Path(path).suffix.lower()
    if suffix not in EXPORT_SUFFIXES:
        raise UserError(f"{path}: --export writes {' or '.join(EXPORT_SUFFIXES)}, not {suffix or 'no suffix'!r}")
    if suffix == ".parquet":
        try:
            import pyarrow  # noqa: F401
        except ImportError:
            raise UserError(PARQUET_HINT) from None


def export(db: ResultsDB, path: str | Path, force: bool = False) -> int:
    """Write the database's columns (not the JSON records) as CSV or Parquet; the row count."""
    check_export(path)
    rows = db.rows()
    if Path(path).suffix.lower() == ".csv":
        columns = list(dict.fromkeys(["key", *COLUMNS, *RECORD_EXTRAS]
                                     + [k for r in rows for k in r if k.startswith(HW_PREFIX)]
                                     + list(RUN_COLUMNS)))
        write_csv(path, rows, columns, force=force)
    else:
        import pyarrow as pa
        import pyarrow.parquet as pq
        table = pa.Table.from_pylist(rows)
        write_atomic(path, lambda f: pq.write_table(table, f), force)
    return len(rows)
