"""The report on every screen (issue 13 item 6): size, phones and desktops in real headless
Chromium, paper (print_pdf, pages rendered with pdftoppm), captions that match the drawing,
words not ids.

One Chromium for the module (tests/cdp_browser.py). Inputs: the fixtures (rehearsal, probe and plan
in one directory) and one real `surgecast plan` (31,679 one-minute timeline rows, as the demo's).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from floor import rundir
from reports import charts
from reports.build import build_report, render_html
from reports.i18n import Translator
from reports.load import load_run
from reports.pdf import CHROMIUM_NAMES, print_pdf
from surgecast.cli import main

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures" / "runs"
MB = 1_000_000
HAVE_CHROMIUM = any(shutil.which(n) for n in CHROMIUM_NAMES)
HAVE_POPPLER = bool(shutil.which("pdftoppm") and shutil.which("pdftotext"))
needs_chromium = pytest.mark.skipif(
    not HAVE_CHROMIUM, reason="chromium not installed (.ci/run installs it)"
)
needs_poppler = pytest.mark.skipif(
    not (HAVE_CHROMIUM and HAVE_POPPLER),
    reason="chromium and poppler-utils needed (.ci/run installs both)",
)
# The page may not scroll sideways, and nothing outside
# a table (which scrolls in its own box) may stick out.
OVERFLOW_JS = """(() => {
  const w = document.documentElement.clientWidth;
  const out = Array.from(document.querySelectorAll('body *'))
    .filter(e => !e.closest('table') && e.getBoundingClientRect().right > w + 1)
    .map(e => e.tagName + (e.id ? '#' + e.id : '') + ' '
              + Math.round(e.getBoundingClientRect().right));
  return {scroll: document.documentElement.scrollWidth, width: w, inner: window.innerWidth,
          out: out.slice(0, 5),
          verdict_top: document.getElementById('verdict').getBoundingClientRect().top};
})()"""


@pytest.fixture(scope="module")
def dirs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("screens")
    out = {}
    for lang in ("en", "id"):
        d = base / f"full-{lang}"
        shutil.copytree(FIXTURES / "full", d, ignore=shutil.ignore_patterns("report.*"))
        build_report(d, lang=lang)
        out[f"full-{lang}"] = d
    plan = base / "plan"
    env = {k: v for k, v in os.environ.items() if k != rundir.RUN_ID_ENV}
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "surgecast",
            "plan",
            "--profile",
            "casn2024",
            "--no-bands",
            "--out",
            str(plan),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        env=env,
    )
    assert r.returncode == 0, r.stderr
    build_report(plan, lang="en")
    out["plan-en"] = plan
    return out


@pytest.fixture(scope="module")
def browser():
    if not HAVE_CHROMIUM:
        pytest.skip("chromium not installed")
    from cdp_browser import Browser

    with Browser() as b:
        yield b


# ---------------------------------------------------------------- size: what the pixels can show
def test_demo_sized_report_is_under_one_megabyte(dirs: dict[str, Path]) -> None:
    d = dirs["plan-en"]
    rows = sum(1 for _ in (d / "timeline.csv").open()) - 1
    assert rows > 30_000  # the planner's one-minute timeline, as in the demo (it was 3.4 MB then)
    assert (d / "report.html").stat().st_size <= MB


def test_without_downsampling_the_demand_chart_alone_passes_a_megabyte(
    dirs: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The mutant: every point drawn, as before. The check above would go red."""
    run, tr = load_run(dirs["plan-en"]), Translator("en")
    small = len(charts.demand_chart(run, tr).svg)
    monkeypatch.setattr(charts.style, "PIXEL_COLUMNS", 10**7)  # where pixel_envelope reads it
    assert small < 250_000 < MB < len(charts.demand_chart(run, tr).svg)


def test_envelope_keeps_every_peak_and_trough() -> None:
    rng = np.random.default_rng(3)
    x = np.arange(31_679.0)
    y = np.cumsum(rng.normal(size=x.size))
    x2, y2 = charts.pixel_envelope(x, y)
    assert len(x2) <= 2 * charts.PIXEL_COLUMNS + 2 and np.all(np.diff(x2) > 0)
    cols = np.clip(
        ((x - x[0]) / (x[-1] - x[0]) * charts.PIXEL_COLUMNS).astype(int),
        0,
        charts.PIXEL_COLUMNS - 1,
    )
    cols2 = np.clip(
        ((x2 - x[0]) / (x[-1] - x[0]) * charts.PIXEL_COLUMNS).astype(int),
        0,
        charts.PIXEL_COLUMNS - 1,
    )
    for c in (
        0,
        17,
        450,
        charts.PIXEL_COLUMNS - 1,
    ):  # each pixel column spans the same values as before
        assert (
            y2[cols2 == c].max() == y[cols == c].max()
            and y2[cols2 == c].min() == y[cols == c].min()
        )


