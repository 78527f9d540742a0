"""What every entry point shares (the `surgecast` command, `python -m testbed`): one-line usage
errors, errors rendered once, exit codes.

Library code raises; only an entry point calls `run_entry`, which prints the one line and returns
the exit code (0 ok, 1 failed or interrupted, 2 usage or bad input, 3 data lost or duplicated)::

    >>> from floor.errors import FieldError
    >>> def body() -> int:
    ...     raise FieldError("--port", -1, "give a port in 0..65535")
    >>> import contextlib, io; err = io.StringIO()
    >>> with contextlib.redirect_stderr(err): code = run_entry(body, name="testbed")
    >>> code, err.getvalue()
    (2, 'FieldError: --port = -1: give a port in 0..65535\\n')
"""

from __future__ import annotations

import argparse
import difflib
import sys
from collections.abc import Callable, Sequence
from typing import Any

from floor.children import signals_raise
from floor.errors import EXIT_THRESHOLD, SurgecastError, UsageError, render

__all__ = ["OneLineParser", "did_you_mean", "run_entry"]


def did_you_mean(word: str, choices: Sequence[str]) -> str:
    """` (did you mean X?)` for the closest of `choices` to `word`, or "" when none is close.

    >>> did_you_mean("--durtion", ["--duration", "--out"])
    ' (did you mean --duration?)'
    >>> did_you_mean("forcast", ["forecast", "plan"]) + did_you_mean("--zzz", ["--out"])
    ' (did you mean forecast?)'
    """
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]}?)" if close else ""


class OneLineParser(argparse.ArgumentParser):
    """argparse that reports usage errors as one line and exit code 2, with "did you mean" for a
    mistyped flag (Python 3.12's suggest_on_error does this; we support 3.11)."""

    _argv: Sequence[str] = ()

    def parse_known_args(self, args: Sequence[str] | None = None, namespace: Any = None) -> Any:  # type: ignore[override]
        self._argv = list(sys.argv[1:] if args is None else args)
        return super().parse_known_args(args, namespace)

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{self.prog}: {message}{self._flag_hint()} (see '{self.prog} --help')")

    def _flag_hint(self) -> str:
        """"did you mean" for the first given flag that is neither an option nor an abbreviation of
        one."""
        flags = [o for a in self._actions for o in a.option_strings]
        for token in self._argv:
            if token == "--":
                break
            flag = token.split("=", 1)[0]
            if flag.startswith("--") and not any(f.startswith(flag) for f in flags):
                hint = did_you_mean(flag, flags)
                if hint:
                    return hint
        return ""


def run_entry(body: Callable[[], int | None], *, name: str) -> int:
    """Run an entry point's ``body`` with SIGTERM/SIGINT raising; render any error as one line; the
    exit code."""
    try:
        with signals_raise():
            return int(body() or 0)
    except SurgecastError as e:
        print(render(e), file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt as e:  # SIGINT or SIGTERM (floor.children.Interrupted)
        how = getattr(e, "signame", "SIGINT")  # children stopped
        print(f"Interrupted: {name} stopped by {how} before its end; what it wrote is incomplete "
              "(exit 1)", file=sys.stderr)
        return EXIT_THRESHOLD
    except BrokenPipeError:
        return 0
    except OSError as e:  # a full or read-only disk met while writing: one line, the run failed
        where = f" {e.filename}" if e.filename else ""
        print(f"OutputError: cannot write{where} ({e.strerror or e}); free space or give another "
              "--out", file=sys.stderr)
        return EXIT_THRESHOLD
