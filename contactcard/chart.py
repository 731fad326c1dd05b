"""A bar chart as SVG markup, drawn on the server: no chart library and no script in the browser.

Pure: values in, markup out. The SVG carries a ``<title>`` and ``<desc>`` (named by ``aria-labelledby``)
so a screen reader announces what it shows, every bar has its own ``<title>`` with the exact figure, and
the axis labels are real ``<text>``. Colours come from CSS classes (``chart-bar`` and friends) with
presentation attributes as the fallback, so the markup needs no inline ``style`` (the CSP forbids it).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from xml.sax.saxutils import escape

WIDTH = 960
HEIGHT = 260
_LEFT, _RIGHT, _TOP, _BOTTOM = 44, 12, 16, 40


@dataclass(frozen=True)
class Bar:
    label: str  # short text under the bar (e.g. the day of the month)
    value: int
    detail: str  # the bar's own tooltip / accessible name, e.g. "2026-11-03: 5"


def nice_max(value: int) -> int:
    """A round top for the y axis at or above ``value`` (1, 2, 5 times a power of ten; at least 1)."""
    if value <= 1:
        return 1
    step = 1
    while True:
        for m in (1, 2, 5):
            if m * step >= value:
                return m * step
        step *= 10


def bar_chart(bars: Sequence[Bar], *, title: str, desc: str, chart_id: str = "chart",
              width: int = WIDTH, height: int = HEIGHT, label_every: int = 1) -> str:
    """The chart as one ``<svg>`` element; every text is escaped, so the result is safe to embed."""
    top = nice_max(max((b.value for b in bars), default=0))
    plot_w = width - _LEFT - _RIGHT
    plot_h = height - _TOP - _BOTTOM
    slot = plot_w / max(len(bars), 1)
    bar_w = max(slot * 0.7, 1.0)
    title_id, desc_id = f"{chart_id}-title", f"{chart_id}-desc"
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" role="img" aria-labelledby="{title_id} {desc_id}">',
        f'<title id="{title_id}">{escape(title)}</title>',
        f'<desc id="{desc_id}">{escape(desc)}</desc>',
    ]
    # gridlines and y-axis labels at 0, half and the top
    for fraction in (0.0, 0.5, 1.0):
        y = _TOP + plot_h * (1 - fraction)
        value = top * fraction
        text = f"{value:g}" if value == int(value) else f"{value:.1f}"
        out.append(f'<line class="chart-grid" x1="{_LEFT}" y1="{y:.1f}" x2="{width - _RIGHT}" y2="{y:.1f}" '
                   'stroke="#d1d5db" stroke-width="1"/>')
        out.append(f'<text class="chart-axis" x="{_LEFT - 6}" y="{y + 4:.1f}" text-anchor="end" '
                   f'font-size="12" fill="#4b5563">{escape(text)}</text>')
    for i, bar in enumerate(bars):
        h = plot_h * bar.value / top
        x = _LEFT + i * slot + (slot - bar_w) / 2
        y = _TOP + plot_h - h
        out.append(f'<rect class="chart-bar" x="{x:.1f}" y="{y:.1f}" width="{bar_w:.1f}" height="{h:.1f}" '
                   f'fill="#1d4ed8"><title>{escape(bar.detail)}</title></rect>')
        if bar.value:
            out.append(f'<text class="chart-value" x="{x + bar_w / 2:.1f}" y="{y - 3:.1f}" text-anchor="middle" '
                       f'font-size="10" fill="#111827">{bar.value}</text>')
        if label_every > 0 and (i % label_every == 0 or i == len(bars) - 1):
            out.append(f'<text class="chart-label" x="{x + bar_w / 2:.1f}" y="{height - _BOTTOM + 16}" '
                       f'text-anchor="middle" font-size="11" fill="#4b5563" aria-hidden="true">'
                       f'{escape(bar.label)}</text>')
    out.append(f'<line class="chart-baseline" x1="{_LEFT}" y1="{_TOP + plot_h}" x2="{width - _RIGHT}" '
               f'y2="{_TOP + plot_h}" stroke="#111827" stroke-width="1"/>')
    out.append("</svg>")
    return "\n".join(out)
