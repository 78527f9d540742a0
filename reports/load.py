"""Read a run directory (docs/run-directory.md) into plain Python and numpy values.

Any subset of the files may be present; `RunData.missing` lists what is not. A
file that is present but malformed raises `InputFileError` naming the file and
the line or key, so the report is never built from half-understood data::

    >>> from pathlib import Path
    >>> run = load_run(Path("tests/fixtures/runs/probe"))
    >>> sorted(run.kinds)
    ['probe']
    >>> "plan.json" in run.missing
    True
"""

from __future__ import annotations

import csv
import json
import math
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from floor.errors import InputFileError, ProfileError
from floor.rundir import verify
from scenarios.profile import load_profile, parse_profile
from scenarios.profile_model import Profile

STEPS = ("register", "login", "order", "pay", "wait_quota", "stamp", "poll_stamp", "download")

REHEARSAL_FILES = ("run.json", "profile.toml", "summary.json", "arrivals.csv", "queue.csv",
                   "latency_history.csv", "latency/", "reconciliation.json", "audit.json",
                   "ledger.csv", "locust_stats.csv", "locust_failures.csv")
PROBE_FILES = ("probe.csv", "capacity.json")
GATE_MODES = ("open", "closed", "rate", "booked", "paced")
PLAN_FILES = ("plan.json", "timeline.csv", "gate_schedule.json")
YEARS = (1900, 2200)  # times outside are not a surge's calendar (and would overflow zone conversions)
_FIX = "rerun the command that wrote it, or delete the file to build the report without it"


# ---------------------------------------------------------------- containers
@dataclass(kw_only=True)
class Series:
    """Columns of a CSV file: `cols[name]` is a numpy array (floats) or a list (text/times)."""

    path: Path
    cols: dict[str, Any]
    lines: list[int] = field(default_factory=list)  # the file line of each row

    def __len__(self) -> int:
        return len(next(iter(self.cols.values()))) if self.cols else 0

    def __getitem__(self, name: str) -> Any:
        return self.cols[name]


@dataclass(kw_only=True)
class RunData:
    """Everything the report reads from one run directory; absent files are None."""

    run_dir: Path
    present: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    run: dict[str, Any] | None = None
    profile: Profile | None = None
    profile_note: str = ""
    summary: dict[str, Any] | None = None
    reconciliation: dict[str, Any] | None = None
    audit: dict[str, Any] | None = None
    arrivals: Series | None = None
    queue: Series | None = None
    latency_history: Series | None = None
    hdr: dict[str, dict[str, Any]] = field(default_factory=dict)  # step -> {service, intended}
    failures: list[dict[str, str]] = field(default_factory=list)
    probe: Series | None = None
    capacity: dict[str, Any] | None = None
    plan: dict[str, Any] | None = None
    timeline: Series | None = None
    gate_schedule: list[dict[str, Any]] | None = None
    plan_check: dict[str, Any] | None = None  # plan_check.json: the demo's rehearsal-vs-plan check
    waiting_room: dict[str, Any] | None = None  # waiting_room.json: the plan's waiting-room settings
    run_id: str | None = None  # the run every file belongs to (floor.rundir.verify); None: no manifest.json

    @property
    def kinds(self) -> set[str]:
        """Which of rehearsal, probe and plan the directory holds."""
        out = set()
        if self.summary or self.arrivals or self.queue or self.latency_history or self.hdr:
            out.add("rehearsal")
        if self.probe or self.capacity:
            out.add("probe")
        if self.plan or self.timeline or self.gate_schedule:
            out.add("plan")
        return out

    @property
    def tz(self) -> Any:
        """The calendar zone: the profile's, else UTC+offset read from the data, else UTC."""
        if self.profile is not None:
            return self.profile.calendar.tz
        for s, col in ((self.timeline, "calendar_at"), (self.queue, "calendar_at"),
                       (self.arrivals, "calendar_intended_at")):
            if s is not None and len(s) and s[col][0].tzinfo is not None:
                return s[col][0].tzinfo
        return UTC


