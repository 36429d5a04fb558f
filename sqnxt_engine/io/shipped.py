"""Weight files shipped with the package, by name, checked against their manifest.

The top-level `weights/` folder installs as the package `sqnxt_engine.weights` (package-dir
mapping in pyproject.toml, like kernels/ and emu/), so a non-editable `pip install .` carries the
.npz files and `weights/MANIFEST.json`. The manifest maps each name (the file name without .npz)
to its file, sha256, size and provenance (architecture, data set, recipe, commands, seed,
training time, test accuracy by this engine and by PyTorch). Loading a shipped file by name
checks its sha256 first and refuses a file that does not match.
"""
from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

from ..errors import UserError, name_key
from .weights import sha256_file

DEFAULT_WEIGHTS = "1.0-SqNxt-23v5-fmnist"
MANIFEST = "MANIFEST.json"


def shipped_dir() -> Path:
    """The installed folder of the shipped weights."""
    return Path(str(resources.files("sqnxt_engine.weights")))


def manifest(folder: Path | None = None) -> dict:
    """{name: entry} of the shipped weights; {} when the package ships none."""
    path = (folder or shipped_dir()) / MANIFEST
    try:
        data = json.loads(path.read_text("utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as e:
        raise UserError(f"{path}: unreadable manifest ({e})") from None
    return data.get("weights", {})


def shipped_name(name: str, folder: Path | None = None) -> str | None:
    """The manifest's name for `name` (with or without .npz; matched by errors.name_key), or None."""
    key = name_key(name.lower().removesuffix(".npz"))
    return next((n for n in manifest(folder) if name_key(n) == key), None)


def verify(path: Path, sha256: str) -> Path:
    """`path` if its sha256 is `sha256`, else a UserError refusing it."""
    if not path.is_file():
        raise UserError(f"{path}: shipped weight file is missing")
    got = sha256_file(path)
    if got != sha256:
        raise UserError(f"{path}: sha256 {got[:16]}... does not match the manifest's {sha256[:16]}...; "
                        f"the file is damaged or was changed, refusing to load it")
    return path


def shipped_weights(name: str, folder: Path | None = None) -> Path | None:
    """The checked path of the shipped file called `name`; None if no shipped file has that name."""
    folder = folder or shipped_dir()
    found = shipped_name(name, folder)
    if found is None:
        return None
    entry = manifest(folder)[found]
    return verify(folder / entry["file"], entry["sha256"])
