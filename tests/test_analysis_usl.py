"""USL fit: recovers known parameters, says when there is no peak or ceiling, clear errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

from analysis.usl import fit_usl, read_load_throughput, usl_throughput
from floor.errors import InputFileError
from surgecast.cli import main

N = np.array([1, 2, 4, 8, 16, 32, 64, 128], dtype=float)


def test_recovers_parameters_within_their_standard_errors() -> None:
    rng = np.random.default_rng(11)
    truth = {"alpha": 0.04, "beta": 0.0005, "gamma": 50.0}
    x = usl_throughput(N, **truth) * (1 + 0.01 * rng.standard_normal(len(N)))
    fit = fit_usl(N, x)
    for k, v in truth.items():
        se = getattr(fit, f"{k}_se")
        assert se is not None and abs(getattr(fit, k) - v) < 4 * se + 1e-12, k
    assert fit.r2 > 0.99
    assert fit.peak_load == pytest.approx(np.sqrt((1 - fit.alpha) / fit.beta))
    assert fit.peak_throughput == pytest.approx(
        float(usl_throughput(fit.peak_load, alpha=fit.alpha, beta=fit.beta, gamma=fit.gamma))
    )
    assert fit.limit_throughput == pytest.approx(fit.gamma / fit.alpha)


def test_no_coherency_means_no_peak_but_a_ceiling() -> None:
    fit = fit_usl(N, usl_throughput(N, alpha=0.1, beta=0.0, gamma=10.0))
    assert fit.beta == 0.0 and fit.peak_load is None
    assert fit.limit_throughput == pytest.approx(100.0, rel=1e-6)
    assert "never falls" in fit.describe()


def test_linear_scaling_has_neither() -> None:
    fit = fit_usl(N, 3.0 * N)
    assert fit.alpha == 0.0 and fit.beta == 0.0
    assert fit.peak_load is None and fit.peak_throughput is None and fit.limit_throughput is None


def test_bounds_hold_for_superlinear_data() -> None:
    fit = fit_usl([1, 2, 4, 8], [1.0, 2.5, 6.0, 14.0])  # superlinear: alpha would go negative
    assert fit.alpha >= 0 and fit.beta >= 0 and fit.gamma > 0


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        (
            "load,throughput\n1,10\n2,19\n3,x\n4,30\n",
            "line 4, column throughput: 'x' is not a number",
        ),
        (
            "load,throughput\n1,10\n-2,19\n3,25\n4,30\n",
            "line 3, column load: '-2' must be a finite number > 0",
        ),
        ("load,throughput\n1,10\n2,19\n3,0\n4,30\n", "line 4, column throughput: '0'"),
        ("load,throughput\n1,10\n2,19\n3,25\n", "3 data rows; the USL fit needs at least 4"),
        ("concurrency,x\n1,2\n", "no column 'load'"),
        ("", "the file is empty"),
    ],
)
def test_csv_errors_name_line_and_column(tmp_path, text: str, needle: str) -> None:
    p = tmp_path / "u.csv"
    p.write_text(text)
    with pytest.raises(InputFileError, match=None) as e:
        read_load_throughput(p)
    assert needle in str(e.value)


def test_cli_json_and_text(tmp_path, capsys) -> None:
    p = tmp_path / "u.csv"
    x = usl_throughput(N, alpha=0.05, beta=0.001, gamma=100.0)
    p.write_text(
        "load,throughput\n" + "".join(f"{n:g},{v:.6f}\n" for n, v in zip(N, x, strict=True))
    )
    assert main(["usl", str(p), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert {
        "alpha",
        "beta",
        "gamma",
        "peak_load",
        "peak_throughput",
        "limit_throughput",
        "r2",
    } <= set(out)
    assert out["alpha"] == pytest.approx(0.05, rel=1e-4)
    assert main(["usl", str(p)]) == 0
    assert "peak load = 30.8" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["usl"], "the following arguments are required: FILE.csv"),
        (["usl", "/nonexistent/u.csv"], "no such file"),
        (["usl", "x.csv", "--bogus"], "unrecognized arguments: --bogus"),
    ],
)
def test_cli_bad_inputs_one_line_exit_2(argv, needle, capsys) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert needle in err and err.count("\n") == 1 and "Traceback" not in err


# ---- intervals and warnings (issue 9) ----------------------------------------------------
def _coverage(weights: str, trials: int = 200, noise: float = 0.05) -> np.ndarray:
    n = np.array([1, 2, 4, 8, 16, 24, 32, 48, 64.0])
    truth = (0.05, 0.001, 100.0)
    rng = np.random.default_rng(7)
    hits = np.zeros(3)
    for _ in range(trials):
        x = usl_throughput(n, alpha=truth[0], beta=truth[1], gamma=truth[2]) * (
            1 + noise * rng.standard_normal(len(n))
        )
        f = fit_usl(n, x, weights=weights)
        for i, (v, ci) in enumerate(zip(truth, (f.alpha_ci, f.beta_ci, f.gamma_ci), strict=True)):
            hits[i] += ci is not None and ci[0] <= v <= ci[1]
    return hits / trials


def test_t_intervals_cover_under_proportional_noise() -> None:
    cov = _coverage("relative")
    assert (cov >= 0.90).all(), cov


def test_intervals_use_t_with_n_minus_3() -> None:
    from scipy.stats import t

    n = np.array([1, 2, 4, 8, 16.0])
    x = usl_throughput(n, alpha=0.05, beta=0.001, gamma=100.0) * np.array(
        [1.01, 0.99, 1.02, 0.98, 1.0]
    )
    f = fit_usl(n, x)
    q = t.ppf(0.975, 2)
    assert f.alpha_ci == pytest.approx((f.alpha - q * f.alpha_se, f.alpha + q * f.alpha_se))
    # the mutated interval (normal quantile) is narrower: the check tells them apart
    assert (f.alpha_ci[1] - f.alpha_ci[0]) / (2 * 1.96 * f.alpha_se) > 2


@pytest.mark.parametrize(
    "x, needle",
    [
        ([10, 10, 10, 10, 10], "flat or falling"),
        ([10, 9, 8, 7, 6], "flat or falling"),
        ([1, 2.5, 6, 14, 30], "superlinear"),
        (None, "beyond the largest measured load"),
    ],
)
def test_usl_warnings(x, needle) -> None:
    n = np.array([1, 2, 4, 8, 16.0])
    if x is None:  # a curve still rising at 16 whose fitted peak is far beyond it
        x = usl_throughput(n, alpha=0.02, beta=0.0001, gamma=10.0)
    f = fit_usl(n, np.asarray(x, dtype=float))
    assert any(needle in w for w in f.warnings), f.warnings
    if needle.startswith("flat"):
        assert f.peak_load is None


def test_clean_data_has_no_warnings() -> None:
    n = np.array([1, 2, 4, 8, 16, 32, 64.0])
    f = fit_usl(n, usl_throughput(n, alpha=0.05, beta=0.001, gamma=100.0))
    assert f.warnings == ()


def test_cli_json_has_warnings(tmp_path, capsys) -> None:
    p = tmp_path / "flat.csv"
    p.write_text("load,throughput\n1,10\n2,10\n4,10\n8,10\n")
    assert main(["usl", str(p), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert isinstance(out["warnings"], list) and any("flat" in w for w in out["warnings"])
