"""How a profile maps onto a rehearsal in test time: the compression, scale, capacities and
journey timing a rehearsal of that profile runs with."""

from __future__ import annotations

import math
from typing import Any

_ENTRY = {
    "new_applicant": "registration",
    "returning_applicant": "ordering",
    "stamp_only": "stamping",
}


def mapping(
    profile: Any,
    run: dict[str, Any],
    *,
    plan_stamps_per_second: float | None,
    testbed_stamps_per_second: float | None,
    gate_schedule: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """The real calendar -> testbed mapping of one rehearsal (the body of mapping.json).

    >>> from scenarios.profile import load_profile
    >>> m = mapping(load_profile("casn2024"), {"compress": 8640.0, "scale": 1 / 8640},
    ...             plan_stamps_per_second=16.0, testbed_stamps_per_second=16.0)
    >>> patience = m["clocks"]["patience"]["mapped_testbed_s"]
    >>> m["demand_multiplier"], m["capacity"]["consistent"], patience
    (1.0, True, 0.1389)
    """
    compress, scale = float(run["compress"]), float(run["scale"])
    mult = compress * scale
    spa = float(profile.mean_stamps_per_applicant)
    return {
        "compress": compress,
        "scale": scale,
        "demand_multiplier": round(mult, 9),
        "rule": "testbed rates (per test second) = real rates (per calendar second) x "
        "demand_multiplier "
        "(compress x scale); counts (applicants, bursts) x scale; real clocks / compress = "
        "testbed clocks",
        "stamps_per_applicant": spa,
        "capacity": _capacity(mult, plan_stamps_per_second, testbed_stamps_per_second),
        "clocks": _clocks(profile, compress, float(run.get("duration_s") or 0.0)),
        "gates": [_gate(g, mult, scale, spa) for g in gate_schedule or []],
        "outage": [
            {
                "start": o.start.isoformat(),
                "end": o.end.isoformat(),
                "capacity_factor": o.capacity_factor,
                "testbed": "pause"
                if o.capacity_factor <= 0
                else f"issuer_slow_factor {1 / o.capacity_factor:.6g}",
            }
            for o in profile.outages
            if o.resource == "issuer"
        ],
    }


def _capacity(mult: float, plan: float | None, testbed: float | None) -> dict[str, Any]:
    """The capacity mapping: the testbed's stamps/s de-scaled, consistent with the plan's when
    within 1 %.

    >>> _capacity(2.0, 8.0, 16.0)["consistent"], _capacity(2.0, 8.0, 20.0)["consistent"]
    (True, False)
    """
    implied = None if testbed is None else testbed / mult
    return {
        "real_stamps_per_second": plan,
        "testbed_stamps_per_second": testbed,
        "testbed_as_real_stamps_per_second": implied,
        "consistent": implied is not None and plan is not None and abs(implied / plan - 1) <= 0.01,
        "how": "the plan is made at the testbed's measured capacity de-scaled (/ "
        "demand_multiplier)",
    }


def _gate(g: dict[str, Any], mult: float, scale: float, spa: float) -> dict[str, Any]:
    """One gate change of the plan's schedule, real and on the testbed (tokens per test second,
    burst; per stamp at the stamping gate)."""
    per = spa if g.get("gate") == "stamping" else 1.0
    rate = g.get("rate_per_s")
    return {
        "at": g.get("at"),
        "gate": g.get("gate"),
        "mode": g.get("mode"),
        "label": g.get("label"),
        "real_rate_per_s": rate,
        "real_burst": g.get("burst"),
        "testbed_tokens_per_s": None if rate is None else round(rate * mult * per, 6),
        "testbed_burst": None
        if rate is None
        else max(1, math.ceil((g.get("burst") or 1) * scale * per)),
    }


def _clock(real_s: float | None, testbed_s: float | None, note: str, compress: float
           ) -> dict[str, Any]:
    """One clock of the real service, mapped through the compression, beside the testbed's."""
    return {
        "real_s": real_s,
        "mapped_testbed_s": None if real_s is None else round(real_s / compress, 4),
        "testbed_s": testbed_s,
        "testbed_as_calendar_s": None if testbed_s is None else testbed_s * compress,
        "preserved": (
            real_s is not None
            and testbed_s is not None
            and abs(testbed_s * compress / real_s - 1) <= 0.1
        ),
        "note": note,
    }


MODEL_PATIENCE_LAW = "exponential"  # analysis.backlog: give-ups at rate 1 / patience


def _patience_clock(real_s: float, j: Any, compress: float) -> dict[str, Any]:
    """The session patience: its mean mapped through the compression, and its law, which must
    be the model's (exponential) for the rehearsal to stand for the system the plan prices.

    >>> from types import SimpleNamespace as NS
    >>> c = _patience_clock(1200.0, NS(patience_s=20.0, patience_law="fixed"), 60.0)
    >>> c["preserved"], c["law"]
    (False, {'model': 'exponential', 'testbed': 'fixed', 'same': False})
    >>> _patience_clock(1200.0, NS(patience_s=20.0, patience_law="exponential"), 60.0)["preserved"]
    True
    """
    law = str(getattr(j, "patience_law", "fixed"))
    same = law == MODEL_PATIENCE_LAW
    out = _clock(
        real_s,
        j.patience_s,
        "session patience; the testbed's clients give up after their own patience (mean "
        "journeys.patience_s, law journeys.patience_law; arrivals.csv patience_s) from their "
        "intended start, the whole journey included"
        + (
            ""
            if same
            else f". Not the model's law: the model prices {MODEL_PATIENCE_LAW} patience, "
            f"the testbed's clients have a {law} one, so under a queue a whole cohort makes "
            "it or misses together and the served count turns on fractions of a second; "
            "set journeys.patience_law = \"exponential\""
        ),
        compress,
    )
    out["law"] = {"model": MODEL_PATIENCE_LAW, "testbed": law, "same": same}
    out["preserved"] = bool(out["preserved"] and same)
    return out


def _clocks(profile: Any, compress: float, duration_s: float) -> dict[str, Any]:
    """Patience, come back later, persistence and think time: real, mapped and the testbed's."""
    b, j = profile.behaviour, profile.journeys
    retry_test_s = b.retry_after_minutes * 60.0 / compress
    return {
        "patience": _patience_clock(b.patience_minutes * 60.0, j, compress),
        "retry_after": _clock(
            b.retry_after_minutes * 60.0,
            None,
            "come back later: mapped through the compression this is "
            f"{retry_test_s:.4g} test s, "
            + (
                "longer than the rehearsal itself, so no one who gives up could come back "
                "within it: the Locust applicants do not return (no orbit) and the model "
                "plays none"
                if retry_test_s >= duration_s
                else "within the rehearsal: the Locust applicants still do not return "
                "(no orbit), "
                "so the rehearsal under-states the returns the plan's model counts"
            )
            + "; within a journey a refused step retries with backoff up to "
            "journeys.backoff_max_s",
            compress,
        ),
        "persistence": _clock(
            None if b.persistence_days is None else b.persistence_days * 86400.0,
            None,
            "no return within the rehearsal, so nothing to persist: giving up on the "
            "testbed is lost",
            compress,
        ),
        "think_time": {
            "testbed_s": list(j.think_time_s),
            "testbed_as_calendar_s": [t * compress for t in j.think_time_s],
            "note": "the journey's own pauses; the real service's pages take no calendar "
            "time in "
            "the model",
        },
    }
