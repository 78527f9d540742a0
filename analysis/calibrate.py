"""Calibrate a profile THROUGH the model, on its in-sample points only.

The fit runs the whole fluid model (`analysis.forecast`) and compares what it *serves*
(submitted = stamped + bypassed) with the profile's [[calibration]] points whose
`role = "in-sample"`, by least squares on log(model / published). Points with
`role = "holdout"` are never fitted on: they are only predicted, after the fit, and
printed with their error so anyone can see whether the model holds up.

Fitted (casn2024): `demand.pull` (how late applicants get ready, hazard pull / time
left to the close) and `outages.capacity_factor` (the issuer's share of capacity during
the outage). With two in-sample points and two parameters the fit is exact or nearly
so; its worth is judged on the hold-outs.

Derived in-sample (printed, not fitted): the issuer capacity the failure implies. The
ministry called the outage a capacity problem and it began on 3 Sep, so the capacity is
taken as the peak-hour stamp demand the fitted demand puts on 3 Sep.

    python -m analysis.calibrate casn2024

    >>> from scenarios.profile import load_profile
    >>> fit = fit_profile(load_profile("casn2024"))
    >>> fit.max_abs_error < 0.05
    True
"""

from __future__ import annotations

import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

import numpy as np
from scipy.optimize import least_squares

from analysis.backlog import inputs_from_profile, run_fluid, stages_from_profile
from analysis.forecast import Forecast, apply_params, forecast, predict_point
from floor.errors import ProfileError
from scenarios.curve import AccountsCurve
from scenarios.profile import load_profile
from scenarios.profile_events import CalibrationPoint
from scenarios.profile_model import Profile

FITTED = ("demand.pull", "outages.capacity_factor")
BOUNDS = {"demand.pull": (0.05, 5.0), "outages.capacity_factor": (0.0, 1.0)}

__all__ = [
    "FITTED",
    "CalibrationFit",
    "fit_profile",
    "in_sample",
    "holdouts",
    "capacity_from_failure",
    "main",
]


@dataclass(frozen=True, kw_only=True)
class CalibrationFit:
    """Fitted parameters and the model's relative error at each in-sample point."""

    params: dict[str, float]
    points: tuple[CalibrationPoint, ...]
    errors: tuple[float, ...]  # model / published - 1 at each in-sample point

    @property
    def max_abs_error(self) -> float:
        """The largest relative miss over the in-sample points."""
        return max(abs(e) for e in self.errors) if self.errors else 0.0


def in_sample(profile: Profile) -> tuple[CalibrationPoint, ...]:
    """The calibration points a fit may use (role in-sample)."""
    return tuple(p for p in profile.calibration if p.role == "in-sample")


def holdouts(profile: Profile) -> tuple[CalibrationPoint, ...]:
    """The calibration points a fit must never use (role holdout)."""
    return tuple(p for p in profile.calibration if p.role == "holdout")


def _short_forecast(profile: Profile, upto_s: float, step_s: float) -> Forecast:
    """The model run only as far as the last in-sample point (the fit's inner loop)."""
    inputs = inputs_from_profile(profile, horizon_s=upto_s + step_s, step_s=step_s)
    return Forecast(
        profile=profile,
        result=run_fluid(inputs, stages_from_profile(profile)),
        close_s=profile.calendar.span_s,
    )


def model_errors(
    profile: Profile, points: Sequence[CalibrationPoint], step_s: float = 60.0
) -> tuple[float, ...]:
    """model / published - 1 at each of `points` (the model run through the last of them)."""
    cal = profile.calendar
    upto = max(cal.seconds(p.at) + (86400.0 if p.kind == "stamps_day" else 0.0) for p in points)
    f = _short_forecast(profile, upto, step_s)
    return tuple(predict_point(f, p) / p.cumulative - 1 for p in points)


