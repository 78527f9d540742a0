"""What a rehearsal's run directory tells the model: its run.json and actions, the front end
clients saw, the issuer's measured rate and capacity, arrivals, polls, the queue series."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from analysis.backlog import GATES, Gate, Stage
from floor.errors import InputFileError
from floor.rundir import schema as rs
from floor.rundir.files import (
    read_arrivals,
    read_latency_history,
    read_ledger,
    read_locust_history,
    read_queue,
)
from floor.rundir.readers import read_object, require
from floor.timegrammar import unix_seconds

# think pauses before the first stamp upload: register, login, order, pay, wait_quota /
# login, order, pay,
# wait_quota / login (scenarios/journeys.py thinks after every step)
_THINKS_BEFORE_STAMP = {"new_applicant": 5, "returning_applicant": 4, "stamp_only": 1}


def _json(path: Path) -> dict[str, Any]:
    return read_object(path, written_by="a rehearsal (or the probe)")


def _unix(text: str) -> float:
    """Unix seconds of a run file's ISO 8601 time (floor.timegrammar); ValueError if not one."""
    at = unix_seconds(text)
    if at is None:
        raise ValueError(f"not an ISO 8601 time: {text!r}")
    return at


def _profile(run_dir: Path, run: dict[str, Any]) -> Any:
    from scenarios.profile import load_profile

    saved = run_dir / rs.PROFILE
    return load_profile(str(saved) if saved.is_file() else str(run.get("profile") or ""))


def _actions(run: dict[str, Any]) -> list[dict[str, Any]]:
    acts = run.get("admin_actions") or []
    return [a for a in acts if isinstance(a, dict) and a.get("ok", True)]


@dataclass(frozen=True, kw_only=True)
class FrontEnd:
    """What the testbed's front end and clients did, measured from the server's records: when each
    applicant's first upload reached the issuer (test s, None if none did), the client time
    between two uploads of one applicant (poll, download, think, next upload) and after the
    last one (poll, think, download), and the mean time from an intended start to the issuer
    per journey::

        fe = model_rehearsal(Path("runs/demo")).front
        fe.source, fe.gap_s
    """

    first_upload: dict[str, float | None]
    gap_s: float
    gaps: tuple[float, ...]
    final_s: float
    transit_s: dict[str, float]
    source: str


def front_end(
    run_dir: Path,
    origin: float,
    arrivals: list[tuple[str, str, float, str, float | None]],
    think: float,
    spa: float,
    retry_s: float = 0.0,
) -> FrontEnd:
    """The measured front end (server_records.json and ledger.csv), or the journeys' think times
    when the run kept no server records (then `source` says "estimated").

    `gaps` is the clients' own time between two uploads: a gap whose next upload was accepted
    while the target was refusing uploads, or within `retry_s` (the clients' retry span) after,
    may hold the client's wait at the gate and its retries, which the simulation plays itself,
    so it is left out (`_refusing`); all gaps are kept when that leaves fewer than
    `MIN_GAPS`::

        fe = front_end(run_dir, origin, _arrival_rows(run_dir / "arrivals.csv", ids=True), 0.85,
        2.2)
    """
    est = {j: n * think for j, n in _THINKS_BEFORE_STAMP.items()}
    rec_path, ledger_path = run_dir / rs.SERVER_RECORDS, run_dir / rs.LEDGER
    if not (rec_path.is_file() and ledger_path.is_file()):
        return FrontEnd(
            first_upload={a[0]: None for a in arrivals},
            gap_s=2 * think,
            gaps=(),
            final_s=think,
            transit_s=est,
            source="estimated",
        )
    by_app = _stamps_by_applicant(_json(rec_path), _who(ledger_path), origin)
    timed, finals, transit = [], [], {}
    first: dict[str, float | None] = {}
    for app_id, journey, t_int, outcome, fin in arrivals:
        ups = sorted(by_app.get(app_id, []))
        first[app_id] = ups[0][0] if ups else None
        if ups:
            transit.setdefault(journey, []).append(ups[0][0] - (t_int - origin))
        timed += [
            (b[0], b[0] - a[1]) for a, b in zip(ups, ups[1:], strict=False) if a[1] is not None
        ]
        if outcome == "completed" and fin is not None and ups and ups[-1][1] is not None:
            finals.append(fin - origin - ups[-1][1])
    med = {j: float(np.median(v)) for j, v in transit.items()}
    stretches = _refusing(run_dir, origin, retry_s)
    clean = [g for at, g in timed if not any(a < at <= b for a, b in stretches)]
    gaps = clean if len(clean) >= MIN_GAPS else [g for _at, g in timed]
    return FrontEnd(
        first_upload=first,
        gap_s=float(np.median(gaps)) if gaps else 2 * think,
        gaps=tuple(round(g, 4) for g in gaps),
        final_s=float(np.median(finals)) if finals else think,
        transit_s={j: med.get(j, est[j]) for j in est},
        source="measured",
    )


