"""The report's charts: matplotlib Figures (no pyplot) rendered to inline SVG.

`style` holds what every chart shares, `registry` the list of charts in page order, and each
family module (`demand`, `latency`, `reopening`) draws and registers its charts. A drawing function
takes the loaded run (`reports.load.RunData`) and a `Translator` and returns a `Chart`, or None
when the data it needs are absent (the report then says which file is missing)::

    >>> from pathlib import Path
    >>> from reports.load import load_run
    >>> from reports.i18n import Translator
    >>> c = usl_chart(load_run(Path("tests/fixtures/runs/probe")), Translator("en"))
    >>> c.svg.startswith("<svg")
    True
"""

from __future__ import annotations

from reports.charts import demand, latency, reopening  # noqa: F401  (registration order = page order)
from reports.charts.demand import arrivals_chart, backlog_chart, demand_chart
from reports.charts.latency import (
    latency_chart,
    log_ticks,
    step_value,
    throughput_chart,
    usl_chart,
    window_steps,
)
from reports.charts.registry import CHARTS, ChartSpec, draw_all
from reports.charts.reopening import gates_chart, reopening_chart, reopening_window
from reports.charts.style import COLOURS, PIXEL_COLUMNS, Chart, pixel_envelope

ALL_CHARTS: tuple[ChartSpec, ...] = tuple(CHARTS)
"""Every chart in page order (the registry once every family has registered)."""

__all__ = [
    "ALL_CHARTS",
    "CHARTS",
    "COLOURS",
    "PIXEL_COLUMNS",
    "Chart",
    "ChartSpec",
    "arrivals_chart",
    "backlog_chart",
    "demand_chart",
    "draw_all",
    "gates_chart",
    "latency_chart",
    "log_ticks",
    "pixel_envelope",
    "reopening_chart",
    "reopening_window",
    "step_value",
    "throughput_chart",
    "usl_chart",
    "window_steps",
]
