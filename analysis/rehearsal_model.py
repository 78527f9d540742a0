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

`analysis.rehearsal_compare.compare(run_dir)` sets the model's series beside queue.csv (sampled
every
`--sample-interval` test seconds) and returns `model_vs_testbed`:
`{served, peak_backlog, drain_s}` each `{model, measured, error}`, `series_error`, `ok`::

    cmp = compare(Path("runs/demo"))
    cmp["served"]["error"], cmp["ok"]
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from analysis.backlog import FluidInputs, FluidResult, run_fluid
from analysis.rehearsal_inputs import (
    FrontEnd,
    _actions,
    _arrival_rows,
    _json,
    _poll_latency,
    _profile,
    _records,
    _stages_and_capacity,
    _stamp_request_s,
    _unix,
    front_end,
    retry_span_s,
)
from analysis.rehearsal_issuer import RATE_WINDOW_S, _issuer_arrivals, _issuer_capacity
from analysis.rehearsal_mapping import mapping
from floor.errors import InputFileError

__all__ = ["ISSUER", "TOLERANCE", "mapping", "model_rehearsal", "sim_inputs", "RehearsalModel"]


TOLERANCE = 0.10  # served and peak backlog: |model / measured - 1| at most this


STEP_S = 0.1  # model step, test seconds
# the issuer the check's model runs at: "probe" (capacity.json, the measured capacity), or, as a
# diagnostic only, "rehearsal" (the issuer's own completions replayed where it was saturated)
ISSUER = "probe"


@dataclass(frozen=True, kw_only=True, repr=False)
class RehearsalModel:
    """The model run at a rehearsal's parameters, on the rehearsal's test clock (t = test
    seconds)."""

    result: FluidResult
    stamps_per_applicant: float
    service_mean_s: float
    compress: float
    transit_s: float
    recovery_s: float | None  # test second of the last outage end (or None)

    workers: int = 4
    front: FrontEnd | None = None
    service_distribution: str = "exponential"
    service_sigma: float = 0.0  # lognormal service: its log-space sd (testbed config)
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
        return waiting + np.where(
            waiting >= 1.0, float(self.workers), np.minimum(idle, self.workers)
        )


def model_rehearsal(
    run_dir: Path,
    *,
    stamps_per_second: float | None = None,
    step_s: float = STEP_S,
    issuer: str = ISSUER,
) -> RehearsalModel:
    """Run the model at the rehearsal's own parameters (see the module docstring).

    `stamps_per_second` overrides the capacity (test stamps/s) the model runs at, e.g. to show
    the comparison fails with a mis-scaled one; by default it is the probe's measured capacity
    (`issuer="rehearsal"`: the rate the rehearsal's issuer achieved while saturated, a diagnostic)::

        mr = model_rehearsal(Path("runs/demo"))
        mr.capacity["from"], float(mr.result.served_cum[-1])
    """
    run = _json(run_dir / "run.json")
    cap = _json(run_dir / "capacity.json") if (run_dir / "capacity.json").is_file() else {}
    profile = _profile(run_dir, run)
    spa = float(profile.mean_stamps_per_applicant)
    probed = cap.get("stamps_per_second")
    if not probed and stamps_per_second is None:
        raise InputFileError(
            f"{run_dir / 'capacity.json'}: no measured stamps_per_second; probe the testbed first"
        )
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
    fe = front_end(run_dir, origin, arrivals, think, spa, retry_span_s(j))
    last = max([origin + float(run["duration_s"])] + [a[4] for a in arrivals if a[4] is not None])
    n = int(math.ceil((last - origin) / step_s)) + 2
    arr, left, transit = _issuer_arrivals(arrivals, fe, origin, n, step_s, j.patience_s, think)
    t = step_s * np.arange(n)
    acts = _actions(run)
    rate, how, windows, achieved, span = _issuer_capacity(
        run_dir, origin, acts, stamps_per_second, probed, issuer
    )
    issuer = np.full(n, rate / spa)
    stages, recovery = _stages_and_capacity(acts, t, issuer, spa, retry_span_s(j))
    for a, b, r in windows:  # where the issuer was saturated, the rate its server counted there
        issuer[(t >= a) & (t < b)] = r / spa
    inputs = FluidInputs(
        step_s=step_s,
        t0_s=0.0,
        arrivals=arr,
        issuer_per_s=issuer,
        payments_per_s=np.full(n, pay_per_s),
        stamps_per_applicant=spa,
        patience_s=max(step_s, j.patience_s - transit - fe.final_s),
        retry_probability=0.0,
        retry_after_s=1e9,
        total_applicants=float(len(arrivals)),
        waste=waste,
        fixed_patience=True,
        patience_left_s=left,
        pass_gap_s=fe.gap_s,
        first_uploads_admitted=fe.source == "measured",
    )
    return RehearsalModel(
        result=run_fluid(inputs, stages),
        stamps_per_applicant=spa,
        service_mean_s=service_mean,
        compress=float(run["compress"]),
        transit_s=transit,
        recovery_s=recovery,
        workers=int(issuer_conf.get("workers", 4)),
        front=fe,
        service_distribution=str(
            (issuer_conf.get("service") or {}).get("distribution", "exponential")
        ),
        service_sigma=_lognormal_sigma(issuer_conf.get("service") or {}),
        capacity={
            "stamps_per_second": rate,
            "from": how,
            "probe_stamps_per_second": probed,
            "rehearsal_stamps_per_second": None if achieved is None else round(achieved, 4),
            "rehearsal_saturated_s": round(span, 2),
            "windows_measured": len(windows),
            "window_s": RATE_WINDOW_S,
        },
    )


