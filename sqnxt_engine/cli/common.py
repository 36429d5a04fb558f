"""What every command shares: the parser (--version, --debug, defaults in --help), the main
wrapper (one-line errors with exit code 2, quiet broken pipes), notes on stderr, and table,
JSON and CSV output."""
from __future__ import annotations

import argparse
import csv
import io
import json
import math
import os
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from dataclasses import replace

from .. import __version__, limits
from ..errors import UserError, escape_controls
from ..io.network_spec import parse_zoo_options


class ArgumentParser(argparse.ArgumentParser):
    """argparse, but a usage mistake is one line and exit code 2 like every other user error."""

    def error(self, message):
        raise UserError(f"{self.prog}: {message}")

    def parse_args(self, args=None, namespace=None):
        parsed = super().parse_args(args, namespace)
        # options with a hidden former spelling cannot be argparse-required (the other spelling
        # would not count); they are checked here instead
        missing = [flag for dest, flag in getattr(self, "required_options", {}).items()
                   if getattr(parsed, dest, None) is None]
        if missing:
            self.error(f"the following arguments are required: {', '.join(missing)}")
        return parsed


class HelpFormatter(argparse.HelpFormatter):
    """Shows an option's default in --help, unless it has none (None; a flag) or the help text
    already says it in words."""

    def _get_help_string(self, action):
        text = action.help or ""
        if ("default" in text or action.default is None or action.default == argparse.SUPPRESS
                or not action.option_strings or action.nargs == 0):  # flags: no value to show
            return text
        return f"{text} (default: %(default)s)"


def parser(prog: str, description: str) -> ArgumentParser:
    """A command's parser: --version, --debug (show the traceback of an error), --resource-limit,
    defaults in --help. Subcommands get the same through `subcommand`."""
    p = ArgumentParser(prog=prog, description=description, formatter_class=HelpFormatter)
    p.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
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


def subcommand(subparsers, name: str, description: str) -> ArgumentParser:
    """A subcommand whose one-line description shows both in the command's --help and in its own."""
    return subparsers.add_parser(name, help=description, description=description,
                                 formatter_class=HelpFormatter)


def add_out_option(p: argparse.ArgumentParser, help: str, required: bool = False,
                   metavar: str = "FILE") -> None:
    """-o / --out: where a command writes, the one spelling of every command (a file or a folder,
    as `help` says). --output, its former spelling, is still accepted."""
    p.add_argument("-o", "--out", help=help, metavar=metavar)
    p.add_argument("--output", dest="out", help=argparse.SUPPRESS)
    if required:
        p.required_options = {**getattr(p, "required_options", {}), "out": "-o/--out"}


def add_model_option(p: argparse.ArgumentParser, help: str, **kw) -> None:
    """--model: a zoo model by name, the one spelling of every command. --arch, its former
    spelling in sqnxt-convert, is still accepted."""
    p.add_argument("--model", help=help, **kw)
    p.add_argument("--arch", dest="model", help=argparse.SUPPRESS, type=kw.get("type"))


def add_zoo_options_option(p: argparse.ArgumentParser, help: str) -> None:
    """--zoo-options JSON: a zoo model's options (SqueezeNextSpec fields for a SqueezeNext), parsed
    into a dict here, the one parser of every command."""
    p.add_argument("--zoo-options", type=parse_zoo_options, metavar="JSON", help=help)


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised like Ctrl-C so that every `finally` runs (temporary files are removed)."""


def _terminate(signum, frame):
    raise Terminated()


def run(main: Callable[[list[str]], int | None], argv: Sequence[str] | None = None) -> int:
    """Run a command's main; a UserError (or a bad file) becomes one line on stderr and exit 2;
    output into a closed pipe (`| head -1`) ends quietly. Text in a message that came from a file
    is printed with control characters escaped, so the error stays one inert line. Any other
    exception is a bug: one line too (exit 1), and --debug shows its traceback. SIGTERM ends the
    command like Ctrl-C, removing temporary files (exit 143)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _terminate)
    limits.set_limits(limits.Limits())  # the defaults, unless --resource-limit changes one
    try:
        code = main(argv) or 0
        sys.stdout.flush()  # a closed pipe shows here, inside the try, not at interpreter exit
        return code
    except (UserError, OSError) as e:
        if isinstance(e, BrokenPipeError):
            return _closed_pipe()
        if debug:
            raise
        msg = str(e) if isinstance(e, UserError) else f"{getattr(e, 'filename', '') or ''}: {e.strerror or e}"
        print(f"error: {escape_controls(msg)}", file=sys.stderr)
        return 2
    except Terminated:
        return 143
    except KeyboardInterrupt:
        return 130
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


def _closed_pipe() -> int:
    """The reader of stdout went away (e.g. `head`): point stdout at /dev/null so that the
    interpreter's final flush does not complain, and end as a successful run."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):  # stdout is no file (captured): nothing will flush into the pipe
        pass
    return 0


def note(message: str) -> None:
    """A remark on stderr that does not stop the command (e.g. an option another one overrides)."""
    print(f"note: {message}", file=sys.stderr)


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
