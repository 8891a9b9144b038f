"""Half-open event-time intervals ``[start, end)`` in ms; a start of None is "the beginning".

Materialization records which intervals each online store holds of each view version,
so that an incremental run writes exactly the parts of its window that are missing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterable

__all__ = ["Interval", "merge", "subtract"]

Interval = tuple[int | None, int]

_BEGINNING = -(2**63)


def _lo(start: int | None) -> int:
    return _BEGINNING if start is None else start


def merge(intervals: Iterable[Interval]) -> list[Interval]:
    """Sorted, with overlapping and touching intervals joined; empty ones dropped."""
    out: list[Interval] = []
    for start, end in sorted(intervals, key=lambda iv: (_lo(iv[0]), iv[1])):
        if _lo(start) >= end:
            continue
        if out and _lo(start) <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], end))
        else:
            out.append((start, end))
    return out


def subtract(window: Interval, covered: Iterable[Interval]) -> list[Interval]:
    """The parts of ``window`` that no interval of ``covered`` holds, in order."""
    gaps: list[Interval] = []
    start, end = window
    cursor = _lo(start)
    for c_start, c_end in merge(covered):
        if c_end <= cursor:
            continue
        if _lo(c_start) >= end:
            break
        if _lo(c_start) > cursor:
            gaps.append((None if cursor == _BEGINNING else cursor, _lo(c_start)))
        cursor = max(cursor, c_end)
    if cursor < end:
        gaps.append((None if cursor == _BEGINNING else cursor, end))
    return gaps
