"""One reader per run-directory file (docs/run-directory.md), through the schema's names.

Each reader takes the file's path and returns plain Python or a `Series`; a file that is
present but malformed raises `InputFileError` naming the file and the line or key, so nothing
is built from half-understood data. analysis/, reports/, scenarios/ and the drills read
through these::

    >>> gates = read_gate_schedule(Path("tests/fixtures/runs/plan") / GATE_SCHEDULE)
    >>> gates[0]["gate"], gates[0]["at"].isoformat()
    ('registration', '2024-09-03T08:00:00+07:00')
"""

from __future__ import annotations

import csv
import math
from datetime import datetime, tzinfo
from pathlib import Path
from typing import Any

import numpy as np

from floor.errors import InputFileError
from floor.rundir.probe_files import probe_rows, read_batches_csv, read_probe_csv
from floor.rundir.readers import (
    FIX,
    YEARS,
    Series,
    in_range,
    key_time,
    need,
    need_object,
    read_csv,
    read_json,
    shown,
)
from floor.rundir.schema import (
    FAILURE_COLUMNS,
    GATE_SCHEDULE,
    HDR_CLOCKS,
    OUTCOMES,
    PLAN_GATE_MODES,
    PROBE_COLUMNS,
    QUEUE_GATE_COLUMNS,
)
from floor.vocabulary import GATE_MODES, GATES

__all__ = [
    "read_arrivals", "read_batches_csv", "read_capacity", "read_failures", "read_gate_schedule",
    "read_histograms", "read_latency_history", "read_ledger", "read_ledger_rows", "read_plan",
    "read_plan_check", "read_locust_history", "read_probe", "read_probe_csv", "read_queue",
    "read_reconciliation", "read_run", "read_summary", "read_timeline", "read_waiting_room",
]

RECONCILIATION_COUNTS = (
    "lost_quota", "duplicated_quota", "lost_stamps", "duplicated_stamps", "orphaned_payments",
    "unknown_orders", "lost_payments", "wrong_quantities", "wrong_amounts", "serial_mismatches",
    "reissued_serials", "unclaimed_stamps", "charged_after_giving_up", "overcharged_quota",
    "undercharged_quota", "stuck_payments", "unfinished_stamps", "checked_orders", "checked_stamps")
_PERCENTILES = ("p50_ms", "p95_ms", "p99_ms", "intended_p50_ms", "intended_p95_ms",
                "intended_p99_ms")
_ROOM_KEYS = ("cloudflare.new_users_per_minute", "cloudflare.total_active_users",
              "cloudflare.session_duration_minutes",
              "aws_virtual_waiting_room.increment_per_minute",
              "queue_it.max_outflow_per_minute")


# ---------------------------------------------------------------- rehearsal
def read_run(path: Path) -> dict[str, Any]:
    """run.json: a rehearsal's parameters."""
    r = need_object(read_json(path), path)
    for k in ("kind", "profile"):
        need(r, k, path, str, optional=True)
    need(r, "scale", path, float, optional=True)
    need(r, "versions", path, dict, optional=True)
    return r


def read_summary(path: Path) -> dict[str, Any]:
    """summary.json: the outcome counts, per-step latency and the thresholds' verdicts."""
    s = need_object(read_json(path), path)
    for k in ("scheduled", "started", "dropped", "completed", "abandoned", "failed"):
        need(s, k, path, int)
    steps = need(s, "steps", path, dict, optional=True) or {}
    for step in steps:
        need(s, f"steps.{step}", path, dict)
        need(s, f"steps.{step}.count", path, int)
        need(s, f"steps.{step}.errors", path, int, optional=True)
    th = need(s, "thresholds", path, list, optional=True) or []
    if all(isinstance(t, str) for t in th):
        # The contract's "the parameters" include run.json's thresholds (a list of strings),
        # which share the key with the outcomes: strings alone mean no outcomes were recorded.
        s["thresholds"] = []
    else:
        for i in range(len(th)):
            if not isinstance(th[i], dict):
                raise InputFileError(f"{path}: key thresholds[{i}] = {th[i]!r} is not an object "
                                     f"{{expr, ok, observed, window_s}}; {FIX}")
            need(th[i], "expr", path, str, at=f"thresholds[{i}].")
            need(th[i], "ok", path, bool, at=f"thresholds[{i}].")
            need(th[i], "window_s", path, float, at=f"thresholds[{i}].", optional=True)
    need(s, "generator_cpu_percent_max", path, float, optional=True)
    return s


