"""Charts drawn on the server as inline SVG: no script, no chart library, nothing fetched (the page CSP stays strict).

Each chart is an ``<svg role="img">`` with a ``<title>`` and ``<desc>`` (named by ``aria-labelledby``),
one element per value carrying ``data-day``, ``data-series`` and ``data-value`` (the raw number), and the
same numbers as rows for the table the page shows beside it.  Colours come from classes styled in
``portal.css`` (``s0`` … ``s5``), never from inline styles.  Every text that reaches the SVG is escaped.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date
from typing import Callable, Sequence

from markupsafe import Markup, escape

from preservation.access.web.i18n import gettext as _

WIDTH, HEIGHT = 640, 190  # wide charts; small multiples (one per node) are SMALL wide
SMALL = 420
LEFT, RIGHT, TOP, BOTTOM = 70, 12, 20, 28
PLOT_H = HEIGHT - TOP - BOTTOM
OFF_SCALE = 4  # a limit more than this many times the largest value is named, not drawn (the bars would vanish)

Number = int | float | None


@dataclass(frozen=True)
class Series:
    name: str
    values: Sequence[Number]


@dataclass
class Chart:
    id: str
    title: str
    description: str
    svg: Markup
    headers: list[str]
    rows: list[tuple[str, list[tuple[Number, str]]]] = field(default_factory=list)  # day, [(raw, shown)]


def _attr(value: object) -> str:
    return str(escape(str(value)))


def _num(value: float) -> str:
    return f"{value:.1f}".rstrip("0").rstrip(".")


def nice_ceiling(value: float) -> float:
    """The smallest 1, 2 or 5 times a power of ten that is at least ``value`` (an axis top that reads well)."""
    if value <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 5, 10):
        if step * power >= value:
            return float(step * power)
    return float(10 * power)


def _frame(chart_id: str, title: str, description: str, y_max: float, fmt: Callable[[Number], str],
           days: Sequence[date], width: int) -> list[str]:
    cid = _attr(chart_id)
    plot_w = width - LEFT - RIGHT
    out = [f'<svg class="chart" id="{cid}-svg" role="img" aria-labelledby="{cid}-title {cid}-desc" '
           f'viewBox="0 0 {width} {HEIGHT}" width="{width}" height="{HEIGHT}" xmlns="http://www.w3.org/2000/svg" '
           f'data-y-max="{_attr(y_max)}">',
           f'<title id="{cid}-title">{escape(title)}</title>', f'<desc id="{cid}-desc">{escape(description)}</desc>']
    for share in (0.0, 0.5, 1.0):
        y = TOP + PLOT_H * (1 - share)
        out.append(f'<line class="grid" x1="{LEFT}" x2="{width - RIGHT}" y1="{_num(y)}" y2="{_num(y)}"/>')
        out.append(f'<text class="axis" x="{LEFT - 6}" y="{_num(y + 4)}" text-anchor="end">'
                   f'{escape(fmt(y_max * share))}</text>')
    if days:
        picks = sorted({0, len(days) // 2, len(days) - 1})
        band = plot_w / len(days)
        for i in picks:
            x = LEFT + band * (i + 0.5)
            anchor = "start" if i == 0 and len(days) > 1 else "end" if i == len(days) - 1 else "middle"
            out.append(f'<text class="axis" x="{_num(x)}" y="{HEIGHT - 8}" text-anchor="{anchor}">'
                       f'{escape(days[i].isoformat())}</text>')
    return out


def _y(value: float, y_max: float) -> float:
    return TOP + PLOT_H * (1 - (value / y_max if y_max else 0))


def _rows(days: Sequence[date], series: Sequence[Series], fmt: Callable[[Number], str]):
    return [(d.isoformat(), [(s.values[i], fmt(s.values[i])) for s in series]) for i, d in enumerate(days)]


def bar_chart(chart_id: str, title: str, description: str, days: Sequence[date], series: Sequence[Series],
              fmt: Callable[[Number], str], *, limit: int | None = None, limit_name: str = "",
              width: int = WIDTH) -> Chart:
    """Stacked bars, one stack per day; ``limit`` draws a dashed line (a budget) across the plot.

    A limit more than :data:`OFF_SCALE` times the tallest stack is not drawn (it would flatten every bar):
    the legend names it as above the scale instead, and the ``limit`` element carries it all the same.
    """
    totals = [sum(s.values[i] or 0 for s in series) for i in range(len(days))]
    tallest = max([*totals, 0])
    off_scale = limit is not None and tallest > 0 and limit > OFF_SCALE * tallest
    y_max = nice_ceiling(max(tallest, 0 if off_scale or limit is None else limit, 1))
    out = _frame(chart_id, title, description, y_max, fmt, days, width)
    band = (width - LEFT - RIGHT) / max(len(days), 1)
    bar_w = max(band * 0.7, 1.0)
    for i, day in enumerate(days):
        base = 0.0
        x = LEFT + band * i + (band - bar_w) / 2
        for k, s in enumerate(series):
            value = s.values[i]
            if not value:
                continue
            y_top, y_bottom = _y(base + value, y_max), _y(base, y_max)
            out.append(f'<rect class="bar s{k % 6}" x="{_num(x)}" y="{_num(y_top)}" width="{_num(bar_w)}" '
                       f'height="{_num(y_bottom - y_top)}" data-day="{day.isoformat()}" '
                       f'data-series="{_attr(s.name)}" data-value="{_attr(value)}">'
                       f'<title>{escape(day.isoformat())}, {escape(s.name)}: {escape(fmt(value))}</title></rect>')
            base += value
    legend_limit = None
    if limit is not None:
        y = TOP if off_scale else _y(limit, y_max)
        shown = "" if off_scale else f' x1="{LEFT}" x2="{width - RIGHT}" y1="{_num(y)}" y2="{_num(y)}"'
        out.append(f'<line class="limit"{shown} data-value="{_attr(limit)}" data-off-scale="{str(off_scale).lower()}">'
                   f'<title>{escape(limit_name)}: {escape(fmt(limit))}</title></line>')
        legend_limit = f"{limit_name} {fmt(limit)}"
        if off_scale:
            legend_limit = _("%(limit)s (above the scale)", limit=legend_limit)
    out.append(_legend(series, legend_limit))
    out.append("</svg>")
    headers = [s.name for s in series]
    return Chart(chart_id, title, description, Markup("".join(out)), headers, _rows(days, series, fmt))


def line_chart(chart_id: str, title: str, description: str, days: Sequence[date], series: Sequence[Series],
               fmt: Callable[[Number], str], *, y_max: float | None = None, width: int = WIDTH) -> Chart:
    """One line per series; a day without a value (None) breaks the line and has no point."""
    values = [v for s in series for v in s.values if v is not None]
    top = float(y_max if y_max is not None else nice_ceiling(max([*values, 1])))
    out = _frame(chart_id, title, description, top, fmt, days, width)
    band = (width - LEFT - RIGHT) / max(len(days), 1)
    for k, s in enumerate(series):
        runs: list[list[str]] = [[]]
        for i, value in enumerate(s.values):
            if value is None:
                runs.append([])
                continue
            runs[-1].append(f"{_num(LEFT + band * (i + 0.5))},{_num(_y(value, top))}")
        for run in runs:
            if len(run) > 1:
                out.append(f'<polyline class="line s{k % 6}" points="{" ".join(run)}"/>')
        for i, (day, value) in enumerate(zip(days, s.values)):
            if value is None:
                continue
            out.append(f'<circle class="point s{k % 6}" cx="{_num(LEFT + band * (i + 0.5))}" '
                       f'cy="{_num(_y(value, top))}" r="3" data-day="{day.isoformat()}" '
                       f'data-series="{_attr(s.name)}" data-value="{_attr(value)}">'
                       f'<title>{escape(day.isoformat())}, {escape(s.name)}: {escape(fmt(value))}</title></circle>')
    out.append(_legend(series, None))
    out.append("</svg>")
    return Chart(chart_id, title, description, Markup("".join(out)), [s.name for s in series],
                 _rows(days, series, fmt))


def _legend(series: Sequence[Series], limit_name: str | None) -> str:
    items = [(f"key s{k % 6}", s.name) for k, s in enumerate(series)]
    if limit_name:
        items.append(("key limit-key", limit_name))
    out, x = [], LEFT
    for cls, name in items:
        out.append(f'<rect class="{cls}" x="{x}" y="1" width="10" height="8"/>'
                   f'<text class="legend" x="{x + 14}" y="9">{escape(name)}</text>')
        x += 24 + 6 * min(len(name), 60)
    return "".join(out)
