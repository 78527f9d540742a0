"""Write run-directory files through the schema: the only way a producer writes one.

Every writer takes a file's schema name, never a spelled-out one; a CSV's header is the
schema's column list (a row of another width, or a dict with a column the schema does not
know, is refused before anything is written); JSON objects carry the run id as their first
key; `record` lists the files in manifest.json. The commands (probe, plan, forecast,
rehearse, demo, drills) and the fixture generator (tests/fixtures/make_fixtures.py) write
through these::

    >>> import tempfile
    >>> d = Path(tempfile.mkdtemp())
    >>> write_table(d, PROBE_BATCHES, [[1, "ladder", 0.0, 1.0, 3, "", 40, 0, "", "", 0.0]])
    >>> (d / PROBE_BATCHES).read_text().splitlines()[0].split(",")[:3]
    ['concurrency', 'phase', 'start_unix']
    >>> write_table(d, PROBE_BATCHES, [[1, "ladder"]])
    Traceback (most recent call last):
    ...
    ValueError: probe_batches.csv: row 0 has 2 fields, the schema's columns are 11
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from floor import atomic
from floor.rundir.manifest import record, stamp
from floor.rundir.schema import (
    ARRIVAL_COLUMNS,
    ARRIVALS,
    BATCH_COLUMNS,
    CAPACITY,
    FORECAST,
    FORECAST_COLUMNS,
    GATE_SCHEDULE,
    HISTORY_COLUMNS,
    LATENCY_HISTORY,
    LEDGER,
    LEDGER_COLUMNS,
    PLAN,
    PROBE,
    PROBE_BATCHES,
    PROBE_COLUMNS,
    QUEUE,
    QUEUE_COLUMNS,
    RUN_FILES,
    TIMELINE,
    TIMELINE_COLUMNS,
    WAITING_ROOM,
    hdr_name,
)

__all__ = ["COLUMNS", "write_forecast", "write_histogram", "write_list", "write_object",
           "write_plan", "write_probe", "write_table"]

# The CSV files and the column lists they may carry (the timeline: a plan's or a forecast's).
COLUMNS: dict[str, tuple[tuple[str, ...], ...]] = {
    ARRIVALS: (ARRIVAL_COLUMNS,), LEDGER: (LEDGER_COLUMNS,), QUEUE: (QUEUE_COLUMNS,),
    LATENCY_HISTORY: (HISTORY_COLUMNS,), PROBE: (PROBE_COLUMNS,), PROBE_BATCHES: (BATCH_COLUMNS,),
    TIMELINE: (TIMELINE_COLUMNS, FORECAST_COLUMNS),
}


def _rows(name: str, columns: tuple[str, ...], rows: Iterable[Sequence[Any] | Mapping[str, Any]],
          ) -> Iterator[Sequence[Any]]:
    """The rows in the columns' order; a row that does not fit raises before the file exists
    (floor.atomic renames only a file written whole)."""
    for i, row in enumerate(rows):
        if isinstance(row, Mapping):
            unknown = sorted(set(row) - set(columns))
            if unknown:
                raise ValueError(f"{name}: row {i} has columns the schema does not know: "
                                 f"{', '.join(unknown)}")
            yield [row.get(c, "") for c in columns]
            continue
        if len(row) != len(columns):
            raise ValueError(f"{name}: row {i} has {len(row)} fields, the schema's columns are "
                             f"{len(columns)}")
        yield row


def write_table(out: Path, name: str, rows: Iterable[Sequence[Any] | Mapping[str, Any]], *,
                columns: tuple[str, ...] | None = None) -> None:
    """A CSV file of the schema with its columns as header (`columns`: which of the file's lists).

    A row is a sequence in the columns' order or a dict by column (absent columns are empty).
    """
    allowed = COLUMNS.get(name)
    if allowed is None:
        raise ValueError(f"{name}: not a CSV file of the run directory's schema")
    cols = columns or allowed[0]
    if cols not in allowed:
        raise ValueError(f"{name}: these columns are not the schema's for this file")
    atomic.write_csv(Path(out) / name, list(cols), _rows(name, cols, rows))


def write_object(out: Path, name: str, obj: dict[str, Any], run_id: str) -> None:
    """A JSON object of the schema, `run_id` as its first key."""
    if name not in RUN_FILES or not name.endswith(".json"):
        raise ValueError(f"{name}: not a JSON file of the run directory's schema")
    atomic.write_json(Path(out) / name, stamp(obj, run_id))


def write_list(out: Path, name: str, items: list[Any]) -> None:
    """A JSON list of the schema (gate_schedule.json: its run id is in the manifest)."""
    if name != GATE_SCHEDULE:
        raise ValueError(f"{name}: not a JSON list of the run directory's schema")
    atomic.write_json(Path(out) / name, items)


def write_histogram(out: Path, step: str, clock: str, text: str) -> str:
    """latency/STEP.CLOCK.hdr (base64 of the compressed HDR encoding); returns its name."""
    name = hdr_name(step, clock)
    atomic.write_text(Path(out) / name, text + "\n")
    return name


# ---------------------------------------------------------------- the commands' file families
def write_probe(out: Path, *, rows: Iterable[Sequence[Any]], batches: Iterable[Sequence[Any]],
                capacity: dict[str, Any], run_id: str, by: str = "probe") -> None:
    """probe.csv, probe_batches.csv and capacity.json, listed in the manifest."""
    write_table(out, PROBE, rows)
    write_table(out, PROBE_BATCHES, batches)
    write_object(out, CAPACITY, capacity, run_id)
    record(out, [PROBE, PROBE_BATCHES, CAPACITY], run_id=run_id, by=by)


def write_plan(out: Path, *, plan: dict[str, Any], timeline: Iterable[Sequence[Any]],
               gate_schedule: list[dict[str, Any]], waiting_room: dict[str, Any] | None,
               run_id: str, by: str = "plan") -> None:
    """timeline.csv, gate_schedule.json, waiting_room.json and plan.json (last), listed."""
    write_table(out, TIMELINE, timeline, columns=TIMELINE_COLUMNS)
    write_list(out, GATE_SCHEDULE, gate_schedule)
    if waiting_room is not None:
        write_object(out, WAITING_ROOM, waiting_room, run_id)
    write_object(out, PLAN, plan, run_id)
    record(out, [TIMELINE, GATE_SCHEDULE, WAITING_ROOM, PLAN], run_id=run_id, by=by)


def write_forecast(out: Path, *, forecast: dict[str, Any], timeline: Iterable[Sequence[Any]],
                   run_id: str) -> None:
    """timeline.csv (the forecast's columns) and forecast.json, listed."""
    write_table(out, TIMELINE, timeline, columns=FORECAST_COLUMNS)
    write_object(out, FORECAST, forecast, run_id)
    record(out, [TIMELINE, FORECAST], run_id=run_id, by="forecast")
