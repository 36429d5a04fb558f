"""JSON and TOML from files that may come from someone else, nesting depth bounded.

Python's json and tomllib parsers recurse once per level of nesting, so a few kilobytes of `[[[[`
end in a RecursionError (or, with a raised recursion limit, a crashed interpreter). The depth is
measured first, by a linear scan that skips quoted strings and comments, and refused beyond the
max_nesting limit; only then is the text parsed.
"""
from __future__ import annotations

import json
import re

from .. import limits
from ..errors import UserError

# Strings and comments, whose brackets do not nest. TOML: multi-line strings first, then basic
# and literal strings, then comments; JSON has only basic strings.
_TOML_SKIP = re.compile(r'"""(?:[^\\]|\\.)*?"""|\'\'\'.*?\'\'\'|"(?:[^"\\\n]|\\.)*"|\'[^\'\n]*\'|#[^\n]*',
                        re.S)
_JSON_SKIP = re.compile(r'"(?:[^"\\]|\\.)*"', re.S)
_BRACKETS = re.compile(r"[\[\]{}]")


def nesting_depth(text: str, skip: re.Pattern) -> int:
    """The deepest nesting of [ and { in `text`, outside what `skip` matches."""
    depth = deepest = 0
    for m in _BRACKETS.finditer(skip.sub("", text)):
        depth += 1 if m.group() in "[{" else -1
        deepest = max(deepest, depth)
    return deepest


def _check_depth(text: str, skip: re.Pattern, where: str) -> None:
    limits.check(f"{where}: nesting depth", nesting_depth(text, skip), "max_nesting")


def check_json_depth(text: str, where: str) -> None:
    """JSON text's nesting depth against max_nesting, before a parser recurses into it."""
    _check_depth(text, _JSON_SKIP, where)


def load_json(text: str, where: str):
    """Parse JSON text; UserError naming `where` for bad syntax or deep nesting. NaN and Infinity
    (which Python's json accepts but JSON does not) are refused."""
    _check_depth(text, _JSON_SKIP, where)

    def no_constants(name):
        raise UserError(f"{where}: {name} is not a JSON value")
    try:
        return json.loads(text, parse_constant=no_constants)
    except json.JSONDecodeError as e:
        raise UserError(f"{where}: not valid JSON ({e})") from None
    except RecursionError:  # the scan's bound is far below Python's recursion limit; a backstop
        raise limits.exceeded(f"{where}: nesting depth", limits.current().max_nesting + 1,
                              "max_nesting") from None


def load_toml(text: str, where: str) -> dict:
    """Parse TOML text; UserError naming `where` for bad syntax or deep nesting."""
    import tomllib
    _check_depth(text, _TOML_SKIP, where)
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise UserError(f"{where}: not valid TOML: {e}") from None
    except RecursionError:
        raise limits.exceeded(f"{where}: nesting depth", limits.current().max_nesting + 1,
                              "max_nesting") from None

