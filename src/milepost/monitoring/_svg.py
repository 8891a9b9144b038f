"""Small inline SVG charts for the monitoring report, drawn from summaries.

Every chart is a string of SVG built here (no matplotlib, no JavaScript, no external
reference), sized by its bins or points and never by the rows behind them. All text
goes through :func:`html.escape`, so a feature named ``<script>`` stays text.

- :func:`density_svg`: reference vs current as two step areas over shared bins (numbers);
- :func:`category_svg`: paired horizontal bars per category (new categories marked);
- :func:`lines_svg`: one or more series over time, with an optional dashed threshold.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from datetime import UTC, datetime
from html import escape
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = [
    "CURRENT",
    "REFERENCE",
    "Series",
    "category_svg",
    "density_svg",
    "fmt",
    "lines_svg",
    "nice_ticks",
]

REFERENCE = "#4c78a8"
CURRENT = "#f58518"
THRESHOLD = "#d62728"
PALETTE = ("#4c78a8", "#f58518", "#54a24b", "#b279a2", "#e45756", "#72b7b2", "#9d755d")

WIDTH = 420
HEIGHT = 200
# margins: left (y tick labels), right, top (legend), bottom (x tick labels)
ML, MR, MT, MB = 52, 12, 24, 30


def fmt(value: float | None) -> str:
    """A number for an axis or a table: 4 significant digits, no float noise (anything
    else as text, "-" for nothing)."""
    if value is None:
        return "-"
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    if math.isnan(value):
        return "-"
    if value == 0:
        return "0"
    return f"{value:.4g}"


def _open(label: str, *, height: int = HEIGHT, css: str = "chart", feature: str = "") -> str:
    data = f' data-feature="{escape(feature)}"' if feature else ""
    return (
        f'<svg class="{css}" width="{WIDTH}" '
        f'height="{height}" viewBox="0 0 {WIDTH} {height}" role="img" '
        f'aria-label="{escape(label)}"{data}><title>{escape(label)}</title>'
    )


def _text(x: float, y: float, text: str, *, anchor: str = "middle", cls: str = "t") -> str:
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" class="{cls}">{escape(text)}</text>'
    )


def _legend(items: Sequence[tuple[str, str, bool]], y: float = 14) -> str:
    """Swatches left to right along the top: (label, colour, dashed)."""
    out, x = [], float(ML)
    for label, colour, dashed in items:
        dash = ' stroke-dasharray="5 3"' if dashed else ""
        out.append(
            f'<line x1="{x:.1f}" y1="{y - 4}" x2="{x + 16:.1f}" y2="{y - 4}" '
            f'stroke="{colour}" stroke-width="3"{dash}/>'
        )
        out.append(_text(x + 20, y, label, anchor="start"))
        x += 28 + 6.5 * len(label)
    return "".join(out)


def nice_ticks(lo: float, hi: float, n: int = 4) -> list[float]:
    """About ``n`` round tick values covering [lo, hi]."""
    if not (math.isfinite(lo) and math.isfinite(hi)) or hi <= lo:
        return [lo]
    raw = (hi - lo) / n
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    start = math.ceil(lo / step) * step
    ticks = []
    t = start
    while t <= hi + step * 1e-9:
        ticks.append(round(t, 12))
        t += step
    return ticks


def _y_axis(lo: float, hi: float, height: int, label: str) -> tuple[str, float, float]:
    """Grid lines and labels; returns (svg, y0 pixel, pixels per unit)."""
    y0, y1 = height - MB, MT
    scale = (y0 - y1) / (hi - lo) if hi > lo else 1.0
    out = []
    for t in nice_ticks(lo, hi):
        y = y0 - (t - lo) * scale
        out.append(f'<line x1="{ML}" y1="{y:.1f}" x2="{WIDTH - MR}" y2="{y:.1f}" class="grid"/>')
        out.append(_text(ML - 4, y + 3.5, fmt(t), anchor="end"))
    out.append(
        f'<text x="10" y="{(y0 + y1) / 2:.1f}" class="t" text-anchor="middle" '
        f'transform="rotate(-90 10 {(y0 + y1) / 2:.1f})">{escape(label)}</text>'
    )
    return "".join(out), y0 + lo * scale, scale


def density_svg(
    feature: str,
    edges: Sequence[float],
    reference: Sequence[float],
    current: Sequence[float],
) -> str:
    """Reference vs current densities over shared bins ``edges`` (len(masses) + 1 edges).

    ``reference`` and ``current`` are each side's share of its non-null values per bin;
    the chart divides by bin width, so the areas compare whatever the bin sizes.
    """
    label = f"{feature}: distribution, reference vs current"
    head = _open(label, css="chart dist", feature=feature)
    if len(edges) < 2:
        return head + _text(WIDTH / 2, HEIGHT / 2, "no values to plot") + "</svg>"
    widths = [b - a for a, b in itertools.pairwise(edges)]
    dens = [
        [m / w if w > 0 else 0.0 for m, w in zip(side, widths, strict=True)]
        for side in (reference, current)
    ]
    top = max(max(d, default=0.0) for d in dens) or 1.0
    axis, base, scale = _y_axis(0.0, top * 1.08, HEIGHT, "density")
    x_lo, x_hi = edges[0], edges[-1]
    span = (x_hi - x_lo) or 1.0

    def px(x: float) -> float:
        return ML + (x - x_lo) / span * (WIDTH - ML - MR)

    out = [head, axis]
    for values, colour, fill in ((dens[0], REFERENCE, 0.35), (dens[1], CURRENT, 0.0)):
        pts = [f"{px(x_lo):.1f},{base:.1f}"]
        for a, b, d in zip(edges[:-1], edges[1:], values, strict=True):
            y = base - d * scale
            pts.append(f"{px(a):.1f},{y:.1f} {px(b):.1f},{y:.1f}")
        pts.append(f"{px(x_hi):.1f},{base:.1f}")
        fill_attr = f'fill="{colour}" fill-opacity="{fill}"' if fill else 'fill="none"'
        out.append(
            f'<polyline points="{" ".join(pts)}" {fill_attr} stroke="{colour}" '
            f'stroke-width="{1.5 if fill else 2}"/>'
        )
    for t in nice_ticks(x_lo, x_hi, 5):
        out.append(_text(px(t), HEIGHT - MB + 14, fmt(t)))
    out.append(_legend([("reference", REFERENCE, False), ("current", CURRENT, False)]))
    out.append("</svg>")
    return "".join(out)


def category_svg(
    feature: str,
    categories: Sequence[str],
    reference: Sequence[float],
    current: Sequence[float],
    new: Sequence[bool],
) -> str:
    """Paired horizontal bars: each category's share of reference and current values."""
    row = 20
    height = MT + MB - 10 + row * max(len(categories), 1)
    label = f"{feature}: category shares, reference vs current"
    out = [_open(label, height=height, css="chart dist", feature=feature)]
    if not categories:
        out.append(_text(WIDTH / 2, height / 2, "no values to plot"))
        return "".join(out) + "</svg>"
    left = 130
    top = max(max(reference, default=0.0), max(current, default=0.0)) or 1.0
    scale = (WIDTH - left - MR - 92) / top
    for i, (name, r, c, is_new) in enumerate(zip(categories, reference, current, new, strict=True)):
        y = MT + i * row
        shown = name if len(name) <= 16 else name[:15] + "…"
        if is_new:
            shown += " (new)"
        out.append(f"<g><title>{escape(name)}: reference {r:.1%}, current {c:.1%}</title>")
        out.append(_text(left - 6, y + 13, shown, anchor="end"))
        out.append(
            f'<rect x="{left}" y="{y + 2}" width="{max(r * scale, 0.5):.1f}" height="7" '
            f'fill="{REFERENCE}"/>'
            f'<rect x="{left}" y="{y + 10}" width="{max(c * scale, 0.5):.1f}" height="7" '
            f'fill="{CURRENT}"/>'
        )
        shares = f"{r:.1%} → {c:.1%}"
        out.append(_text(left + max(r, c) * scale + 4, y + 13, shares, anchor="start"))
        out.append("</g>")
    out.append(
        _text(left, height - 8, "share of non-null values: reference → current", anchor="start")
    )
    out.append(_legend([("reference", REFERENCE, False), ("current", CURRENT, False)]))
    out.append("</svg>")
    return "".join(out)


