"""What every command shares: one-line errors with exit code 2, tables, JSON/CSV output."""
from __future__ import annotations

import argparse
import csv
import io
import json
import math
import signal
import sys
import threading
from dataclasses import replace
from typing import Callable, Sequence

from ..errors import UserError, escape_controls
from ..io import limits


class ArgumentParser(argparse.ArgumentParser):
    """argparse, but a usage mistake is one line and exit code 2 like every other user error."""

    def error(self, message):
        raise UserError(f"{self.prog}: {message}")


def parser(prog: str, description: str) -> ArgumentParser:
    p = ArgumentParser(prog=prog, description=description)
    add_safety_options(p)
    return p


def add_safety_options(p: argparse.ArgumentParser) -> None:
    """--debug and --resource-limit, which every command takes."""
    p.add_argument("--debug", action="store_true", help="show the traceback of an error")
    p.add_argument("--resource-limit", action=_RaiseLimit, metavar="NAME=VALUE", help=limits.LIMIT_HELP)


class _RaiseLimit(argparse.Action):
    """Sets the limit as the option is parsed: before the command reads any file."""

    def __call__(self, parser, namespace, value, option_string=None):
        name, number = limits.parse_limit(value)
        limits.set_limits(replace(limits.current(), **{name: number}))


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised like Ctrl-C so that every `finally` runs (temporary files are removed)."""


def _terminate(signum, frame):
    raise Terminated()


def run(main: Callable[[list[str]], int | None], argv: Sequence[str] | None = None) -> int:
    """Run a command's main; a UserError (or a bad file) becomes one line on stderr and exit 2.
    Text in the message that came from a file is printed with control characters escaped, so
    the error stays one inert line. Any other exception is a bug: one line too, and --debug
    shows its traceback."""
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _terminate)
    limits.set_limits(limits.Limits())  # the defaults, unless --resource-limit changes one
    try:
        return main(argv) or 0
    except (UserError, OSError) as e:
        if debug:
            raise
        msg = str(e) if isinstance(e, UserError) else f"{getattr(e, 'filename', '') or ''}: {e.strerror or e}"
        print(f"error: {escape_controls(msg)}", file=sys.stderr)
        return 2
    except Terminated:
        return 143
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # e.g. piped into `head`
        return 0
    except Exception as e:
        if debug:
            raise
        print(f"error: internal error, {type(e).__name__}: {escape_controls(str(e))[:300]} "
              "(run again with --debug for the traceback, and please report it)", file=sys.stderr)
        return 1


def to_json(value) -> str:
    """JSON text for output: non-finite floats become null (bare NaN is not JSON)."""
    def clean(v):
        if isinstance(v, float) and not math.isfinite(v):
            return None
        if isinstance(v, dict):
            return {k: clean(x) for k, x in v.items()}
        if isinstance(v, (list, tuple)):
            return [clean(x) for x in v]
        return v
    return json.dumps(clean(value), indent=2, allow_nan=False)


def format_table(rows: list[dict], columns: Sequence[str] | None = None) -> str:
    """A plain text table; numbers right-aligned with thousands separators."""
    if not rows:
        return ""
    columns = list(columns or rows[0].keys())

    def cell(v):
        if isinstance(v, bool) or v is None:
            return "" if v is None else str(v)
        if isinstance(v, int):
            return f"{v:,}"
        if isinstance(v, float):
            return f"{v:,.3f}" if abs(v) < 1e6 else f"{v:.3e}"
        return str(v)

    cells = [[cell(r.get(c)) for c in columns] for r in rows]
    numeric = [all(isinstance(r.get(c), (int, float)) and not isinstance(r.get(c), bool)
                   for r in rows if r.get(c) is not None) for c in columns]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]

    def line(values):
        return "  ".join(v.rjust(w) if num else v.ljust(w)
                         for v, w, num in zip(values, widths, numeric)).rstrip()

    out = [line(columns), line(["-" * w for w in widths])] + [line(r) for r in cells]
    return "\n".join(out)


def to_csv(rows: list[dict], columns: Sequence[str] | None = None) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(columns or rows[0].keys()), extrasaction="ignore",
                       lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    return buf.getvalue()


def emit(rows: list[dict], fmt: str, columns: Sequence[str] | None = None, footer: str = "") -> None:
    """Print rows as a table (default), JSON or CSV."""
    if fmt == "json":
        print(to_json(rows))
    elif fmt == "csv":
        sys.stdout.write(to_csv(rows, columns))
    else:
        print(format_table(rows, columns))
        if footer:
            print(footer)


def add_format_options(p: argparse.ArgumentParser) -> None:
    g = p.add_mutually_exclusive_group()
    g.add_argument("--json", dest="fmt", action="store_const", const="json", help="JSON output")
    g.add_argument("--csv", dest="fmt", action="store_const", const="csv", help="CSV output")
    p.set_defaults(fmt="table")


class Progress:
    """A one-line progress bar on stderr, drawn only when stderr is a terminal (quiet when piped).
    Use as `with Progress(total, "eval") as bar: bar.update(n)`."""

    def __init__(self, total: int, label: str = "", stream=None, width: int = 30):
        self.total, self.label, self.width, self.done = max(int(total), 1), label, width, 0
        self.stream = stream or sys.stderr
        self.enabled = hasattr(self.stream, "isatty") and self.stream.isatty()

    def update(self, n: int = 1, note: str = "") -> None:
        self.done = min(self.done + n, self.total)
        if self.enabled:
            filled = self.width * self.done // self.total
            self.stream.write(f"\r{self.label} [{'#' * filled}{'.' * (self.width - filled)}] "
                              f"{self.done}/{self.total} {note}")
            self.stream.flush()

    def __enter__(self):
        self.update(0)
        return self

    def __exit__(self, *exc):
        if self.enabled:
            self.stream.write("\n")
            self.stream.flush()
