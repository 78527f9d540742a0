"""The model at a rehearsal's own parameters, against what the testbed measured, from files.

A rehearsal plays the calendar compressed (`compress` calendar seconds per test second)
at a fraction `scale` of the applicants, so `m = compress x scale` test applicants per
second stand for one calendar applicant per second. `mapping(...)` writes that down
(`mapping.json`): real capacity x m = testbed capacity; gate rates and bursts x m (x the
stamps per applicant at the stamping gate); every clock of the real service divided by
`compress`, beside the clock the testbed's clients actually use.

`model_rehearsal(run_dir)` runs the fluid model (`analysis.backlog`) **in test time** at
the parameters the rehearsal actually had: its own arrivals (arrivals.csv, the same seed
for every replay), the issuer capacity the probe measured, the outage and gate changes
the rehearsal applied (run.json `admin_actions`, at the test second they were applied),
the testbed's payments capacity, and the testbed's client behaviour (journey patience,
think times; an applicant who gives up does not come back: no orbit). The testbed's
issuer keeps a job it accepted when its client gives up (`overload = "unbounded"`), so
the model keeps it too (`waste`: ghost work, served FIFO).

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
                                 "come back later: a Locust applicant who gives up does not come back (no orbit); "
                                 "within a journey it retries with backoff up to journeys.backoff_max_s"),
            "persistence": clock(None if b.persistence_days is None else b.persistence_days * 86400.0, None,
                                 "no return, so nothing to persist: giving up on the testbed is lost"),
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


def model_rehearsal(run_dir: Path, *, stamps_per_second: float | None = None,
                    step_s: float = STEP_S) -> RehearsalModel:
    """Run the model at the rehearsal's own parameters (see the module docstring).

    `stamps_per_second` overrides the measured capacity (test stamps/s), e.g. to show the
    comparison fails with a mis-scaled one.
    """
    run = _json(run_dir / "run.json")
    cap = _json(run_dir / "capacity.json") if (run_dir / "capacity.json").is_file() else {}
    profile = _profile(run_dir, run)
    spa = float(profile.mean_stamps_per_applicant)
    measured = stamps_per_second if stamps_per_second is not None else cap.get("stamps_per_second")
    if not measured:
        raise InputFileError(f"{run_dir / 'capacity.json'}: no measured stamps_per_second; probe the testbed first")
    conf = cap.get("configured") or {}
    pay = conf.get("payments") or {}
    pay_per_s = float(pay.get("workers", 8)) / float((pay.get("service") or {}).get("mean", 0.2))
    issuer_conf = conf.get("issuer") or {}
    service_mean = float((issuer_conf.get("service") or {}).get("mean", 0.25))
    waste = issuer_conf.get("overload", "unbounded") == "unbounded"
    origin = _unix(run["wall_origin_at"])
    arrivals = _arrival_rows(run_dir / "arrivals.csv")
    j = profile.journeys
    think = sum(j.think_time_s) / 2.0
    last = max([origin + float(run["duration_s"])] + [a[3] for a in arrivals if a[3] is not None])
    n = int(math.ceil((last - origin) / step_s)) + 2
    arr = {g: np.zeros(n) for g in GATES}
    mix_w = 0.0
    transit_w = 0.0
    for journey, t_int, _outcome, _fin in arrivals:
        delay = _THINKS_BEFORE_STAMP.get(journey, 1) * think
        k = int((t_int - origin + delay) / step_s)
        if 0 <= k < n:
            arr[_ENTRY.get(journey, "registration")][k] += 1.0
        mix_w += 1.0
        transit_w += delay
    transit = transit_w / mix_w if mix_w else 0.0
    # patience left at the issuer: the journey's patience less its pauses (before and between uploads);
    # the issuer queue takes one upload per applicant at a time (backlog._FixedPatienceQueue)
    stamping_thinks = (2 * spa - 1) * think
    patience = max(step_s, j.patience_s - transit - stamping_thinks)
    t = step_s * np.arange(n)
    issuer = np.full(n, float(measured) / spa)
    stages, recovery = _stages_and_capacity(_actions(run), t, issuer, spa, retry_span_s(j))
    inputs = FluidInputs(step_s=step_s, t0_s=0.0, arrivals=arr, issuer_per_s=issuer,
                         payments_per_s=np.full(n, pay_per_s), stamps_per_applicant=spa,
                         patience_s=patience, retry_probability=0.0, retry_after_s=1e9,
                         total_applicants=float(len(arrivals)), waste=waste,
                         fixed_patience=True)
    return RehearsalModel(result=run_fluid(inputs, stages), stamps_per_applicant=spa, service_mean_s=service_mean,
                          compress=float(run["compress"]), transit_s=transit, recovery_s=recovery,
                          workers=int(issuer_conf.get("workers", 4)))


def _arrival_rows(path: Path) -> list[tuple[str, float, str, float | None]]:
    """(journey, intended unix, outcome, finished unix or None) of every arrival that was not dropped."""
    out = []
    try:
        with path.open(encoding="utf-8", newline="") as f:
            for i, r in enumerate(csv.DictReader(f), start=2):
                try:
                    if r["outcome"] == "dropped":
                        continue
                    out.append((r["journey"], _unix(r["intended_at"]), r["outcome"],
                                _unix(r["finished_at"]) if r.get("finished_at") else None))
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


def compare(run_dir: Path, *, stamps_per_second: float | None = None) -> dict[str, Any]:
    """`model_vs_testbed` of one rehearsal directory (see the module docstring)."""
    run = _json(run_dir / "run.json")
    origin = _unix(run["wall_origin_at"])
    mr = model_rehearsal(run_dir, stamps_per_second=stamps_per_second)
    ts, measured_q = _queue_series(run_dir / "queue.csv", origin)
    r = mr.result
    end_t = r.t_s + r.inputs.step_s
    model_q = np.interp(ts, end_t, mr.backlog_stamps)
    peak_meas, peak_model = float(measured_q.max()), float(mr.backlog_stamps.max())
    arrivals = _arrival_rows(run_dir / "arrivals.csv")
    served_meas = float(sum(1 for a in arrivals if a[2] == "completed"))
    served_model = float(r.served_cum[-1])
    compress = float(run["compress"])
    d_meas = _drain(ts, measured_q, mr.recovery_s)
    d_model = _drain(end_t, mr.backlog_stamps, mr.recovery_s)
    series = float(np.mean(np.abs(model_q - measured_q)) / max(peak_meas, 1.0))
    out = {
        "served": {"model": round(served_model, 1), "measured": served_meas, "error": _err(served_model, served_meas),
                   "unit": "applicants whose every stamp was done within their patience"},
        "peak_backlog": {"model": round(peak_model, 1), "measured": peak_meas, "error": _err(peak_model, peak_meas),
                         "unit": "stamps at the issuer (queued + in service)"},
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
        "capacity_stamps_per_second": float(r.inputs.issuer_per_s.max() * mr.stamps_per_applicant),
        "assumptions": {"patience_at_issuer_s": round(r.inputs.patience_s, 3), "transit_s": round(mr.transit_s, 3),
                        "waste": r.inputs.waste, "retry_probability": 0.0,
                        "patience": "fixed (the testbed client gives up at a set time)"},
    }
    errs = [out["served"]["error"], out["peak_backlog"]["error"]]
    out["ok"] = all(e is not None and abs(e) <= TOLERANCE for e in errs)
    return out


def outcomes(run_dir: Path, *, stamps_per_second: float | None = None) -> dict[str, Any]:
    """Measured and predicted {served, lost, duplicated, p95_wait_s} of one rehearsal directory.

    `p95_wait_s` is in calendar seconds: from an applicant's intended start to their last
    stamp, for those served (measured from arrivals.csv; predicted from the model's wait at
    the stamping stage, once per upload, plus the journey's pauses, over those it serves, at
    most the client's patience: served means done within it).
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
    mr = model_rehearsal(run_dir, stamps_per_second=stamps_per_second)
    r = mr.result
    spa = mr.stamps_per_applicant
    think = sum(_profile(run_dir, run).journeys.think_time_s) / 2.0
    # served means done within the client's patience, so no served applicant waited longer than it
    total_wait = np.minimum(r.wait_s * spa + mr.transit_s + (2 * spa - 1) * think,
                            _profile(run_dir, run).journeys.patience_s)
    w = r.served_per_s
    pred_wait = None
    if w.sum() > 0 and np.isfinite(total_wait[w > 0]).all():
        order = np.argsort(total_wait)
        cum = np.cumsum(w[order]) / w.sum()
        pred_wait = round(float(total_wait[order][np.searchsorted(cum, 0.95)]) * compress, 1)
    predicted = {"served": round(float(r.served_cum[-1]), 1),
                 "lost": round(float(len(arrivals) - r.served_cum[-1]), 1),
                 "duplicated": 0, "p95_wait_s": pred_wait}
    return {"measured": measured, "model": predicted}


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
    n = max(1, out["plan"]["served"]["measured"] + out["plan"]["lost"]["measured"])
    noise = 2 * math.sqrt(n)  # about two binomial standard deviations of a served count
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
    out["served_gain"] = {"measured": gain, "model": round(gain_m, 1), "noise": round(noise, 1)}
    out["verdict"] = verdict
    return out