def _csv(path: Path, missing: str, **columns: Any) -> Series:
    """read_csv, and a missing file refused with `missing` (who writes it) when given."""
    try:
        return read_csv(path, **columns)
    except FileNotFoundError:
        if not missing:
            raise
        raise InputFileError(f"{path}: missing; {missing}") from None


def read_arrivals(path: Path, *, missing: str = "") -> Series:
    """arrivals.csv: the times, journeys and outcomes of every scheduled arrival; also the
    `applicant_id`, the wall `started_at` and `finished_at` (None when empty: a dropped
    arrival) and each applicant's own `patience_s` (NaN when empty) when the header has them.
    `missing` words the error for an absent file (who writes it)."""
    s = _csv(path, missing, times=("intended_at", "calendar_intended_at"),
             texts=("journey", "outcome", "ended_step"), optional_texts=("applicant_id",),
             optional_times=("started_at", "finished_at"), optional_numbers=("patience_s",),
             empty_ok=("started_at", "finished_at", "patience_s"))
    if "patience_s" in s.cols:
        p = np.asarray(s["patience_s"], dtype=float)
        bad_p = np.flatnonzero(~np.isnan(p) & ~(p > 0))
        if len(bad_p):
            i = int(bad_p[0])
            raise InputFileError(f"{path}: line {s.lines[i]}: column patience_s = {float(p[i])!r}: "
                                 f"expected seconds > 0 (or empty: the profile's patience); {FIX}")
    bad = set(s["outcome"]) - set(OUTCOMES)
    if bad:
        first = sorted(bad)[0]
        line = s.lines[s["outcome"].index(first)]
        raise InputFileError(f"{path}: line {line}: column outcome = {first!r}: expected "
                             f"{', '.join(OUTCOMES[:-1])} or {OUTCOMES[-1]}; {FIX}")
    return s


def read_queue(path: Path, *, missing: str = "") -> Series:
    """queue.csv: the target's issuer queue over calendar time; also the wall `at`,
    `issuer_paused` (0 or 1), the issuer's `issuer_completed` and `issuer_failed` counts (NaN
    when empty: a target that does not count them) and the gate columns when the header has
    them. `missing` words the error for an absent file (who writes it)."""
    return _csv(path, missing, times=("calendar_at",),
                numbers=("issuer_queue", "issuer_busy", "issuer_workers"),
                optional_numbers=("payments_queue", "issuer_completed", "issuer_failed",
                                  "issuer_paused"),
                optional_times=("at",), optional_texts=QUEUE_GATE_COLUMNS,
                empty_ok=("issuer_completed", "issuer_failed"))


def read_ledger(path: Path) -> Series:
    """ledger.csv (the client's evidence): each row's `applicant_id` and `account_id` (texts,
    empty on rows of no account); `read_ledger_rows` reads it whole for the reconciliation."""
    return read_csv(path, texts=("applicant_id", "account_id"))


def read_ledger_rows(path: Path) -> list[dict[str, str]]:
    """ledger.csv whole, a dict of texts per row (the drills' and the reconciliation's view);
    no file: no rows (a rehearsal that recorded nothing).

    >>> read_ledger_rows(Path("/nonexistent/ledger.csv"))
    []
    """
    if not path.is_file():
        return []
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def read_latency_history(path: Path) -> Series:
    """latency_history.csv: per window and step, counts and percentiles (empty: no request)."""
    return read_csv(path, times=("calendar_window_start_at",), texts=("step",),
                    numbers=("count", "errors", *_PERCENTILES), empty_ok=_PERCENTILES)


def read_locust_history(path: Path) -> Series:
    """locust_stats_history.csv (Locust's own, a row per request name about every second): the
    unix `Timestamp`, the request `Name` and its `Total Failure Count` so far."""
    return read_csv(path, numbers=("Timestamp", "Total Failure Count"), texts=("Name",))


def read_histograms(folder: Path) -> dict[str, dict[str, Any]]:
    """latency/*.hdr: {step: {service, intended}} as HdrHistogram objects."""
    from hdrh.histogram import HdrHistogram

    out: dict[str, dict[str, Any]] = {}
    for f in sorted(Path(folder).glob("*.hdr")):
        parts = f.name.split(".")
        if len(parts) != 3 or parts[1] not in HDR_CLOCKS:
            raise InputFileError(f"{f}: name must be STEP.service.hdr or STEP.intended.hdr; "
                                 "rename or delete it")
        text = f.read_bytes().strip()
        try:
            h = HdrHistogram.decode(text)
        except Exception as e:  # the decoder raises several kinds on bad input
            raise InputFileError(f"{f}: not a base64 HDR histogram ({type(e).__name__}); "
                                 f"{FIX}") from None
        if h is None:
            raise InputFileError(f"{f}: not a base64 HDR histogram; {FIX}")
        out.setdefault(parts[0], {})[parts[1]] = h
    return out


