"""Files the emulator writes (CSV, PNG): checked first, written atomically, never overwritten
without --force; matplotlib imported only when a plot is asked for."""
from __future__ import annotations

from ..cli.common import to_csv
from ..errors import UserError
from ..io.files import write_atomic

PLOT_HINT = "plots need matplotlib: pip install 'sqnxt-engine[plot]'"


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