def _who(ledger_path: Path) -> dict[str, str]:
    """account id -> applicant id, from the client's ledger.csv (floor.rundir.files.read_ledger);
    rows without either are left out."""
    led = read_ledger(ledger_path)
    return {acc: app for app, acc in zip(led["applicant_id"], led["account_id"], strict=True)
            if acc and app}


def _stamps_by_applicant(rec: dict[str, Any], who: dict[str, str], origin: float
                         ) -> dict[str, list[tuple[float, float | None]]]:
    """Each applicant's stamp jobs as the server recorded them: (accepted, finished or None), test
    seconds."""
    by_app: dict[str, list[tuple[float, float | None]]] = {}
    for st in rec.get("stamps") or []:
        app = who.get(str(st.get("account_id")))
        if app is None or not st.get("created_at"):
            continue
        done = _unix(st["finished_at"]) - origin if st.get("finished_at") else None
        by_app.setdefault(app, []).append((_unix(st["created_at"]) - origin, done))
    return by_app


MIN_GAPS = 30  # measured gaps between uploads the simulation needs to draw from


def _refusing(run_dir: Path, origin: float, after_s: float) -> list[tuple[float, float]]:
    """Test-second stretches in which the target refused uploads (locust_stats_history.csv: the
    `stamp` request's failure count rose), each extended by `after_s`; none without the file.

    >>> _refusing(Path("/nonexistent"), 0.0, 6.8)
    []
    """
    path = run_dir / rs.LOCUST_STATS_HISTORY
    out: list[tuple[float, float]] = []
    if not path.is_file():
        return out
    prev_t, prev_f = None, 0.0
    h = read_locust_history(path)
    for unix, name, fails in zip(h["Timestamp"], h["Name"], h["Total Failure Count"], strict=True):
        if name != "stamp":
            continue
        t = float(unix) - origin
        if fails > prev_f:
            out.append((t - 1.0 if prev_t is None else prev_t, t + after_s))
        prev_t, prev_f = t, fails
    return out


def _records(run_dir: Path, origin: float, *, replay: bool) -> tuple[dict[str, int], list[float]]:
    """From server_records.json and ledger.csv: each applicant's documents (the quota credited to
    its account) and, with `replay`, the issuer's completion times (test s; ghosts included)."""
    docs_of: dict[str, int] = {}
    epochs: list[float] = []
    rec_path = run_dir / rs.SERVER_RECORDS
    if not rec_path.is_file():
        return docs_of, epochs
    rec = _json(rec_path)
    if replay:
        epochs = sorted(
            _unix(st["finished_at"]) - origin
            for st in rec.get("stamps") or []
            if st.get("finished_at") and st.get("status") in ("done", "failed")
        )
    if (run_dir / rs.LEDGER).is_file():
        who = _who(run_dir / rs.LEDGER)
        for acc in rec.get("accounts") or []:
            if acc.get("account_id") in who and acc.get("credited"):
                docs_of[who[acc["account_id"]]] = int(acc["credited"])
    return docs_of, epochs


def _step_p50(path: Path, step: str) -> tuple[list[Any], np.ndarray, np.ndarray]:
    """(calendar window starts, counts, p50 ms) of `step`'s latency_history.csv windows that
    have a p50 (floor.rundir.files.read_latency_history)."""
    h = read_latency_history(path)
    sel = [i for i, (s, p50) in enumerate(zip(h["step"], h["p50_ms"], strict=True))
           if s == step and not np.isnan(p50)]
    return [h["calendar_window_start_at"][i] for i in sel], h["count"][sel], h["p50_ms"][sel]


