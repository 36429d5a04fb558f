"""Errors a user can cause. The CLI prints them as one line and exits with code 2."""
from __future__ import annotations

import difflib
from collections.abc import Iterable


class UserError(Exception):
    """Bad input from the user: a file, a name, an option value. Message is one line."""


class GraphError(UserError):
    """A graph that is not well formed; the message names the offending node."""


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
