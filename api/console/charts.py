"""Bar charts drawn as SVG on the server, for the operations page: the geometry here, the markup in the template
(`templates/ops.html`, escaped like every page). No script runs in the browser; each chart has its table beside
it with the same figures, for readers who cannot see it.

A chart is a list of groups (a week, a lead body, a district), each with one value per series (a kind of case);
bars of one group stand side by side. Values are counts or rates; the scale starts at zero and ends at a round
number at or above the largest value.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

#: The colours of the series, in order: distinguishable with the common colour blindnesses (Okabe and Ito).
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000")


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    colour: str
    label: str


@dataclass(frozen=True)
class Tick:
    y: float
    text: str


@dataclass(frozen=True)
class GroupLabel:
    x: float
    text: str


@dataclass
class Chart:
    """What the template draws: the view box, the bars, the value axis and the group labels."""

    width: int
    height: int
    bars: list[Bar] = field(default_factory=list)
    ticks: list[Tick] = field(default_factory=list)
    groups: list[GroupLabel] = field(default_factory=list)
    legend: list[tuple[str, str]] = field(default_factory=list)
    plot_left: float = 0
    plot_bottom: float = 0
    plot_right: float = 0


#: The value axis has this many intervals between zero and its top.
INTERVALS = 4
#: The widest a bar is drawn (px), however few there are.
MAX_BAR = 48.0


def nice_step(value: float) -> float:
    """The smallest of 1, 2, 5 times a power of ten at or above `value`, and at least 1: the value axis of a count
    steps by whole numbers."""
    if value <= 1:
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 5, 10):
        if value <= step * power:
            return float(step * power)
    return float(10 * power)


def bar_chart(groups: Sequence[str], series: Sequence[str], values: Sequence[Sequence[float]], *,
              width: int = 640, height: int = 240, percent: bool = False) -> Chart:
    """Grouped bars: `values[g][s]` of series `s` in group `g`."""
    left, right, top, bottom = 44.0, 8.0, 10.0, 34.0
    chart = Chart(width=width, height=height, plot_left=left, plot_bottom=height - bottom, plot_right=width - right)
    chart.legend = [(name, PALETTE[i % len(PALETTE)]) for i, name in enumerate(series)]
    if not groups or not series:
        return chart
    largest = max((v for row in values for v in row), default=0)
    top_value = 100.0 if percent else INTERVALS * nice_step(largest / INTERVALS)
    plot_height = height - top - bottom
    slot = (width - left - right) / len(groups)
    bar_width = min(max(slot * 0.8 / len(series), 1.0), MAX_BAR)
    for g, name in enumerate(groups):
        start = left + g * slot + (slot - bar_width * len(series)) / 2
        for s, series_name in enumerate(series):
            value = values[g][s]
            bar_height = plot_height * value / top_value if top_value else 0
            shown = f"{value:.0f}%" if percent else f"{value:g}"
            chart.bars.append(Bar(x=round(start + s * bar_width, 1), y=round(top + plot_height - bar_height, 1),
                                  width=round(bar_width - 1, 1), height=round(bar_height, 1),
                                  colour=PALETTE[s % len(PALETTE)], label=f"{name} — {series_name}: {shown}"))
        chart.groups.append(GroupLabel(x=round(left + g * slot + slot / 2, 1), text=name))
    for i in range(INTERVALS + 1):
        value = top_value * i / INTERVALS
        chart.ticks.append(Tick(y=round(top + plot_height - plot_height * i / INTERVALS, 1),
                                text=f"{value:.0f}%" if percent else f"{value:g}"))
    return chart
