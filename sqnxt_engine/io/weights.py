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
import zipfile
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from ..errors import UserError
from ..graph.graph import check_weights
from .files import write_atomic

META_KEY = "__meta__"


def save_weights(path, graph_or_arch, arrays: Mapping[str, np.ndarray], meta: Mapping | None = None,
                 force: bool = False, float16: bool = False) -> Path:
    """Write `arrays` and `meta` to `path` atomically; returns the path.

    With a Graph, the arrays are checked against it first (nothing is written on a
    mismatch) and its `meta` (preprocessing, labels...) is the default for `meta`. Floating arrays are stored
    as float32, or float16 with `float16=True` (loaded back as float32). An existing file is
    only replaced with `force=True`."""
    path = Path(path)
    if path.exists() and not force:
        raise UserError(f"{path}: exists (use --force to overwrite)")
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
    write_atomic(path, lambda f: np.savez(f, **out, **{META_KEY: np.array(meta_json)}))
    return path


def load_weights(path, graph=None) -> tuple[dict[str, np.ndarray], dict]:
    """(arrays, meta) from a weight file. float16 arrays come back as float32. With a graph,
    the arrays are checked against it. Errors are UserErrors naming the file."""
    path = Path(path)
    try:
        z = np.load(path, allow_pickle=False)
        if not isinstance(z, np.lib.npyio.NpzFile):  # a bare .npy array
            raise UserError("not an .npz weight file")
        with z:
            names = list(z.files)
            if META_KEY not in names:
                raise UserError(f"no {META_KEY} entry: not a weight file of this project")
            meta = json.loads(str(z[META_KEY]))
            arrays = {k: _widen(z[k]) for k in names if k != META_KEY}
    except FileNotFoundError:
        raise UserError(f"{path}: no such file") from None
    except UserError as e:
        raise UserError(f"{path}: {e}") from None
    except ValueError as e:
        if "pickle" in str(e):  # never suggest numpy's unsafe loading: weight files hold no objects
            raise UserError(f"{path}: corrupt or not a weight file (reading it would need unpickling, "
                            "which this loader never does)") from None
        raise UserError(f"{path}: corrupt or not a weight file ({e})") from None
    except (OSError, EOFError, zipfile.BadZipFile) as e:
        raise UserError(f"{path}: corrupt or not a weight file ({e})") from None
    if not isinstance(meta, dict):
        raise UserError(f"{path}: {META_KEY} is not a JSON object")
    if graph is not None:
        try:
            check_weights(graph, arrays)
        except UserError as e:
            raise UserError(f"{path}: {e}") from None
    return arrays, meta


def _widen(a: np.ndarray) -> np.ndarray:
    return a.astype(np.float32) if a.dtype == np.float16 else a


def sha256_file(path) -> str:
    """Hex sha256 of a file, for the `sha256` metadata of converted weights."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()
