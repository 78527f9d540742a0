"""The rehearsal against its model (`analysis.rehearsal_model`): served and peak backlog within
`TOLERANCE`, the outcomes,
the gate effect, a plan against its baseline rehearsal."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from analysis.rehearsal_inputs import _arrival_rows, _json, _queue_series, _unix
from analysis.rehearsal_model import (
    ISSUER,
    SIM_TRIALS,
    TOLERANCE,
    RehearsalModel,
    model_rehearsal,
    sim_inputs,
)

_CACHE: dict[tuple[Any, ...], tuple[RehearsalModel, dict[str, Any]]] = {}


def _drain(t: np.ndarray, q: np.ndarray, after: float | None) -> float | None:
    """Test seconds from `after` until the backlog first falls to one stamp or less (0 if
    already)."""
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


def _model_and_sim(
    run_dir: Path, stamps_per_second: float | None, issuer: str = ISSUER
) -> tuple[RehearsalModel, dict[str, Any]]:
    """model_rehearsal and its simulation trials, computed once per directory state (the demo's
    checks ask for the same rehearsal several times)."""
    stamp = tuple(
        (f, (run_dir / f).stat().st_mtime_ns if (run_dir / f).is_file() else None)
        for f in ("run.json", "arrivals.csv", "queue.csv", "server_records.json", "capacity.json")
    )
    key = (str(run_dir.resolve()), stamps_per_second, issuer, stamp)
    if key not in _CACHE:
        mr = model_rehearsal(run_dir, stamps_per_second=stamps_per_second, issuer=issuer)
        if len(_CACHE) > 8:
            _CACHE.clear()
        _CACHE[key] = (mr, _sim(run_dir, mr))
    return _CACHE[key]


def _sim(run_dir: Path, mr: RehearsalModel) -> dict[str, Any]:
    """The simulation's trials at `mr`'s parameters; with the issuer's measured path, also the
    spread a
    rehearsal of the same inputs would show with the service times drawn afresh
    (`unconditional`)."""
    from dataclasses import replace

    from analysis.rehearsal_sim import trials

    si = sim_inputs(run_dir, mr)
    seed = int(_json(run_dir / "run.json").get("seed") or 0)
    out = trials(si, n=SIM_TRIALS, seed=seed)
    fresh = (
        trials(
            replace(
                si,
                exponential=mr.service_distribution == "exponential",
                service_sigma=mr.service_sigma,
                epochs=np.zeros(0),
            ),
            n=SIM_TRIALS,
            seed=seed,
        )
        if len(si.epochs) or not si.exponential
        else out
    )
    out["unconditional"] = {
        k: fresh[k] for k in ("served_mean", "served_sd", "peak_mean", "peak_sd")
    }
    return out


def _replayed(run_dir: Path, served_meas: float, peak_meas: float) -> dict[str, Any]:
    """Diagnostic only, not the check: the simulation fed the issuer's own completions replayed
    from server_records.json (the client mechanics given the issuer, not the model's capacity)."""
    _mr, sim = _model_and_sim(run_dir, None, "rehearsal")
    return {
        "served": {
            "model": round(sim["served_mean"], 1),
            "measured": served_meas,
            "error": _err(sim["served_mean"], served_meas),
        },
        "peak_backlog": {
            "model": round(sim["peak_mean"], 1),
            "measured": peak_meas,
            "error": _err(sim["peak_mean"], peak_meas),
        },
        "means": "diagnostic: issuer replayed from the server's completions; not the check",
    }


def compare(
    run_dir: Path, *, stamps_per_second: float | None = None, issuer: str = ISSUER
) -> dict[str, Any]:
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
        "served": {
            "model": round(served_model, 1),
            "measured": served_meas,
            "error": _err(served_model, served_meas),
            "model_sd": round(sd_s, 1),
            "unit": "applicants whose every stamp was done within their patience",
        },
        "peak_backlog": {
            "model": round(peak_model, 1),
            "measured": peak_meas,
            "error": _err(peak_model, peak_meas),
            "model_sd": round(sd_p, 1),
            "unit": "stamps at the issuer (queued + in service)",
        },
        "drain_s": {
            "model": None if d_model is None else d_model * compress,
            "measured": None if d_meas is None else d_meas * compress,
            "error": _err(d_model, d_meas),
            "unit": "calendar seconds from the outage's end until the issuer's backlog is down "
            "to one stamp",
        },
        "series_error": round(series, 4),
        "series_error_means": "mean |model - measured| issuer backlog over the queue.csv samples "
        "/ measured peak",
        "samples": int(len(ts)),
        "sample_interval_calendar_s": round(float(np.median(np.diff(ts))) * compress, 1),
        "model_step_calendar_s": round(r.inputs.step_s * compress, 1),
        "tolerance": TOLERANCE,
        "model": (
            f"applicant-level simulation (analysis.rehearsal_sim), mean of {sim['n']} seeded "
            f"trials, at the rehearsal's parameters and the issuer from {mr.capacity['from']}; "
            "the fluid model's figures beside it under `fluid`"
        ),
        "fluid": {
            "served": round(float(r.served_cum[-1]), 1),
            "peak_backlog": round(float(mr.backlog_stamps.max()), 1),
            "served_error": _err(float(r.served_cum[-1]), served_meas),
            "peak_backlog_error": _err(float(mr.backlog_stamps.max()), peak_meas),
        },
        "resolution": _resolution(served_model, sd_s, peak_model, sd_p, sim["unconditional"]),
        "capacity_stamps_per_second": round(
            float(np.median(r.inputs.issuer_per_s) * mr.stamps_per_applicant), 4
        ),
        "capacity": mr.capacity,
        "assumptions": {
            "transit_s": round(mr.transit_s, 3),
            "front_end": None
            if mr.front is None
            else {
                "source": mr.front.source,
                "gap_s": round(mr.front.gap_s, 3),
                "final_s": round(mr.front.final_s, 3),
                "transit_s": {k: round(v, 3) for k, v in mr.front.transit_s.items()},
                "means": "when each applicant's first upload reached the issuer is taken as the "
                "server "
                "recorded it (the front end: registration, login, payment, as measured); the "
                "model predicts the issuer stage: queue, later uploads, who finishes in time",
            },
            "waste": r.inputs.waste,
            "retry_probability": 0.0,
            "patience": "fixed (the testbed client gives up at intended start + "
            "journeys.patience_s)",
        },
    }
    if stamps_per_second is None and issuer == ISSUER:
        out["diagnostic_replayed_issuer"] = _replayed(run_dir, served_meas, peak_meas)
    errs = [out["served"]["error"], out["peak_backlog"]["error"]]
    out["ok"] = all(e is not None and abs(e) <= TOLERANCE for e in errs)
    return out


