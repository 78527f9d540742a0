"""The USL's law and the numerics of its fit (`analysis.usl.fit_usl` assembles them).

`usl_throughput` is X(N) = γN / (1 + α(N−1) + βN(N−1)); the rest checks the points, runs
the bounded least squares from a few starts, and derives standard errors, 95 % intervals,
the peak and the warnings.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy.optimize import least_squares

from floor.errors import InputFileError

MIN_POINTS = 4
MIN_LOAD, MAX_LOAD = 1e-6, 1e12  # load levels the fit handles in floating point


def usl_throughput(
    load: np.ndarray | float, *, alpha: float, beta: float, gamma: float
) -> np.ndarray:
    """X(N) = γN / (1 + α(N−1) + βN(N−1)).

    >>> float(usl_throughput(1.0, alpha=0.1, beta=0.01, gamma=5.0))
    5.0
    """
    n = np.asarray(load, dtype=float)
    return gamma * n / (1 + alpha * (n - 1) + beta * n * (n - 1))


def residuals(p: np.ndarray, n: np.ndarray, x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Weighted residuals of the law with parameters p = (alpha, beta, gamma)."""
    return (usl_throughput(n, alpha=p[0], beta=p[1], gamma=p[2]) - x) * w


def fit_warnings(
    n: np.ndarray, x: np.ndarray, alpha: float, beta: float, peak: float | None
) -> list[str]:
    """What a reader of the fit must know (see `analysis.usl.fit_usl`)."""
    out = []
    order = np.argsort(n, kind="stable")
    ns, xs = n[order], x[order]
    per_unit = xs / ns
    if xs[-1] <= xs[0] * 1.01 and xs.max() <= xs[0] * 1.01:
        out.append(
            "flat or falling data: throughput does not rise with load, so there is no peak load"
        )
    if per_unit.max() > per_unit[0] * 1.05:
        out.append(
            "superlinear data: throughput per unit of load rises above the first level's, "
            "which the USL (alpha >= 0) cannot describe"
        )
    if peak is not None and peak > ns[-1]:
        out.append(
            f"peak load {peak:.1f} lies beyond the largest measured load {ns[-1]:g}: "
            "an extrapolation"
        )
    if alpha == 0.0:
        out.append("alpha at its bound 0")
    elif alpha >= 1.0 - 1e-9:
        out.append("alpha at its bound 1")
    if beta == 0.0:
        out.append("beta at its bound 0")
    return out


def checked_points(
    load: Sequence[float] | np.ndarray, throughput: Sequence[float] | np.ndarray, weights: str
) -> tuple[np.ndarray, np.ndarray]:
    """Load and throughput as arrays, refused (one line naming the fix) unless fit_usl can
    fit them."""
    n = np.asarray(load, dtype=float)
    x = np.asarray(throughput, dtype=float)
    if weights not in ("relative", "none"):
        raise InputFileError(f"USL weights {weights!r}: choose relative or none")
    if n.shape != x.shape or n.ndim != 1:
        raise InputFileError("load and throughput must be two columns of the same length")
    if len(n) < MIN_POINTS:
        raise InputFileError(
            f"USL needs at least {MIN_POINTS} points (load, throughput); got {len(n)}"
        )
    if not (np.all(np.isfinite(n)) and np.all(np.isfinite(x)) and np.all(n > 0) and np.all(x > 0)):
        raise InputFileError("USL needs finite load and throughput values > 0")
    if len(np.unique(n)) < 3:
        raise InputFileError(
            "USL needs at least 3 distinct load levels to separate alpha from beta"
        )
    if n.min() < MIN_LOAD or n.max() > MAX_LOAD:
        bad = n.min() if n.min() < MIN_LOAD else n.max()
        raise InputFileError(
            f"USL load {bad:g} is out of range; give load levels (concurrency) "
            f"between {MIN_LOAD:g} and {MAX_LOAD:g}"
        )
    return n, x