def fit_profile(
    profile: Profile, names: Sequence[str] = FITTED, step_s: float = 300.0
) -> CalibrationFit:
    """Fit `names` through the model to the in-sample points (see module doc)."""
    pts = in_sample(profile)
    if len(pts) < 1:
        raise ProfileError(
            "calibration", 0, 'mark at least one [[calibration]] point role = "in-sample"'
        )
    if any(p.cumulative <= 0 for p in pts):
        raise ProfileError("calibration", "0", "in-sample points need a published count > 0")

    def residuals(x: np.ndarray) -> np.ndarray:
        p = apply_params(profile, dict(zip(names, x.tolist(), strict=True)))
        return np.log1p(np.asarray(model_errors(p, pts, step_s)))

    x0 = [_current(profile, n) for n in names]
    lo = [BOUNDS.get(n, (0.0, math.inf))[0] for n in names]
    hi = [BOUNDS.get(n, (0.0, math.inf))[1] for n in names]
    x0 = [min(max(v, a + 1e-6), b - 1e-6) for v, a, b in zip(x0, lo, hi, strict=True)]
    res = least_squares(residuals, x0, bounds=(lo, hi), diff_step=1e-3)
    params = dict(zip(names, (float(v) for v in res.x), strict=True))
    best = apply_params(profile, params)
    return CalibrationFit(params=params, points=pts, errors=model_errors(best, pts, 60.0))


def _current(profile: Profile, name: str) -> float:
    if name == "demand.pull":
        return profile.demand.pull if profile.demand else 1.0
    if name == "outages.capacity_factor":
        issuer = [o for o in profile.outages if o.resource == "issuer"]
        return issuer[0].capacity_factor if issuer else 0.0
    return 1.0


def capacity_from_failure(profile: Profile) -> float:
    """Peak-hour stamp demand (stamps/s) on the local day the first issuer outage began.

    >>> from scenarios.profile import load_profile
    >>> capacity_from_failure(load_profile("casn2024")) > 0
    True
    """
    issuer = [o for o in profile.outages if o.resource == "issuer"]
    if not issuer or profile.demand is None:
        raise ProfileError(
            "outages", None, "needs an issuer outage and a [demand] series to derive capacity"
        )
    cal = profile.calendar
    day0 = issuer[0].start.replace(hour=0, minute=0)
    edges = np.arange(cal.seconds(day0), cal.seconds(day0 + timedelta(days=1)) + 1, 3600.0)
    per_h = np.diff(AccountsCurve(profile).cumulative(edges))
    return float(per_h.max() / 3600.0 * profile.mean_stamps_per_applicant)


def main(argv: list[str] | None = None) -> int:
    """Fit a profile and print what was fitted on, the values, and the hold-out predictions."""
    args = sys.argv[1:] if argv is None else argv
    profile = load_profile(args[0] if args else "casn2024")
    fit = fit_profile(profile)
    print(f"fitted {', '.join(fit.params)} through the model on the in-sample points only:")
    for p, e in zip(fit.points, fit.errors, strict=True):
        print(
            f"  in-sample {p.at:%Y-%m-%d %H:%M} {p.label} ({p.source}): "
            f"published {p.cumulative:,.0f}, model {e:+.2%}"
        )
    for n, v in fit.params.items():
        print(f"  {n} = {v:.4g}")
    best = apply_params(profile, fit.params)
    if profile.demand is not None:
        print(
            f"derived in-sample: peak-hour stamp demand on the day the failure began = "
            f"{capacity_from_failure(best):.2f} stamps/s (profile capacity.stamps_per_second = "
            f"{best.capacity.stamps_per_second:g})"
        )
    f = forecast(best)
    print("hold-outs (never fitted on), predicted by the fitted profile:")
    for p in holdouts(profile):
        v = predict_point(f, p)
        print(
            f"  holdout   {p.at:%Y-%m-%d %H:%M} {p.label} ({p.source}): "
            f"published {p.cumulative:,.0f}, "
            f"model {v:,.0f} ({v / p.cumulative - 1:+.1%})"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