# ---------------------------------------------------------------- readers
def read_json(path: Path) -> Any:
    """Parse a JSON file; a syntax error names the file, line and column.

    >>> import tempfile; p = Path(tempfile.mkdtemp()) / "x.json"; _ = p.write_text('{"a": }')
    >>> read_json(p)
    Traceback (most recent call last):
    ...
    floor.errors.InputFileError: ...x.json: line 1 column 7: not valid JSON (Expecting value); rerun ...
    """
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise InputFileError(f"{path}: line {e.lineno} column {e.colno}: not valid JSON ({e.msg}); {_FIX}") from None
    except UnicodeDecodeError:
        raise InputFileError(f"{path}: not UTF-8 text; {_FIX}") from None
    except RecursionError:
        raise InputFileError(f"{path}: JSON nested too deeply to read; {_FIX}") from None


def need(obj: Any, key: str, path: Path, kind: type | tuple[type, ...] | None = None, *,
         optional: bool = False, at: str = "") -> Any:
    """obj[key] for a dotted `key`, checked against `kind`; errors name the file and the key.

    >>> need({"a": {"b": 1}}, "a.b", Path("plan.json"), int)
    1
    """
    node = obj
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            if optional:
                return None
            raise InputFileError(f"{path}: key {_shown(at + key)} is missing; {_FIX}")
        node = node[part]
    if node is None and optional:
        return None
    if kind is not None:
        kinds = kind if isinstance(kind, tuple) else (kind,)
        ok = isinstance(node, kinds) and not (isinstance(node, bool) and bool not in kinds)
        if float in kinds and isinstance(node, int) and not isinstance(node, bool):
            ok = True
        if not ok:
            names = " or ".join(k.__name__ for k in kinds)
            raise InputFileError(f"{path}: key {_shown(at + key)} = {node!r} is not a {names}; {_FIX}")
    return node


def _shown(key: str) -> str:
    """A key as the message shows it: as is, or quoted when it holds newlines or other control characters."""
    return key if key.isprintable() else repr(key)


def parse_time(text: str, path: Path, line: int, col: str) -> datetime:
    """An ISO 8601 time with 'Z' or an offset; errors name the file, line and column."""
    try:
        d = datetime.fromisoformat(text)
    except (ValueError, TypeError):
        raise InputFileError(f"{path}: line {line}: column {col} = {text!r} is not an ISO 8601 time; {_FIX}") from None
    if d.tzinfo is None:
        raise InputFileError(f"{path}: line {line}: column {col} = {text!r} has no offset (write Z or +07:00); {_FIX}")
    if not _in_range(d):
        raise InputFileError(f"{path}: line {line}: column {col} = {text!r} is outside the years "
                             f"{YEARS[0]}..{YEARS[1]}; {_FIX}")
    return d


def _in_range(d: datetime) -> bool:
    """A time the report can place on a calendar axis (and convert between zones without overflow)."""
    return YEARS[0] <= d.year <= YEARS[1]


