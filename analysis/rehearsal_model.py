"""The model at a rehearsal's own parameters, against what the testbed measured, from files.

A rehearsal plays the calendar compressed (`compress` calendar seconds per test second)
at a fraction `scale` of the applicants, so `m = compress x scale` test applicants per
second stand for one calendar applicant per second. `mapping(...)` writes that down
(`mapping.json`): real capacity x m = testbed capacity; gate rates and bursts x m (x the
stamps per applicant at the stamping gate); every clock of the real service divided by
`compress`, beside the clock the testbed's clients actually use.

`model_rehearsal(run_dir)` runs the fluid model (`analysis.backlog`) **in test time** at
the parameters the rehearsal actually had: its own arrivals (arrivals.csv, the same seed
for every replay) timed where their first upload reached the issuer (server_records.json:
the front end as measured), the issuer at the probe's measured capacity (capacity.json;
`issuer="rehearsal"`, a diagnostic only, replays the rate the rehearsal's server counted
while saturated and its completion times instead), the outage and gate changes
the rehearsal applied (run.json `admin_actions`, at the test second they were applied),
and the testbed's client behaviour (journey patience, the measured client time between
uploads; an applicant who gives up does not come back: no orbit). The testbed's issuer
keeps a job it accepted when its client gives up (`overload = "unbounded"`), so the
model keeps it too (`waste`: ghost work, served FIFO).

The comparison itself uses the applicant-level simulation (`analysis.rehearsal_sim`) at the
same parameters, the mean of `SIM_TRIALS` seeded trials: a rehearsal sits on a knife edge
(those served finish just within their patience), where the fluid model's averages swing
(its figures stay beside, under `fluid`) and the spread of service and think times decides
who makes it. The trials' standard deviation is the check's resolution (`resolution`).

`compare(run_dir)` sets the model's series beside queue.csv (sampled every
`--sample-interval` test seconds) and returns `model_vs_testbed`:
`{served, peak_backlog, drain_s}` each `{model, measured, error}`, `series_error`, `ok`::

    cmp = compare(Path("runs/demo"))
    cmp["served"]["error"], cmp["ok"]
"""

from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from analysis.backlog import GATES, FluidInputs, FluidResult, Gate, Stage, run_fluid
from floor.errors import InputFileError

__all__ = ["TOLERANCE", "mapping", "model_rehearsal", "compare", "outcomes", "RehearsalModel"]

TOLERANCE = 0.10          # served and peak backlog: |model / measured - 1| at most this
# the issuer the check's model runs at: "probe" (capacity.json, the measured capacity), or, as a
# diagnostic only, "rehearsal" (the issuer's own completions replayed where it was saturated)
ISSUER = "probe"
STEP_S = 0.1              # model step, test seconds
_ENTRY = {"new_applicant": "registration", "returning_applicant": "ordering", "stamp_only": "stamping"}
# think pauses before the first stamp upload: register, login, order, pay, wait_quota / login, order, pay,
# wait_quota / login (scenarios/journeys.py thinks after every step)
_THINKS_BEFORE_STAMP = {"new_applicant": 5, "returning_applicant": 4, "stamp_only": 1}


def _json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputFileError(f"{path}: missing; a rehearsal (or the probe) writes it") from None
    except (ValueError, UnicodeDecodeError) as e:
        raise InputFileError(f"{path}: not valid JSON ({e})") from None
    if not isinstance(data, dict):
        raise InputFileError(f"{path}: expected a JSON object")
    return data