# ---------------------------------------------------------------- phones and desktops
@needs_chromium
@pytest.mark.parametrize("width", [390, 1280])
@pytest.mark.parametrize("which", ["full-en", "full-id", "plan-en"])
def test_no_horizontal_scroll(browser, dirs: dict[str, Path], which: str, width: int) -> None:
    browser.open((dirs[which] / "report.html").as_uri(), width=width)
    got = browser.eval(OVERFLOW_JS)
    assert got["inner"] == width and got["scroll"] <= got["width"] == width, got
    assert got["out"] == [], got
    assert 0 <= got["verdict_top"] < 300  # the verdict is on the first screen
    assert browser.eval("document.documentElement.lang") == which.split("-")[1]


@needs_chromium
def test_overflow_check_catches_a_table_that_does_not_fit(
    browser, dirs: dict[str, Path], tmp_path: Path
) -> None:
    """The mutant: tables laid out as on a desktop on a 390 px phone. The check above goes red."""
    html = (dirs["full-en"] / "report.html").read_text(encoding="utf-8")
    broken = tmp_path / "report.html"
    broken.write_text(
        html.replace(
            "</style>", "table { display: table !important; white-space: nowrap; }</style>", 1
        ),
        encoding="utf-8",
    )
    browser.open(broken.as_uri(), width=390)
    got = browser.eval(OVERFLOW_JS)
    assert got["scroll"] > 390 or got["inner"] > 390


# ---------------------------------------------------------------- paper
def _layout(pdf: Path, html: Path) -> list[str]:
    from pdf_layout import heading_spots, heading_texts, layout_problems, page_fill

    headings = heading_texts(html.read_text(encoding="utf-8"))
    spots = heading_spots(pdf, headings)
    assert len({s.text for s in spots}) == len(
        set(headings)
    )  # every heading was found on the paper
    return layout_problems(page_fill(pdf), spots)


@needs_poppler
@pytest.mark.parametrize("which", ["full-id", "plan-en"])
def test_pdf_has_no_orphaned_heading_and_no_half_empty_page(
    dirs: dict[str, Path], which: str
) -> None:
    html = dirs[which] / "report.html"
    pdf = print_pdf(html, dirs[which] / "report.pdf")
    assert _layout(pdf, html) == []


@needs_poppler
def test_pdf_layout_check_catches_orphans_and_empty_pages(
    dirs: dict[str, Path], tmp_path: Path
) -> None:
    """The mutant: a page break after every sub-heading.
    The check above goes red for both reasons."""
    html = (dirs["full-en"] / "report.html").read_text(encoding="utf-8")
    broken = tmp_path / "report.html"
    broken.write_text(
        html.replace(
            "</style>", "@media print { h3 { break-after: page !important; } }</style>", 1
        ),
        encoding="utf-8",
    )
    problems = _layout(print_pdf(broken, tmp_path / "report.pdf"), broken)
    assert any("orphaned" in p for p in problems) and any("half empty" in p for p in problems), (
        problems
    )


# ---------------------------------------------------------------- what the page says
def test_bahasa_indonesia_in_words(dirs: dict[str, Path]) -> None:
    html = (dirs["full-id"] / "report.html").read_text(encoding="utf-8")
    assert "(md)" not in html and "p99 (ms)" in html
    assert "Direktori hasil pengujian" in html and "Direktori run" not in html
    table = html[html.index('id="error-table"') : html.index('id="thresholds"')]
    assert "HTTP 500: server gagal" in table and ">HTTPError(" not in table
    assert (
        ">tunggu kuota<" in table and ">wait_quota<" not in table
    )  # the step in words, the id in a tooltip
    thin = html[html.index('data-warning="thin_percentiles"') :]
    thin = thin[: thin.index("</div>")]
    assert "bubuhkan (n=" in thin and "poll_stamp" not in thin and "wait_quota" not in thin


def test_errors_in_words_in_english(dirs: dict[str, Path]) -> None:
    html = (dirs["full-en"] / "report.html").read_text(encoding="utf-8")
    table = html[html.index('id="error-table"') : html.index('id="thresholds"')]
    assert "HTTP 500: the server failed" in table and ">HTTPError(" not in table


