"""The rehearsal against its model (`analysis.rehearsal_model`): served and peak backlog within
`TOLERANCE`, and its outcomes measured beside the model (a plan against its baseline rehearsal
is `analysis.rehearsal_baseline`)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats

from analysis.rehearsal_inputs import (
    _arrival_rows,
    _json,
    _profile,
    _queue_series,
    _unix,
)
from analysis.rehearsal_model import (
    ISSUER,
    SIM_TRIALS,
    TOLERANCE,
    RehearsalModel,
    model_rehearsal,
    sim_inputs,
)
from floor.rundir import schema as rs

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
        for f in (rs.RUN, rs.ARRIVALS, rs.QUEUE, rs.SERVER_RECORDS, rs.CAPACITY)
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
    seed = int(_json(run_dir / rs.RUN).get("seed") or 0)
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
    rel = _probe_sd_share(run_dir) if (mr.capacity or {}).get("from") == "probe" else None
    if rel:
        # the same seeds either side (common random numbers): the difference is the capacity's
        lo, hi = (trials(replace(si, rate=si.rate * f), n=SIM_TRIALS, seed=seed)
                  for f in (1.0 - rel, 1.0 + rel))
        out["capacity"] = {
            "rel_sd": rel,
            "served_sd": abs(hi["served_mean"] - lo["served_mean"]) / 2.0,
            "peak_sd": abs(hi["peak_mean"] - lo["peak_mean"]) / 2.0,
        }
    return out


def _probe_sd_share(run_dir: Path) -> float | None:
    """The probe's standard error as a share of its capacity (capacity.json's interval), or None
    without one."""
    path = run_dir / rs.CAPACITY
    cap = _json(path) if path.is_file() else {}
    mid, lo, hi = cap.get("stamps_per_second"), cap.get("ci_low"), cap.get("ci_high")
    if not (mid and lo is not None and hi is not None and hi > lo):
        return None
    z = float(stats.norm.ppf(0.5 + float(cap.get("confidence") or 0.95) / 2.0))
    return (float(hi) - float(lo)) / (2.0 * z * float(mid))


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
    run = _json(run_dir / rs.RUN)
    mr, sim = _model_and_sim(run_dir, stamps_per_second, issuer)
    ts, measured_q = _queue_series(run_dir / rs.QUEUE, _unix(run["wall_origin_at"]))
    peak_meas = float(measured_q.max())
    with_ids = _arrival_rows(run_dir / rs.ARRIVALS, ids=True)
    arrivals = [a[1:] for a in with_ids]
    served_meas = float(sum(1 for a in arrivals if a[2] == "completed"))
    compress = float(run["compress"])
    mean_patience = float(_profile(run_dir, run).journeys.patience_s)
    own = mr.patience or {}
    out = {
        "served": _figure(sim["served_mean"], served_meas, sim["served_sd"],
                          "applicants whose every stamp was done within their patience"),
        "peak_backlog": _figure(sim["peak_mean"], peak_meas, sim["peak_sd"],
                                "stamps at the issuer (queued + in service)"),
        "drain_s": _drain_figure(ts, measured_q, sim, mr.recovery_s, compress),
        **_series(ts, measured_q, sim, compress, mr.result.inputs.step_s),
        "tolerance": TOLERANCE,
        "model": (
            f"applicant-level simulation (analysis.rehearsal_sim), mean of {sim['n']} seeded "
            f"trials, at the rehearsal's parameters and the issuer from {mr.capacity['from']}; "
            "the fluid model's figures beside it under `fluid`"
        ),
        "fluid": _fluid(mr, served_meas, peak_meas),
        "resolution": _resolution(sim["served_mean"], sim["served_sd"], sim["peak_mean"],
                                  sim["peak_sd"], sim["unconditional"], sim.get("capacity")),
        "capacity_stamps_per_second": round(
            float(np.median(mr.result.inputs.issuer_per_s) * mr.stamps_per_applicant), 4
        ),
        "capacity": mr.capacity,
        "assumptions": _assumptions(mr),
        "client_lateness": client_lateness(
            arrivals, [own.get(a[0], mean_patience) for a in with_ids]
        ),
    }
    if stamps_per_second is None and issuer == ISSUER:
        out["diagnostic_replayed_issuer"] = _replayed(run_dir, served_meas, peak_meas)
    errs = [out["served"]["error"], out["peak_backlog"]["error"]]
    out["ok"] = all(e is not None and abs(e) <= TOLERANCE for e in errs)
    return out


def _figure(model: float, measured: float, sd: float, unit: str) -> dict[str, Any]:
    """{model, measured, error, model_sd, unit} of one compared quantity.

    >>> _figure(33.0, 30.0, 2.04, "applicants")["error"]
    0.1
    """
    return {"model": round(model, 1), "measured": measured, "error": _err(model, measured),
            "model_sd": round(sd, 1), "unit": unit}


def _drain_figure(ts: np.ndarray, measured_q: np.ndarray, sim: dict[str, Any],
                  after: float | None, compress: float) -> dict[str, Any]:
    """The drain after the outage's end, model against measured, in calendar seconds."""
    d_meas = _drain(ts, measured_q, after)
    d_model = _drain(sim["t"], sim["backlog"], after)
    return {
        "model": None if d_model is None else d_model * compress,
        "measured": None if d_meas is None else d_meas * compress,
        "error": _err(d_model, d_meas),
        "unit": "calendar seconds from the outage's end until the issuer's backlog is down "
        "to one stamp",
    }


