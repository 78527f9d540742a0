"""The probe's CSV files read row by row: probe.csv and probe_batches.csv as dicts.

`capacity_from_probe` (analysis/probe.py) takes rows as these readers give them, or raw rows
of strings that `parse_probe_row` and `parse_batch_row` check the same way. Errors name the
file, the line and the column (`floor.rundir.files.read_probe` turns the same rows into a
`Series` of columns for the report: one reader, one set of rules). A row shorter than the
header leaves its last cells empty (csv.DictReader).
"""

from __future__ import annotations

import csv
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from floor.errors import InputFileError
from floor.rundir.schema import BATCH_COLUMNS, PROBE, PROBE_BATCHES, PROBE_COLUMNS

__all__ = ["OPTIONAL_BATCH", "parse_batch_row", "parse_probe_row", "probe_rows",
           "read_batches_csv", "read_probe_csv"]

# may be empty; all but the first may also be absent from the header (late_s: files written
# before the probe measured its own lateness read as not late)
OPTIONAL_BATCH = ("server_stamps", "server_busy_share", "server_queue", "late_s")
_NUMERIC = tuple(c for c in PROBE_COLUMNS if c != "step")
PERCENTILES = ("p50_ms", "p95_ms", "p99_ms")  # may be empty: no request of that step


def _dict_rows(p: Path, name: str, needed: tuple[str, ...], columns: tuple[str, ...]
               ) -> list[tuple[int, dict[str, Any]]]:
    """(line, row) of a probe CSV file; a missing file, column, bad text or CSV names the file."""
    fix = f"give the {name} of a probe run"
    if not p.is_file():
        raise InputFileError(f"{p}: no such file; {fix}")
    try:
        with p.open(encoding="utf-8-sig", newline="") as f:
            reader = csv.DictReader(f)
            missing = [c for c in needed if c not in (reader.fieldnames or [])]
            if missing:
                raise InputFileError(f"{p} line 1: missing column(s) {', '.join(missing)}; "
                                     f"{name} needs {', '.join(columns)}")
            return [(reader.line_num, raw) for raw in reader]
    except UnicodeDecodeError:
        raise InputFileError(f"{p}: not UTF-8 text; {fix}") from None
    except csv.Error as e:
        raise InputFileError(f"{p}: not valid CSV ({e}); {fix}") from None


def read_probe_csv(path: str | Path) -> list[dict[str, Any]]:
    """Read probe.csv; errors name the line and column.

    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "probe.csv"
    >>> _ = p.write_text(",".join(PROBE_COLUMNS) + "\\n1,stamps,10,0,0,9.5,1,2,3,60\\n")
    >>> read_probe_csv(p)[0]["throughput_per_s"]
    9.5
    """
    return [row for _line, row in probe_rows(path)]


def probe_rows(path: str | Path) -> list[tuple[int, dict[str, Any]]]:
    """probe.csv's rows as `read_probe_csv` checks them, each with its file line (the report's
    column view, `floor.rundir.files.read_probe`, is built from these)."""
    p = Path(path)
    return [(line, parse_probe_row(raw, f"{p} line {line}"))
            for line, raw in _dict_rows(p, PROBE, PROBE_COLUMNS, PROBE_COLUMNS)]


def parse_probe_row(raw: Mapping[str, Any], where: str) -> dict[str, Any]:
    """One probe.csv row of strings -> step (text), concurrency (int), the rest floats >= 0.

    A percentile cell may be empty (None): a level stopped before a step had a request, as a
    probe interrupted by a signal writes it.
    """
    row: dict[str, Any] = {"step": str(raw.get("step", "")).strip()}
    if not row["step"]:
        raise InputFileError(f"{where}, column step: empty; "
                             "name the journey step, 'journey' or 'stamps'")
    for c in _NUMERIC:
        row[c] = x = _number(raw, c, where, optional=c in PERCENTILES)
        if x is not None and (not math.isfinite(x) or x < 0):
            raise InputFileError(f"{where}, column {c}: {raw.get(c)!r} "
                                 "must be a finite number >= 0")
    row["concurrency"] = _concurrency(row, raw, where)
    return row


def read_batches_csv(path: str | Path) -> list[dict[str, Any]]:
    """Read probe_batches.csv (docs/run-directory.md); errors name the line and column.

    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "probe_batches.csv"
    >>> _ = p.write_text(",".join(BATCH_COLUMNS) + "\\n4,ladder,1700000000.5,1.0,16,,40,0\\n")
    >>> read_batches_csv(p)[0]["stamps"], read_batches_csv(p)[0]["server_stamps"]
    (16.0, None)
    """
    p = Path(path)
    needed = tuple(c for c in BATCH_COLUMNS if c not in OPTIONAL_BATCH[1:])
    return [parse_batch_row(raw, f"{p} line {line}")
            for line, raw in _dict_rows(p, PROBE_BATCHES, needed, BATCH_COLUMNS)]


def parse_batch_row(raw: Mapping[str, Any], where: str) -> dict[str, Any]:
    """One probe_batches.csv row of strings -> phase (ladder or hold), concurrency (int), the
    rest floats (the OPTIONAL_BATCH ones None when empty)."""
    row: dict[str, Any] = {"phase": str(raw.get("phase", "")).strip()}
    if row["phase"] not in ("ladder", "hold"):
        raise InputFileError(f"{where}, column phase: {raw.get('phase')!r}; "
                             "expected ladder or hold")
    for c in BATCH_COLUMNS[:1] + BATCH_COLUMNS[2:]:
        row[c] = x = _number(raw, c, where, optional=c in OPTIONAL_BATCH)
        if x is None:
            continue
        share = c == "server_busy_share"
        if not math.isfinite(x) or x < 0 or (c == "duration_s" and x <= 0) or (share and x > 1):
            want = "> 0" if c == "duration_s" else "in [0, 1]" if share else ">= 0"
            raise InputFileError(f"{where}, column {c}: {raw.get(c)!r} "
                                 f"must be a finite number {want}")
    row["concurrency"] = _concurrency(row, raw, where)
    return row


def _number(raw: Mapping[str, Any], c: str, where: str, *, optional: bool) -> float | None:
    """Cell `c` as a float (None if `optional` and empty); a cell that is no number is refused."""
    v = raw.get(c)
    if optional and (v is None or str(v).strip() == ""):
        return None
    try:
        return float(v)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise InputFileError(f"{where}, column {c}: {v!r} is not a number") from None


def _concurrency(row: Mapping[str, Any], raw: Mapping[str, Any], where: str) -> int:
    """The row's concurrency, a whole number >= 1."""
    n = float(row["concurrency"])
    if n < 1 or not n.is_integer():
        raise InputFileError(f"{where}, column concurrency: {raw.get('concurrency')!r} "
                             "must be a whole number >= 1")
    return int(n)
