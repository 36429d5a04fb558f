"""Files the emulator writes (CSV, figures): checked first, written atomically, never
overwritten without --force; matplotlib imported only when a plot is asked for.

A figure's format is its file's suffix: .png, .pdf or .svg (FIGURE_FORMATS); `figure_out`
refuses any other before the work starts. PDF and SVG carry no creation date, so the same
figure makes the same file; a PDF embeds its fonts as TrueType (Type 42), never Type 3.

A result made of several files (table3's CSV and PNG) is written inside `output_set`: the files
are rendered to memory as they are made and put in place together at the end of the block
(io.files.write_atomic_group), so an interrupted run leaves all of them or none."""
from __future__ import annotations

import contextlib
import io
from pathlib import Path

from ..cli.common import to_csv
from ..errors import UserError
from ..io.files import check_out, write_atomic, write_atomic_group

PLOT_HINT = "plots need matplotlib: pip install 'sqnxt-engine[plot]'"
_pending: list | None = None  # the files of the open output_set, else None
FIGURE_FORMATS = ("png", "pdf", "svg")
_NO_DATE = {"pdf": {"CreationDate": None}, "svg": {"Date": None}, "png": {}}
# SVG ids from a fixed salt (else a random one); fonts embedded in PDF as TrueType (Type 42),
# not matplotlib's default Type 3, which IEEE's and ACM's PDF checks refuse
SAVE_STYLE = {"svg.hashsalt": "sqnxt-engine", "pdf.fonttype": 42, "ps.fonttype": 42}


@contextlib.contextmanager
def output_set(force: bool = False):
    """Collect the files written in the block; write them all, or none, when it ends."""
    global _pending
    outer, _pending = _pending, []
    try:
        yield
        files, _pending = _pending, outer
        write_atomic_group(files, force)
    finally:
        _pending = outer


def _write(path, data: bytes, force: bool) -> None:
    if _pending is not None:
        _pending.append((path, lambda f: f.write(data)))
    else:
        write_atomic(path, lambda f: f.write(data), force)


def write_csv(path, rows: list[dict], columns=None, force: bool = False) -> None:
    _write(path, to_csv(rows, columns).encode("utf-8"), force)


def pyplot():
    """matplotlib.pyplot on the Agg backend, or a UserError saying how to install it."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise UserError(PLOT_HINT) from None
    return plt


def figure_format(path) -> str:
    """The format of a figure file, from its suffix; a UserError for a format not offered."""
    suffix = Path(path).suffix.lower()
    if suffix.lstrip(".") not in FIGURE_FORMATS:
        shown = f"'{suffix}'" if suffix else "no suffix"
        raise UserError(f"{path}: unknown figure format ({shown}); use "
                        + ", ".join(f".{f}" for f in FIGURE_FORMATS))
    return suffix[1:]


def figure_out(path, force: bool) -> Path:
    """A figure file we may write (check_out) in a known format, and matplotlib importable:
    checked before any work."""
    figure_format(path)
    pyplot()
    return check_out(path, force)


def save_figure(fig, path, dpi: int = 200, force: bool = False) -> None:
    """`fig` into `path` in the format its suffix names (figure_format)."""
    fmt = figure_format(path)
    buf = io.BytesIO()
    with pyplot().rc_context(SAVE_STYLE):
        fig.savefig(buf, format=fmt, dpi=dpi, metadata=_NO_DATE[fmt])
    _write(path, buf.getvalue(), force)