@dataclass(frozen=True)
class Series:
    """One line: x in epoch milliseconds (UTC), y values, drawn dashed or solid."""

    label: str
    xs: Sequence[float]
    ys: Sequence[float]
    dashed: bool = False
    colour: str = ""


def _time_label(ms: float, span_ms: float) -> str:
    when = datetime.fromtimestamp(ms / 1000, tz=UTC)
    if span_ms < 2 * 86_400_000:
        return when.strftime("%m-%d %H:%M")
    return when.strftime("%Y-%m-%d")


def lines_svg(
    title: str,
    series: Sequence[Series],
    *,
    y_label: str,
    threshold: Series | None = None,
    from_zero: bool = True,
    css: str = "chart trend",
) -> str:
    """Series over time (x: epoch ms, UTC) with an optional dashed threshold line; the
    y axis starts at zero unless ``from_zero`` is false (then it spans the values)."""
    out = [_open(title, css=css)]
    drawn = [s for s in series if s.xs]
    every = [*drawn, *([threshold] if threshold is not None and threshold.xs else [])]
    xs = [x for s in every for x in s.xs]
    ys = [y for s in every for y in s.ys if math.isfinite(y)]
    if not xs or not ys:
        return out[0] + _text(WIDTH / 2, HEIGHT / 2, "no points yet") + "</svg>"
    y_lo, y_hi = (min(0.0, *ys) if from_zero else min(ys)), max(ys)
    pad = (y_hi - y_lo) * 0.08 or abs(y_hi) * 0.1 or 1.0
    axis, base, scale = _y_axis(y_lo if from_zero else y_lo - pad, y_hi + pad, HEIGHT, y_label)
    x_lo, x_hi = min(xs), max(xs)
    span = x_hi - x_lo

    def px(x: float) -> float:
        if span == 0:
            return (ML + WIDTH - MR) / 2
        return ML + (x - x_lo) / span * (WIDTH - ML - MR)

    out.append(axis)
    legend: list[tuple[str, str, bool]] = []
    lines = [(s, s.colour or PALETTE[i % len(PALETTE)]) for i, s in enumerate(drawn)]
    if threshold is not None and threshold.xs:
        lines.append((threshold, THRESHOLD))
    for s, colour in lines:
        pts = " ".join(
            f"{px(x):.1f},{base - y * scale:.1f}"
            for x, y in zip(s.xs, s.ys, strict=True)
            if math.isfinite(y)
        )
        dash = ' stroke-dasharray="5 3"' if s.dashed else ""
        out.append(
            f'<polyline points="{pts}" fill="none" stroke="{colour}" stroke-width="2"{dash}/>'
        )
        if len(s.xs) <= 60 and s is not threshold:
            out.extend(
                f'<circle cx="{px(x):.1f}" cy="{base - y * scale:.1f}" r="2.5" fill="{colour}"/>'
                for x, y in zip(s.xs, s.ys, strict=True)
                if math.isfinite(y)
            )
        legend.append((s.label, colour, s.dashed))
    ticks = [(x_lo, "middle")]
    if span:
        ticks = [(x_lo, "start"), (x_lo + span / 2, "middle"), (x_hi, "end")]
    for t, anchor in ticks:
        out.append(_text(px(t), HEIGHT - MB + 14, _time_label(t, span), anchor=anchor))
    out.append(_legend(legend))
    out.append("</svg>")
    return "".join(out)
