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
    patience_of,
    retry_span_s,
)
from analysis.rehearsal_issuer import RATE_WINDOW_S, _issuer_arrivals, _issuer_capacity
from analysis.rehearsal_mapping import mapping
from floor.errors import InputFileError
from floor.rundir import schema as rs
from testbed.config import TestbedConfig

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
    patience_law: str = "fixed"  # the testbed clients' (journeys.patience_law)
    # each applicant's own patience, test s (arrivals.csv patience_s; the profile's where empty)
    patience: dict[str, float] | None = None

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
    run = _json(run_dir / rs.RUN)
    cap = _json(run_dir / rs.CAPACITY) if (run_dir / rs.CAPACITY).is_file() else {}
    profile = _profile(run_dir, run)
    spa = float(profile.mean_stamps_per_applicant)
    probed = cap.get("stamps_per_second")
    if not probed and stamps_per_second is None:
        raise InputFileError(
            f"{run_dir / 'capacity.json'}: no measured stamps_per_second; probe the testbed first"
        )
    conf = _testbed_config(cap)
    origin = _unix(run["wall_origin_at"])
    arrivals = _arrival_rows(run_dir / rs.ARRIVALS, ids=True)
    j = profile.journeys
    think = sum(j.think_time_s) / 2.0
    fe = front_end(run_dir, origin, arrivals, think, spa, retry_span_s(j))
    last = max([origin + float(run["duration_s"])] + [a[4] for a in arrivals if a[4] is not None])
    n = int(math.ceil((last - origin) / step_s)) + 2
    own = patience_of(run_dir / rs.ARRIVALS, j.patience_s)
    arr, left, transit = _issuer_arrivals(arrivals, fe, origin, n, step_s, j.patience_s, think,
                                          own=own)
    t = step_s * np.arange(n)
    acts = _actions(run)
    rate, how, windows, achieved, span = _issuer_capacity(
        run_dir, origin, acts, stamps_per_second, probed, issuer
    )
    per_s = np.full(n, rate / spa)
    stages, recovery = _stages_and_capacity(acts, t, per_s, spa, retry_span_s(j))
    for a, b, r in windows:  # where the issuer was saturated, the rate its server counted there
        per_s[(t >= a) & (t < b)] = r / spa
    inputs = _fluid_inputs(step_s, arr, per_s, conf, spa, j, transit, fe, left, len(arrivals))
    return RehearsalModel(
        result=run_fluid(inputs, stages),
        stamps_per_applicant=spa,
        service_mean_s=conf["service_mean_s"],
        compress=float(run["compress"]),
        transit_s=transit,
        recovery_s=recovery,
        workers=conf["workers"],
        front=fe,
        service_distribution=conf["distribution"],
        service_sigma=conf["sigma"],
        capacity=_capacity_record(rate, how, probed, achieved, span, len(windows)),
        patience_law=j.patience_law,
        patience=own,
    )


def _capacity_record(rate: float, how: str, probed: Any, achieved: float | None, span: float,
                     windows: int) -> dict[str, Any]:
    """`model_vs_testbed.capacity`: the rate the model ran at, where from, beside the probe's
    and the rehearsal's own saturated rate."""
    return {
        "stamps_per_second": rate,
        "from": how,
        "probe_stamps_per_second": probed,
        "rehearsal_stamps_per_second": None if achieved is None else round(achieved, 4),
        "rehearsal_saturated_s": round(span, 2),
        "windows_measured": windows,
        "window_s": RATE_WINDOW_S,
    }


def _fluid_inputs(step_s: float, arr: dict[str, np.ndarray], per_s: np.ndarray,
                  conf: dict[str, Any], spa: float, j: Any, transit: float, fe: FrontEnd,
                  left: np.ndarray, applicants: int) -> FluidInputs:
    """The fluid model's inputs in test time: the issuer per step, no orbit, ghost work kept, and
    the clients' patience: a fixed one less the front end's transit and the last download
    (FIFO cohorts), or an exponential one as the national model prices it (give-ups at rate
    1/mean while queued: memoryless, so those still there at their first upload have the same
    mean left)."""
    n = len(per_s)
    fixed = j.patience_law == "fixed"
    return FluidInputs(
        step_s=step_s,
        t0_s=0.0,
        arrivals=arr,
        issuer_per_s=per_s,
        payments_per_s=np.full(n, conf["payments_per_s"]),
        stamps_per_applicant=spa,
        patience_s=max(step_s, j.patience_s - transit - fe.final_s) if fixed else j.patience_s,
        retry_probability=0.0,
        retry_after_s=1e9,
        total_applicants=float(applicants),
        waste=conf["waste"],
        fixed_patience=fixed,
        patience_left_s=left,
        pass_gap_s=fe.gap_s,
        first_uploads_admitted=fe.source == "measured",
    )