def _series(ts: np.ndarray, measured_q: np.ndarray, sim: dict[str, Any], compress: float,
            step_s: float) -> dict[str, Any]:
    """The whole backlog series' error and the resolution it was sampled and modelled at."""
    model_q = np.interp(ts, sim["t"], sim["backlog"])
    series = float(np.mean(np.abs(model_q - measured_q)) / max(float(measured_q.max()), 1.0))
    return {
        "series_error": round(series, 4),
        "series_error_means": "mean |model - measured| issuer backlog over the queue.csv samples "
        "/ measured peak",
        "samples": int(len(ts)),
        "sample_interval_calendar_s": round(float(np.median(np.diff(ts))) * compress, 1),
        "model_step_calendar_s": round(step_s * compress, 1),
    }


LATE_S = 0.05  # a give-up noticed this long after the client's own deadline: its process stalled


def client_lateness(arrivals: list[Any], patience_s: float | Sequence[float]) -> dict[str, Any]:
    """How late the rehearsal's clients noticed their own deadline: an applicant gives up at
    intended start + its patience (one figure for all, or one per arrival), so one whose journey
    ended more than `LATE_S` after it was held up by its own process (a starved Locust process:
    its sleeps and polls ran late). The model's clients keep their clocks, so a rehearsal with
    many late give-ups did not run as the model assumes (its served count then reads low).

    >>> rows = [("new_applicant", 0.0, "abandoned", 20.02), ("x", 0.0, "abandoned", 21.5),
    ...         ("x", 0.0, "completed", 19.0)]
    >>> client_lateness(rows, 20.0)["late_give_ups"], client_lateness(rows, [20, 22, 20])[
    ...     "late_give_ups"]
    (1, 0)
    """
    own = (
        [float(patience_s)] * len(arrivals)
        if isinstance(patience_s, int | float)
        else [float(p) for p in patience_s]
    )
    late = [
        fin - (t_int + p)
        for (_journey, t_int, outcome, fin), p in zip(arrivals, own, strict=True)
        if outcome != "completed" and fin is not None
    ]
    over = [x for x in late if x > LATE_S]
    return {
        "give_ups": len(late),
        "late_give_ups": len(over),
        "max_late_s": round(max(over), 3) if over else 0.0,
        "means": f"give-ups that ended more than {LATE_S:g} s after the client's deadline "
        "(intended start + its own patience, arrivals.csv patience_s): the client process "
        "was held up then",
    }


def _fluid(mr: RehearsalModel, served_meas: float, peak_meas: float) -> dict[str, Any]:
    """The fluid model's figures beside the simulation's (`model_vs_testbed.fluid`)."""
    served, peak = float(mr.result.served_cum[-1]), float(mr.backlog_stamps.max())
    return {
        "served": round(served, 1),
        "peak_backlog": round(peak, 1),
        "served_error": _err(served, served_meas),
        "peak_backlog_error": _err(peak, peak_meas),
    }


