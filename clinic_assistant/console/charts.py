"""The dashboard's charts, drawn on the server as inline SVG: no JavaScript, nothing fetched.

Each chart is an ``<svg role="img">`` named by its ``<title>`` and summed up by its ``<desc>``; the page shows the
same figures in a table next to it, for screen readers and for anyone who wants the exact numbers. Every label comes
from data (channel and intent names), so every label is escaped, its control and bidi characters shown (``_escaped``).
"""

import math
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

from markupsafe import Markup, escape

from clinic_assistant.console.display import visible

# Okabe-Ito: told apart with the common colour-vision deficiencies; the legend and the table name them anyway.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#000000", "#F0E442")
BAR_COLOUR = "#0072B2"
INK = "#222222"
GRID = "#cccccc"
LABEL_CHARS = 28  # longer topic names are shortened on the chart (the table has them whole)


@dataclass(frozen=True)
class DailyCounts:
    """Conversations per day and channel, every day of the period present (zero when quiet)."""

    days: List[date]
    channels: List[str]
    counts: Dict[Tuple[date, str], int]

    def count(self, day: date, channel: str) -> int:
        return self.counts.get((day, channel), 0)

    def total(self, day: date) -> int:
        return sum(self.count(day, channel) for channel in self.channels)

    def channel_total(self, channel: str) -> int:
        return sum(self.count(day, channel) for day in self.days)

    @property
    def grand_total(self) -> int:
        return sum(self.counts.values())


def _escaped(value: object) -> Markup:
    """A label for the SVG: escaped, and its control and bidi characters shown, as the templates' ``visible``."""
    return escape(visible(value))


def daily_counts(
    rows: Iterable[Tuple[date, str, int]], first: Optional[date] = None, last: Optional[date] = None
) -> DailyCounts:
    """``rows`` of (day, channel, count) over every day from ``first`` to ``last`` (widened to the data's days)."""
    counts: Dict[Tuple[date, str], int] = {}
    for day, channel, count in rows:
        counts[(day, channel)] = counts.get((day, channel), 0) + int(count)
    data_days = [day for day, _ in counts]
    first = min([*data_days, *([first] if first else [])], default=None)
    last = max([*data_days, *([last] if last else [])], default=None)
    days = [] if first is None else [first + timedelta(n) for n in range((last - first).days + 1)]
    # The busiest channel first, so it sits at the bottom of each stack and first in the legend.
    totals: Dict[str, int] = {}
    for (_, channel), count in counts.items():
        totals[channel] = totals.get(channel, 0) + count
    channels = sorted(totals, key=lambda channel: (-totals[channel], channel))
    return DailyCounts(days, channels, counts)


def colour(index: int) -> str:
    """The colour of the ``index``-th series (the template's legend and table use the same)."""
    return PALETTE[index % len(PALETTE)]


def nice_scale(largest: int, ticks: int = 5) -> Tuple[int, int]:
    """(top, step) of an axis from 0 showing ``largest``: a step of 1, 2 or 5 times a power of ten."""
    if largest <= 0:
        return 1, 1
    rough = largest / ticks
    power = 10 ** math.floor(math.log10(rough)) if rough >= 1 else 1
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= rough)
    return step * math.ceil(largest / step), step


def _num(value: float) -> str:
    return f"{value:.1f}".rstrip("0").rstrip(".")


def _day(day: date) -> str:
    return f"{day:%b} {day.day}"


def _svg(chart_id: str, width: int, height: int, title: str, desc: str, body: List[str]) -> Markup:
    head = (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" viewBox="0 0 {width} {height}" '
        f'aria-labelledby="{_escaped(chart_id)}-title {_escaped(chart_id)}-desc" '
        f'font-family="system-ui, sans-serif" font-size="12" fill="{INK}">'
        f'<title id="{_escaped(chart_id)}-title">{_escaped(title)}</title>'
        f'<desc id="{_escaped(chart_id)}-desc">{_escaped(desc)}</desc>'
    )
    return Markup(head + "".join(body) + "</svg>")


def _empty(chart_id: str, title: str, message: str) -> Markup:
    text = f'<text x="360" y="40" text-anchor="middle">{_escaped(message)}</text>'
    return _svg(chart_id, 720, 80, title, message, [text])


