"""Fit a profile's deadline rush and spike factors to its published calibration points.

The fit is least squares on log(curve cumulative / published cumulative) at each
[[calibration]] point, over the rush amplitude, the rush time constant and each
spike's factor, within bounds. Run it to refit a profile and print the values to
paste back::

    python -m analysis.calibrate casn2024

    >>> from scenarios.profile import load_profile
    >>> fit = fit_profile(load_profile("casn2024"))
    >>> fit.max_abs_error < 0.10
    True
"""

from __future__ import annotations

import dataclasses
import sys
from dataclasses import dataclass

import numpy as np
from scipy.optimize import least_squares

from scenarios.curve import ArrivalCurve
from scenarios.profile import Profile, Rush, load_profile
from surgecast.errors import ProfileError


@dataclass(frozen=True, kw_only=True)
class CalibrationFit:
    """Fitted rush and spike factors, and the relative error at each point."""

    amplitude: float
    tau_hours: float
    spike_factors: tuple[float, ...]
    errors: tuple[float, ...]  # curve / published - 1 at each calibration point

    @property
    def max_abs_error(self) -> float:
        """The largest relative miss over the calibration points."""
        return max(abs(e) for e in self.errors) if self.errors else 0.0


def with_params(profile: Profile, amplitude: float, tau_hours: float, spike_factors: tuple[float, ...]) -> Profile:
    """A copy of `profile` with the given rush and spike factors.

    >>> from scenarios.profile import load_profile
    >>> with_params(load_profile("casn2024"), 1.0, 10.0, (1.0,)).arrivals.rush.amplitude
    1.0
    """
    spikes = tuple(dataclasses.replace(s, factor=f) for s, f in zip(profile.arrivals.spikes, spike_factors, strict=True))
    arrivals = dataclasses.replace(profile.arrivals, rush=Rush(amplitude=amplitude, tau_hours=tau_hours), spikes=spikes)
    return dataclasses.replace(profile, arrivals=arrivals)


def calibration_errors(profile: Profile) -> tuple[float, ...]:
    """curve / published - 1 at each of the profile's calibration points."""
    curve = ArrivalCurve(profile)
    return tuple(curve.cumulative_at(p.at) / p.cumulative - 1 for p in profile.calibration)


def fit_profile(profile: Profile) -> CalibrationFit:
    """Fit rush amplitude, tau and spike factors to the calibration points (see module doc)."""
    if len(profile.calibration) < 2:
        raise ProfileError("calibration", len(profile.calibration), "give at least 2 [[calibration]] points to fit")
    n_sp = len(profile.arrivals.spikes)

    def residuals(x: np.ndarray) -> np.ndarray:
        p = with_params(profile, float(x[0]), float(x[1]), tuple(float(v) for v in x[2:]))
        return np.log1p(np.asarray(calibration_errors(p)))

    rush = profile.arrivals.rush or Rush(amplitude=1.0, tau_hours=48.0)
    x0 = [rush.amplitude, rush.tau_hours] + [s.factor for s in profile.arrivals.spikes]
    lo = [0.0, 1.0] + [0.2] * n_sp
    hi = [200.0, 24.0 * 30] + [20.0] * n_sp
    res = least_squares(residuals, x0, bounds=(lo, hi))
    x = res.x
    best = with_params(profile, float(x[0]), float(x[1]), tuple(float(v) for v in x[2:]))
    return CalibrationFit(amplitude=float(x[0]), tau_hours=float(x[1]),
                          spike_factors=tuple(float(v) for v in x[2:]), errors=calibration_errors(best))


def main(argv: list[str] | None = None) -> int:
    """Print the fitted parameters of a profile (`python -m analysis.calibrate NAME`)."""
    args = sys.argv[1:] if argv is None else argv
    profile = load_profile(args[0] if args else "casn2024")
    fit = fit_profile(profile)
    print(f"[arrivals.rush]\namplitude = {fit.amplitude:.3f}\ntau_hours = {fit.tau_hours:.2f}")
    for s, f in zip(profile.arrivals.spikes, fit.spike_factors, strict=True):
        print(f"spike {s.label!r}: factor = {f:.3f}")
    for p, e in zip(profile.calibration, fit.errors, strict=True):
        print(f"{p.at:%Y-%m-%d %H:%M} published {p.cumulative:>12,.0f}  curve/published - 1 = {e:+.1%}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
