"""How the data package writes numbers, counts and durations for people.

One place, so the text report, the HTML report, reprs and ``data diff`` say the same
thing the same way.
"""

from __future__ import annotations

import math
from datetime import timedelta
from typing import Any

__all__ = ["count", "format_bound", "format_stat", "human_duration"]


def count(n: int, noun: str, plural: str | None = None) -> str:
    """``"2,000 rows"``, ``"1 row"``."""
    return f"{n:,} {noun if n == 1 else (plural or noun + 's')}"


def format_stat(value: Any) -> str:
    """A statistic as shown: floats with up to 6 significant digits, others as text.

    ``data diff`` reports a statistic only when this text changes, so it never shows a
    change that reads as none.
    """
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def format_bound(value: Any) -> str:
    """A check's bound as written in a suite: ``18`` rather than ``18.0``."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def human_duration(delta: timedelta | float) -> str:
    """A duration in the two largest units that matter: ``"212 days 22 h"``, ``"5 h 12 min"``.

    Negative durations read as their size (callers say "in the future").
    """
    seconds = abs(delta.total_seconds() if isinstance(delta, timedelta) else float(delta))
    if not math.isfinite(seconds):
        return str(seconds)
    if seconds < 10:
        return f"{seconds:.3g} s"
    if seconds < 59.5:
        return f"{round(seconds)} s"
    total = round(seconds)
    days, rest = divmod(total, 86_400)
    hours, rest = divmod(rest, 3_600)
    minutes, secs = divmod(rest, 60)
    if days:
        head = count(days, "day")
        return f"{head} {hours} h" if hours else head
    if hours:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    return f"{minutes} min {secs} s" if secs else f"{minutes} min"
