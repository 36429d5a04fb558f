"""Files the emulator writes (CSV, PNG): checked first, written atomically, never overwritten
without --force; matplotlib imported only when a plot is asked for."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

from ..cli.common import to_csv
from ..errors import UserError

PLOT_HINT = "plots need matplotlib: pip install 'sqnxt-engine[plot]'"


def check_out(path, force: bool) -> Path:
    """A file we may write: its folder exists, and it does not unless --force."""
    p = Path(path)
    if p.exists() and not force:
        raise UserError(f"{p}: exists (use --force to overwrite)")
    if not p.parent.is_dir():
        raise UserError(f"{p}: folder {p.parent} does not exist")
    return p


def write_atomic(path, write) -> None:
    """write(f) into a temporary file beside `path` (binary), then rename it over `path`; the
    file gets the mode a new file would (mkstemp's are private)."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_csv(path, rows: list[dict], columns=None) -> None:
    text = to_csv(rows, columns).encode("utf-8")
    write_atomic(path, lambda f: f.write(text))


def pyplot():
    """matplotlib.pyplot on the Agg backend, or a UserError saying how to install it."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise UserError(PLOT_HINT) from None
    return plt


def save_figure(fig, path, dpi: int = 100) -> None:
    write_atomic(path, lambda f: fig.savefig(f, format="png", dpi=dpi))
