"""Small inline SVG charts: histogram, horizontal bars, lines. No scripts, no external anything.

Each chart is a `<figure class="chart" data-chart=NAME>` holding one `<svg>`; bars and points carry a
`<title>` so hovering shows the exact figure. Colours come from CSS variables of the page.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from html import escape

WIDTH, HEIGHT = 460, 220
LEFT, RIGHT, TOP, BOTTOM = 52, 14, 12, 40
SERIES_CLASSES = ("s0", "s1", "s2", "s3")


def _fmt(value: float) -> str:
    if value == 0:
        return "0"
    magnitude = abs(value)
    if magnitude >= 10_000:
        return f"{value / 1000:.0f}k"
    if magnitude >= 1000:
        return f"{value / 1000:.1f}k"
    if magnitude >= 10 or float(value).is_integer():
        return f"{value:.0f}"
    if magnitude >= 0.01:
        return f"{value:.2f}"
    return f"{value:.1e}"


def nice_ticks(low: float, high: float, count: int = 5, *, integer: bool = False) -> list[float]:
    """Round tick values covering [low, high] (1, 2 or 5 times a power of ten apart; whole numbers when
    counting things)."""
    if high <= low:
        high = low + 1
    raw = (high - low) / max(count - 1, 1)
    power = 10 ** math.floor(math.log10(raw))
    step = min((m * power for m in (1, 2, 5, 10)), key=lambda candidate: abs(candidate - raw))
    if integer:
        step = max(step, 1)
    first = math.floor(low / step) * step
    ticks = []
    value = first
    while value <= high + step * 1e-9:
        ticks.append(round(value, 10))
        value += step
    if ticks[-1] < high:
        ticks.append(round(value, 10))
    return ticks


class _Frame:
    """Maps data coordinates to the plot area and draws its axes."""

    def __init__(self, x_ticks: list[float], y_ticks: list[float], width: int = WIDTH, height: int = HEIGHT):
        self.width, self.height = width, height
        self.x0, self.x1 = x_ticks[0], x_ticks[-1]
        self.y0, self.y1 = y_ticks[0], y_ticks[-1]
        self.x_ticks, self.y_ticks = x_ticks, y_ticks

    def x(self, value: float) -> float:
        span = (self.x1 - self.x0) or 1
        return LEFT + (value - self.x0) / span * (self.width - LEFT - RIGHT)

    def y(self, value: float) -> float:
        span = (self.y1 - self.y0) or 1
        return self.height - BOTTOM - (value - self.y0) / span * (self.height - TOP - BOTTOM)

    def axes(self, x_label: str, y_label: str) -> list[str]:
        parts = []
        for tick in self.y_ticks:
            y = self.y(tick)
            parts.append(f'<line class="grid" x1="{LEFT}" x2="{self.width - RIGHT}" y1="{y:.1f}" y2="{y:.1f}"/>'
                         f'<text class="tick" x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">{_fmt(tick)}</text>')
        for tick in self.x_ticks:
            x = self.x(tick)
            parts.append(f'<text class="tick" x="{x:.1f}" y="{self.height - BOTTOM + 16}" '
                         f'text-anchor="middle">{_fmt(tick)}</text>')
        base = self.height - BOTTOM
        parts.append(f'<line class="axis" x1="{LEFT}" x2="{self.width - RIGHT}" y1="{base}" y2="{base}"/>')
        parts.append(f'<text class="label" x="{(LEFT + self.width - RIGHT) / 2:.0f}" y="{self.height - 6}" '
                     f'text-anchor="middle">{escape(x_label)}</text>')
        parts.append(f'<text class="label" transform="translate(12 {(TOP + base) / 2:.0f}) rotate(-90)" '
                     f'text-anchor="middle">{escape(y_label)}</text>')
        return parts


def _figure(name: str, title: str, svg_body: list[str], caption: str, width: int = WIDTH,
            height: int = HEIGHT) -> str:
    label = escape(title)
    return (f'<figure class="chart" data-chart="{escape(name)}"><h3>{label}</h3>'
            f'<svg viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img" '
            f'aria-label="{label}">{"".join(svg_body)}</svg>'
            + (f"<figcaption>{caption}</figcaption>" if caption else "") + "</figure>")


def unavailable(name: str, title: str, why: str) -> str:
    """The place of a chart whose data does not exist (yet), saying why."""
    return (f'<figure class="chart unavailable" data-chart="{escape(name)}"><h3>{escape(title)}</h3>'
            f'<p class="na">{escape(why)}</p></figure>')


def histogram(name: str, title: str, values: Sequence[float], *, x_label: str, bins: int = 20,
              marker: float | None = None, marker_label: str = "", caption: str = "") -> str:
    """Counts of values in equal-width bins; an optional vertical marker (a limit, a target)."""
    if not values:
        return unavailable(name, title, "not available: no values")
    low, high = min(values), max(values)
    off_chart = marker is not None and marker > high * 1.5 and marker > low
    if marker is not None and not off_chart:
        high = max(high, marker)
    # Start at zero when the values sit near it, so bar heights are read against an honest origin.
    x_ticks = nice_ticks(0 if 0 <= low <= (high - low) * 0.25 else low, high)
    start, stop = x_ticks[0], x_ticks[-1]
    width = (stop - start) / bins or 1
    counts = [0] * bins
    for value in values:
        counts[min(int((value - start) / width), bins - 1)] += 1
    frame = _Frame(x_ticks, nice_ticks(0, max(counts), 4, integer=True))
    parts = frame.axes(x_label, "count")
    for i, count in enumerate(counts):
        if not count:
            continue
        left, right = start + i * width, start + (i + 1) * width
        x, y = frame.x(left), frame.y(count)
        bar_w = max(frame.x(right) - x - 1, 1)
        parts.append(f'<rect class="bar" x="{x:.1f}" y="{y:.1f}" width="{bar_w:.1f}" '
                     f'height="{frame.y(0) - y:.1f}"><title>{_fmt(left)}\u2013{_fmt(right)}: {count}</title></rect>')
    if off_chart:  # a limit far beyond the data would squash every bar into one; name it instead
        parts.append(f'<text class="marker-label" x="{frame.width - RIGHT}" y="{TOP + 10}" text-anchor="end">'
                     f'{escape(marker_label)} \u2192 (off the chart)</text>')
    elif marker is not None:
        x = frame.x(marker)
        parts.append(f'<line class="marker" x1="{x:.1f}" x2="{x:.1f}" y1="{TOP}" y2="{frame.y(0):.1f}"/>'
                     f'<text class="marker-label" x="{x - 4:.1f}" y="{TOP + 10}" text-anchor="end">'
                     f'{escape(marker_label)}</text>')
    return _figure(name, title, parts, caption)


def bar_chart(name: str, title: str, items: Sequence[tuple[str, float]], *, x_label: str,
              caption: str = "", empty: str = "not available: nothing to show") -> str:
    """Horizontal bars, one per labelled value, in the order given."""
    if not items:
        return unavailable(name, title, empty)
    row, label_w = 22, 170
    height = TOP + BOTTOM + row * len(items)
    ticks = nice_ticks(0, max(v for _, v in items) or 1, 5)
    span = ticks[-1] or 1
    plot_w = WIDTH - label_w - RIGHT
    parts = []
    for tick in ticks:
        x = label_w + tick / span * plot_w
        parts.append(f'<line class="grid" x1="{x:.1f}" x2="{x:.1f}" y1="{TOP}" y2="{height - BOTTOM}"/>'
                     f'<text class="tick" x="{x:.1f}" y="{height - BOTTOM + 16}" text-anchor="middle">'
                     f'{_fmt(tick)}</text>')
    for i, (label, value) in enumerate(items):
        y = TOP + i * row
        w = max(value / span * plot_w, 1 if value else 0)
        parts.append(f'<text class="tick" x="{label_w - 6}" y="{y + row * 0.65:.1f}" text-anchor="end">'
                     f'{escape(label)}</text>'
                     f'<rect class="bar" x="{label_w}" y="{y + 3}" width="{w:.1f}" height="{row - 6}">'
                     f'<title>{escape(label)}: {_fmt(value)}</title></rect>')
    parts.append(f'<text class="label" x="{label_w + plot_w / 2:.0f}" y="{height - 6}" text-anchor="middle">'
                 f'{escape(x_label)}</text>')
    return _figure(name, title, parts, caption, height=height)


def line_chart(name: str, title: str, series: dict[str, Sequence[tuple[float, float]]], *, x_label: str,
               y_label: str, caption: str = "") -> str:
    """One polyline per named series, with a legend; series without points are left out."""
    drawn = {label: sorted(points) for label, points in series.items() if points}
    if not drawn:
        return unavailable(name, title, "not available: no values")
    xs = [x for points in drawn.values() for x, _ in points]
    ys = [y for points in drawn.values() for _, y in points]
    frame = _Frame(nice_ticks(min(xs), max(xs)), nice_ticks(min(0.0, min(ys)), max(ys), 5))
    parts = frame.axes(x_label, y_label)
    for i, (label, points) in enumerate(drawn.items()):
        css = SERIES_CLASSES[i % len(SERIES_CLASSES)]
        path = " ".join(f"{frame.x(x):.1f},{frame.y(y):.1f}" for x, y in points)
        parts.append(f'<polyline class="line {css}" points="{path}"><title>{escape(label)}</title></polyline>')
        if len(points) <= 60:  # dots only where they stay readable
            parts += [f'<circle class="dot {css}" cx="{frame.x(x):.1f}" cy="{frame.y(y):.1f}" r="2.5">'
                      f'<title>{escape(label)} at {_fmt(x)}: {y:.4g}</title></circle>' for x, y in points]
        lx = LEFT + 10 + i * 130
        parts.append(f'<rect class="legend {css}" x="{lx}" y="{TOP}" width="12" height="4"/>'
                     f'<text class="tick" x="{lx + 16}" y="{TOP + 6}">{escape(label)}</text>')
    return _figure(name, title, parts, caption)