def read_csv(path: Path, *, numbers: tuple[str, ...] = (), times: tuple[str, ...] = (),
             texts: tuple[str, ...] = (), optional_numbers: tuple[str, ...] = (),
             empty_ok: tuple[str, ...] = ()) -> Series:
    """Read the named columns of a CSV file (others are ignored).

    `numbers` become float arrays, `times` lists of aware datetimes, `texts` lists
    of str. A missing column or an unparsable cell names the file, line and
    column. Columns in `empty_ok` may be empty (NaN or None).
    """
    try:
        with path.open(encoding="utf-8", newline="") as f:
            reader = csv.reader(f)
            header = next(reader, None)
            if header is None:
                raise InputFileError(f"{path}: empty file, expected a header line; {_FIX}")
            index = {name.strip(): i for i, name in enumerate(header)}
            wanted = numbers + times + texts
            for name in wanted:
                if name not in index:
                    raise InputFileError(f"{path}: line 1: column {name} is missing from the header; {_FIX}")
            use_opt = tuple(n for n in optional_numbers if n in index)
            raw: dict[str, list[str]] = {n: [] for n in wanted + use_opt}
            lines: list[int] = []  # the file line of each row (a quoted newline spans lines)
            width = len(header)
            for row in reader:
                if not row:
                    continue
                if len(row) != width:
                    raise InputFileError(f"{path}: line {reader.line_num}: {len(row)} fields, "
                                         f"the header has {width}; {_FIX}")
                lines.append(reader.line_num)
                for n in raw:
                    raw[n].append(row[index[n]])
    except UnicodeDecodeError:
        raise InputFileError(f"{path}: not UTF-8 text; {_FIX}") from None
    except csv.Error as e:
        raise InputFileError(f"{path}: not valid CSV ({e}); {_FIX}") from None
    cols: dict[str, Any] = {}
    for n in numbers + use_opt:
        cols[n] = _floats(raw[n], path, n, empty_ok=n in empty_ok, lines=lines)
    for n in times:
        cols[n] = [None if (v == "" and n in empty_ok) else parse_time(v, path, line, n)
                   for line, v in zip(lines, raw[n], strict=True)]
    for n in texts:
        cols[n] = raw[n]
    return Series(path=path, cols=cols, lines=lines)


def _floats(values: list[str], path: Path, name: str, *, empty_ok: bool, lines: list[int]) -> np.ndarray:
    try:
        arr = np.array([float(v) if v != "" else math.nan for v in values], dtype=float)
    except ValueError:
        arr = None
    if arr is not None and (empty_ok or not np.isnan(arr).any()):
        return arr
    for i, v in enumerate(values):  # find the bad cell to name it
        try:
            x = float(v)
        except ValueError:
            x = math.nan
        if math.isnan(x) and not (empty_ok and v == ""):
            raise InputFileError(f"{path}: line {lines[i]}: column {name} = {v!r} is not a number; {_FIX}")
    return np.array([float(v) if v != "" else math.nan for v in values], dtype=float)