def test_usl_caption_matches_the_star(dirs: dict[str, Path], tmp_path: Path) -> None:
    html = (dirs["full-en"] / "report.html").read_text(encoding="utf-8")
    usl = html[html.index('id="chart-usl"') :]
    usl = usl[: usl.index("</figure>")]
    assert "peak: " in usl and "The star marks the predicted peak." in usl
    d = tmp_path / "nostar"  # capacity.json is edited below: no manifest, which would refuse it
    shutil.copytree(
        FIXTURES / "full", d, ignore=shutil.ignore_patterns("report.*", "manifest.json")
    )
    cap = json.loads((d / "capacity.json").read_text())
    for fit in cap["usl"].values():  # a fit with no finite peak: nothing to star
        fit.update(alpha=0.0, beta=0.0, peak_load=None, peak_throughput=None)
    (d / "capacity.json").write_text(json.dumps(cap))
    html, _k = render_html(load_run(d), Translator("en"))
    usl = html[html.index('id="chart-usl"') :]
    usl = usl[: usl.index("</figure>")]
    assert "peak: " not in usl and "The star" not in usl and "No peak is marked" in usl


def test_throughput_shows_errors_only_from_their_window(dirs: dict[str, Path]) -> None:
    h = load_run(dirs["full-en"]).latency_history
    when = np.array([t.timestamp() for t in h["calendar_window_start_at"]])
    starts, inv = np.unique(when, return_inverse=True)
    errors = np.bincount(inv, weights=h["errors"])
    k = int(np.flatnonzero(errors > 0)[0])
    assert k > 0
    xs, ys = charts.window_steps(starts, errors)
    just_before = starts[k] - 1e-6 * (starts[k] - starts[k - 1])
    assert (
        charts.step_value(xs, ys, just_before)
        == errors[k - 1]
        == 0
        < charts.step_value(xs, ys, starts[k])
    )
    # the mutant, a line from point to point, shows errors before their window began
    assert np.interp(starts[k - 1] + 0.5 * (starts[k] - starts[k - 1]), starts, errors) > 0


@pytest.mark.parametrize(
    ("lo", "hi"), [(30, 90), (5, 7), (0.2, 0.9), (120, 130), (1, 10_000), (999, 1001), (5, 6000)]
)
def test_latency_axes_get_at_least_three_ticks(lo: float, hi: float) -> None:
    ticks = charts.log_ticks(lo, hi)
    assert 3 <= len(ticks) <= 6 and ticks == sorted(
        ticks
    )  # enough to read, few enough not to crowd
    assert ticks[0] <= hi and ticks[-1] >= lo  # they are about the data, not elsewhere


def test_parameters_are_a_table_with_the_exact_scale(tmp_path: Path) -> None:
    d = tmp_path / "p"  # run.json is edited below: no manifest, which would refuse it
    shutil.copytree(
        FIXTURES / "full", d, ignore=shutil.ignore_patterns("report.*", "manifest.json")
    )
    r = json.loads((d / "run.json").read_text())
    r["scale"] = 0.034848
    (d / "run.json").write_text(json.dumps(r))
    run = load_run(d)
    for lang in ("en", "id"):
        html, _k = render_html(run, Translator(lang))
        params = html[html.index('id="parameters"') : html.index('id="inputs"')]
        assert "<th><code>scale</code></th><td>0.034848</td>" in params
        assert "{'" not in params and "'count'" not in params  # no Python dict
        assert (
            "skala 0.034848" in html if lang == "id" else "scale 0.034848" in html
        )  # the backlog chart's label


def test_report_exit_codes(tmp_path: Path) -> None:
    green = tmp_path / "green"
    shutil.copytree(
        FIXTURES / "plan", green, ignore=shutil.ignore_patterns("manifest.json")
    )  # edited below
    p = json.loads((green / "plan.json").read_text())
    p["verdict"] = {"served_by_deadline": True, "margin_hours": 6.0, "lost_applicants": 0}
    (green / "plan.json").write_text(json.dumps(p))
    assert main(["report", str(green)]) == 0
    red = tmp_path / "red"
    shutil.copytree(FIXTURES / "plan", red)
    assert main(["report", str(red)]) == 1
    lost = tmp_path / "lost"
    shutil.copytree(
        FIXTURES / "rehearsal", lost, ignore=shutil.ignore_patterns("manifest.json")
    )  # edited
    rec = json.loads((lost / "reconciliation.json").read_text())
    rec.update(ok=False, lost_quota=2)
    (lost / "reconciliation.json").write_text(json.dumps(rec))
    assert main(["report", str(lost)]) == 3