def read_reconciliation(path: Path) -> dict[str, Any]:
    """reconciliation.json: `ok` and the counts, each a whole number when present."""
    r = read_json(path)
    need(r, "ok", path, bool)
    for k in RECONCILIATION_COUNTS:
        need(r, k, path, int, optional=True)
    return r


def read_plan_check(path: Path) -> dict[str, Any]:
    """plan_check.json: the demo's rehearsal-vs-plan check."""
    c = read_json(path)
    need(c, "follows", path, bool)
    need(c, "checks", path, list)
    return c


def read_failures(path: Path) -> list[dict[str, str]]:
    """locust_failures.csv (Locust's own): [{method, name, error, occurrences}]."""
    f = read_csv(path, texts=FAILURE_COLUMNS)
    return [{"method": m, "name": n, "error": e, "occurrences": o}
            for m, n, e, o in zip(*(f[c] for c in FAILURE_COLUMNS), strict=True)]


# ---------------------------------------------------------------- probe
def read_probe(path: Path) -> Series:
    """probe.csv as columns: per concurrency level and step, throughput and percentiles (an
    empty percentile NaN), from the rows `read_probe_csv` checks.

    >>> s = read_probe(Path("tests/fixtures/runs/probe") / "probe.csv")
    >>> s["step"][0], float(s["concurrency"][0])
    ('stamps', 1.0)
    """
    rows = probe_rows(path)
    cols: dict[str, Any] = {"step": [r["step"] for _, r in rows]}
    for c in PROBE_COLUMNS:
        if c != "step":
            cols[c] = np.array([math.nan if r[c] is None else float(r[c]) for _, r in rows],
                               dtype=float)
    return Series(path=Path(path), cols=cols, lines=[line for line, _ in rows])


def read_capacity(path: Path) -> dict[str, Any]:
    """capacity.json: the measured capacity and the USL fits."""
    c = need_object(read_json(path), path)
    need(c, "stamps_per_second", path, float, optional=True)
    for step in need(c, "usl", path, dict, optional=True) or {}:
        need(c, f"usl.{step}", path, dict)
        for k in ("alpha", "beta", "gamma"):
            need(c, f"usl.{step}.{k}", path, float)
        for k in ("peak_load", "peak_throughput", "limit_throughput", "r2"):
            need(c, f"usl.{step}.{k}", path, float, optional=True)
    return c


# ---------------------------------------------------------------- plan
def read_plan(path: Path) -> dict[str, Any]:
    """plan.json, its stage and outage times as aware datetimes."""
    plan = need_object(read_json(path), path)
    need(plan, "profile", path, str, optional=True)
    need(plan, "verdict.served_by_deadline", path, bool)
    for k in ("verdict.margin_hours", "verdict.lost_applicants", "capacity_stamps_per_second",
              "required_capacity", "required_extension", "served_share"):
        need(plan, k, path, float, optional=True)
    for i, st in enumerate(need(plan, "stages", path, list, optional=True) or []):
        _stage(st, path, f"stages[{i}]")
    out = plan.get("outage")
    if isinstance(out, dict):
        for k in ("start", "end"):
            if out.get(k):
                out[k] = key_time(need(out, k, path, str), path, f"outage.{k}")
    for i, w in enumerate(need(plan, "what_if", path, list, optional=True) or []):
        if not isinstance(w, dict):
            raise InputFileError(f"{path}: key what_if[{i}] is not an object; {FIX}")
        for k in ("capacity", "extension_hours", "served_share"):
            need(w, k, path, float, at=f"what_if[{i}].", optional=True)
    return plan


def _stage(st: Any, path: Path, where: str) -> None:
    if not isinstance(st, dict):
        raise InputFileError(f"{path}: key {where} is not an object; {FIX}")
    need(st, "name", path, str, at=f"{where}.")
    for k in ("start", "end"):
        st[k] = key_time(need(st, k, path, str, at=f"{where}."), path, f"{where}.{k}")
    for gate, mode in (need(st, "gates", path, dict, at=f"{where}.", optional=True) or {}).items():
        if mode not in PLAN_GATE_MODES:
            raise InputFileError(f"{path}: key {shown(f'{where}.gates.{gate}')} = {mode!r}: "
                                 f"expected one of {', '.join(PLAN_GATE_MODES)}; {FIX}")
    need(st, "why", path, str, at=f"{where}.", optional=True)
    for k in ("rate_per_s", "peak_queue", "max_wait_s", "utilisation", "burst"):
        need(st, k, path, float, at=f"{where}.", optional=True)


