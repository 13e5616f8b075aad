"""Typed errors. Library code raises these; only `cli/` turns them into messages and exit codes.

Exit codes (documented in README.md):
  0  success
  1  internal error (a bug in hvg: please report it)
  2  usage error (unknown flag, bad flag value; raised by the CLI parser)
  3  bad input: a file is missing, unreadable, empty or of the wrong kind
  4  missing dependency or weights
  5  no person: no person found, or the person was lost for too long
  6  output cannot be written
  130 interrupted (Ctrl-C)
"""

from __future__ import annotations


class HvgError(Exception):
    """Base of every error hvg raises on purpose."""

    exit_code = 1
    kind = "internal error"

    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:  # one line, the hint after it
        return self.message if not self.hint else f"{self.message} ({self.hint})"


class UsageError(HvgError):
    """A flag value or a combination of flags that cannot be used (the same exit code as the CLI parser's)."""

    exit_code = 2
    kind = "usage error"


class BadInput(HvgError):
    """A file or value given by the user cannot be used."""

    exit_code = 3
    kind = "bad input"


class MissingDependency(HvgError):
    """A package, a binary or a model file hvg needs is not installed."""

    exit_code = 4
    kind = "missing dependency"


class MissingWeights(MissingDependency):
    """Learned weights were asked for and are not there (or are not valid)."""

    kind = "missing weights"


class NoPerson(BadInput):
    """No person in a photo or video, or the person was lost for longer than the allowed gap."""

    exit_code = 5
    kind = "no person"


class OutputError(HvgError):
    """The output cannot be written."""

    exit_code = 6
    kind = "output error"


class BatchFailed(HvgError):
    """Some jobs of a batch failed (each was reported with its own exit code)."""

    exit_code = 7
    kind = "batch"


class Interrupted(HvgError):
    exit_code = 130
    kind = "interrupted"


EXIT_CODES = {  # what `hvg --help` lists
    0: "success",
    1: "internal error (a bug in hvg)",
    UsageError.exit_code: "usage error (bad flag or value)",
    BadInput.exit_code: "bad input (missing, unreadable, empty or wrong-kind file; invalid preset)",
    MissingDependency.exit_code: "missing dependency or weights",
    NoPerson.exit_code: "no person found, or person lost for too long",
    OutputError.exit_code: "output cannot be written",
    BatchFailed.exit_code: "some jobs of a batch failed",
    Interrupted.exit_code: "interrupted",
}
