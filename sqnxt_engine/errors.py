"""Errors a user can cause. The CLI prints them as one line and exits with code 2."""


class UserError(Exception):
    """Bad input from the user: a file, a name, an option value. Message is one line."""


class GraphError(UserError):
    """A graph that is not well formed; the message names the offending node."""


def escape_controls(text: str) -> str:
    """`text` with control and format characters (newlines, terminal escapes, bidi overrides)
    written as escapes, so that text from a file prints as one inert line."""
    import unicodedata
    return "".join(c if c.isprintable() or c == " " else
                   (repr(c)[1:-1] if unicodedata.category(c)[0] in "CZ" else c) for c in text)


def has_controls(text: str) -> bool:
    return escape_controls(text) != text
