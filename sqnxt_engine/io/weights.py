"""The project's weight files: `.npz` archives of `<node>.<param>` arrays plus JSON metadata.

Metadata is one JSON string under `__meta__`, so the file loads with `allow_pickle=False`
and any tool that reads `.npz` can inspect it. The keys are the zoo graphs' `meta` keys:
  architecture  zoo name of the graph the arrays belong to (always written)
  input_size    side of the square input (the crop)
  resize, color, mean, std   preprocessing, see images.Preprocess.from_meta
  labels        list of class names, or the name of a known label set ("imagenet")
  source, licence, sha256    where the weights came from and the source file's hash
  stored_dtype  "float16" when the file was written at half precision
Anything else the caller passes is kept as is.
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from ..errors import UserError, has_controls
from ..graph.graph import check_weights
from ..zoo.preprocess import RESIZE_FILTERS
from .files import check_out, open_regular, write_atomic
from .npz import read_npz
from .structured_text import load_json

META_KEY = "__meta__"


def save_weights(path, graph_or_arch, arrays: Mapping[str, np.ndarray], meta: Mapping | None = None,
                 force: bool = False, float16: bool = False) -> Path:
    """Write `arrays` and `meta` to `path` atomically; returns the path.

    With a Graph, the arrays are checked against it first (nothing is written on a
    mismatch) and its `meta` (preprocessing, labels...) is the default for `meta`. Floating arrays are stored
    as float32, or float16 with `float16=True` (loaded back as float32). An existing file is
    only replaced with `force=True`."""
    path = check_out(path, force)
    if isinstance(graph_or_arch, str):
        meta = {**(meta or {}), "architecture": graph_or_arch}
    else:
        check_weights(graph_or_arch, arrays)
        meta = {**graph_or_arch.meta, **(meta or {}), "architecture": graph_or_arch.name}
    if META_KEY in arrays:
        raise UserError(f"an array may not be named {META_KEY!r}")
    if float16:
        meta["stored_dtype"] = "float16"
    store = np.float16 if float16 else np.float32
    out = {k: (np.asarray(a).astype(store) if np.issubdtype(np.asarray(a).dtype, np.floating)
               else np.asarray(a)) for k, a in arrays.items()}
    try:
        meta_json = json.dumps(meta, sort_keys=True, allow_nan=False)
    except (TypeError, ValueError) as e:
        raise UserError(f"{path}: metadata is not plain JSON ({e})") from None
    write_npz_with_meta(path, out, meta_json, force)
    return path


def write_npz_with_meta(path, arrays: Mapping[str, np.ndarray], meta_json: str, force: bool) -> None:
    """The container of the weight files (and of sqnxt-train's checkpoints): the arrays and one
    JSON string under META_KEY, written atomically."""
    write_atomic(path, lambda f: np.savez(f, **arrays, **{META_KEY: np.array(meta_json)}), force)


def read_npz_with_meta(path, what: str) -> tuple[dict[str, np.ndarray], object]:
    """(arrays, parsed metadata) of a file written by write_npz_with_meta, the archive checked by
    io/npz.py before anything is inflated. `what` names the kind of file in the errors, which are
    UserErrors without the file name (callers add it)."""
    try:
        arrays = read_npz(path, text_members=(META_KEY,))
    except UserError as e:
        raise UserError(f"corrupt or not {what}: {e}") from None
    if META_KEY not in arrays:
        raise UserError(f"no {META_KEY} entry: not {what} of this project")
    meta_array = arrays.pop(META_KEY)
    if meta_array.dtype.kind != "U" or meta_array.ndim != 0:
        raise UserError(f"{META_KEY} is not one JSON string")
    return arrays, load_json(str(meta_array), META_KEY)


def load_weights(path, graph=None) -> tuple[dict[str, np.ndarray], dict]:
    """(arrays, meta) from a weight file. float16 arrays come back as float32. With a graph,
    the arrays are checked against it. Errors are UserErrors naming the file.

    The file may come from someone else (docs/security.md): the archive is checked before
    anything is inflated (io/npz.py), the metadata against META_SCHEMA, and every floating
    array for NaN and infinity, before anything is built from them."""
    path = Path(path)
    try:
        arrays, meta = read_npz_with_meta(path, "a weight file")
        check_meta(meta)
        arrays = {k: _widen(a) for k, a in arrays.items()}
        for k, a in arrays.items():
            if a.dtype.kind == "U":
                raise UserError(f"array {k!r:.80} holds text, not numbers")
            if a.dtype.kind == "f" and not np.isfinite(a).all():
                raise UserError(f"array {k!r:.80} holds NaN or infinite values")
        if graph is not None:
            check_weights(graph, arrays)
    except UserError as e:
        raise UserError(f"{path}: {e}") from None
    return arrays, meta


def _text(v) -> bool:
    return isinstance(v, str) and len(v) <= 1000 and not has_controls(v)


def _positive_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and 0 < v <= 1 << 20


def _numbers(v, positive=False) -> bool:
    """1-4 pixel-unit numbers (mean, std): well inside float32's range, positive if asked."""
    values = v if isinstance(v, list) else [v]
    return 0 < len(values) <= 4 and all(
        isinstance(x, (int, float)) and not isinstance(x, bool) and -1e30 < x < 1e30
        and (x > 0 or not positive) for x in values)


def _json_scalars(v) -> bool:
    return isinstance(v, dict) and all(isinstance(k, str) and (
        isinstance(x, (int, float, str, bool)) or x is None
        or (isinstance(x, list) and all(isinstance(y, (int, float)) for y in x))) for k, x in v.items())


# Every metadata key this project reads: what it must be. Other keys are kept as they are.
META_SCHEMA = {
    "architecture": ("a name", _text),
    "input_size": ("a positive int or [C, H, W]", lambda v: _positive_int(v) or (
        isinstance(v, list) and len(v) == 3 and all(map(_positive_int, v)))),
    "resize": ("a positive int or null", lambda v: v is None or _positive_int(v)),
    "color": ("RGB, BGR or L", lambda v: v in ("RGB", "BGR", "L")),
    "resize_filter": (" or ".join(RESIZE_FILTERS), lambda v: isinstance(v, str) and v in RESIZE_FILTERS),
    "mean": ("a finite number or a list of 1-4", _numbers),
    "std": ("a positive number or a list of 1-4", lambda v: _numbers(v, positive=True)),
    "labels": ("a label set name or a list of names",
               lambda v: _text(v) or (isinstance(v, list) and all(map(_text, v)))),
    "source": ("text", _text),
    "licence": ("text", _text),
    "sha256": ("64 hex digits", lambda v: isinstance(v, str) and len(v) == 64
               and all(c in "0123456789abcdef" for c in v)),
    "stored_dtype": ("float16 or float32", lambda v: v in ("float16", "float32")),
    "zoo_options": ("an object of plain values", _json_scalars),
    "graph": ("an object (a graph description)", lambda v: isinstance(v, dict)),
}


def check_meta(meta) -> None:
    """UserError for metadata that is not an object or has a known key of the wrong kind."""
    if not isinstance(meta, dict):
        raise UserError(f"{META_KEY} is not a JSON object")
    for key, (what, ok) in META_SCHEMA.items():
        if key in meta and not ok(meta[key]):
            raise UserError(f"{META_KEY}: {key} must be {what}, got {meta[key]!r:.80}")


def _widen(a: np.ndarray) -> np.ndarray:
    return a.astype(np.float32) if a.dtype == np.float16 else a


def sha256_file(path) -> str:
    """Hex sha256 of a file, for the `sha256` metadata of converted weights."""
    h = hashlib.sha256()
    with open_regular(path) as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()