def _resolution(
    served: float, sd_s: float, peak: float, sd_p: float, fresh: dict[str, float]
) -> dict[str, Any]:
    """How finely the rehearsal can decide the check: the model's trial-to-trial spread as a share
    of
    its mean, given the issuer's measured path (what the check compares) and with the service times
    drawn afresh (how much a repeat of the same rehearsal would spread), against the tolerance."""

    def share(sd: float, mean: float) -> float | None:
        return round(sd / mean, 3) if mean > 0 else None

    rel = {"served": share(sd_s, served), "peak_backlog": share(sd_p, peak)}
    rel_fresh = {
        "served": share(fresh["served_sd"], fresh["served_mean"]),
        "peak_backlog": share(fresh["peak_sd"], fresh["peak_mean"]),
    }
    return {
        "sd_share": rel,
        "sd_share_repeat": rel_fresh,
        "resolvable": {k: v is not None and v <= TOLERANCE / 2 for k, v in rel.items()},
        "resolvable_on_repeat": {
            k: v is not None and v <= TOLERANCE / 2 for k, v in rel_fresh.items()
        },
        "means": (
            "sd_share: the spread of the model the check compares (at the probe's capacity "
            "service times are drawn, so it equals the repeat spread; with the replayed issuer "
            "only client-side luck); sd_share_repeat: the spread of a repeat of this rehearsal "
            f"with fresh service times. The {TOLERANCE:.0%} check resolves a quantity when that "
            "sd is at most half the tolerance (2 sd within it)"
        ),
    }