def _assumptions(mr: RehearsalModel) -> dict[str, Any]:
    """What the model takes as given (`model_vs_testbed.assumptions`)."""
    fe = mr.front
    return {
        "transit_s": round(mr.transit_s, 3),
        "front_end": None
        if fe is None
        else {
            "source": fe.source,
            "gap_s": round(fe.gap_s, 3),
            "final_s": round(fe.final_s, 3),
            "transit_s": {k: round(v, 3) for k, v in fe.transit_s.items()},
            "means": "when each applicant's first upload reached the issuer is taken as the "
            "server recorded it (the front end: registration, login, payment, as measured); the "
            "model predicts the issuer stage: queue, later uploads, who finishes in time",
        },
        "waste": mr.result.inputs.waste,
        "retry_probability": 0.0,
        "patience": (
            "fixed (the testbed client gives up at intended start + journeys.patience_s)"
            if mr.patience_law == "fixed"
            else f"{mr.patience_law}, each applicant's own (arrivals.csv patience_s; the "
            "testbed client gives up at intended start + it)"
        ),
    }

def _resolution(
    served: float,
    sd_s: float,
    peak: float,
    sd_p: float,
    fresh: dict[str, float],
    capacity: dict[str, float] | None = None,
) -> dict[str, Any]:
    """How finely the rehearsal can decide the check, each spread as a share of its mean: the
    model's trial-to-trial spread given the issuer's measured path (what the check compares),
    with the service times drawn afresh (how much a repeat of the same rehearsal would spread),
    and from the probe's own interval (the capacity the model runs at is a measurement too);
    the check resolves a quantity when the repeat and capacity spreads together are at most
    half the tolerance.

    >>> r = _resolution(100.0, 2.0, 50.0, 1.0, {"served_mean": 100.0, "served_sd": 3.0,
    ...                 "peak_mean": 50.0, "peak_sd": 1.0}, {"served_sd": 4.0, "peak_sd": 0.5})
    >>> r["sd_share_total"], r["resolvable"]
    ({'served': 0.05, 'peak_backlog': 0.022}, {'served': True, 'peak_backlog': True})
    """

    def share(sd: float, mean: float) -> float | None:
        return round(sd / mean, 3) if mean > 0 else None

    rel = {"served": share(sd_s, served), "peak_backlog": share(sd_p, peak)}
    rel_fresh = {
        "served": share(fresh["served_sd"], fresh["served_mean"]),
        "peak_backlog": share(fresh["peak_sd"], fresh["peak_mean"]),
    }
    rel_cap = {
        "served": None if capacity is None else share(capacity["served_sd"], served),
        "peak_backlog": None if capacity is None else share(capacity["peak_sd"], peak),
    }
    total = {
        k: None if rel_fresh[k] is None else round(math.hypot(rel_fresh[k], rel_cap[k] or 0.0), 3)
        for k in rel
    }
    return {
        "sd_share": rel,
        "sd_share_repeat": rel_fresh,
        "sd_share_capacity": rel_cap,
        "sd_share_total": total,
        "resolvable": {k: v is not None and v <= TOLERANCE / 2 for k, v in total.items()},
        "resolvable_on_repeat": {
            k: v is not None and v <= TOLERANCE / 2 for k, v in rel_fresh.items()
        },
        "means": (
            "sd_share: the spread of the model the check compares (at the probe's capacity "
            "service times are drawn, so it equals the repeat spread; with the replayed issuer "
            "only client-side luck); sd_share_repeat: the spread of a repeat of this rehearsal "
            "with fresh service times; sd_share_capacity: the spread the probe's 95 % interval "
            "puts on the model (the trials run again at the capacity one sd either side); "
            "sd_share_total: the two together. The "
            f"{TOLERANCE:.0%} check resolves a quantity when that total is at most half the "
            "tolerance (2 sd within it)"
        ),
    }


def outcomes(run_dir: Path, *, stamps_per_second: float | None = None) -> dict[str, Any]:
    """Measured and predicted {served, lost, duplicated, p95_wait_s} of one rehearsal directory.

    `p95_wait_s` is in calendar seconds: from an applicant's intended start to their last
    stamp seen done, for those served (measured from arrivals.csv; predicted by the
    applicant-level simulation over its trials).
    """
    run = _json(run_dir / rs.RUN)
    recon = (
        _json(run_dir / rs.RECONCILIATION)
        if (run_dir / rs.RECONCILIATION).is_file()
        else {}
    )
    compress = float(run["compress"])
    arrivals = _arrival_rows(run_dir / rs.ARRIVALS)
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