def _testbed_config(cap: dict[str, Any]) -> dict[str, Any]:
    """The testbed's configuration as capacity.json records it (`configured`): the payment
    gateway's rate, the issuer's workers, mean service, law and overload mode. What it does
    not record is the reference testbed's default (`testbed.config.TestbedConfig`, the one
    source of those defaults).

    >>> c = _testbed_config({})
    >>> c["payments_per_s"], c["workers"], c["service_mean_s"], c["distribution"], c["waste"]
    (40.0, 4, 0.25, 'lognormal', True)
    >>> _testbed_config({"configured": {"issuer": {"workers": 2}}})["workers"]
    2
    """
    default = TestbedConfig().to_dict()
    conf = cap.get("configured") or {}
    pay = {**default["payments"], **(conf.get("payments") or {})}
    issuer = {**default["issuer"], **(conf.get("issuer") or {})}
    service = issuer.get("service") or default["issuer"]["service"]
    pay_service = pay.get("service") or default["payments"]["service"]
    return {
        "payments_per_s": float(pay["workers"]) / float(pay_service["mean"]),
        "service_mean_s": float(service.get("mean", default["issuer"]["service"]["mean"])),
        "waste": issuer["overload"] == "unbounded",
        "workers": int(issuer["workers"]),
        "distribution": str(service.get("distribution",
                                        default["issuer"]["service"]["distribution"])),
        "sigma": _lognormal_sigma(service),
    }


SIM_TRIALS = 24  # seeded trials of the applicant-level simulation per rehearsal


def sim_inputs(run_dir: Path, mr: RehearsalModel | None = None) -> Any:
    """The applicant-level simulation's inputs (analysis.rehearsal_sim) from a rehearsal's files,
    at the same parameters as the fluid model `mr` (its issuer rate per step, the gates applied)::

        from analysis.rehearsal_sim import trials
        trials(sim_inputs(Path("runs/demo")), n=24)["served_mean"]
    """
    from analysis.rehearsal_sim import SimInputs

    run = _json(run_dir / rs.RUN)
    profile = _profile(run_dir, run)
    mr = mr or model_rehearsal(run_dir)
    fe = mr.front
    origin = _unix(run["wall_origin_at"])
    arrivals = _arrival_rows(run_dir / rs.ARRIVALS, ids=True)
    j = profile.journeys
    docs_of, epochs = _records(
        run_dir, origin, replay=(mr.capacity or {}).get("from") == "rehearsal"
    )
    documents, refresh = _client_draws(run, profile, arrivals, docs_of)
    ups = fe.first_upload if fe is not None else {}
    first = np.array(
        [np.nan if ups.get(a[0]) is None else ups[a[0]] for a in arrivals], dtype=float
    )
    intended = np.array([a[2] - origin for a in arrivals])
    own = mr.patience or {}
    patience = np.array([own.get(a[0], j.patience_s) for a in arrivals], dtype=float)
    r = mr.result
    rate = r.inputs.issuer_per_s * mr.stamps_per_applicant
    keep = np.concatenate([[True], np.diff(rate) != 0])
    think = sum(j.think_time_s) / 2.0
    gap = fe.gap_s if fe is not None else 2 * think
    poll = _poll_latency(run_dir, run)
    return SimInputs(
        intended=intended,
        deadline=intended + patience,
        documents=documents,
        first_upload=first,
        refresh=refresh,
        rate_t=r.t_s[keep],
        rate=rate[keep],
        workers=mr.workers,
        gates=_stamping_gates(run),
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
        **_service_law(mr),
    )


def _service_law(mr: RehearsalModel) -> dict[str, Any]:
    """The simulated issuer's service law: the testbed's, or deterministic at the rate the
    server counted per window (that count already holds the service times' luck: drawing them
    again would add spread that did not happen)."""
    counted = bool((mr.capacity or {}).get("windows_measured"))
    return {
        "exponential": mr.service_distribution == "exponential" and not counted,
        "service_sigma": 0.0 if counted else mr.service_sigma,
    }


def _client_draws(
    run: dict[str, Any], profile: Any, arrivals: list[Any], docs_of: dict[str, int]
) -> tuple[np.ndarray, np.ndarray]:
    """Each applicant's documents (the quota its account was credited, else drawn from the
    profile's mix) and retry policy (refresh with the profile's share, else backoff), drawn
    from the rehearsal's seed in that order."""
    rng = np.random.default_rng(int(run.get("seed") or 0))
    ks = sorted(profile.stamps_per_applicant)
    ps = np.array([profile.stamps_per_applicant[k] for k in ks], dtype=float)
    documents = np.array(
        [docs_of.get(a[0], int(rng.choice(ks, p=ps / ps.sum()))) for a in arrivals]
    )
    refresh_share = float(profile.journeys.retry_mix.get("refresh", 0.0))
    return documents, rng.random(len(arrivals)) < refresh_share


def _stamping_gates(run: dict[str, Any]) -> list[tuple[float, str, float, float]]:
    """The stamping gate's changes the rehearsal applied: (test second, mode, rate, burst).

    >>> _stamping_gates({"admin_actions": [{"kind": "gate", "target": "stamping", "applied_at_s":
    ...     15.02, "body": {"mode": "rate", "rate_per_s": 16.0, "burst": 16}}]})
    [(15.02, 'rate', 16.0, 16.0)]
    """
    out = []
    for a in _actions(run):
        if a.get("kind") == "gate" and a.get("target") == "stamping":
            b = a.get("body") or {}
            out.append(
                (
                    float(a.get("applied_at_s", a.get("at_s", 0.0))),
                    str(b.get("mode", "open")),
                    float(b.get("rate_per_s") or 0.0),
                    float(b.get("burst") or 1.0),
                )
            )
    return out


def _lognormal_sigma(service: dict[str, Any]) -> float:
    """The log-space sd of a lognormal issuer service (0 for any other distribution).

    >>> _lognormal_sigma({"distribution": "lognormal", "sigma": 0.2}), _lognormal_sigma({})
    (0.2, 0.0)
    """
    if service.get("distribution") != "lognormal":
        return 0.0
    return float(service.get("sigma", 0.5))
