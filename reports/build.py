"""Assemble the report: load the run directory, derive figures, draw, render, write atomically.

    >>> from pathlib import Path
    >>> result = build_report(Path("tests/fixtures/runs/full"), lang="id")  # doctest: +SKIP
    >>> result.paths  # doctest: +SKIP
    [PosixPath('tests/fixtures/runs/full/report.html')]
    >>> print(result.summary_markdown)  # doctest: +SKIP
    **Kesimpulan:** ...

This is the function `surgecast report` and `surgecast demo` call.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2

from floor.atomic import write_text
from floor.version import __version__
from reports import charts as charts_mod
from reports.failures import failure_rows
from reports.figures import key_figures
from reports.i18n import Translator
from reports.load import RunData, load_run
from reports.screen import KeyFigures
from reports.tables import (
    error_rows,
    latency_rows,
    plan_check_lines,
    plan_vs_baseline_rows,
    pvb_verdict,
)
from reports.warnings import find_warnings

TEMPLATES_DIR = Path(__file__).with_name("templates")


@dataclass(frozen=True, kw_only=True)
class ReportResult:
    """What a build wrote and the short Markdown summary to print."""

    paths: list[Path] = field(default_factory=list)
    summary_markdown: str = ""
    verdict_level: str = "info"
    integrity_level: str = ""  # "bad" when reconciliation found data lost or duplicated


def _env() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
        autoescape=jinja2.select_autoescape(["html", "j2", "xml"], default=True),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def render_html(run: RunData, tr: Translator) -> tuple[str, KeyFigures]:
    """The whole report as one HTML string (and the key figures, for the summary).

    >>> from reports.load import load_run
    >>> html, k = render_html(load_run(Path("tests/fixtures/runs/probe")), Translator("en"))
    >>> html.startswith("<!DOCTYPE html>")
    True
    """
    k = key_figures(run, tr)
    charts, absent = charts_mod.draw_all(run, tr)
    kinds = run.kinds
    params = _params(run, tr)
    css = (TEMPLATES_DIR / "report.css").read_text(encoding="utf-8")
    html = (
        _env()
        .get_template("report.html.j2")
        .render(
            t=tr.t,
            tr=tr,
            lang=tr.lang,
            run=run,
            k=k,
            kinds=kinds,
            kind_names=[tr.t(f"kind_{x}") for x in ("rehearsal", "probe", "plan") if x in kinds],
            charts=charts,
            absent=absent,
            registry=charts_mod.ALL_CHARTS,
            warnings=find_warnings(run, tr),
            latency=latency_rows(run, tr),
            errors=error_rows(run, tr),
            thresholds=_thresholds(run, tr),
            failures=failure_rows(run.failures, tr),
            usl=_usl_rows(run, tr),
            what_if=_what_if(run, tr),
            params=params,
            css=css,
            version=__version__,
            plan_check=plan_check_lines(run, tr),
            pvb=plan_vs_baseline_rows(run, tr),
            pvb_verdict=pvb_verdict(run, tr),
            title=_title(run, tr),
            missing=[m for m in run.missing if m not in ("ledger.csv", "locust_stats.csv")],
        )
    )
    return html, k


def build_report(run_dir: Path, *, lang: str = "en", pdf: bool = False) -> ReportResult:
    """Build DIR/report.html (and DIR/report.pdf with `pdf=True`) from a run directory.

    Raises InputFileError (exit 2) on a malformed file, before anything is written;
    ChromiumMissing/ChromiumFailed (exit 2) after report.html is written when the
    PDF cannot be printed.

    >>> r = build_report(Path("tests/fixtures/runs/plan"))  # doctest: +SKIP
    >>> r.paths[0].name  # doctest: +SKIP
    'report.html'
    """
    tr = Translator(lang)
    run_dir = Path(run_dir)
    run = load_run(run_dir)
    html, k = render_html(run, tr)
    out = run_dir / "report.html"
    write_text(out, html)
    paths = [out]
    summary = summary_markdown(run, k, tr, out)
    if pdf:
        from reports.pdf import print_pdf

        paths.append(print_pdf(out, run_dir / "report.pdf"))
    return ReportResult(
        paths=paths,
        summary_markdown=summary,
        verdict_level=k.verdict.level,
        integrity_level=k.integrity.level if k.integrity is not None else "",
    )


def summary_markdown(run: RunData, k: KeyFigures, tr: Translator, html: Path | None = None) -> str:
    """The short Markdown summary the command prints: verdict, key figures, stages."""
    lines = [f"**{tr.t('verdict_title')}:** {k.verdict.text}", ""]
    for f in k.figures:
        lines.append(f"- {f.label}: {f.value}" + (f" ({f.note})" if f.note else ""))
    if k.need:
        lines.append(f"- {tr.t('need_title')}: {k.need}")
    if k.integrity is not None:
        lines.append(f"- {tr.t('integrity_title')}: {k.integrity.text}")
    if k.stages:
        lines += [
            "",
            "| " + " | ".join(tr.t(f"col_{c}") for c in ("stage", "from", "to", "gates", "rate"))
            + " |",
            "|---|---|---|---|---|",
        ]
        lines += [
            f"| {s['name']} | {s['from']} | {s['to']} | {s['gates']} | {s['rate']} |"
            for s in k.stages
        ]
    if html is not None:
        lines += ["", f"{tr.t('summary_written')}: {html}"]
    return "\n".join(lines)


def _title(run: RunData, tr: Translator) -> str:
    if run.profile is not None:
        return tr.t("report_title_profile", profile=run.profile.title)
    return tr.t("report_title")


def _params(run: RunData, tr: Translator) -> list[tuple[str, str]]:
    """The run's parameters as (name, value) rows: numbers exact (as a command line takes them),
    lists joined, objects as `key value` pairs; never a Python repr."""
    r = run.run or {}
    s = run.summary or {}
    src = {**s, **r}
    out = []
    if run.run_id:
        out.append(("run_id", run.run_id))
    for key in (
        "kind",
        "profile",
        "host",
        "embedded_testbed",
        "compress",
        "scale",
        "demand_multiplier",
        "seed",
        "duration_s",
        "max_rate",
        "user_cap",
        "workers",
        "steps",
        "step_duration_s",
        "wall_origin_at",
        "calendar_origin_at",
        "started_at",
        "finished_at",
    ):
        v = src.get(key)
        if v is None or (
            key == "steps" and not isinstance(v, list)
        ):  # summary.json's steps: the latency table
            continue
        out.append((key, _param_text(v, tr)))
    versions = src.get("versions") or {}
    if versions:
        out.append(("versions", ", ".join(f"{k} {v}" for k, v in versions.items())))
    if s.get("generator_cpu_percent_max") is not None:
        out.append(("generator_cpu_percent_max", tr.num(s["generator_cpu_percent_max"], 1)))
    if run.capacity and run.capacity.get("measured_at"):
        out.append(("capacity measured_at", str(run.capacity["measured_at"])))
    if run.profile is not None:
        out.append(
            (
                "profile source",
                "profile.toml" if "profile.toml" in run.present else tr.t("profile_shipped"),
            )
        )
    return out


def _param_text(v: Any, tr: Translator) -> str:
    """One parameter value in words a user can type again.

    >>> _param_text(0.034848, Translator("id")), _param_text([1, 2.5], Translator("en"))
    ('0.034848', '1, 2.5')
    >>> _param_text({"a": 1, "b": [2, 3]}, Translator("en"))
    'a 1; b 2, 3'
    """
    if isinstance(v, bool | int | float):
        return tr.exact(v)
    if isinstance(v, list | tuple):
        return ", ".join(_param_text(x, tr) for x in v)
    if isinstance(v, dict):
        return "; ".join(f"{k} {_param_text(x, tr)}" for k, x in v.items())
    return str(v)


def _thresholds(run: RunData, tr: Translator) -> list[dict[str, Any]]:
    out = []
    for t in (run.summary or {}).get("thresholds") or []:
        obs = t.get("observed")
        out.append(
            {
                "expr": t["expr"],
                "ok": t["ok"],
                "observed": tr.smart(obs) if isinstance(obs, int | float) else str(obs),
                "window": tr.seconds(t.get("window_s")) if t.get("window_s") is not None else "–",
            }
        )
    return out


def _usl_rows(run: RunData, tr: Translator) -> list[dict[str, str]]:
    out = []
    for step, f in ((run.capacity or {}).get("usl") or {}).items():
        out.append(
            {
                "step": tr.label("step", step),
                "alpha": tr.num(f["alpha"], 4),
                "beta": tr.num(f["beta"], 6),
                "gamma": tr.smart(f["gamma"]),
                "peak_load": tr.num(f.get("peak_load")),
                "peak": tr.smart(f.get("peak_throughput")),
                "limit": tr.smart(f.get("limit_throughput")),
                "r2": tr.num(f.get("r2"), 3),
            }
        )
    return out


def _what_if(run: RunData, tr: Translator) -> list[dict[str, str]]:
    rows = (run.plan or {}).get("what_if") or []
    if rows and "extension_days" in rows[0]:
        return [
            {
                "capacity": tr.smart(w.get("capacity")),
                "extension": tr.t("days_n", n=tr.num(w["extension_days"]))
                if w.get("extension_days")
                else tr.t("none"),
                "served": " / ".join(tr.num(w.get(key)) for key in ("served", "waiting", "lost")),
            }
            for w in rows
        ]
    return [
        {
            "capacity": tr.smart(w.get("capacity")),
            "extension": tr.hours(w.get("extension_hours"))
            if w.get("extension_hours")
            else tr.t("none"),
            "served": tr.pct(w.get("served_share"), 1),
        }
        for w in (run.plan or {}).get("what_if") or []
    ]
