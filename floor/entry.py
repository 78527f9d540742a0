"""What every entry point shares (the `surgecast` command, `python -m testbed`): one-line usage errors,
errors rendered once, exit codes.

Library code raises; only an entry point calls `run_entry`, which prints the one line and returns the
exit code (0 ok, 1 failed or interrupted, 2 usage or bad input, 3 data lost or duplicated)::

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
import sys
from collections.abc import Callable

from floor.children import signals_raise
from floor.errors import EXIT_THRESHOLD, SurgecastError, UsageError, render

__all__ = ["OneLineParser", "run_entry"]


class OneLineParser(argparse.ArgumentParser):
    """argparse that reports usage errors as one line and exit code 2 (a UsageError)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{self.prog}: {message} (see '{self.prog} --help')")


def run_entry(body: Callable[[], int | None], *, name: str) -> int:
    """Run an entry point's ``body`` with SIGTERM/SIGINT raising; render any error as one line; the exit code."""
    try:
        with signals_raise():
            return int(body() or 0)
    except SurgecastError as e:
        print(render(e), file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt as e:  # SIGINT or SIGTERM (floor.children.Interrupted); children stopped
        how = getattr(e, "signame", "SIGINT")
        print(f"Interrupted: {name} stopped by {how} before its end; what it wrote is incomplete (exit 1)",
              file=sys.stderr)
        return EXIT_THRESHOLD
    except BrokenPipeError:
        return 0
    except OSError as e:  # a full or read-only disk met while writing: one line, the run failed
        where = f" {e.filename}" if e.filename else ""
        print(f"OutputError: cannot write{where} ({e.strerror or e}); free space or give another --out",
              file=sys.stderr)
        return EXIT_THRESHOLD
