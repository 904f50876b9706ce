"""The one exception type for user errors.

Anything a user can fix (a bad flag value, a missing file, a checkpoint of another model)
raises :class:`EdgeRuntimeError`. The CLI prints it as one line and exits with code 2;
no traceback. Programming errors stay ordinary exceptions so they are not hidden.
"""
from __future__ import annotations


class EdgeRuntimeError(Exception):
    """A user-fixable error: say what was received, what was expected, and what to do."""

    exit_code = 2

    def __init__(self, message: str) -> None:
        # One line, always: a multi-line message would break log parsers and the CLI contract.
        super().__init__(" ".join(str(message).split()))