def outcomes(run_dir: Path, *, stamps_per_second: float | None = None) -> dict[str, Any]:
    """Measured and predicted {served, lost, duplicated, p95_wait_s} of one rehearsal directory.

    `p95_wait_s` is in calendar seconds: from an applicant's intended start to their last
    stamp seen done, for those served (measured from arrivals.csv; predicted by the
    applicant-level simulation over its trials).
    """
    run = _json(run_dir / "run.json")
    recon = (
        _json(run_dir / "reconciliation.json")
        if (run_dir / "reconciliation.json").is_file()
        else {}
    )
    compress = float(run["compress"])
    arrivals = _arrival_rows(run_dir / "arrivals.csv")
    waits = [a[3] - a[1] for a in arrivals if a[2] == "completed" and a[3] is not None]
    dup = int(recon.get("duplicated_quota") or 0) + int(recon.get("duplicated_stamps") or 0)
    measured = {
        "served": len(waits),
        "lost": sum(1 for a in arrivals if a[2] != "completed"),
        "duplicated": dup,
        "p95_wait_s": round(float(np.percentile(waits, 95)) * compress, 1) if waits else None,
    }
    mr, sim = _model_and_sim(run_dir, stamps_per_second)
    predicted = {
        "served": round(sim["served_mean"], 1),
        "lost": round(float(len(arrivals) - sim["served_mean"]), 1),
        "duplicated": 0,
        "p95_wait_s": None if sim["p95_wait_s"] is None else round(sim["p95_wait_s"] * compress, 1),
    }
    return {
        "measured": measured,
        "model": predicted,
        "model_served_sd": round(sim["served_sd"], 1),
        "repeat_served_sd": round(sim["unconditional"]["served_sd"], 1),
    }


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
    # open: those whose first upload the gate never let in try theirs
    # (intended + their journey's transit)
    gated = trials(si, n=SIM_TRIALS, seed=seed)
    opened = trials(replace(si, gates=[], unmeasured_enter=True), n=SIM_TRIALS, seed=seed)
    diff = gated["served_mean"] - opened["served_mean"]
    sd = math.hypot(gated["served_sd"], opened["served_sd"]) / math.sqrt(SIM_TRIALS)
    return {
        "served_with_gates": round(gated["served_mean"], 1),
        "served_all_open": round(opened["served_mean"], 1),
        "gain": round(diff, 1),
        "gain_se": round(sd, 1),
        "peak_backlog_with_gates": round(gated["peak_mean"], 1),
        "peak_backlog_all_open": round(opened["peak_mean"], 1),
        "means": "model only: the plan rehearsal's own measured inputs with its stamping gates "
        "and with all open "
        "(the same machine load on both sides); gain_se is the standard error of the mean gain",
    }


def _conditions(plan: dict[str, Any], base: dict[str, Any]) -> dict[str, Any]:
    """Did the two rehearsals run on the same machine conditions? Their issuers' rates (server's
    count)
    and their front ends (intended start -> first upload) side by side."""

    def pick(m: dict[str, Any]) -> tuple[float | None, float]:
        return (m.get("capacity") or {}).get("rehearsal_stamps_per_second"), m["assumptions"][
            "transit_s"
        ]

    (rp, tp), (rb, tb) = pick(plan), pick(base)
    rate_diff = None if not (rp and rb) else round(rp / rb - 1.0, 3)
    transit_diff = None if not tb else round(tp / tb - 1.0, 3)
    differ = (rate_diff is not None and abs(rate_diff) > 0.05) or (
        transit_diff is not None and abs(transit_diff) > 0.2
    )
    return {
        "issuer_stamps_per_second": {"plan": rp, "baseline": rb, "difference": rate_diff},
        "transit_s": {"plan": tp, "baseline": tb, "difference": transit_diff},
        "differ": bool(differ),
        "means": "a shared machine: the testbed's issuer and front end slow with the CPU load of "
        "the moment; "
        "when they differ (issuer > 5%, front end > 20%) the measured difference mixes the plan "
        "with "
        "the machine, and gate_effect (model, same inputs) isolates the plan's gates",
    }


