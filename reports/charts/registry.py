"""The chart registry: every chart of the report, in page order, with the files it reads.

A family module registers each of its charts with `@register(...)`; `reports/build.py` draws
them all and `report.html.j2` iterates the registry, so adding a chart touches its family module
and the two translation files (its `chart_NAME_title`, `chart_NAME_heading`, `caption_NAME`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from reports.charts.style import Chart
    from reports.i18n import Translator
    from reports.load import RunData

    Draw = Callable[[RunData, Translator], Chart | None]

__all__ = ["ChartSpec", "CHARTS", "register", "draw_all"]

SECTIONS = ("charts", "stages", "rooms")
"""Where a chart sits on the page: the charts section, after the stage table, after the
waiting-room table (the last two say in the charts section when they are absent)."""


@dataclass(frozen=True, kw_only=True)
class ChartSpec:
    """One chart: its name (`chart-NAME` on the page), its drawing function, the files it
    reads (any one is enough), its section and its caption's translation key."""

    name: str
    draw: Draw
    reads: tuple[str, ...]
    section: str = "charts"
    say_absent: bool = True  # when it cannot be drawn, say which files are missing

    @property
    def caption(self) -> str:
        return f"caption_{self.name}"


CHARTS: list[ChartSpec] = []
"""Every chart, in the order its family module registered it (the page order)."""


def register(
    name: str, *, reads: tuple[str, ...], section: str = "charts", say_absent: bool = True
) -> Callable[[Draw], Draw]:
    """Register the decorated drawing function as chart `name`.

    >>> from reports.charts import CHARTS
    >>> [c.name for c in CHARTS if c.section == "charts"][:2]
    ['demand', 'backlog']
    """
    if section not in SECTIONS:
        raise ValueError(f"section {section!r}: choose one of {', '.join(SECTIONS)}")

    def add(draw: Draw) -> Draw:
        if any(c.name == name for c in CHARTS):
            raise ValueError(f"chart {name!r} is registered twice")
        CHARTS.append(
            ChartSpec(name=name, draw=draw, reads=reads, section=section, say_absent=say_absent)
        )
        return draw

    return add


def draw_all(run: RunData, tr: Translator) -> tuple[dict[str, Chart], dict[str, str]]:
    """Every registered chart drawn for `run`: {name: Chart}, and {name: why it is absent}."""
    charts, absent = {}, {}
    for spec in CHARTS:
        c = spec.draw(run, tr)
        if c is not None:
            charts[spec.name] = c
        else:
            absent[spec.name] = tr.t("absent_chart", files=" / ".join(spec.reads))
    return charts, absent
