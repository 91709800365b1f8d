"""Charts drawn on the server as SVG: one line per metric, alert episodes shaded.

No JavaScript and nothing to download: the page carries the drawing. The history gives each
series as `COLUMNS` time buckets' lowest and highest values, reduced by the store
(`meshwatch.web.history`), so six hours at 1 Hz draw as at most ~1,500 points and still show
every spike.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from html import escape

from markupsafe import Markup

from meshwatch.web.history import Episode, Series

# The drawing's size in SVG units; CSS scales it to the page's width.
WIDTH, HEIGHT = 800, 160
# Room for the axis labels, in the same units.
_LEFT, _BOTTOM, _TOP = 48, 20, 8
#: The plot's width: one time bucket of the history per column.
COLUMNS = WIDTH - _LEFT


def chart(
    series: Series,
    start: int,
    end: int,
    episodes: Sequence[Episode] = (),
    threshold: float | None = None,
) -> Markup:
    """An ``<svg class="chart" data-metric=NAME>`` of one series over [start, end] (ns).

    With `threshold`, a dashed line marks it and the y range includes it. Names and values
    are escaped: a metric's name comes from the telemetry.
    """
    span = max(end - start, 1)
    values = [v for _, v in series.points]
    low = min([*values, threshold] if threshold is not None else values, default=0.0)
    high = max([*values, threshold] if threshold is not None else values, default=1.0)
    if high == low:
        low, high = low - 1.0, high + 1.0
    plot_w, plot_h = COLUMNS, HEIGHT - _BOTTOM - _TOP

    def x(ts: int) -> float:
        return _LEFT + (ts - start) * plot_w / span

    def y(value: float) -> float:
        return _TOP + (high - value) * plot_h / (high - low)

    name = escape(series.name)
    parts = [
        f'<svg class="chart" data-metric="{name}" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'role="img" aria-label="{name}, last {span / 3.6e12:.1f} h">',
        f"<title>{name}</title>",
    ]
    for episode in episodes:
        left = x(max(episode.start, start))
        right = x(min(episode.end if episode.end is not None else end, end))
        parts.append(
            f'<rect class="episode {escape(episode.severity)}" x="{left:.1f}" y="{_TOP}" '
            f'width="{max(right - left, 1.0):.1f}" height="{plot_h}">'
            f"<title>{escape(episode.rule)} ({escape(episode.severity)})</title></rect>"
        )
    if threshold is not None:
        parts.append(
            f'<line class="threshold" x1="{_LEFT}" x2="{WIDTH}" '
            f'y1="{y(threshold):.1f}" y2="{y(threshold):.1f}"/>'
        )
    if series.points:
        path = " ".join(f"{x(ts):.1f},{y(v):.1f}" for ts, v in series.points)
        parts.append(f'<polyline class="line" points="{path}"/>')
    else:
        parts.append(f'<text class="empty" x="{WIDTH / 2}" y="{HEIGHT / 2}">no data</text>')
    parts.append(f'<text class="axis" x="2" y="{_TOP + 10}">{_label(high)}</text>')
    parts.append(f'<text class="axis" x="2" y="{HEIGHT - _BOTTOM}">{_label(low)}</text>')
    # the bottom margin: when the window starts and ends (UTC), and what is drawn
    below = HEIGHT - 3
    parts.append(f'<text class="axis" x="{_LEFT}" y="{below}">{_clock(start)}</text>')
    parts.append(
        f'<text class="name" x="{_LEFT + plot_w / 2:.0f}" y="{below}" '
        f'text-anchor="middle">{name}</text>'
    )
    parts.append(
        f'<text class="axis" x="{WIDTH}" y="{below}" text-anchor="end">{_clock(end)} UTC</text>'
    )
    parts.append("</svg>")
    return Markup("".join(parts))


def _clock(ns: int) -> str:
    """``HH:MM`` (UTC) of a time in ns, as the x-axis shows it.

    Examples
    --------
    >>> _clock(1_767_225_600_000_000_000 + 90 * 60 * 10**9)
    '01:30'
    """
    return time.strftime("%H:%M", time.gmtime(ns // 1_000_000_000))


def _label(value: float) -> str:
    """A y-axis label: three significant digits."""
    return f"{value:.3g}"