# ---------------------------------------------------------------- the directory
def load_run(run_dir: Path) -> RunData:
    """Read every known file of `run_dir`; see the module docstring.

    Raises InputFileError if the directory does not exist or holds none of the
    known files.
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise InputFileError(f"{run_dir}: no such directory; give a run directory written by "
                             "surgecast rehearse, probe, plan or demo")
    # Files of another run, or changed since their run wrote them: BlendedRun (exit 2) naming the file,
    # before anything is parsed (a directory without manifest.json: None, JSON run_ids must agree).
    d = RunData(run_dir=run_dir, run_id=verify(run_dir))

    def has(name: str) -> bool:
        p = run_dir / name
        ok = p.is_dir() and any(p.glob("*.hdr")) if name.endswith("/") else p.is_file()
        (d.present if ok else d.missing).append(name)
        return ok

    def p(name: str) -> Path:
        return run_dir / name

    # parameters and profile
    if has("run.json"):
        d.run = _run_json(p("run.json"))
    # rehearsal
    if has("summary.json"):
        d.summary = _summary(p("summary.json"))
    if has("arrivals.csv"):
        d.arrivals = read_csv(p("arrivals.csv"), times=("intended_at", "calendar_intended_at"),
                              texts=("journey", "outcome", "ended_step"))
        bad = set(d.arrivals["outcome"]) - {"completed", "abandoned", "failed", "dropped"}
        if bad:
            line = d.arrivals.lines[d.arrivals["outcome"].index(sorted(bad)[0])]
            raise InputFileError(f"{p('arrivals.csv')}: line {line}: column outcome = {sorted(bad)[0]!r}: "
                                 f"expected completed, abandoned, failed or dropped; {_FIX}")
    if has("queue.csv"):
        d.queue = read_csv(p("queue.csv"), times=("calendar_at",),
                           numbers=("issuer_queue", "issuer_busy", "issuer_workers"),
                           optional_numbers=("payments_queue", "issuer_completed", "issuer_failed"))
    if has("latency_history.csv"):
        d.latency_history = read_csv(
            p("latency_history.csv"), times=("calendar_window_start_at",), texts=("step",),
            numbers=("count", "errors", "p50_ms", "p95_ms", "p99_ms",
                     "intended_p50_ms", "intended_p95_ms", "intended_p99_ms"),
            empty_ok=("p50_ms", "p95_ms", "p99_ms", "intended_p50_ms", "intended_p95_ms", "intended_p99_ms"))
    if has("latency/"):
        d.hdr = _histograms(p("latency"))
    if has("reconciliation.json"):
        d.reconciliation = read_json(p("reconciliation.json"))
        need(d.reconciliation, "ok", p("reconciliation.json"), bool)
        for k in ("lost_quota", "duplicated_quota", "lost_stamps", "duplicated_stamps", "orphaned_payments",
                  "unknown_orders", "lost_payments", "wrong_quantities", "wrong_amounts", "serial_mismatches",
                  "reissued_serials", "unclaimed_stamps", "charged_after_giving_up", "overcharged_quota",
                  "undercharged_quota", "stuck_payments", "unfinished_stamps", "checked_orders", "checked_stamps"):
            need(d.reconciliation, k, p("reconciliation.json"), int, optional=True)
    if has("audit.json"):
        d.audit = read_json(p("audit.json"))
    if (run_dir / "plan_check.json").is_file():
        d.plan_check = read_json(p("plan_check.json"))
        need(d.plan_check, "follows", p("plan_check.json"), bool)
        need(d.plan_check, "checks", p("plan_check.json"), list)
    if has("locust_failures.csv"):
        f = read_csv(p("locust_failures.csv"), texts=("Method", "Name", "Error", "Occurrences"))
        d.failures = [{"method": m, "name": n, "error": e, "occurrences": o}
                      for m, n, e, o in zip(f["Method"], f["Name"], f["Error"], f["Occurrences"], strict=True)]
    # probe
    if has("probe.csv"):
        d.probe = read_csv(p("probe.csv"), texts=("step",),
                           numbers=("concurrency", "requests", "errors", "throughput_per_s", "p50_ms", "p95_ms", "p99_ms"),
                           empty_ok=("p50_ms", "p95_ms", "p99_ms"))
    if has("capacity.json"):
        d.capacity = _capacity(p("capacity.json"))
    # plan
    if has("plan.json"):
        d.plan = _plan(p("plan.json"))
    if has("timeline.csv"):
        d.timeline = read_csv(p("timeline.csv"), times=("calendar_at",), texts=("stage",),
                              numbers=("demand_per_s", "retry_per_s", "capacity_per_s", "served_per_s",
                                       "queue", "wait_s", "abandoned_per_s"))
    if has("gate_schedule.json"):
        d.gate_schedule = _gates(p("gate_schedule.json"))
    if (run_dir / "waiting_room.json").is_file():
        d.waiting_room = read_json(p("waiting_room.json"))
        for i, st in enumerate(need(d.waiting_room, "stages", p("waiting_room.json"), list)):
            if not isinstance(st, dict):
                raise InputFileError(f"{p('waiting_room.json')}: key stages[{i}] is not an object; {_FIX}")
            for k in ("cloudflare.new_users_per_minute", "cloudflare.total_active_users",
                      "cloudflare.session_duration_minutes", "aws_virtual_waiting_room.increment_per_minute",
                      "queue_it.max_outflow_per_minute"):
                need(st, k, p("waiting_room.json"), float, at=f"stages[{i}].")
    _profile(d)
    for name in ("ledger.csv", "locust_stats.csv"):
        has(name)
    if not d.kinds and d.run is None:
        raise InputFileError(f"{run_dir}: holds none of the run files (run.json, summary.json, probe.csv, "
                             "plan.json, ...); give a directory written by surgecast rehearse, probe, plan or demo")
    return d


def _profile(d: RunData) -> None:
    path = d.run_dir / "profile.toml"
    if path.is_file():
        d.present.append("profile.toml")
        import tomllib
        try:
            d.profile = parse_profile(tomllib.loads(path.read_text(encoding="utf-8")), source=str(path))
        except UnicodeDecodeError:
            raise InputFileError(f"{path}: not UTF-8 text; {_FIX}") from None
        except tomllib.TOMLDecodeError as e:
            raise InputFileError(f"{path}: not valid TOML ({e}); {_FIX}") from None
        except ProfileError as e:
            raise InputFileError(f"{path}: {e}") from None
        return
    d.missing.append("profile.toml")
    name = (d.plan or {}).get("profile") or (d.run or {}).get("profile")
    # Only a shipped profile's plain name: never a path a copied directory could point anywhere.
    if isinstance(name, str) and re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_-]*", name):
        try:
            d.profile = load_profile(str(name))
            d.profile_note = "shipped"
        except ProfileError:
            d.profile_note = str(name)


def _run_json(path: Path) -> dict[str, Any]:
    r = read_json(path)
    if not isinstance(r, dict):
        raise InputFileError(f"{path}: expected a JSON object; {_FIX}")
    for k in ("kind", "profile"):
        need(r, k, path, str, optional=True)
    need(r, "scale", path, float, optional=True)
    need(r, "versions", path, dict, optional=True)
    for i, n in enumerate(need(r, "steps", path, list, optional=True) or []):
        if isinstance(n, bool) or not isinstance(n, int | float) or not math.isfinite(n):
            raise InputFileError(f"{path}: key steps[{i}] = {n!r} is not a concurrency level; {_FIX}")
    return r


def _summary(path: Path) -> dict[str, Any]:
    s = read_json(path)
    if not isinstance(s, dict):
        raise InputFileError(f"{path}: expected a JSON object; {_FIX}")
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
                                     f"{{expr, ok, observed, window_s}}; {_FIX}")
            need(th[i], "expr", path, str, at=f"thresholds[{i}].")
            need(th[i], "ok", path, bool, at=f"thresholds[{i}].")
            need(th[i], "window_s", path, float, at=f"thresholds[{i}].", optional=True)
    need(s, "generator_cpu_percent_max", path, float, optional=True)
    return s


def _capacity(path: Path) -> dict[str, Any]:
    c = read_json(path)
    if not isinstance(c, dict):
        raise InputFileError(f"{path}: expected a JSON object; {_FIX}")
    need(c, "stamps_per_second", path, float, optional=True)
    for step in need(c, "usl", path, dict, optional=True) or {}:
        need(c, f"usl.{step}", path, dict)
        for k in ("alpha", "beta", "gamma"):
            need(c, f"usl.{step}.{k}", path, float)
        for k in ("peak_load", "peak_throughput", "limit_throughput", "r2"):
            need(c, f"usl.{step}.{k}", path, float, optional=True)
    return c


def _plan(path: Path) -> dict[str, Any]:
    plan = read_json(path)
    if not isinstance(plan, dict):
        raise InputFileError(f"{path}: expected a JSON object; {_FIX}")
    need(plan, "profile", path, str, optional=True)
    need(plan, "verdict.served_by_deadline", path, bool)
    need(plan, "verdict.margin_hours", path, float, optional=True)
    need(plan, "verdict.lost_applicants", path, float, optional=True)
    need(plan, "capacity_stamps_per_second", path, float, optional=True)
    need(plan, "required_capacity", path, float, optional=True)
    need(plan, "required_extension", path, float, optional=True)
    need(plan, "served_share", path, float, optional=True)
    for i, st in enumerate(need(plan, "stages", path, list, optional=True) or []):
        where = f"stages[{i}]"
        if not isinstance(st, dict):
            raise InputFileError(f"{path}: key {where} is not an object; {_FIX}")
        need(st, "name", path, str, at=f"{where}.")
        for k in ("start", "end"):
            v = need(st, k, path, str, at=f"{where}.")
            st[k] = _when(v, path, f"{where}.{k}")
        for gate, mode in (need(st, "gates", path, dict, at=f"{where}.", optional=True) or {}).items():
            if mode not in GATE_MODES:
                raise InputFileError(f"{path}: key {_shown(f'{where}.gates.{gate}')} = {mode!r}: expected one of {', '.join(GATE_MODES)}; {_FIX}")
        need(st, "why", path, str, at=f"{where}.", optional=True)
        for k in ("rate_per_s", "peak_queue", "max_wait_s", "utilisation", "burst"):
            need(st, k, path, float, at=f"{where}.", optional=True)
    out = plan.get("outage")
    if isinstance(out, dict):
        for k in ("start", "end"):
            if out.get(k):
                out[k] = _when(need(out, k, path, str), path, f"outage.{k}")
    for i, w in enumerate(need(plan, "what_if", path, list, optional=True) or []):
        if not isinstance(w, dict):
            raise InputFileError(f"{path}: key what_if[{i}] is not an object; {_FIX}")
        for k in ("capacity", "extension_hours", "served_share"):
            need(w, k, path, float, at=f"what_if[{i}].", optional=True)
    return plan


def _gates(path: Path) -> list[dict[str, Any]]:
    g = read_json(path)
    if not isinstance(g, list):
        raise InputFileError(f"{path}: expected a JSON list of gate changes; {_FIX}")
    for i, ch in enumerate(g):
        where = f"[{i}]."
        if not isinstance(ch, dict):
            raise InputFileError(f"{path}: item [{i}] is not an object; {_FIX}")
        ch["at"] = _when(need(ch, "at", path, str, at=where), path, f"[{i}].at")
        need(ch, "gate", path, str, at=where)
        mode = need(ch, "mode", path, str, at=where)
        if mode not in GATE_MODES:
            raise InputFileError(f"{path}: key [{i}].mode = {mode!r}: expected open, closed or rate; {_FIX}")
        need(ch, "rate_per_s", path, float, at=where, optional=True)
    return sorted(g, key=lambda c: c["at"])


def _when(text: str, path: Path, key: str) -> datetime:
    try:
        d = datetime.fromisoformat(text)
    except ValueError:
        raise InputFileError(f"{path}: key {key} = {text!r} is not an ISO 8601 time; {_FIX}") from None
    if d.tzinfo is None:
        raise InputFileError(f"{path}: key {key} = {text!r} has no offset (write +07:00); {_FIX}")
    if not _in_range(d):
        raise InputFileError(f"{path}: key {key} = {text!r} is outside the years {YEARS[0]}..{YEARS[1]}; {_FIX}")
    return d


def _histograms(folder: Path) -> dict[str, dict[str, Any]]:
    from hdrh.histogram import HdrHistogram

    out: dict[str, dict[str, Any]] = {}
    for f in sorted(folder.glob("*.hdr")):
        parts = f.name.split(".")
        if len(parts) != 3 or parts[1] not in ("service", "intended"):
            raise InputFileError(f"{f}: name must be STEP.service.hdr or STEP.intended.hdr; rename or delete it")
        text = f.read_bytes().strip()
        try:
            h = HdrHistogram.decode(text)
        except Exception as e:  # the decoder raises several kinds on bad input
            raise InputFileError(f"{f}: not a base64 HDR histogram ({type(e).__name__}); {_FIX}") from None
        if h is None:
            raise InputFileError(f"{f}: not a base64 HDR histogram; {_FIX}")
        out.setdefault(parts[0], {})[parts[1]] = h
    return out
