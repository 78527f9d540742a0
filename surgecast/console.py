"""The terminal side of the commands (Rich): progress bars with an ETA, tables, --quiet and --json.

* `ProbeProgress(budget_s)`: the probe ladder against its wall budget; `say(line)` per level.
* `RehearsalProgress(duration_s)`: a rehearsal's test seconds against its duration, then "draining"
  while journeys in flight finish; `feed(line)` takes the Locust child's progress lines.
* `summary(markdown)`: the report's Markdown summary as terminal text and tables.
* `plan_digest(plan_json)`: the plan in a few lines (the demo; `surgecast plan` prints it whole).
* `add_script_flags(parser)`: `--quiet` and `--json` for scripts; `surgecast.cli` honours them.

On a terminal the bars redraw in place; elsewhere (a pipe, a log, CI) each line is printed once, so
logs stay readable. Rich is imported here only: call sites stay one line each.

    >>> parse_progress("[surgecast] t=   50s/45s  arrivals 10/10  dropped 0  in journey 3  "
    ...                "done 7 (completed 6, abandoned 1, failed 0)  issuer queue 2")["t"]
    50.0
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from typing import Any, TextIO

_T = re.compile(r"t=\s*(?P<t>\d+(?:\.\d+)?)s/(?P<total>\d+(?:\.\d+)?)s")
_FIELDS = {
    k: re.compile(rf"{k} (\d+)")
    for k in ("in journey", "completed", "abandoned", "failed", "dropped")
}


def _console(stream: TextIO | None = None) -> Any:
    from rich.console import Console

    return Console(file=stream or sys.stdout, highlight=False, soft_wrap=False)


def parse_progress(line: str) -> dict[str, float] | None:
    """The numbers of a rehearsal progress line (scenarios.run.Rehearsal.progress_line), or None."""
    m = _T.search(line)
    if not m:
        return None
    got = {"t": float(m["t"]), "total": float(m["total"])}
    for k, rx in _FIELDS.items():
        f = rx.search(line)
        if f:
            got[k] = float(f[1])
    return got


class _Bar:
    """A one-task Rich progress bar on a terminal; plain lines elsewhere."""

    def __init__(
        self, title: str, total: float, *, stream: TextIO | None = None, quiet: bool = False
    ) -> None:
        self.console = _console(stream)
        self.quiet = quiet
        self.live = self.console.is_terminal and not quiet
        self.progress: Any = None
        if self.live:
            from rich.progress import (
                BarColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )

            self.progress = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                TextColumn("{task.fields[note]}"),
                TimeElapsedColumn(),
                TextColumn("ETA"),
                TimeRemainingColumn(),
                console=self.console,
                transient=False,
            )
            self.task = self.progress.add_task(title, total=total, note="")
            self.progress.start()

    def show(self, description: str, completed: float, note: str, line: str) -> None:
        if self.live:
            self.progress.update(self.task, description=description, completed=completed, note=note)
        elif not self.quiet:
            self.console.print(line, markup=False, soft_wrap=True)

    def say(self, line: str) -> None:
        """A line that is not progress (a warning, a threshold breach): printed above the bar."""
        if not self.quiet:
            self.console.print(line, markup=False, soft_wrap=True)

    def close(self) -> None:
        if self.progress is not None:
            self.progress.stop()
            self.progress = None

    def __enter__(self) -> _Bar:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


class ProbeProgress(_Bar):
    """The probe ladder: wall seconds spent against `budget_s`, the last level measured beside
    it."""

    def __init__(
        self, budget_s: float, *, stream: TextIO | None = None, quiet: bool = False
    ) -> None:
        super().__init__("probe ladder", budget_s, stream=stream or sys.stderr, quiet=quiet)
        self.budget_s = budget_s
        self.t0 = time.monotonic()

    def __call__(self, line: str) -> None:
        """The probe's progress callback (`run_probe(progress=...)`)."""
        spent = time.monotonic() - self.t0
        if line.lstrip().startswith("concurrency"):
            level = line.split(":", 1)[0].strip()
            self.show(
                f"probe {level}",
                min(spent, self.budget_s),
                line.split(":", 1)[1].strip()[:60],
                line,
            )
        else:
            self.say(line)


