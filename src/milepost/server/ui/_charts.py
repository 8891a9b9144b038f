"""Inline SVG line charts, drawn on the server (no chart library, nothing fetched).

:func:`line_chart` draws one or more series of ``(x, y)`` points with labelled axes and
a legend. A series longer than :data:`MAX_POINTS` is thinned to the first and last point
of each bucket plus its minimum and maximum, so spikes stay visible and a page stays
small whatever the run logged.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from html import escape

from milepost.monitoring._svg import nice_ticks

__all__ = ["COLOURS", "MAX_POINTS", "Series", "line_chart", "thin"]

#: Series colours, in order (distinguishable, also in greyscale print).
COLOURS = ("#2563eb", "#dc2626", "#059669", "#d97706", "#7c3aed", "#0891b2", "#be185d", "#4b5563")
#: The most points drawn per series.
MAX_POINTS = 600


@dataclass(frozen=True)
class Series:
    """One line: a label and its points (x ascending)."""

    label: str
    points: Sequence[tuple[float, float]]


def thin(
    points: Sequence[tuple[float, float]], limit: int = MAX_POINTS
) -> list[tuple[float, float]]:
    """At most about ``limit`` points: per bucket its first, lowest, highest and last."""
    if len(points) <= limit:
        return list(points)
    size = math.ceil(len(points) / (limit / 4))
    out: list[tuple[float, float]] = []
    for start in range(0, len(points), size):
        bucket = points[start : start + size]
        keep = {0, len(bucket) - 1}
        finite = [i for i, p in enumerate(bucket) if math.isfinite(p[1])]
        if finite:
            keep.add(min(finite, key=lambda i: bucket[i][1]))
            keep.add(max(finite, key=lambda i: bucket[i][1]))
        out.extend(bucket[i] for i in sorted(keep))
    return out


def _time_label(ms: float) -> str:
    """Epoch ms as ``11-30 14:05`` (UTC)."""
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%m-%d %H:%M")


def _label(v: float) -> str:
    if v == 0:
        return "0"
    if abs(v) >= 1e5 or abs(v) < 1e-3:
        return f"{v:.2e}"
    return f"{v:.6g}"


def line_chart(
    series: Sequence[Series],
    *,
    title: str,
    x_label: str = "step",
    y_label: str = "value",
    width: int = 600,
    height: int = 260,
    x_time: bool = False,
    threshold: float | None = None,
) -> str:
    """One ``<svg class="chart">`` with a ``<path class="line">`` per series.

    Non-finite values (NaN, inf) are gaps in the line. An empty chart says so.
    ``x_time``: x values are epoch milliseconds, labelled as UTC times. ``threshold``:
    a dashed horizontal line (an alerting threshold).
    """
    left, right, top, bottom = 64, 16, 28, 44
    legend_rows = math.ceil(len(series) / 3) if len(series) > 1 else 0
    total_h = height + legend_rows * 18
    plot_w, plot_h = width - left - right, height - top - bottom
    drawn = [Series(s.label, thin(s.points)) for s in series]
    xs = [x for s in drawn for x, y in s.points if math.isfinite(x) and math.isfinite(y)]
    ys = [y for s in drawn for x, y in s.points if math.isfinite(x) and math.isfinite(y)]
    if threshold is not None and ys:
        ys.append(threshold)
    out = [
        f'<svg class="chart" xmlns="http://www.w3.org/2000/svg" width="{width}" '
        f'height="{total_h}" viewBox="0 0 {width} {total_h}" role="img" '
        f'aria-label="{escape(title)}"><title>{escape(title)}</title>',
        f'<text class="chart-title" x="{left}" y="16">{escape(title)}</text>',
    ]
    if not xs:
        out.append(
            f'<text class="chart-empty" x="{width / 2}" y="{height / 2}" '
            'text-anchor="middle">no values</text></svg>'
        )
        return "".join(out)
    x0, x1 = min(xs), max(xs)
    y0, y1 = min(ys), max(ys)
    if x1 == x0:
        x0, x1 = x0 - 1, x1 + 1
    if y1 == y0:
        pad = abs(y0) * 0.05 or 1.0
        y0, y1 = y0 - pad, y1 + pad
    else:
        pad = (y1 - y0) * 0.05
        y0, y1 = y0 - pad, y1 + pad

    def sx(x: float) -> float:
        return left + (x - x0) / (x1 - x0) * plot_w

    def sy(y: float) -> float:
        return top + plot_h - (y - y0) / (y1 - y0) * plot_h

    out.append(f'<rect class="plot" x="{left}" y="{top}" width="{plot_w}" height="{plot_h}"/>')
    box = (left, top, plot_w, plot_h)
    out.extend(_axes(sx, sy, (x0, x1, y0, y1), box, (x_label, y_label), x_time))
    if threshold is not None:
        ty = sy(threshold)
        out.append(
            f'<line class="threshold" x1="{left}" x2="{left + plot_w}" y1="{ty:.1f}" '
            f'y2="{ty:.1f}"><title>threshold {_label(threshold)}</title></line>'
        )
    x_text = _time_label if x_time else _label
    for i, s in enumerate(drawn):
        out.extend(_line(s, COLOURS[i % len(COLOURS)], sx, sy, f"at {x_label} ", x_text))
    if legend_rows:
        for i, s in enumerate(drawn):
            lx = left + (i % 3) * (plot_w / 3)
            ly = height + (i // 3) * 18 + 4
            colour = COLOURS[i % len(COLOURS)]
            out.append(
                f'<rect x="{lx:.1f}" y="{ly - 9}" width="12" height="4" fill="{colour}"/>'
                f'<text class="legend" x="{lx + 16:.1f}" y="{ly - 4}">'
                f"{escape(s.label[:40])}</text>"
            )
    out.append("</svg>")
    return "".join(out)


def _axes(
    sx: Callable[[float], float],
    sy: Callable[[float], float],
    bounds: tuple[float, float, float, float],
    box: tuple[float, float, float, float],
    labels: tuple[str, str],
    x_time: bool,
) -> list[str]:
    """Grid lines, tick labels and axis titles."""
    x0, x1, y0, y1 = bounds
    left, top, plot_w, plot_h = box
    x_label, y_label = labels
    x_text = _time_label if x_time else _label
    out = []
    for t in nice_ticks(y0, y1, 5):
        y = sy(t)
        out.append(
            f'<line class="grid" x1="{left}" x2="{left + plot_w}" y1="{y:.1f}" y2="{y:.1f}"/>'
            f'<text class="tick" x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">'
            f"{_label(t)}</text>"
        )
    for t in nice_ticks(x0, x1, 4 if x_time else 5):
        x = sx(t)
        out.append(
            f'<line class="grid" x1="{x:.1f}" x2="{x:.1f}" y1="{top}" y2="{top + plot_h}"/>'
            f'<text class="tick" x="{x:.1f}" y="{top + plot_h + 16}" text-anchor="middle">'
            f"{x_text(t)}</text>"
        )
    out.append(
        f'<text class="axis" x="{left + plot_w / 2}" y="{top + plot_h + 34}" '
        f'text-anchor="middle">{escape(x_label)}</text>'
        f'<text class="axis" transform="translate(14 {top + plot_h / 2}) rotate(-90)" '
        f'text-anchor="middle">{escape(y_label)}</text>'
    )
    return out


def _line(
    s: Series,
    colour: str,
    sx: Callable[[float], float],
    sy: Callable[[float], float],
    at: str,
    x_text: Callable[[float], str],
) -> list[str]:
    """One series' path (non-finite values are gaps), with a tooltip; a dot if alone."""
    parts: list[str] = []
    pen_up = True
    for x, y in s.points:
        if not (math.isfinite(x) and math.isfinite(y)):
            pen_up = True
            continue
        parts.append(f"{'M' if pen_up else 'L'}{sx(x):.1f},{sy(y):.1f}")
        pen_up = False
    last = next(((x, y) for x, y in reversed(s.points) if math.isfinite(y)), None)
    tip = f"{s.label}: {len(s.points)} points"
    if last is not None:
        tip += f", last {_label(last[1])} {at}{x_text(last[0])}"
    out = [
        f'<path class="line" data-series="{escape(s.label)}" d="{" ".join(parts)}" '
        f'stroke="{colour}"><title>{escape(tip)}</title></path>'
    ]
    if len(s.points) == 1 and last is not None:
        out.append(f'<circle cx="{sx(last[0]):.1f}" cy="{sy(last[1]):.1f}" r="3" fill="{colour}"/>')
    return out
