"""Errors a user can cause (the CLI prints them as one line and exits with code 2), and how a name
the user types is matched against the names the engine knows (name_key, closest)."""
from __future__ import annotations

import difflib
import unicodedata
from collections.abc import Iterable


class UserError(Exception):
    """Bad input from the user: a file, a name, an option value. Message is one line: text from
    a file (a node name, a pickled global) may hold newlines or terminal escapes, so control
    characters are escaped here, once for every message."""

    def __init__(self, message="", *args):
        super().__init__(escape_controls(message) if isinstance(message, str) else message, *args)


class GraphError(UserError):
    """A graph that is not well formed; the message names the offending node."""


def escape_controls(text: str) -> str:
    """`text` with control and format characters (newlines, terminal escapes, bidi overrides)
    written as escapes, so that text from a file prints as one inert line."""
    if text.isprintable():  # the common case, without a call per character
        return text
    return "".join(c if c.isprintable() or c == " " else
                   (repr(c)[1:-1] if unicodedata.category(c)[0] in "CZ" else c) for c in text)


def has_controls(text: str) -> bool:
    return escape_controls(text) != text


def name_key(name: str) -> str:
    """The key a name the user types is matched by, for every kind of name the engine looks up (zoo
    models, shipped and fetchable weights): case, spaces, dashes and underscores do not matter,
    dots do ("1.0-SqNxt-23" is not "10-SqNxt-23")."""
    return "".join(ch for ch in name.lower() if ch.isalnum() or ch == ".")


def closest(name: str, known: Iterable[str], n: int = 3) -> list[str]:
    """The known names closest to `name` (case does not matter), best first."""
    by_lower = {k.lower(): k for k in known}
    return [by_lower[c] for c in difflib.get_close_matches(name.lower(), list(by_lower), n=n, cutoff=0.6)]


def unknown_name(what: str, name: str, known: Iterable[str], hint: str = "") -> UserError:
    """The error for a name nothing knows, suggesting the closest known names:
    "unknown model 'sqnxt-23' (closest: 1.0-SqNxt-23, ...); `sqnxt-models` lists them"."""
    close = closest(name, known)
    return UserError(f"unknown {what} {name!r}" + (f" (closest: {', '.join(close)})" if close else "")
                     + (f"; {hint}" if hint else ""))