class RehearsalProgress(_Bar):
    """A rehearsal: test seconds against its duration, then draining (arrivals over, journeys
    finishing)."""

    def __init__(
        self,
        duration_s: float,
        *,
        stream: TextIO | None = None,
        quiet: bool = False,
        title: str = "rehearsal",
    ) -> None:
        super().__init__(title, duration_s, stream=stream, quiet=quiet)
        self.title = title

    def feed(self, line: str) -> None:
        """A line from the Locust child: progress redraws the bar, anything else is printed."""
        p = parse_progress(line)
        if p is None:
            self.say(line)
            return
        done = f"completed {p.get('completed', 0):.0f}, abandoned {p.get('abandoned', 0):.0f}"
        if p["t"] > p["total"]:
            desc = f"{self.title}: draining, {p.get('in journey', 0):.0f} in journey"
        else:
            desc = f"{self.title} t={p['t']:.0f}/{p['total']:.0f} s"
        self.show(desc, min(p["t"], p["total"]), done, line)


def summary(markdown: str, *, stream: TextIO | None = None) -> None:
    """Print a Markdown summary (the report's) as terminal text: bold verdict, boxed tables."""
    from rich.markdown import Markdown

    _console(stream).print(Markdown(markdown))


def plan_digest(plan: dict[str, Any]) -> Any:
    """The plan in a few lines for the demo: the reopening's stages and plan against doing nothing.

    >>> t = plan_digest({"recommended": "staged",
    ...                  "outcome": {"served": 90, "waiting": 5, "lost": 5},
    ...                  "baseline": {"served": 70, "waiting": 10, "lost": 20},
    ...                  "stages": [{"id": "hold"}],
    ...                  "required_extension_days": 0, "required_capacity": 3.5})
    >>> t.row_count
    2
    """
    from rich.table import Table

    stages = (
        " -> ".join(str(s.get("id") or s.get("name") or "?") for s in plan.get("stages") or [])
        or "none"
    )
    ext = plan.get("required_extension_days")
    ext_text = "none needed" if ext == 0 else "not reachable" if ext is None else f"{ext} d"
    rc = plan.get("required_capacity")
    t = Table(
        title=f"plan: {plan.get('recommended')} reopening ({stages}); minimum extension "
        f"{ext_text}; "
        f"capacity for the target {'not reachable' if rc is None else f'{rc:.3g} stamps/s'}",
        title_justify="left",
    )
    for col in ("", "served", "still waiting", "lost"):
        t.add_column(col, justify="right" if col else "left")
    for name, key in (("the plan", "outcome"), ("doing nothing", "baseline")):
        o = plan.get(key) or {}
        t.add_row(name, *(f"{o.get(k, 0):,}" for k in ("served", "waiting", "lost")))
    return t


def print_renderable(obj: Any, *, stream: TextIO | None = None) -> None:
    """Print a Rich renderable (a table) to `stream` (stdout)."""
    _console(stream).print(obj)


def add_script_flags(parser: argparse.ArgumentParser) -> None:
    """`--quiet` (nothing on stdout; errors still on stderr) and `--json` (one JSON document on
    stdout).

    A command that already has `--quiet` keeps its own.
    """
    have = {o for a in parser._actions for o in a.option_strings}
    if "--quiet" not in have:
        parser.add_argument(
            "--quiet", action="store_true", help="print nothing on stdout (errors still on stderr)"
        )
    if "--json" not in have:
        parser.add_argument(
            "--json",
            action="store_true",
            help="print one JSON document on stdout (the result) and nothing else there",
        )