def least_squares_fit(n: np.ndarray, xs: np.ndarray, w: np.ndarray) -> Any:
    """The best of a few bounded least-squares fits of (alpha, beta, gamma) to throughput `xs`
    (in units of its largest value), weighted by `w`."""
    # Start from the per-unit throughput at the smallest load; try a few shapes.
    i0 = int(np.argmin(n))
    g0 = float(xs[i0] / n[i0]) * (1 + 0.05 * (n[i0] - 1))
    lo, hi = [0.0, 0.0, g0 * 1e-3], [1.0, np.inf, g0 * 1e3]
    best = None
    for a0, b0 in ((0.01, 1e-4), (0.1, 1e-3), (0.5, 1e-2), (0.001, 1e-6)):
        res = least_squares(
            residuals,
            [a0, b0, g0],
            bounds=(lo, hi),
            args=(n, xs, w),
            x_scale=[0.1, 1e-3, g0],
            method="trf",
            ftol=1e-14,
            xtol=1e-14,
            gtol=1e-14,
            max_nfev=5000,
        )
        if best is None or res.cost < best.cost:
            best = res
    assert best is not None
    return best


def standard_errors(jac: np.ndarray, rss: float, dof: int) -> list[float | None]:
    """Standard errors of (alpha, beta, gamma) from the fit's Jacobian; None where there is
    no degree of freedom or no finite error bar."""
    ses: list[float | None] = [None, None, None]
    if dof > 0:
        cov = np.linalg.pinv(jac.T @ jac) * (rss / dof)
        # A singular Jacobian (a flat direction) has no finite error bar: say none.
        ses = [float(math.sqrt(max(v, 0.0))) if math.isfinite(v) else None for v in np.diag(cov)]
    return ses


def peak_of(
    alpha: float, beta: float, gamma: float
) -> tuple[float | None, float | None, float | None]:
    """Peak load, throughput there (or the ceiling when there is no peak), and the ceiling."""
    peak: float | None = None
    peak_x: float | None = None
    if beta > 0 and alpha < 1:
        peak = math.sqrt((1 - alpha) / beta)
        peak_x = float(usl_throughput(peak, alpha=alpha, beta=beta, gamma=gamma))
    elif alpha > 0:
        peak_x = gamma / alpha
    limit = gamma / alpha if alpha > 0 else None
    return peak, peak_x, limit


def intervals(
    values: tuple[float, float, float], ses: list[float | None], dof: int
) -> list[tuple[float, float] | None]:
    """95 % intervals: estimate ± t(0.975, dof) × se (None without a standard error)."""
    cis: list[tuple[float, float] | None] = [None, None, None]
    if dof > 0:
        from scipy.stats import t as student_t

        q = float(student_t.ppf(0.975, dof))
        cis = [
            None if se is None else (v - q * se, v + q * se)
            for v, se in zip(values, ses, strict=True)
        ]
    return cis


def scaled_fit(
    n: np.ndarray, x: np.ndarray, weights: str
) -> tuple[float, float, float, float, list[float | None]]:
    """alpha, beta, gamma, R² and the standard errors of the three, fitted with throughput in
    units of its largest value and scaled back."""
    # Fit throughput in units of its largest value: gamma is a pure scale factor of the
    # model, so alpha and beta do not change, and any magnitude of throughput stays
    # within floating point (1e-300 or 1e300 requests/s fit like 0.1 or 100).
    scale = float(np.max(x))
    xs = x / scale
    if not np.all(np.isfinite(xs)) or not np.all(xs > 0):
        raise InputFileError(
            "USL throughput values span too many orders of magnitude to fit; "
            f"got {float(np.min(x)):g} .. {scale:g}"
        )
    w = 1.0 / xs if weights == "relative" else np.ones_like(xs)
    best = least_squares_fit(n, xs, w)
    alpha, beta, gamma = (float(v) for v in best.x)
    resid = best.fun
    rss = float(resid @ resid)
    raw = resid / w
    rss_raw = float(raw @ raw)
    tss = float(((xs - xs.mean()) ** 2).sum())
    r2 = 1.0 - rss_raw / tss if tss > 0 else (1.0 if rss_raw < 1e-12 else 0.0)
    if not all(math.isfinite(v) for v in (alpha, beta, gamma, r2)):
        raise InputFileError(
            f"the USL fit did not converge on these {len(n)} points; "
            "check the load and throughput values"
        )
    ses = standard_errors(best.jac, rss, len(n) - 3)
    if ses[2] is not None:
        ses[2] *= scale
    gamma *= scale
    return alpha, beta, gamma, r2, ses