def read_timeline(path: Path) -> Series:
    """timeline.csv (the planner's): demand, capacity, served, queue and wait per step."""
    return read_csv(path, times=("calendar_at",), texts=("stage",),
                    numbers=("demand_per_s", "retry_per_s", "capacity_per_s", "served_per_s",
                             "queue", "wait_s", "abandoned_per_s"))


def read_waiting_room(path: Path) -> dict[str, Any]:
    """waiting_room.json: the admission settings per stage for each waiting-room product."""
    w = read_json(path)
    for i, st in enumerate(need(w, "stages", path, list)):
        if not isinstance(st, dict):
            raise InputFileError(f"{path}: key stages[{i}] is not an object; {FIX}")
        for k in _ROOM_KEYS:
            need(st, k, path, float, at=f"stages[{i}].")
    return w


def read_gate_schedule(path: Path, *, flag: str = "", tz: tzinfo | None = None,
                       ) -> list[dict[str, Any]]:
    """gate_schedule.json, the one reader (the report, `rehearse --gates`, the demo).

    Returns [{at, gate, mode, rate_per_s, burst, room, label}] by time (stable): `at` an aware
    datetime (a time without an offset is read in `tz`; without `tz` it is refused), a `rate`
    gate's `rate_per_s` a float in [1e-9, 1e9] and `burst` a whole number (default: the rate
    rounded up, at least 1), both None for open and closed. Errors name the file (after `flag`,
    the option that gave it) and the entry.
    """
    where = f"{flag} {path}".strip()
    try:
        data = read_json(path)
    except OSError as e:
        raise InputFileError(f"{where}: cannot read it ({e.strerror or e}); give a plan's "
                             f"{GATE_SCHEDULE}") from None
    except InputFileError as e:
        raise InputFileError(f"{flag} {e}".strip()) from None
    if isinstance(data, dict):
        data = data.get("gate_schedule", data.get("gates"))
    if not isinstance(data, list):
        raise InputFileError(f"{where}: expected a JSON list of gate changes "
                             "{at, gate, mode, rate_per_s, burst}; give a plan's "
                             f"{GATE_SCHEDULE}")
    out = [_gate_change(row, f"{where}: key [{i}]", tz) for i, row in enumerate(data)]
    return sorted(out, key=lambda c: c["at"])


def _gate_time(at: Any, where: str, tz: tzinfo | None) -> datetime:
    """A gate change's time: ISO 8601, with an offset or (given `tz`) read in `tz`."""
    try:
        d = datetime.fromisoformat(at.replace("Z", "+00:00")) if isinstance(at, str) else None
    except ValueError:
        d = None
    if d is None:
        raise InputFileError(f"{where} = {at!r} is not an ISO 8601 time; {FIX}")
    if d.tzinfo is None:
        if tz is None:
            raise InputFileError(f"{where} = {at!r} has no offset (write +07:00); {FIX}")
        d = d.replace(tzinfo=tz)
    if not in_range(d):
        raise InputFileError(f"{where} = {at!r} is outside the years {YEARS[0]}..{YEARS[1]}; {FIX}")
    return d.astimezone(tz) if tz is not None else d


def _gate_change(row: Any, where: str, tz: tzinfo | None) -> dict[str, Any]:
    if not isinstance(row, dict):
        raise InputFileError(f"{where} is not an object {{at, gate, mode, ...}}; {FIX}")
    for key, allowed in (("gate", GATES), ("mode", GATE_MODES)):
        if row.get(key) not in allowed:
            raise InputFileError(f"{where}.{key} = {shown(repr(row.get(key)))}: expected one of "
                                 f"{', '.join(allowed)}; {FIX}")
    when = _gate_time(row.get("at"), f"{where}.at", tz)
    rate = burst = None
    if row["mode"] == "rate":
        rate = row.get("rate_per_s")
        if (not isinstance(rate, int | float) or isinstance(rate, bool) or not math.isfinite(rate)
                or not 1e-9 <= rate <= 1e9):
            raise InputFileError(f"{where}.rate_per_s = {rate!r}: give a finite rate from 1e-9 "
                                 "to 1e9 (applicants per calendar second)")
        rate = float(rate)
        b = row.get("burst") or max(1, math.ceil(rate))
        if (not isinstance(b, int | float) or isinstance(b, bool) or not math.isfinite(b)
                or not 1 <= b <= 1e9):
            raise InputFileError(f"{where}.burst = {row.get('burst')!r}: give a whole number "
                                 "from 1 to 1e9")
        burst = int(b)
    return {**row, "at": when, "rate_per_s": rate, "burst": burst}