def plan_vs_baseline(plan_dir: Path, baseline_dir: Path) -> dict[str, Any]:
    """`plan_vs_baseline` of plan_check.json: per key {measured, model} for the plan's rehearsal
    and the all-gates-open one (same arrivals), and a verdict in words."""
    sides = {"plan": outcomes(plan_dir), "baseline": outcomes(baseline_dir)}
    out: dict[str, Any] = {}
    for side, o in sides.items():
        out[side] = {
            k: {"measured": o["measured"][k], "model": o["model"][k]} for k in o["measured"]
        }
        out[side]["model_vs_testbed"] = compare(plan_dir if side == "plan" else baseline_dir)
    gain = out["plan"]["served"]["measured"] - out["baseline"]["served"]["measured"]
    gain_m = out["plan"]["served"]["model"] - out["baseline"]["served"]["model"]
    # two standard deviations of the difference of two single rehearsals (the model's trial spread)
    noise = 2 * math.hypot(sides["plan"]["repeat_served_sd"], sides["baseline"]["repeat_served_sd"])
    share = {
        s: out[s]["served"]["measured"]
        / max(1, out[s]["served"]["measured"] + out[s]["lost"]["measured"])
        for s in ("plan", "baseline")
    }
    peak = {s: out[s]["model_vs_testbed"]["peak_backlog"]["measured"] for s in ("plan", "baseline")}
    why = (
        f"served {share['plan']:.0%} with the plan and {share['baseline']:.0%} doing nothing; "
        f"peak issuer "
        f"backlog {peak['plan']:.0f} and {peak['baseline']:.0f} stamps"
    )
    if gain > noise:
        verdict = (
            f"the plan served {gain} more applicants than doing nothing on the testbed "
            f"(model {gain_m:+.0f}); {why}"
        )
    elif gain < -noise:
        verdict = (
            f"the plan served {-gain} FEWER applicants than doing nothing on the testbed (model "
            f"{gain_m:+.0f}); "
            f"{why}"
        )
    else:
        verdict = (
            f"no measurable benefit from the plan on the testbed: {gain:+d} served against doing "
            f"nothing, "
            f"within the noise of +/-{noise:.0f} (model {gain_m:+.0f}); {why}"
        )
    out["served_gain"] = {
        "measured": gain,
        "model": round(gain_m, 1),
        "noise": round(noise, 1),
        "noise_means": "2 sd of the difference of two single rehearsals (model trials with "
        "fresh service times)",
    }
    out["conditions"] = _conditions(
        out["plan"]["model_vs_testbed"], out["baseline"]["model_vs_testbed"]
    )
    out["gate_effect"] = ge = gate_effect(plan_dir)
    if out["conditions"]["differ"]:
        verdict += (
            "; the two rehearsals ran under different machine load ("
            + _cond_words(out["conditions"])
            + "), so part of the measured difference is the machine"
        )
    verdict += (
        f"; by the model on the plan rehearsal's own inputs the gates alone give "
        f"{ge['gain']:+.0f} served "
        f"(+/-{2 * ge['gain_se']:.0f})"
    )
    out["verdict"] = verdict
    return out


def _cond_words(c: dict[str, Any]) -> str:
    """The conditions block in words.

    >>> _cond_words({"issuer_stamps_per_second": {"plan": 15.0, "baseline": 13.3},
    ...              "transit_s": {"plan": 4.1, "baseline": 7.2}})
    'issuer 15.0 vs 13.3 stamps/s, first upload 4.1 vs 7.2 s after the intended start'
    """
    r, t = c["issuer_stamps_per_second"], c["transit_s"]
    rate = (
        "issuer n/a"
        if not (r["plan"] and r["baseline"])
        else f"issuer {r['plan']:.1f} vs {r['baseline']:.1f} stamps/s"
    )
    return f"{rate}, first upload {t['plan']:.1f} vs {t['baseline']:.1f} s after the intended start"
