"""The Universal Scalability Law: fit X(N) = γN / (1 + α(N−1) + βN(N−1)) to load and throughput.

α is contention (serialisation), β coherency (crosstalk), γ the throughput of one
unit of load. The fit is bounded nonlinear least squares (scipy `least_squares`,
trust-region reflective) with α in [0, 1], β >= 0, γ > 0, started from several
points; standard errors come from the Jacobian at the optimum,
cov = s² (JᵀJ)⁻¹ with s² = RSS / (n − 3).

* peak load N* = √((1 − α) / β): where throughput is highest. None when β = 0:
  throughput then never falls, it rises towards the ceiling.
* peak throughput X(N*) (with β = 0: the ceiling).
* ceiling γ/α: the Amdahl limit as N → ∞ without coherency cost. None when α = 0
  (linear scaling has no ceiling).

    >>> import numpy as np
    >>> n = np.array([1, 2, 4, 8, 16, 32, 64])
    >>> x = usl_throughput(n, alpha=0.05, beta=0.001, gamma=100.0)
    >>> fit = fit_usl(n, x)
    >>> round(fit.alpha, 3), round(fit.beta, 4), round(fit.gamma, 1), round(fit.peak_load, 1)
    (0.05, 0.001, 100.0, 30.8)

`read_load_throughput(path)` reads a CSV with columns `load,throughput` (others ignored)
and raises InputFileError naming the line and column of any bad value.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from analysis.usl_numerics import (
    MIN_POINTS,
    checked_points,
    fit_warnings,
    intervals,
    peak_of,
    scaled_fit,
    usl_throughput,
)
from floor.errors import InputFileError

__all__ = ["UslFit", "usl_throughput", "fit_usl", "read_load_throughput", "MIN_POINTS"]


@dataclass(frozen=True, kw_only=True)
class UslFit:
    """A USL fit with standard errors (None when n = 3 leaves no degrees of freedom).

    `peak_load` is None when β = 0; `peak_throughput` is then the ceiling γ/α, or
    None too when α = 0 as well (linear scaling); `limit_throughput` is None when α = 0.
    """

    alpha: float
    beta: float
    gamma: float
    alpha_se: float | None
    beta_se: float | None
    gamma_se: float | None
    r2: float
    n: int
    peak_load: float | None
    peak_throughput: float | None
    limit_throughput: float | None
    alpha_ci: tuple[float, float] | None = None  # 95 % intervals: estimate ± t(0.975, n−3) × se
    beta_ci: tuple[float, float] | None = None
    gamma_ci: tuple[float, float] | None = None
    weights: str = "none"
    warnings: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, float | int | None]:
        """The fit as a JSON-ready dict (keys of docs/run-directory.md plus errors).

        >>> sorted(fit_usl([1, 2, 3, 4], [1.0, 1.9, 2.7, 3.4]).as_dict())[:3]
        ['alpha', 'alpha_ci', 'alpha_se']
        """
        d = asdict(self)
        d["warnings"] = list(self.warnings)
        for k in ("alpha_ci", "beta_ci", "gamma_ci"):
            d[k] = None if d[k] is None else list(d[k])
        return d

    def describe(self) -> str:
        """A few readable lines (what `surgecast usl` prints)."""

        def pm(v: float, se: float | None, fmt: str) -> str:
            return f"{v:{fmt}}" + (f" ± {se:{fmt}}" if se is not None else " (no standard error)")

        lines = [
            f"USL fit on {self.n} points, R² = {self.r2:.4f}",
            f"  alpha (contention) = {pm(self.alpha, self.alpha_se, '.4g')}",
            f"  beta  (coherency)  = {pm(self.beta, self.beta_se, '.4g')}",
            f"  gamma (per unit)   = {pm(self.gamma, self.gamma_se, '.4g')} per second",
        ]
        if self.peak_load is None and self.peak_throughput is None:
            lines.append(
                "  peak load: none (alpha = beta = 0: throughput grows linearly with load)"
            )
        elif self.peak_load is None:
            lines.append(
                "  peak load: none (beta = 0: throughput never falls, it approaches the ceiling)"
            )
        else:
            lines.append(
                f"  peak load = {self.peak_load:.1f}, "
                f"throughput there = {self.peak_throughput:.4g} per second"
            )
        if self.limit_throughput is None:
            lines.append("  ceiling gamma/alpha: none (alpha = 0)")
        else:
            lines.append(f"  ceiling gamma/alpha = {self.limit_throughput:.4g} per second")
        lines += [f"  warning: {w}" for w in self.warnings]
        return "\n".join(lines)


def fit_usl(
    load: Sequence[float] | np.ndarray,
    throughput: Sequence[float] | np.ndarray,
    *,
    weights: str = "relative",
) -> UslFit:
    """Fit the USL by bounded least squares; needs >= 4 points with load, throughput > 0.

    `weights`: "relative" (default) minimises relative residuals (model − x) / x, right for
    noise proportional to throughput, as measured throughput is; "none" is plain least
    squares (as R's `usl` package). 95 % intervals are estimate ± t(0.975, n − 3) × se.
    `warnings` names: a peak beyond the largest measured load, α or β at a bound, flat or
    falling data (then no peak load is reported), superlinear data.

    >>> fit_usl([1, 2, 3], [1, 2, 3])
    Traceback (most recent call last):
    ...
    floor.errors.InputFileError: USL needs at least 4 points (load, throughput); got 3
    """
    n, x = checked_points(load, throughput, weights)
    alpha, beta, gamma, r2, ses = scaled_fit(n, x, weights)
    # At the bound 0 the optimiser leaves round-off (1e-19); snap terms that cannot
    # matter within the measured range to exactly 0 so "no peak" / "no ceiling" is said plainly.
    n_top = float(n.max())
    if beta * n_top * n_top < 1e-10:
        beta = 0.0
    if alpha * n_top < 1e-10:
        alpha = 0.0
    peak, peak_x, limit = peak_of(alpha, beta, gamma)
    warns = fit_warnings(n, x, alpha, beta, peak)
    if warns and warns[0].startswith("flat"):
        peak = None
    cis = intervals((alpha, beta, gamma), ses, len(n) - 3)
    return UslFit(
        alpha=alpha,
        beta=beta,
        gamma=gamma,
        alpha_se=ses[0],
        beta_se=ses[1],
        gamma_se=ses[2],
        r2=r2,
        n=len(n),
        peak_load=peak,
        peak_throughput=peak_x,
        limit_throughput=limit,
        alpha_ci=cis[0],
        beta_ci=cis[1],
        gamma_ci=cis[2],
        weights=weights,
        warnings=tuple(warns),
    )


def read_load_throughput(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Read `load,throughput` columns from a CSV; errors name the line and column.

    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "u.csv"
    >>> _ = p.write_text("load,throughput\\n1,10\\n2,x\\n")
    >>> read_load_throughput(p)  # doctest: +NORMALIZE_WHITESPACE
    Traceback (most recent call last):
    ...
    floor.errors.InputFileError: ...u.csv line 3, column throughput: 'x' is not a number;
    give a positive number
    """
    p = Path(path)
    if not p.is_file():
        raise InputFileError(f"{p}: no such file; give a CSV with columns load,throughput")
    try:
        text = p.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise InputFileError(
            f"{p}: not UTF-8 text; save it as a UTF-8 CSV with columns load,throughput"
        ) from None
    try:
        return _parse_load_throughput(p, csv.reader(io.StringIO(text, newline="")))
    except csv.Error as e:
        raise InputFileError(
            f"{p}: not valid CSV ({e}); give a CSV with columns load,throughput"
        ) from None


def _parse_load_throughput(p: Path, reader: Iterator[list[str]]) -> tuple[np.ndarray, np.ndarray]:
    try:
        header = [h.strip().lower() for h in next(reader)]
    except StopIteration:
        raise InputFileError(
            f"{p}: the file is empty; give a header line load,throughput and >= {MIN_POINTS} rows"
        ) from None
    cols = {}
    for name in ("load", "throughput"):
        if name not in header:
            found = ", ".join(repr(h) for h in header) or "nothing"
            raise InputFileError(
                f"{p} line 1: no column {name!r} (found {found}); "
                "the header must name load and throughput"
            )
        cols[name] = header.index(name)
    loads: list[float] = []
    xs: list[float] = []
    for row in reader:
        lineno = reader.line_num  # type: ignore[attr-defined]
        if not row or all(not c.strip() for c in row):
            continue
        vals = []
        for name in ("load", "throughput"):
            i = cols[name]
            raw = row[i].strip() if i < len(row) else ""
            try:
                v = float(raw)
            except ValueError:
                raise InputFileError(
                    f"{p} line {lineno}, column {name}: {raw!r} is not a number; "
                    "give a positive number"
                ) from None
            if not math.isfinite(v) or v <= 0:
                raise InputFileError(
                    f"{p} line {lineno}, column {name}: {raw!r} must be a finite number > 0"
                )
            vals.append(v)
        loads.append(vals[0])
        xs.append(vals[1])
    if len(loads) < MIN_POINTS:
        raise InputFileError(
            f"{p}: {len(loads)} data rows; the USL fit needs at least {MIN_POINTS}"
        )
    return np.array(loads), np.array(xs)