def _poll_latency(run_dir: Path, run: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """(test s, seconds) per latency_history.csv window: the `poll_stamp` step's p50 (empty if
    none)."""
    path = run_dir / rs.LATENCY_HISTORY
    ts: list[float] = []
    lat = np.array([])
    if path.is_file() and run.get("calendar_origin_at"):
        origin = datetime.fromisoformat(str(run["calendar_origin_at"]))
        compress = float(run["compress"])
        starts, _counts, p50_ms = _step_p50(path, "poll_stamp")
        lat = p50_ms / 1000.0
        ts = [max(0.0, (at - origin).total_seconds() / compress) for at in starts]
    order = np.argsort(ts)
    return np.array(ts)[order], np.array(lat)[order]


def _stamp_request_s(run_dir: Path) -> float:
    """Median time of one upload request in the rehearsal (latency_history.csv, the `stamp` step's
    per-window p50 weighted by its count), in test seconds; 0.05 s when the run kept none."""
    path = run_dir / rs.LATENCY_HISTORY
    if not path.is_file():
        return 0.05
    _starts, counts, p50_ms = _step_p50(path, "stamp")
    num = den = 0.0
    for n, p50 in zip(counts.tolist(), p50_ms.tolist(), strict=True):
        num += n * p50 / 1000.0
        den += n
    return num / den if den else 0.05


def _last_recovery(acts: list[dict[str, Any]]) -> float | None:
    """Test second the last issuer fault ended (slow factor back to 1 or resumed), None if none
    did."""
    out = None
    for a in acts:
        body = a.get("body") or {}
        if a.get("kind") == "fault" and (
            body.get("issuer_slow_factor") in (1, 1.0) or body.get("issuer") == "resume"
        ):
            out = float(a.get("applied_at_s", a.get("at_s", 0.0)))
    return out


def _arrival_rows(path: Path, *, ids: bool = False) -> list[Any]:
    """(journey, intended unix, outcome, finished unix or None) of every arrival that was not
    dropped; with `ids`, the applicant id first."""
    a = read_arrivals(path, missing="a rehearsal writes it")
    require(a, "finished_at", *(("applicant_id",) if ids else ()))
    out: list[Any] = []
    for i, outcome in enumerate(a["outcome"]):
        if outcome == "dropped":
            continue
        fin = a["finished_at"][i]
        row = (a["journey"][i], a["intended_at"][i].timestamp(), outcome,
               fin.timestamp() if fin is not None else None)
        out.append((a["applicant_id"][i], *row) if ids else row)
    return out


def patience_of(path: Path, default_s: float) -> dict[str, float]:
    """Each (not dropped) applicant's own patience, test seconds (arrivals.csv `patience_s`);
    `default_s`, the profile's patience, where the file does not say (written before the column,
    or left empty).

    >>> patience_of(Path("/nonexistent/arrivals.csv"), 20.0)
    {}
    """
    if not path.is_file():
        return {}
    a = read_arrivals(path)
    own = a.cols.get("patience_s")
    ids = a.cols.get("applicant_id") or []
    out: dict[str, float] = {}
    for i, aid in enumerate(ids):
        if a["outcome"][i] == "dropped":
            continue
        v = float(own[i]) if own is not None else math.nan
        out[aid] = v if math.isfinite(v) else float(default_s)
    return out


def retry_span_s(journeys: Any) -> float:
    """Seconds a testbed client keeps retrying a refused step before it gives up: its
    max_attempts, spaced by at least the gate's Retry-After (1 s for a rate gate) and, for
    `backoff`, base x 2^k (at most backoff_max_s); averaged over the retry mix.

    >>> from scenarios.profile import load_profile
    >>> retry_span_s(load_profile("casn2024").journeys)
    6.8
    """
    waits = range(journeys.max_attempts - 1)
    span = {
        "refresh": float(len(waits)),
        "backoff": sum(
            max(1.0, min(journeys.backoff_max_s, journeys.backoff_base_s * 2**k)) for k in waits
        ),
    }
    return round(
        sum(
            share * span.get(policy, span["backoff"])
            for policy, share in journeys.retry_mix.items()
        ),
        6,
    )


def _stages_and_capacity(
    acts: list[dict[str, Any]], t: np.ndarray, issuer: np.ndarray, spa: float, room_s: float
) -> tuple[list[Stage], float | None]:
    """Gate changes as model stages; outage faults applied to `issuer` in place. Returns (stages,
    last recovery)."""
    stages: list[Stage] = []
    factor, paused, down = 1.0, False, False
    recovery = None
    base = issuer.copy()
    for a in sorted(acts, key=lambda a: float(a.get("applied_at_s", a.get("at_s", 0.0)))):
        at = float(a.get("applied_at_s", a.get("at_s", 0.0)))
        body = a.get("body") or {}
        if a.get("kind") == "fault":
            sel = t >= at
            if "issuer_slow_factor" in body:
                factor = float(body["issuer_slow_factor"]) or 1.0
            if body.get("issuer") in ("pause", "resume"):
                paused = body["issuer"] == "pause"
            issuer[sel] = 0.0 if paused else base[sel] / factor
            if down and not paused and factor == 1.0:
                recovery = at
            down = paused or factor != 1.0
        elif a.get("kind") == "gate" and a.get("target") in GATES:
            mode = body.get("mode", "open")
            per = spa if a["target"] == "stamping" else 1.0
            # a refused client retries for about room_s, then gives up: a waiting room of
            # rate x room_s
            gate = (
                Gate(
                    mode="rate",
                    rate_per_s=float(body["rate_per_s"]) / per,
                    burst=max(float(body.get("burst") or 1) / per, 1e-9),
                    room_s=room_s,
                )
                if mode == "rate"
                else Gate(mode=mode)
            )
            stages.append(
                Stage(name=str(a.get("label") or a["target"]), at_s=at, gates={a["target"]: gate})
            )
    return stages, recovery


def _queue_series(path: Path, origin: float) -> tuple[np.ndarray, np.ndarray]:
    """(test seconds, stamps at the issuer: queued + in service) per queue.csv sample."""
    s = read_queue(path, missing="a rehearsal against a target with an admin API writes it")
    require(s, "at")
    if len(s) < 3:
        raise InputFileError(f"{path}: only {len(s)} samples; rehearse longer")
    return np.array([t.timestamp() - origin for t in s["at"]]), s["issuer_queue"] + s["issuer_busy"]
