"""Errors a user can cause. The CLI prints them as one line and exits with code 2."""
import unicodedata


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
    return "".join(c if c.isprintable() or c == " " else
                   (repr(c)[1:-1] if unicodedata.category(c)[0] in "CZ" else c) for c in text)


def has_controls(text: str) -> bool:
    return escape_controls(text) != text