def _unix(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def _profile(run_dir: Path, run: dict[str, Any]) -> Any:
    from scenarios.profile import load_profile
    saved = run_dir / "profile.toml"
    return load_profile(str(saved) if saved.is_file() else str(run.get("profile") or ""))


def mapping(profile: Any, run: dict[str, Any], *, plan_stamps_per_second: float | None,
            testbed_stamps_per_second: float | None, gate_schedule: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """The real calendar -> testbed mapping of one rehearsal (the body of mapping.json).

    >>> from scenarios.profile import load_profile
    >>> m = mapping(load_profile("casn2024"), {"compress": 8640.0, "scale": 1 / 8640},
    ...             plan_stamps_per_second=16.0, testbed_stamps_per_second=16.0)
    >>> m["demand_multiplier"], m["capacity"]["consistent"], m["clocks"]["patience"]["mapped_testbed_s"]
    (1.0, True, 0.1389)
    """
    compress, scale = float(run["compress"]), float(run["scale"])
    mult = compress * scale
    spa = float(profile.mean_stamps_per_applicant)
    b, j = profile.behaviour, profile.journeys
    implied = None if testbed_stamps_per_second is None else testbed_stamps_per_second / mult
    consistent = (implied is not None and plan_stamps_per_second is not None
                  and abs(implied / plan_stamps_per_second - 1) <= 0.01)

    def clock(real_s: float | None, testbed_s: float | None, note: str) -> dict[str, Any]:
        return {"real_s": real_s, "mapped_testbed_s": None if real_s is None else round(real_s / compress, 4),
                "testbed_s": testbed_s, "testbed_as_calendar_s": None if testbed_s is None else testbed_s * compress,
                "preserved": (real_s is not None and testbed_s is not None
                              and abs(testbed_s * compress / real_s - 1) <= 0.1), "note": note}
    gates = []
    for g in gate_schedule or []:
        per = spa if g.get("gate") == "stamping" else 1.0
        rate = g.get("rate_per_s")
        gates.append({"at": g.get("at"), "gate": g.get("gate"), "mode": g.get("mode"), "label": g.get("label"),
                      "real_rate_per_s": rate, "real_burst": g.get("burst"),
                      "testbed_tokens_per_s": None if rate is None else round(rate * mult * per, 6),
                      "testbed_burst": None if rate is None else max(1, math.ceil((g.get("burst") or 1) * scale * per))})
    return {
        "compress": compress, "scale": scale, "demand_multiplier": round(mult, 9),
        "rule": "testbed rates (per test second) = real rates (per calendar second) x demand_multiplier "
                "(compress x scale); counts (applicants, bursts) x scale; real clocks / compress = testbed clocks",
        "stamps_per_applicant": spa,
        "capacity": {"real_stamps_per_second": plan_stamps_per_second,
                     "testbed_stamps_per_second": testbed_stamps_per_second,
                     "testbed_as_real_stamps_per_second": implied, "consistent": consistent,
                     "how": "the plan is made at the testbed's measured capacity de-scaled (/ demand_multiplier)"},
        "clocks": {
            "patience": clock(b.patience_minutes * 60.0, j.patience_s,
                              "session patience; the testbed's clients give up after journeys.patience_s from "
                              "their intended start, the whole journey included"),
            "retry_after": clock(b.retry_after_minutes * 60.0, None,
                                 "come back later: mapped through the compression this is "
                                 f"{b.retry_after_minutes * 60.0 / compress:.4g} test s, "
                                 + ("longer than the rehearsal itself, so no one who gives up could come back "
                                    "within it: the Locust applicants do not return (no orbit) and the model "
                                    "plays none" if b.retry_after_minutes * 60.0 / compress >= float(run.get(
                                        "duration_s") or 0.0) else
                                    "within the rehearsal: the Locust applicants still do not return (no orbit), "
                                    "so the rehearsal under-states the returns the plan's model counts")
                                 + "; within a journey a refused step retries with backoff up to "
                                   "journeys.backoff_max_s"),
            "persistence": clock(None if b.persistence_days is None else b.persistence_days * 86400.0, None,
                                 "no return within the rehearsal, so nothing to persist: giving up on the "
                                 "testbed is lost"),
            "think_time": {"testbed_s": list(j.think_time_s),
                           "testbed_as_calendar_s": [t * compress for t in j.think_time_s],
                           "note": "the journey's own pauses; the real service's pages take no calendar time in "
                                   "the model"},
        },
        "gates": gates,
        "outage": [{"start": o.start.isoformat(), "end": o.end.isoformat(), "capacity_factor": o.capacity_factor,
                    "testbed": "pause" if o.capacity_factor <= 0 else f"issuer_slow_factor {1 / o.capacity_factor:.6g}"}
                   for o in profile.outages if o.resource == "issuer"],
    }


@dataclass(frozen=True, kw_only=True, repr=False)
class RehearsalModel:
    """The model run at a rehearsal's parameters, on the rehearsal's test clock (t = test seconds)."""

    result: FluidResult
    stamps_per_applicant: float
    service_mean_s: float
    compress: float
    transit_s: float
    recovery_s: float | None           # test second of the last outage end (or None)

    workers: int = 4
    front: FrontEnd | None = None
    service_distribution: str = "exponential"
    capacity: dict[str, Any] | None = None

    @property
    def backlog_stamps(self) -> np.ndarray:
        """Stamps at the issuer at the end of each step: one upload outstanding per applicant
        queued there (a testbed client uploads its documents one after another), the ghost
        uploads of those who gave up, and those in service (every worker while a queue waits,
        else completions x mean service time)."""
        r = self.result
        waiting = r.issuer_queue + (r.ghost if r.ghost is not None else 0.0)
        idle = r.served_per_s * self.stamps_per_applicant * self.service_mean_s
        return waiting + np.where(waiting >= 1.0, float(self.workers), np.minimum(idle, self.workers))


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


def front_end(run_dir: Path, origin: float, arrivals: list[tuple[str, str, float, str, float | None]],
              think: float, spa: float) -> FrontEnd:
    """The measured front end (server_records.json and ledger.csv), or the journeys' think times
    when the run kept no server records (then `source` says "estimated")::

        fe = front_end(run_dir, origin, _arrival_rows(run_dir / "arrivals.csv", ids=True), 0.85, 2.2)
    """
    est = {j: n * think for j, n in _THINKS_BEFORE_STAMP.items()}
    rec_path, ledger_path = run_dir / "server_records.json", run_dir / "ledger.csv"
    if not (rec_path.is_file() and ledger_path.is_file()):
        return FrontEnd(first_upload={a[0]: None for a in arrivals}, gap_s=2 * think, gaps=(), final_s=think,
                        transit_s=est, source="estimated")
    rec = _json(rec_path)
    who: dict[str, str] = {}
    with ledger_path.open(encoding="utf-8", newline="") as f:
        for r in csv.DictReader(f):
            if r.get("account_id") and r.get("applicant_id"):
                who[r["account_id"]] = r["applicant_id"]
    by_app: dict[str, list[tuple[float, float | None]]] = {}
    for st in rec.get("stamps") or []:
        app = who.get(str(st.get("account_id")))
        if app is None or not st.get("created_at"):
            continue
        by_app.setdefault(app, []).append((_unix(st["created_at"]) - origin,
                                           _unix(st["finished_at"]) - origin if st.get("finished_at") else None))
    gaps, finals, transit = [], [], {}
    first: dict[str, float | None] = {}
    for app_id, journey, t_int, outcome, fin in arrivals:
        ups = sorted(by_app.get(app_id, []))
        first[app_id] = ups[0][0] if ups else None
        if ups:
            transit.setdefault(journey, []).append(ups[0][0] - (t_int - origin))
        gaps += [b[0] - a[1] for a, b in zip(ups, ups[1:], strict=False) if a[1] is not None]
        if outcome == "completed" and fin is not None and ups and ups[-1][1] is not None:
            finals.append(fin - origin - ups[-1][1])
    med = {j: float(np.median(v)) for j, v in transit.items()}
    return FrontEnd(first_upload=first, gap_s=float(np.median(gaps)) if gaps else 2 * think,
                    gaps=tuple(round(g, 4) for g in gaps),
                    final_s=float(np.median(finals)) if finals else think,
                    transit_s={j: med.get(j, est[j]) for j in est}, source="measured")


RATE_WINDOW_S = 2.0      # test seconds per window of the issuer rate measured in a rehearsal
MIN_SATURATED_S = 3.0    # test seconds of a saturated issuer needed to take its rate from the rehearsal


def _issuer_samples(run_dir: Path, origin: float) -> tuple[np.ndarray, ...]:
    ts, done, busy, workers = [], [], [], []
    with (run_dir / "queue.csv").open(encoding="utf-8", newline="") as f:
        for r in csv.DictReader(f):
            try:
                ts.append(_unix(r["at"]) - origin)
                done.append(float(r["issuer_completed"]))
                busy.append(float(r["issuer_busy"]))
                workers.append(float(r["issuer_workers"]))
            except (KeyError, ValueError):
                continue
    return tuple(np.array(x) for x in (ts, done, busy, workers))


def issuer_rate(run_dir: Path, origin: float, after_s: float | None, window_s: float = RATE_WINDOW_S,
                breaks: tuple[float, ...] = ()) -> tuple[float | None, float, list[tuple[float, float, float]]]:
    """The issuer's rate as the rehearsal's server counted it (queue.csv), under the rehearsal's load:
    (stamps/s completed while every worker was busy after `after_s` (the outage's end), the test
    seconds that covers, and per `window_s` window saturated most of the time (start, end, stamps/s));
    windows also end at `breaks` (the test seconds the outage's faults changed the issuer)::

        rate, span, windows = issuer_rate(Path("runs/demo"), origin, after_s=9.0, breaks=(9.0,))
    """
    t, c, b, w = _issuer_samples(run_dir, origin)
    if len(t) < 3:
        return None, 0.0, []
    full = (b[1:] >= w[1:]) & (b[:-1] >= w[:-1])
    dt, dc = np.diff(t), np.diff(c)
    post = full & (t[1:] > (after_s or 0.0))
    span = float(dt[post].sum())
    windows = []
    cuts = [0.0, *sorted(b for b in breaks if 0 < b < t[-1]), float(t[-1])]
    edges = []   # each stretch between faults in equal windows of about window_s
    for a, z in zip(cuts, cuts[1:], strict=False):
        k = max(1, round((z - a) / window_s))
        edges += [a + (z - a) * i / k for i in range(k)]
    for a, z in zip(edges, [*edges[1:], float(t[-1])], strict=True):
        sel = (t[:-1] >= a) & (t[:-1] < z)
        sat = sel & full
        if dt[sel].sum() > 0 and dt[sat].sum() >= 0.8 * dt[sel].sum():
            windows.append((float(a), float(z), float(dc[sat].sum() / dt[sat].sum())))
    return (float(dc[post].sum() / span) if span > 0 else None), span, windows




def _issuer_arrivals(arrivals: list[Any], fe: FrontEnd, origin: float, n: int, step_s: float,
                     patience_s: float, think: float) -> tuple[dict[str, np.ndarray], np.ndarray, float]:
    """(arrivals per gate per step: all at stamping, when each first upload reached the issuer;
    the patience left of those arriving in each step, to the deadline less the time after the last
    stamp; the mean transit from the intended start)."""
    arr = {g: np.zeros(n) for g in GATES}
    left_sum = np.zeros(n)
    transit_w = 0.0
    for app_id, journey, t_int, _outcome, _fin in arrivals:
        at = fe.first_upload.get(app_id)
        if at is None:
            at = t_int - origin + fe.transit_s.get(journey, think)
        k = int(at / step_s)
        if 0 <= k < n:
            arr["stamping"][k] += 1.0
            left_sum[k] += t_int - origin + patience_s - at - fe.final_s
        transit_w += at - (t_int - origin)
    with np.errstate(invalid="ignore", divide="ignore"):
        left = np.where(arr["stamping"] > 0, left_sum / np.maximum(arr["stamping"], 1e-12), patience_s)
    return arr, np.maximum(left, step_s), (transit_w / len(arrivals) if arrivals else 0.0)


def _issuer_capacity(run_dir: Path, origin: float, acts: list[dict[str, Any]], given: float | None,
                     probed: Any, issuer: str = ISSUER
                     ) -> tuple[float, str, list[tuple[float, float, float]], float | None, float]:
    """(stamps/s, where from: given, rehearsal or probe, measured windows, the saturated rate, its span)."""
    breaks = tuple(float(a.get("applied_at_s", a.get("at_s", 0.0))) for a in acts if a.get("kind") == "fault")
    achieved, span, windows = (issuer_rate(run_dir, origin, _last_recovery(acts), breaks=breaks)
                               if (run_dir / "queue.csv").is_file() else (None, 0.0, []))
    if given is not None:
        return float(given), "given", [], achieved, span
    if issuer == "rehearsal" and achieved and span >= MIN_SATURATED_S:
        return achieved, "rehearsal", windows, achieved, span
    return float(probed), "probe", [], achieved, span


def model_rehearsal(run_dir: Path, *, stamps_per_second: float | None = None,
                    step_s: float = STEP_S, issuer: str = ISSUER) -> RehearsalModel:
    """Run the model at the rehearsal's own parameters (see the module docstring).

    `stamps_per_second` overrides the capacity (test stamps/s) the model runs at, e.g. to show
    the comparison fails with a mis-scaled one; by default it is the rate the rehearsal's issuer
    achieved while saturated (the server's count), else the probe's::

        mr = model_rehearsal(Path("runs/demo"))
        mr.capacity["from"], float(mr.result.served_cum[-1])
    """
    run = _json(run_dir / "run.json")
    cap = _json(run_dir / "capacity.json") if (run_dir / "capacity.json").is_file() else {}
    profile = _profile(run_dir, run)
    spa = float(profile.mean_stamps_per_applicant)
    probed = cap.get("stamps_per_second")
    if not probed and stamps_per_second is None:
        raise InputFileError(f"{run_dir / 'capacity.json'}: no measured stamps_per_second; probe the testbed first")
    conf = cap.get("configured") or {}
    pay = conf.get("payments") or {}
    pay_per_s = float(pay.get("workers", 8)) / float((pay.get("service") or {}).get("mean", 0.2))
    issuer_conf = conf.get("issuer") or {}
    service_mean = float((issuer_conf.get("service") or {}).get("mean", 0.25))
    waste = issuer_conf.get("overload", "unbounded") == "unbounded"
    origin = _unix(run["wall_origin_at"])
    arrivals = _arrival_rows(run_dir / "arrivals.csv", ids=True)
    j = profile.journeys
    think = sum(j.think_time_s) / 2.0
    fe = front_end(run_dir, origin, arrivals, think, spa)
    last = max([origin + float(run["duration_s"])] + [a[4] for a in arrivals if a[4] is not None])
    n = int(math.ceil((last - origin) / step_s)) + 2
    arr, left, transit = _issuer_arrivals(arrivals, fe, origin, n, step_s, j.patience_s, think)
    t = step_s * np.arange(n)
    acts = _actions(run)
    rate, how, windows, achieved, span = _issuer_capacity(run_dir, origin, acts,
                                                          stamps_per_second, probed, issuer)
    issuer = np.full(n, rate / spa)
    stages, recovery = _stages_and_capacity(acts, t, issuer, spa, retry_span_s(j))
    for a, b, r in windows:   # where the issuer was saturated, the rate its server counted there
        issuer[(t >= a) & (t < b)] = r / spa
    inputs = FluidInputs(step_s=step_s, t0_s=0.0, arrivals=arr, issuer_per_s=issuer,
                         payments_per_s=np.full(n, pay_per_s), stamps_per_applicant=spa,
                         patience_s=max(step_s, j.patience_s - transit - fe.final_s),
                         retry_probability=0.0, retry_after_s=1e9,
                         total_applicants=float(len(arrivals)), waste=waste,
                         fixed_patience=True, patience_left_s=left, pass_gap_s=fe.gap_s,
                         first_uploads_admitted=fe.source == "measured")
    return RehearsalModel(result=run_fluid(inputs, stages), stamps_per_applicant=spa, service_mean_s=service_mean,
                          compress=float(run["compress"]), transit_s=transit, recovery_s=recovery,
                          workers=int(issuer_conf.get("workers", 4)), front=fe,
                          service_distribution=str((issuer_conf.get("service") or {}).get("distribution",
                                                                                           "exponential")),
                          capacity={"stamps_per_second": rate, "from": how,
                                    "probe_stamps_per_second": probed,
                                    "rehearsal_stamps_per_second": None if achieved is None else round(achieved, 4),
                                    "rehearsal_saturated_s": round(span, 2),
                                    "windows_measured": len(windows), "window_s": RATE_WINDOW_S})


SIM_TRIALS = 24          # seeded trials of the applicant-level simulation per rehearsal


def _records(run_dir: Path, origin: float, *, replay: bool) -> tuple[dict[str, int], list[float]]:
    """From server_records.json and ledger.csv: each applicant's documents (the quota credited to
    its account) and, with `replay`, the issuer's completion times (test s; ghosts included)."""
    docs_of: dict[str, int] = {}
    epochs: list[float] = []
    rec_path = run_dir / "server_records.json"
    if not rec_path.is_file():
        return docs_of, epochs
    rec = _json(rec_path)
    if replay:
        epochs = sorted(_unix(st["finished_at"]) - origin for st in rec.get("stamps") or []
                        if st.get("finished_at") and st.get("status") in ("done", "failed"))
    if (run_dir / "ledger.csv").is_file():
        who: dict[str, str] = {}
        with (run_dir / "ledger.csv").open(encoding="utf-8", newline="") as f:
            for r in csv.DictReader(f):
                if r.get("account_id") and r.get("applicant_id"):
                    who[r["account_id"]] = r["applicant_id"]
        for acc in rec.get("accounts") or []:
            if acc.get("account_id") in who and acc.get("credited"):
                docs_of[who[acc["account_id"]]] = int(acc["credited"])
    return docs_of, epochs


def sim_inputs(run_dir: Path, mr: RehearsalModel | None = None) -> Any:
    """The applicant-level simulation's inputs (analysis.rehearsal_sim) from a rehearsal's files,
    at the same parameters as the fluid model `mr` (its issuer rate per step, the gates applied)::

        from analysis.rehearsal_sim import trials
        trials(sim_inputs(Path("runs/demo")), n=24)["served_mean"]
    """
    from analysis.rehearsal_sim import SimInputs
    run = _json(run_dir / "run.json")
    profile = _profile(run_dir, run)
    mr = mr or model_rehearsal(run_dir)
    fe = mr.front
    origin = _unix(run["wall_origin_at"])
    arrivals = _arrival_rows(run_dir / "arrivals.csv", ids=True)
    j = profile.journeys
    docs_of, epochs = _records(run_dir, origin, replay=(mr.capacity or {}).get("from") == "rehearsal")
    rng = np.random.default_rng(int(run.get("seed") or 0))
    ks = sorted(profile.stamps_per_applicant)
    ps = np.array([profile.stamps_per_applicant[k] for k in ks], dtype=float)
    refresh_share = float(j.retry_mix.get("refresh", 0.0))
    first = np.array([np.nan if (fe is None or fe.first_upload.get(a[0]) is None) else fe.first_upload[a[0]]
                      for a in arrivals], dtype=float)
    intended = np.array([a[2] - origin for a in arrivals])
    r = mr.result
    spa = mr.stamps_per_applicant
    rate = r.inputs.issuer_per_s * spa
    keep = np.concatenate([[True], np.diff(rate) != 0])
    gates = []
    for a in _actions(run):
        if a.get("kind") == "gate" and a.get("target") == "stamping":
            b = a.get("body") or {}
            gates.append((float(a.get("applied_at_s", a.get("at_s", 0.0))), str(b.get("mode", "open")),
                          float(b.get("rate_per_s") or 0.0), float(b.get("burst") or 1.0)))
    think = sum(j.think_time_s) / 2.0
    gap = fe.gap_s if fe is not None else 2 * think
    poll = _poll_latency(run_dir, run)
    return SimInputs(intended=intended, deadline=intended + j.patience_s,
                     documents=np.array([docs_of.get(a[0], int(rng.choice(ks, p=ps / ps.sum()))) for a in arrivals]),
                     first_upload=first, refresh=rng.random(len(arrivals)) < refresh_share,
                     rate_t=r.t_s[keep], rate=rate[keep], workers=mr.workers, gates=gates,
                     end_s=float(r.t_s[-1] + r.inputs.step_s) + 30.0,
                     transit=np.array([(fe.transit_s if fe else {}).get(a[1], think) for a in arrivals]),
                     think_s=tuple(j.think_time_s), poll_s=j.poll_interval_s,
                     overhead_s=max(0.0, gap - j.poll_interval_s / 2 - 2 * think),
                     request_s=_stamp_request_s(run_dir),
                     gaps=np.array(fe.gaps if fe is not None else ()),
                     poll_latency_t=poll[0], poll_latency=poll[1],
                     epochs=np.array(epochs), tail_rate=float((mr.capacity or {}).get("stamps_per_second") or 16.0),
                     unmeasured_enter=fe is None or fe.source != "measured",
                     max_attempts=j.max_attempts, backoff=(j.backoff_base_s, j.backoff_max_s),
                     # the server's count per window already holds the service times' luck: drawing them
                     # again would add spread that did not happen, so service is deterministic at that rate
                     exponential=(mr.service_distribution == "exponential"
                                  and not (mr.capacity or {}).get("windows_measured")))


def _poll_latency(run_dir: Path, run: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """(test s, seconds) per latency_history.csv window: the `poll_stamp` step's p50 (empty if none)."""
    path = run_dir / "latency_history.csv"
    ts, lat = [], []
    if path.is_file() and run.get("calendar_origin_at"):
        origin = datetime.fromisoformat(str(run["calendar_origin_at"]))
        compress = float(run["compress"])
        with path.open(encoding="utf-8", newline="") as f:
            for r in csv.DictReader(f):
                try:
                    if r.get("step") == "poll_stamp" and r.get("p50_ms"):
                        at = datetime.fromisoformat(r["calendar_window_start_at"])
                        ts.append(max(0.0, (at - origin).total_seconds() / compress))
                        lat.append(float(r["p50_ms"]) / 1000.0)
                except (KeyError, ValueError):
                    continue
    order = np.argsort(ts)
    return np.array(ts)[order], np.array(lat)[order]


def _stamp_request_s(run_dir: Path) -> float:
    """Median time of one upload request in the rehearsal (latency_history.csv, the `stamp` step's
    per-window p50 weighted by its count), in test seconds; 0.05 s when the run kept none."""
    path = run_dir / "latency_history.csv"
    if not path.is_file():
        return 0.05
    num = den = 0.0
    with path.open(encoding="utf-8", newline="") as f:
        for r in csv.DictReader(f):
            try:
                if r.get("step") == "stamp" and r.get("p50_ms"):
                    num += float(r["count"]) * float(r["p50_ms"]) / 1000.0
                    den += float(r["count"])
            except ValueError:
                continue
    return num / den if den else 0.05


def _last_recovery(acts: list[dict[str, Any]]) -> float | None:
    """Test second the last issuer fault ended (slow factor back to 1 or resumed), None if none did."""
    out = None
    for a in acts:
        body = a.get("body") or {}
        if a.get("kind") == "fault" and (body.get("issuer_slow_factor") in (1, 1.0) or body.get("issuer") == "resume"):
            out = float(a.get("applied_at_s", a.get("at_s", 0.0)))
    return out


def _arrival_rows(path: Path, *, ids: bool = False) -> list[Any]:
    """(journey, intended unix, outcome, finished unix or None) of every arrival that was not
    dropped; with `ids`, the applicant id first."""
    out: list[Any] = []
    try:
        with path.open(encoding="utf-8", newline="") as f:
            for i, r in enumerate(csv.DictReader(f), start=2):
                try:
                    if r["outcome"] == "dropped":
                        continue
                    row = (r["journey"], _unix(r["intended_at"]), r["outcome"],
                           _unix(r["finished_at"]) if r.get("finished_at") else None)
                    out.append((r["applicant_id"], *row) if ids else row)
                except (KeyError, ValueError) as e:
                    raise InputFileError(f"{path}:{i}: bad arrival ({e})") from None
    except FileNotFoundError:
        raise InputFileError(f"{path}: missing; a rehearsal writes it") from None
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
    span = {"refresh": float(len(waits)),
            "backoff": sum(max(1.0, min(journeys.backoff_max_s, journeys.backoff_base_s * 2 ** k)) for k in waits)}
    return round(sum(share * span.get(policy, span["backoff"]) for policy, share in journeys.retry_mix.items()), 6)


def _stages_and_capacity(acts: list[dict[str, Any]], t: np.ndarray, issuer: np.ndarray,
                         spa: float, room_s: float) -> tuple[list[Stage], float | None]:
    """Gate changes as model stages; outage faults applied to `issuer` in place. Returns (stages, last recovery)."""
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
            # a refused client retries for about room_s, then gives up: a waiting room of rate x room_s
            gate = (Gate(mode="rate", rate_per_s=float(body["rate_per_s"]) / per,
                         burst=max(float(body.get("burst") or 1) / per, 1e-9), room_s=room_s)
                    if mode == "rate" else Gate(mode=mode))
            stages.append(Stage(name=str(a.get("label") or a["target"]), at_s=at, gates={a["target"]: gate}))
    return stages, recovery


def _queue_series(path: Path, origin: float) -> tuple[np.ndarray, np.ndarray]:
    """(test seconds, stamps at the issuer: queued + in service) per queue.csv sample."""
    ts, q = [], []
    try:
        with path.open(encoding="utf-8", newline="") as f:
            for i, r in enumerate(csv.DictReader(f), start=2):
                try:
                    ts.append(_unix(r["at"]) - origin)
                    q.append(float(r["issuer_queue"]) + float(r["issuer_busy"] or 0))
                except (KeyError, ValueError) as e:
                    raise InputFileError(f"{path}:{i}: bad sample ({e})") from None
    except FileNotFoundError:
        raise InputFileError(f"{path}: missing; a rehearsal against a target with an admin API writes it") from None
    if len(ts) < 3:
        raise InputFileError(f"{path}: only {len(ts)} samples; rehearse longer")
    return np.array(ts), np.array(q)


def _drain(t: np.ndarray, q: np.ndarray, after: float | None) -> float | None:
    """Test seconds from `after` until the backlog first falls to one stamp or less (0 if already)."""
    if after is None:
        return None
    sel = np.nonzero((t >= after) & (q <= 1.0))[0]
    return None if len(sel) == 0 else float(t[sel[0]] - after)


def _err(model: float | None, measured: float | None) -> float | None:
    if model is None or measured is None:
        return None
    if measured == 0:
        return 0.0 if model == 0 else None
    return round(model / measured - 1.0, 4)


_CACHE: dict[tuple[Any, ...], tuple[RehearsalModel, dict[str, Any]]] = {}


def _model_and_sim(run_dir: Path, stamps_per_second: float | None,
                   issuer: str = ISSUER) -> tuple[RehearsalModel, dict[str, Any]]:
    """model_rehearsal and its simulation trials, computed once per directory state (the demo's
    checks ask for the same rehearsal several times)."""
    stamp = tuple((f, (run_dir / f).stat().st_mtime_ns if (run_dir / f).is_file() else None)
                  for f in ("run.json", "arrivals.csv", "queue.csv", "server_records.json", "capacity.json"))
    key = (str(run_dir.resolve()), stamps_per_second, issuer, stamp)
    if key not in _CACHE:
        mr = model_rehearsal(run_dir, stamps_per_second=stamps_per_second, issuer=issuer)
        if len(_CACHE) > 8:
            _CACHE.clear()
        _CACHE[key] = (mr, _sim(run_dir, mr))
    return _CACHE[key]


def _sim(run_dir: Path, mr: RehearsalModel) -> dict[str, Any]:
    """The simulation's trials at `mr`'s parameters; with the issuer's measured path, also the spread a
    rehearsal of the same inputs would show with the service times drawn afresh (`unconditional`)."""
    from dataclasses import replace

    from analysis.rehearsal_sim import trials
    si = sim_inputs(run_dir, mr)
    seed = int(_json(run_dir / "run.json").get("seed") or 0)
    out = trials(si, n=SIM_TRIALS, seed=seed)
    fresh = (trials(replace(si, exponential=mr.service_distribution == "exponential", epochs=np.zeros(0)),
                    n=SIM_TRIALS, seed=seed) if len(si.epochs) or not si.exponential else out)
    out["unconditional"] = {k: fresh[k] for k in ("served_mean", "served_sd", "peak_mean", "peak_sd")}
    return out


def _replayed(run_dir: Path, served_meas: float, peak_meas: float) -> dict[str, Any]:
    """Diagnostic only, not the check: the simulation fed the issuer's own completions replayed
    from server_records.json (the client mechanics given the issuer, not the model's capacity)."""
    _mr, sim = _model_and_sim(run_dir, None, "rehearsal")
    return {"served": {"model": round(sim["served_mean"], 1), "measured": served_meas,
                       "error": _err(sim["served_mean"], served_meas)},
            "peak_backlog": {"model": round(sim["peak_mean"], 1), "measured": peak_meas,
                             "error": _err(sim["peak_mean"], peak_meas)},
            "means": "diagnostic: issuer replayed from the server's completions; not the check"}


def compare(run_dir: Path, *, stamps_per_second: float | None = None,
            issuer: str = ISSUER) -> dict[str, Any]:
    """`model_vs_testbed` of one rehearsal directory (see the module docstring)."""
    run = _json(run_dir / "run.json")
    origin = _unix(run["wall_origin_at"])
    mr, sim = _model_and_sim(run_dir, stamps_per_second, issuer)
    ts, measured_q = _queue_series(run_dir / "queue.csv", origin)
    r = mr.result
    model_q = np.interp(ts, sim["t"], sim["backlog"])
    peak_meas, peak_model = float(measured_q.max()), sim["peak_mean"]
    arrivals = _arrival_rows(run_dir / "arrivals.csv")
    served_meas = float(sum(1 for a in arrivals if a[2] == "completed"))
    served_model = sim["served_mean"]
    compress = float(run["compress"])
    d_meas = _drain(ts, measured_q, mr.recovery_s)
    d_model = _drain(sim["t"], sim["backlog"], mr.recovery_s)
    series = float(np.mean(np.abs(model_q - measured_q)) / max(peak_meas, 1.0))
    sd_s, sd_p = sim["served_sd"], sim["peak_sd"]
    out = {
        "served": {"model": round(served_model, 1), "measured": served_meas, "error": _err(served_model, served_meas),
                   "model_sd": round(sd_s, 1),
                   "unit": "applicants whose every stamp was done within their patience"},
        "peak_backlog": {"model": round(peak_model, 1), "measured": peak_meas, "error": _err(peak_model, peak_meas),
                         "model_sd": round(sd_p, 1), "unit": "stamps at the issuer (queued + in service)"},
        "drain_s": {"model": None if d_model is None else d_model * compress,
                    "measured": None if d_meas is None else d_meas * compress,
                    "error": _err(d_model, d_meas),
                    "unit": "calendar seconds from the outage's end until the issuer's backlog is down to one stamp"},
        "series_error": round(series, 4),
        "series_error_means": "mean |model - measured| issuer backlog over the queue.csv samples / measured peak",
        "samples": int(len(ts)),
        "sample_interval_calendar_s": round(float(np.median(np.diff(ts))) * compress, 1),
        "model_step_calendar_s": round(r.inputs.step_s * compress, 1),
        "tolerance": TOLERANCE,
        "model": (f"applicant-level simulation (analysis.rehearsal_sim), mean of {sim['n']} seeded trials, at the "
                  f"rehearsal's parameters and the issuer from {mr.capacity['from']}; "
                  "the fluid model's figures beside it under `fluid`"),
        "fluid": {"served": round(float(r.served_cum[-1]), 1), "peak_backlog": round(float(mr.backlog_stamps.max()), 1),
                  "served_error": _err(float(r.served_cum[-1]), served_meas),
                  "peak_backlog_error": _err(float(mr.backlog_stamps.max()), peak_meas)},
        "resolution": _resolution(served_model, sd_s, peak_model, sd_p, sim["unconditional"]),
        "capacity_stamps_per_second": round(float(np.median(r.inputs.issuer_per_s) * mr.stamps_per_applicant), 4),
        "capacity": mr.capacity,
        "assumptions": {"transit_s": round(mr.transit_s, 3),
                        "front_end": None if mr.front is None else {
                            "source": mr.front.source, "gap_s": round(mr.front.gap_s, 3),
                            "final_s": round(mr.front.final_s, 3),
                            "transit_s": {k: round(v, 3) for k, v in mr.front.transit_s.items()},
                            "means": "when each applicant's first upload reached the issuer is taken as the server "
                                     "recorded it (the front end: registration, login, payment, as measured); the "
                                     "model predicts the issuer stage: queue, later uploads, who finishes in time"},
                        "waste": r.inputs.waste, "retry_probability": 0.0,
                        "patience": "fixed (the testbed client gives up at intended start + journeys.patience_s)"},
    }
    if stamps_per_second is None and issuer == ISSUER:
        out["diagnostic_replayed_issuer"] = _replayed(run_dir, served_meas, peak_meas)
    errs = [out["served"]["error"], out["peak_backlog"]["error"]]
    out["ok"] = all(e is not None and abs(e) <= TOLERANCE for e in errs)
    return out


def _resolution(served: float, sd_s: float, peak: float, sd_p: float, fresh: dict[str, float]) -> dict[str, Any]:
    """How finely the rehearsal can decide the check: the model's trial-to-trial spread as a share of
    its mean, given the issuer's measured path (what the check compares) and with the service times
    drawn afresh (how much a repeat of the same rehearsal would spread), against the tolerance."""
    def share(sd: float, mean: float) -> float | None:
        return round(sd / mean, 3) if mean > 0 else None
    rel = {"served": share(sd_s, served), "peak_backlog": share(sd_p, peak)}
    rel_fresh = {"served": share(fresh["served_sd"], fresh["served_mean"]),
                 "peak_backlog": share(fresh["peak_sd"], fresh["peak_mean"])}
    return {"sd_share": rel, "sd_share_repeat": rel_fresh,
            "resolvable": {k: v is not None and v <= TOLERANCE / 2 for k, v in rel.items()},
            "resolvable_on_repeat": {k: v is not None and v <= TOLERANCE / 2 for k, v in rel_fresh.items()},
            "means": (f"sd_share: the spread of the model the check compares (at the probe's capacity "
                      f"service times are drawn, so it equals the repeat spread; with the replayed "
                      f"issuer only client-side luck); sd_share_repeat: the spread of a "
                      f"repeat of this rehearsal with fresh service times. The {TOLERANCE:.0%} check resolves a "
                      "quantity when that sd is at most half the tolerance (2 sd within it)")}


def outcomes(run_dir: Path, *, stamps_per_second: float | None = None) -> dict[str, Any]:
    """Measured and predicted {served, lost, duplicated, p95_wait_s} of one rehearsal directory.

    `p95_wait_s` is in calendar seconds: from an applicant's intended start to their last
    stamp seen done, for those served (measured from arrivals.csv; predicted by the
    applicant-level simulation over its trials).
    """
    run = _json(run_dir / "run.json")
    recon = _json(run_dir / "reconciliation.json") if (run_dir / "reconciliation.json").is_file() else {}
    compress = float(run["compress"])
    arrivals = _arrival_rows(run_dir / "arrivals.csv")
    waits = [a[3] - a[1] for a in arrivals if a[2] == "completed" and a[3] is not None]
    dup = int(recon.get("duplicated_quota") or 0) + int(recon.get("duplicated_stamps") or 0)
    measured = {"served": len(waits), "lost": sum(1 for a in arrivals if a[2] != "completed"),
                "duplicated": dup,
                "p95_wait_s": round(float(np.percentile(waits, 95)) * compress, 1) if waits else None}
    mr, sim = _model_and_sim(run_dir, stamps_per_second)
    predicted = {"served": round(sim["served_mean"], 1),
                 "lost": round(float(len(arrivals) - sim["served_mean"]), 1),
                 "duplicated": 0,
                 "p95_wait_s": None if sim["p95_wait_s"] is None else round(sim["p95_wait_s"] * compress, 1)}
    return {"measured": measured, "model": predicted, "model_served_sd": round(sim["served_sd"], 1),
            "repeat_served_sd": round(sim["unconditional"]["served_sd"], 1)}


def gate_effect(run_dir: Path) -> dict[str, Any]:
    """The plan's stamping gates on their own, by the model: the simulation of one rehearsal's
    measured inputs (front end, issuer rate) with the gates it applied and with every gate open,
    so the machine's load is the same on both sides. Its first uploads stay as measured (the
    gate already admitted them, a little later than an open one would); those the gate never
    let in try theirs on the open side::

        gate_effect(Path("runs/demo"))["gain"]
    """
    from dataclasses import replace

    from analysis.rehearsal_sim import trials
    si = sim_inputs(run_dir)
    seed = int(_json(run_dir / "run.json").get("seed") or 0)
    # open: those whose first upload the gate never let in try theirs (intended + their journey's transit)
    gated = trials(si, n=SIM_TRIALS, seed=seed)
    opened = trials(replace(si, gates=[], unmeasured_enter=True), n=SIM_TRIALS, seed=seed)
    diff = gated["served_mean"] - opened["served_mean"]
    sd = math.hypot(gated["served_sd"], opened["served_sd"]) / math.sqrt(SIM_TRIALS)
    return {"served_with_gates": round(gated["served_mean"], 1), "served_all_open": round(opened["served_mean"], 1),
            "gain": round(diff, 1), "gain_se": round(sd, 1),
            "peak_backlog_with_gates": round(gated["peak_mean"], 1),
            "peak_backlog_all_open": round(opened["peak_mean"], 1),
            "means": "model only: the plan rehearsal's own measured inputs with its stamping gates and with all open "
                     "(the same machine load on both sides); gain_se is the standard error of the mean gain"}


def _conditions(plan: dict[str, Any], base: dict[str, Any]) -> dict[str, Any]:
    """Did the two rehearsals run on the same machine conditions? Their issuers' rates (server's count)
    and their front ends (intended start -> first upload) side by side."""
    def pick(m: dict[str, Any]) -> tuple[float | None, float]:
        return (m.get("capacity") or {}).get("rehearsal_stamps_per_second"), m["assumptions"]["transit_s"]
    (rp, tp), (rb, tb) = pick(plan), pick(base)
    rate_diff = None if not (rp and rb) else round(rp / rb - 1.0, 3)
    transit_diff = None if not tb else round(tp / tb - 1.0, 3)
    differ = (rate_diff is not None and abs(rate_diff) > 0.05) or (transit_diff is not None and abs(transit_diff) > 0.2)
    return {"issuer_stamps_per_second": {"plan": rp, "baseline": rb, "difference": rate_diff},
            "transit_s": {"plan": tp, "baseline": tb, "difference": transit_diff},
            "differ": bool(differ),
            "means": "a shared machine: the testbed's issuer and front end slow with the CPU load of the moment; "
                     "when they differ (issuer > 5%, front end > 20%) the measured difference mixes the plan with "
                     "the machine, and gate_effect (model, same inputs) isolates the plan's gates"}


def plan_vs_baseline(plan_dir: Path, baseline_dir: Path) -> dict[str, Any]:
    """`plan_vs_baseline` of plan_check.json: per key {measured, model} for the plan's rehearsal
    and the all-gates-open one (same arrivals), and a verdict in words."""
    sides = {"plan": outcomes(plan_dir), "baseline": outcomes(baseline_dir)}
    out: dict[str, Any] = {}
    for side, o in sides.items():
        out[side] = {k: {"measured": o["measured"][k], "model": o["model"][k]} for k in o["measured"]}
        out[side]["model_vs_testbed"] = compare(plan_dir if side == "plan" else baseline_dir)
    gain = out["plan"]["served"]["measured"] - out["baseline"]["served"]["measured"]
    gain_m = out["plan"]["served"]["model"] - out["baseline"]["served"]["model"]
    # two standard deviations of the difference of two single rehearsals (the model's trial spread)
    noise = 2 * math.hypot(sides["plan"]["repeat_served_sd"], sides["baseline"]["repeat_served_sd"])
    share = {s: out[s]["served"]["measured"] / max(1, out[s]["served"]["measured"] + out[s]["lost"]["measured"])
             for s in ("plan", "baseline")}
    peak = {s: out[s]["model_vs_testbed"]["peak_backlog"]["measured"] for s in ("plan", "baseline")}
    why = (f"served {share['plan']:.0%} with the plan and {share['baseline']:.0%} doing nothing; peak issuer "
           f"backlog {peak['plan']:.0f} and {peak['baseline']:.0f} stamps")
    if gain > noise:
        verdict = f"the plan served {gain} more applicants than doing nothing on the testbed (model {gain_m:+.0f}); {why}"
    elif gain < -noise:
        verdict = (f"the plan served {-gain} FEWER applicants than doing nothing on the testbed (model {gain_m:+.0f}); "
                   f"{why}")
    else:
        verdict = (f"no measurable benefit from the plan on the testbed: {gain:+d} served against doing nothing, "
                   f"within the noise of +/-{noise:.0f} (model {gain_m:+.0f}); {why}")
    out["served_gain"] = {"measured": gain, "model": round(gain_m, 1), "noise": round(noise, 1),
                          "noise_means": "2 sd of the difference of two single rehearsals (model trials with "
                                         "fresh service times)"}
    out["conditions"] = _conditions(out["plan"]["model_vs_testbed"], out["baseline"]["model_vs_testbed"])
    out["gate_effect"] = ge = gate_effect(plan_dir)
    if out["conditions"]["differ"]:
        verdict += ("; the two rehearsals ran under different machine load (" + _cond_words(out["conditions"])
                    + "), so part of the measured difference is the machine")
    verdict += (f"; by the model on the plan rehearsal's own inputs the gates alone give {ge['gain']:+.0f} served "
                f"(+/-{2 * ge['gain_se']:.0f})")
    out["verdict"] = verdict
    return out


def _cond_words(c: dict[str, Any]) -> str:
    """The conditions block in words.

    >>> _cond_words({"issuer_stamps_per_second": {"plan": 15.0, "baseline": 13.3},
    ...              "transit_s": {"plan": 4.1, "baseline": 7.2}})
    'issuer 15.0 vs 13.3 stamps/s, first upload 4.1 vs 7.2 s after the intended start'
    """
    r, t = c["issuer_stamps_per_second"], c["transit_s"]
    rate = "issuer n/a" if not (r["plan"] and r["baseline"]) else f"issuer {r['plan']:.1f} vs {r['baseline']:.1f} stamps/s"
    return f"{rate}, first upload {t['plan']:.1f} vs {t['baseline']:.1f} s after the intended start"
