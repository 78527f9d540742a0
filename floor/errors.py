"""The one family of errors every part of surgecast raises.

Each class carries the exit code the command line returns for it, so the code
tells the outcome (see docs/exit-codes in DEVELOPERS.md):

    0 ok · 1 a threshold or SLO failed · 2 usage or bad input · 3 data lost or duplicated

Messages are one line that names the field, flag or file, the bad value, and the fix::

    >>> str(ProfileError("calendar.deadline", "2024-13-01", "write a date like 2024-09-06T23:59"))
    "calendar.deadline = '2024-13-01': write a date like 2024-09-06T23:59"

This module imports nothing of the project, so every room (scenarios, testbed,
analysis, reports) may import it.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_THRESHOLD = 1
EXIT_USAGE = 2
EXIT_INTEGRITY = 3


class SurgecastError(Exception):
    """Base class: anything the command line reports as `Name: message`."""

    exit_code: int = EXIT_USAGE


class UsageError(SurgecastError):
    """A flag, file or value the user gave is wrong (exit 2)."""

    exit_code = EXIT_USAGE


class FieldError(UsageError):
    """A named field has a bad value; the message says what and how to fix it.

    >>> str(FieldError("--scale", "-1", "give a fraction in (0, 1]"))
    "--scale = '-1': give a fraction in (0, 1]"
    """

    def __init__(self, field: str, value: object, fix: str) -> None:
        self.field = field
        self.value = value
        self.fix = fix
        super().__init__(f"{field} = {shown(value)}: {fix}")


def shown(value: object, limit: int = 80) -> str:
    """A value as the user wrote it: dates in ISO form, one line, at most `limit` characters.

    A long path keeps its end, which names the file (`…` stands for the start cut off).

    >>> import datetime
    >>> shown(datetime.datetime(2024, 9, 2, 0, 0)), shown("x"), shown(list(range(40)))[-5:]
    ("'2024-09-02T00:00:00'", "'x'", '21, …')
    >>> shown("/tmp/" + "d" * 90 + "/demo/baseline")[-15:]
    "/demo/baseline'"
    """
    import datetime as _dt
    import os

    if isinstance(value, _dt.date | _dt.time):
        value = value.isoformat()
    text = repr(value).replace("\n", " ")
    if len(text) <= limit:
        return text
    if isinstance(value, os.PathLike | str) and os.sep in str(value):
        return "…" + text[-(limit - 1):]
    return text[: limit - 1] + "…"


class ProfileError(FieldError):
    """A surge profile field is missing or wrong."""


class InputFileError(UsageError):
    """A file the user named (CSV, JSON, run directory) cannot be used."""


class TargetError(UsageError):
    """The target service refused, hung, or answered something that is not its API."""


class ThresholdFailed(SurgecastError):
    """A threshold or SLO was breached (exit 1)."""

    exit_code = EXIT_THRESHOLD


class IntegrityError(SurgecastError):
    """Reconciliation or audit found data lost or duplicated (exit 3)."""

    exit_code = EXIT_INTEGRITY


class RunFailed(SurgecastError):
    """A run crashed, was cut short, or achieved nothing (exit 1): not a usage error, nothing found
    lost."""

    exit_code = EXIT_THRESHOLD


class DrillFailed(SurgecastError):
    """A drill's verdict failed: its fault never bit, or the service did not recover (exit 1).

    Data lost or duplicated during a drill is an IntegrityError (exit 3), not this.
    """

    exit_code = EXIT_THRESHOLD


_LINE_BREAKS = {c: repr(c)[1:-1] for c in "\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"}


def one_line(text: str) -> str:
    r"""`text` with every character that breaks a line escaped, so an error is always one line.

    >>> one_line("a\nb\x1ec")
    'a\\nb\\x1ec'
    """
    return text.translate(str.maketrans(_LINE_BREAKS))


def render(exc: SurgecastError) -> str:
    """The one line an entry point prints for an error: `Name: message`.

    >>> render(FieldError("--port", -1, "give a port in 0..65535"))
    'FieldError: --port = -1: give a port in 0..65535'
    """
    return f"{type(exc).__name__}: {one_line(str(exc))}"