def daily_chart(
    data: DailyCounts, chart_id: str = "per-day", title: str = "Conversations per day by channel"
) -> Markup:
    """A stacked bar per day, one colour per channel, with a y axis, day labels and a legend."""
    if not data.days or data.grand_total == 0:
        return _empty(chart_id, title, "No conversations in this period.")
    width, left, right, top, plot_height = 720, 44, 12, 12, 200
    bottom = top + plot_height
    top_value, step = nice_scale(max(data.total(day) for day in data.days))
    slot = (width - left - right) / len(data.days)
    body = _y_axis(left, width - right, top, plot_height, top_value, step)
    for index, day in enumerate(data.days):
        x = left + index * slot + slot * 0.15
        body.extend(_stack(data, day, x, slot * 0.7, bottom, plot_height / top_value))
    body.extend(_day_labels(data.days, left, slot, bottom))
    legend_y = bottom + 36
    body.extend(_legend(data.channels, left, legend_y))
    return _svg(chart_id, width, legend_y + 12, title, _daily_summary(data), body)


def _y_axis(left: int, right: int, top: int, height: int, top_value: int, step: int) -> List[str]:
    parts = []
    for value in range(0, top_value + 1, step):
        y = _num(top + height - height * value / top_value)
        parts.append(f'<line x1="{left}" x2="{right}" y1="{y}" y2="{y}" stroke="{GRID}" stroke-width="1"/>')
        parts.append(f'<text x="{left - 6}" y="{y}" dy="4" text-anchor="end">{value}</text>')
    return parts


def _stack(data: DailyCounts, day: date, x: float, bar_width: float, bottom: int, per_unit: float) -> List[str]:
    parts, y = [], float(bottom)
    for index, channel in enumerate(data.channels):
        count = data.count(day, channel)
        if not count:
            continue
        height = count * per_unit
        y -= height
        label = f"{_day(day)}, {channel}: {count}"
        parts.append(
            f'<rect x="{_num(x)}" y="{_num(y)}" width="{_num(bar_width)}" height="{_num(height)}" '
            f'fill="{colour(index)}"><title>{_escaped(label)}</title></rect>'
        )
    return parts


def _day_labels(days: Sequence[date], left: int, slot: float, bottom: int) -> List[str]:
    # About eight labels whatever the period's length, and always the last day.
    every = max(1, math.ceil(len(days) / 8))
    shown = [i for i in range(len(days)) if i % every == 0 or i == len(days) - 1]
    if len(shown) > 1 and shown[-1] - shown[-2] < every:
        shown.pop(-2)  # keep the last day's label clear of the one before
    return [
        f'<text x="{_num(left + i * slot + slot / 2)}" y="{bottom + 16}" text-anchor="middle">'
        f"{_escaped(_day(days[i]))}</text>"
        for i in shown
    ]


def _legend(channels: Sequence[str], left: int, y: int) -> List[str]:
    parts, x = [], float(left)
    for index, channel in enumerate(channels):
        parts.append(f'<rect x="{_num(x)}" y="{y - 10}" width="12" height="12" fill="{colour(index)}"/>')
        parts.append(f'<text x="{_num(x + 16)}" y="{y}">{_escaped(channel)}</text>')
        x += 28 + 7 * len(channel)
    return parts


def _daily_summary(data: DailyCounts) -> str:
    per_channel = ", ".join(f"{channel} {data.channel_total(channel)}" for channel in data.channels)
    busiest = max(data.days, key=data.total)
    return (
        f"From {_day(data.days[0])} to {_day(data.days[-1])}: {data.grand_total} conversations ({per_channel}); "
        f"the busiest day was {_day(busiest)} with {data.total(busiest)}."
    )


def bar_chart(items: Sequence[Tuple[str, int]], chart_id: str = "topics", title: str = "Top topics") -> Markup:
    """One horizontal bar per (label, count), in the order given, the count written after each bar."""
    if not items:
        return _empty(chart_id, title, "No topics in this period.")
    width, label_width, row, top = 720, 200, 26, 8
    plot_width = width - label_width - 60
    largest = max(count for _, count in items) or 1
    body = []
    for index, (label, count) in enumerate(items):
        y = top + index * row
        length = max(plot_width * count / largest, 1 if count else 0)
        short = label if len(label) <= LABEL_CHARS else label[: LABEL_CHARS - 1] + "\u2026"
        body.append(
            f'<text x="{label_width - 8}" y="{y + 15}" text-anchor="end">{_escaped(short)}</text>'
            f'<rect x="{label_width}" y="{y + 3}" width="{_num(length)}" height="{row - 8}" fill="{BAR_COLOUR}">'
            f"<title>{_escaped(f'{label}: {count}')}</title></rect>"
            f'<text x="{_num(label_width + length + 6)}" y="{y + 15}">{count}</text>'
        )
    summary = "; ".join(f"{label} {count}" for label, count in items)
    return _svg(chart_id, width, top * 2 + row * len(items), title, summary, body)
