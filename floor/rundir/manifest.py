"""Run ids and the run directory's manifest: files of one run never blend with another's.

Every command that writes a run directory takes a **run id** first (`claim`): the
id its parent exported in `SURGECAST_RUN_ID` (the demo and a drill run their
children under their own id), else a fresh one. `claim` refuses, before anything
is written, a directory that already holds files of another run. JSON objects the
run writes carry `"run_id"`; every file it writes is listed in `manifest.json`
with its run id and sha256 (`record`), so CSVs, HDR histograms and
`gate_schedule.json` (a list) are covered too. `verify` is the reader's check:
the report refuses a directory whose files come from different runs or changed
after their run wrote them::

    >>> import tempfile
    >>> d = Path(tempfile.mkdtemp())
    >>> rid = claim(d, what="plan", run_id="20261201T000000Z-abcdef")
    >>> write_json(d / "plan.json", stamp({"ok": True}, rid))
    >>> record(d, ["plan.json"], run_id=rid, by="plan")
    >>> verify(d)
    '20261201T000000Z-abcdef'
    >>> claim(d, what="probe", run_id="20261202T000000Z-123456")
    Traceback (most recent call last):
    ...
    floor.errors.FieldError: --out = '...': holds files of another run (20261201T000000Z-abcdef: ...

Imports nothing of the project but `floor.errors`, `floor.atomic` and the schema.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import secrets
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from floor.atomic import write_json
from floor.errors import FieldError, InputFileError
from floor.rundir.schema import LATENCY_DIR, MANIFEST, REPORT_HTML, REPORT_PDF, RUN_FILES

RUN_ID_ENV = "SURGECAST_RUN_ID"
RUN_ID_RE = re.compile(r"[0-9]{8}T[0-9]{6}Z-[0-9a-f]{6,32}")
# the report's own outputs carry the id inside
NOT_RUN_FILES = frozenset({MANIFEST, REPORT_HTML, REPORT_PDF})
_PROCESS_RUN_ID: list[str] = []


class BlendedRun(InputFileError):
    """A run directory holds files of more than one run, or a file changed after its run wrote
    it (exit 2)."""


def new_run_id() -> str:
    """A fresh run id: the UTC start time and 12 random hex digits.

    >>> bool(RUN_ID_RE.fullmatch(new_run_id()))
    True
    """
    return f"{datetime.now(UTC):%Y%m%dT%H%M%SZ}-{secrets.token_hex(6)}"


def inherited_run_id() -> str | None:
    """The run id a parent command exported in SURGECAST_RUN_ID, or None (absent or malformed).

    >>> with exported("20261201T000000Z-abcdef"):
    ...     inherited_run_id()
    '20261201T000000Z-abcdef'
    """
    v = os.environ.get(RUN_ID_ENV, "")
    return v if RUN_ID_RE.fullmatch(v) else None


def process_run_id() -> str:
    """The run id of this process's run: the inherited one, else one made once per process
    (a Locust run).

    >>> process_run_id() == process_run_id()
    True
    """
    got = inherited_run_id()
    if got:
        return got
    if not _PROCESS_RUN_ID:
        _PROCESS_RUN_ID.append(new_run_id())
    return _PROCESS_RUN_ID[0]


@contextlib.contextmanager
def exported(run_id: str) -> Iterator[None]:
    """Run children under `run_id` (SURGECAST_RUN_ID in this process's environment) for the
    block's length.

    >>> with exported("20261201T000000Z-abcdef"):
    ...     os.environ[RUN_ID_ENV]
    '20261201T000000Z-abcdef'
    """
    old = os.environ.get(RUN_ID_ENV)
    os.environ[RUN_ID_ENV] = run_id
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(RUN_ID_ENV, None)
        else:
            os.environ[RUN_ID_ENV] = old


def read_manifest(run_dir: Path) -> dict[str, Any] | None:
    """`manifest.json` of `run_dir` as a dict, None when there is none; a malformed one names
    the file."""
    path = Path(run_dir) / MANIFEST
    if not path.is_file():
        return None
    try:
        m = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise InputFileError(f"{path}: not valid JSON; delete the directory and re-run into a "
                             "new one") from None
    if (not isinstance(m, dict) or not isinstance(m.get("files"), dict)
            or not isinstance(m.get("run_id"), str)):
        raise InputFileError(f"{path}: expected {{run_id, files: {{name: {{run_id, sha256}}}}}}; "
                             "delete the directory and re-run into a new one")
    return m


def run_files(run_dir: Path) -> list[str]:
    """The run files (RUN_FILES, latency/*.hdr) present in `run_dir`, as names relative to it."""
    d = Path(run_dir)
    if not d.is_dir():
        return []
    names = sorted(p.name for p in d.iterdir() if p.is_file() and p.name in RUN_FILES)
    lat = d / LATENCY_DIR
    if lat.is_dir():
        names += sorted(f"{LATENCY_DIR}/{p.name}" for p in lat.glob("*.hdr"))
    return names


def claim(out: Path, *, what: str, flag: str = "--out", run_id: str | None = None) -> str:
    """The run id to write `out` under; refuse (FieldError, exit 2) a directory holding another
    run's files.

    Call it before writing anything. `run_id` defaults to the inherited one, else a fresh one.
    """
    rid = run_id or inherited_run_id() or new_run_id()
    m = read_manifest(out)
    if m is not None and m["run_id"] != rid:
        kinds = ", ".join(sorted({str(f.get("by", "?")) for f in m["files"].values()
                                  if isinstance(f, dict)}))
        raise FieldError(flag, str(out), f"holds files of another run ({m['run_id']}: "
                                         f"{kinds or 'nothing listed'}); give a new directory "
                                         f"for the {what} (or delete this one)")
    if m is None:
        found = run_files(out)
        if found:
            more = ", ..." if len(found) > 3 else ""
            raise FieldError(flag, str(out), f"holds files of an earlier run "
                                             f"({', '.join(found[:3])}{more}); give a new "
                                             f"directory for the {what} (or delete this one)")
    return rid


def stamp(obj: dict[str, Any], run_id: str) -> dict[str, Any]:
    """`obj` with `"run_id"` as its first key (a new dict).

    >>> stamp({"a": 1}, "20261201T000000Z-abcdef")
    {'run_id': '20261201T000000Z-abcdef', 'a': 1}
    """
    return {"run_id": run_id, **{k: v for k, v in obj.items() if k != "run_id"}}


def sha256(path: Path) -> str:
    """The sha256 of a file, hex."""
    h = hashlib.sha256()
    with Path(path).open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def record(out: Path, names: Iterable[str], *, run_id: str, by: str) -> None:
    """List `names` (relative to `out`; absent ones are skipped) in out/manifest.json under
    `run_id`.

    The manifest is rewritten whole (floor.atomic); a manifest of another run is refused.
    """
    out = Path(out)
    m = read_manifest(out) or {"run_id": run_id, "files": {}}
    if m["run_id"] != run_id:
        raise BlendedRun(f"{out / MANIFEST}: belongs to run {m['run_id']}, not {run_id}; give a "
                         "new directory")
    for name in names:
        p = out / name
        if p.is_file():
            m["files"][name] = {"run_id": run_id, "sha256": sha256(p), "bytes": p.stat().st_size,
                                "by": by}
    m["files"] = dict(sorted(m["files"].items()))
    write_json(out / MANIFEST, m)


def verify(run_dir: Path) -> str | None:
    """The run id every file of `run_dir` belongs to; None for a directory written before run ids.

    Raises BlendedRun naming the first file that belongs to another run: listed under another
    run id, a JSON `run_id` that differs, a sha256 that no longer matches (overwritten or edited
    since), or a run file present but not in the manifest. A listed file that is absent is fine
    (the report is built without it).
    """
    d = Path(run_dir)
    m = read_manifest(d)
    if m is None:
        ids = {}
        for name in run_files(d):
            rid = _json_run_id(d / name)
            if rid is not None:
                ids.setdefault(rid, name)
        if len(ids) > 1:
            (a, fa), (b, fb) = sorted(ids.items(), key=lambda kv: kv[1])[:2]
            raise BlendedRun(f"{d / fb}: run_id {b}, but {fa} has {a}: files of different runs; "
                             "re-run into a new directory")
        return next(iter(ids), None)
    rid = m["run_id"]
    fix = "files of different runs or edited by hand; re-run into a new directory"
    for name, entry in m["files"].items():
        p = d / name
        if not p.is_file():
            continue
        if not isinstance(entry, dict) or entry.get("run_id") != rid:
            got = entry.get("run_id") if isinstance(entry, dict) else None
            raise BlendedRun(f"{p}: listed under run {got}, the directory's run is {rid}; {fix}")
        if sha256(p) != entry.get("sha256"):
            raise BlendedRun(f"{p}: changed after run {rid} wrote it (sha256 differs from "
                             f"{MANIFEST}); {fix}")
        got = _json_run_id(p)
        if got is not None and got != rid:
            raise BlendedRun(f"{p}: run_id {got}, the directory's run is {rid}; {fix}")
    for name in run_files(d):
        if name not in m["files"]:
            raise BlendedRun(f"{d / name}: not in {MANIFEST} of run {rid}: written by another "
                             f"run; {fix}")
    return rid


def _json_run_id(path: Path) -> str | None:
    if path.suffix != ".json":
        return None
    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        return None  # the report's own reader names a malformed file
    rid = obj.get("run_id") if isinstance(obj, dict) else None
    return rid if isinstance(rid, str) else None
