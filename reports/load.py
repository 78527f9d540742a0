"""Assemble a run directory (docs/run-directory.md) into `RunData` for the report.

Each file is read by its reader in `floor.rundir.files` (the run directory's room: schema,
readers, manifest); this module only gathers them, with the profile the run used. Any subset
of the files may be present; `RunData.missing` lists what is not. A file that is present but
malformed raises `InputFileError` naming the file and the line or key, so the report is never
built from half-understood data::

    >>> from pathlib import Path
    >>> run = load_run(Path("tests/fixtures/runs/probe"))
    >>> sorted(run.kinds)
    ['probe']
    >>> "plan.json" in run.missing
    True
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC
from pathlib import Path
from typing import Any

from floor.errors import InputFileError, ProfileError
from floor.rundir import files as rf
from floor.rundir import schema as rs
from floor.rundir.manifest import verify
from floor.rundir.readers import FIX, Series, need, read_csv, read_json
from floor.tomlfile import read_toml
from floor.vocabulary import STEPS
from scenarios.profile import load_profile, parse_profile
from scenarios.profile_model import Profile

__all__ = ["RunData", "Series", "STEPS", "load_run", "need", "read_csv", "read_json"]

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
    waiting_room: dict[str, Any] | None = None  # waiting_room.json: the plan's waiting rooms
    run_id: str | None = None  # the run every file belongs to (rundir.verify); None: no manifest

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


# ---------------------------------------------------------------- the directory
# Which files the report reads, in order: (name, RunData field, its reader in floor.rundir.files).
_READ: tuple[tuple[str, str, Any], ...] = (
    (rs.RUN, "run", rf.read_run),
    (rs.SUMMARY, "summary", rf.read_summary),
    (rs.ARRIVALS, "arrivals", rf.read_arrivals),
    (rs.QUEUE, "queue", rf.read_queue),
    (rs.LATENCY_HISTORY, "latency_history", rf.read_latency_history),
    (rs.LATENCY_DIR + "/", "hdr", rf.read_histograms),
    (rs.RECONCILIATION, "reconciliation", rf.read_reconciliation),
    (rs.AUDIT, "audit", read_json),
    (rs.LOCUST_FAILURES, "failures", rf.read_failures),
    (rs.PROBE, "probe", rf.read_probe),
    (rs.CAPACITY, "capacity", rf.read_capacity),
    (rs.PLAN, "plan", rf.read_plan),
    (rs.TIMELINE, "timeline", rf.read_timeline),
    (rs.GATE_SCHEDULE, "gate_schedule", rf.read_gate_schedule),
)
# Read when present, never listed as missing (written by the demo and the plan only).
_EXTRA: tuple[tuple[str, str, Any], ...] = (
    (rs.PLAN_CHECK, "plan_check", rf.read_plan_check),
    (rs.WAITING_ROOM, "waiting_room", rf.read_waiting_room),
)
_NOTED = (rs.LEDGER, rs.LOCUST_STATS)  # only noted present or missing


def load_run(run_dir: Path) -> RunData:
    """Read every known file of `run_dir`; see the module docstring.

    Raises InputFileError if the directory does not exist or holds none of the
    known files.
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise InputFileError(f"{run_dir}: no such directory; give a run directory written by "
                             "surgecast rehearse, probe, plan or demo")
    # Files of another run, or changed since their run wrote them: BlendedRun (exit 2) naming
    # the file, before anything is parsed (no manifest.json: None, JSON run_ids must agree).
    d = RunData(run_dir=run_dir, run_id=verify(run_dir))

    def has(name: str) -> bool:
        p = run_dir / name
        ok = p.is_dir() and any(p.glob("*.hdr")) if name.endswith("/") else p.is_file()
        (d.present if ok else d.missing).append(name)
        return ok

    for name, attr, reader in _READ:
        if has(name):
            setattr(d, attr, reader(run_dir / name.rstrip("/")))
    for name, attr, reader in _EXTRA:
        if (run_dir / name).is_file():
            setattr(d, attr, reader(run_dir / name))
    _profile(d)
    for name in _NOTED:
        has(name)
    if not d.kinds and d.run is None:
        raise InputFileError(f"{run_dir}: holds none of the run files (run.json, summary.json, "
                             "probe.csv, plan.json, ...); give a directory written by surgecast "
                             "rehearse, probe, plan or demo")
    return d


def _profile(d: RunData) -> None:
    path = d.run_dir / rs.PROFILE
    if path.is_file():
        d.present.append(rs.PROFILE)
        try:  # floor.tomlfile, as `rehearse --profile` read it
            data = read_toml(path, field=rs.PROFILE, error=ProfileError, fix=FIX)
        except ProfileError as e:
            raise InputFileError(f"{path}: {e.fix}") from None
        try:
            d.profile = parse_profile(data, source=str(path))
        except ProfileError as e:
            raise InputFileError(f"{path}: {e}") from None
        return
    d.missing.append(rs.PROFILE)
    name = (d.plan or {}).get("profile") or (d.run or {}).get("profile")
    # Only a shipped profile's plain name: never a path a copied directory could point to.
    if isinstance(name, str) and re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_-]*", name):
        try:
            d.profile = load_profile(str(name))
            d.profile_note = "shipped"
        except ProfileError:
            d.profile_note = str(name)