SIM_TRIALS = 24  # seeded trials of the applicant-level simulation per rehearsal


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
    docs_of, epochs = _records(
        run_dir, origin, replay=(mr.capacity or {}).get("from") == "rehearsal"
    )
    rng = np.random.default_rng(int(run.get("seed") or 0))
    ks = sorted(profile.stamps_per_applicant)
    ps = np.array([profile.stamps_per_applicant[k] for k in ks], dtype=float)
    refresh_share = float(j.retry_mix.get("refresh", 0.0))
    first = np.array(
        [
            np.nan if (fe is None or fe.first_upload.get(a[0]) is None) else fe.first_upload[a[0]]
            for a in arrivals
        ],
        dtype=float,
    )
    intended = np.array([a[2] - origin for a in arrivals])
    r = mr.result
    spa = mr.stamps_per_applicant
    rate = r.inputs.issuer_per_s * spa
    keep = np.concatenate([[True], np.diff(rate) != 0])
    gates = []
    for a in _actions(run):
        if a.get("kind") == "gate" and a.get("target") == "stamping":
            b = a.get("body") or {}
            gates.append(
                (
                    float(a.get("applied_at_s", a.get("at_s", 0.0))),
                    str(b.get("mode", "open")),
                    float(b.get("rate_per_s") or 0.0),
                    float(b.get("burst") or 1.0),
                )
            )
    think = sum(j.think_time_s) / 2.0
    gap = fe.gap_s if fe is not None else 2 * think
    poll = _poll_latency(run_dir, run)
    return SimInputs(
        intended=intended,
        deadline=intended + j.patience_s,
        documents=np.array(
            [docs_of.get(a[0], int(rng.choice(ks, p=ps / ps.sum()))) for a in arrivals]
        ),
        first_upload=first,
        refresh=rng.random(len(arrivals)) < refresh_share,
        rate_t=r.t_s[keep],
        rate=rate[keep],
        workers=mr.workers,
        gates=gates,
        end_s=float(r.t_s[-1] + r.inputs.step_s) + 30.0,
        transit=np.array([(fe.transit_s if fe else {}).get(a[1], think) for a in arrivals]),
        think_s=tuple(j.think_time_s),
        poll_s=j.poll_interval_s,
        overhead_s=max(0.0, gap - j.poll_interval_s / 2 - 2 * think),
        request_s=_stamp_request_s(run_dir),
        gaps=np.array(fe.gaps if fe is not None else ()),
        poll_latency_t=poll[0],
        poll_latency=poll[1],
        epochs=np.array(epochs),
        tail_rate=float((mr.capacity or {}).get("stamps_per_second") or 16.0),
        unmeasured_enter=fe is None or fe.source != "measured",
        max_attempts=j.max_attempts,
        backoff=(j.backoff_base_s, j.backoff_max_s),
        # the server's count per window already holds the service times' luck: drawing them
        # again would add spread that did not happen, so service is deterministic at that rate
        exponential=(
            mr.service_distribution == "exponential"
            and not (mr.capacity or {}).get("windows_measured")
        ),
        service_sigma=0.0 if (mr.capacity or {}).get("windows_measured") else mr.service_sigma,
    )


def _lognormal_sigma(service: dict[str, Any]) -> float:
    """The log-space sd of a lognormal issuer service (0 for any other distribution).

    >>> _lognormal_sigma({"distribution": "lognormal", "sigma": 0.2}), _lognormal_sigma({})
    (0.2, 0.0)
    """
    if service.get("distribution") != "lognormal":
        return 0.0
    return float(service.get("sigma", 0.5))
