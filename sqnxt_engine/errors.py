"""Errors a user can cause. The CLI prints them as one line and exits with code 2."""


class UserError(Exception):
    """Bad input from the user: a file, a name, an option value. Message is one line."""


class GraphError(UserError):
    """A graph that is not well formed; the message names the offending node."""
