"""Errors a user can cause, reported by the CLI as one line instead of a traceback."""


class UserError(ValueError):
    """Bad input or configuration: the message names the input and the fix."""
