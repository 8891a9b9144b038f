"""Interval arithmetic of materialization watermarks, against a set of points."""

from __future__ import annotations

from itertools import pairwise

from hypothesis import given
from hypothesis import strategies as st

from milepost.features.intervals import Interval, merge, subtract

LOW = -5  # stands for "the beginning" in the point model
HIGH = 40


def points(intervals: list[Interval]) -> set[int]:
    return {p for s, e in intervals for p in range(LOW if s is None else s, e)}


interval = st.tuples(st.one_of(st.none(), st.integers(LOW + 1, HIGH)), st.integers(LOW + 1, HIGH))


@given(st.lists(interval, max_size=8))
def test_merge_keeps_the_points_in_sorted_disjoint_intervals(ivs: list[Interval]) -> None:
    merged = merge(ivs)
    assert points(merged) == points(ivs)
    for (_, end), (start, _) in pairwise(merged):
        assert start is not None and end < start  # disjoint and not touching
    assert all(s is None or s < e for s, e in merged)


@given(interval, st.lists(interval, max_size=8))
def test_subtract_leaves_exactly_the_uncovered_points(window: Interval, covered: list) -> None:
    gaps = subtract(window, covered)
    assert points(gaps) == points([window]) - points(covered)
    assert gaps == merge(gaps)


def test_examples() -> None:
    assert merge([(5, 10), (None, 3), (3, 4), (12, 15), (9, 12)]) == [(None, 4), (5, 15)]
    assert subtract((0, 20), [(5, 10), (12, 15)]) == [(0, 5), (10, 12), (15, 20)]
    assert subtract((None, 20), [(5, 10)]) == [(None, 5), (10, 20)]
    assert subtract((0, 20), [(None, 25)]) == []
