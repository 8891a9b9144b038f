"""A monitor's window, schedule and threshold rules (no store needed)."""

from __future__ import annotations

from datetime import UTC, datetime

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from milepost.errors import InvalidInput
from milepost.monitoring.checks import crossed, drift_measurements
from milepost.monitoring.monitors import METRICS, Schedule, Window, check_thresholds, to_ms

MS_2020 = 1_577_836_800_000
MS_2100 = 4_102_444_800_000


@pytest.mark.parametrize(
    ("text", "duration", "rows"),
    [
        ("90s", 90_000, None),
        ("30m", 1_800_000, None),
        (" 1h ", 3_600_000, None),
        ("7d", 604_800_000, None),
        ("2w", 1_209_600_000, None),
        ("last 1000", None, 1000),
        ("last  5", None, 5),
    ],
)
def test_windows(text: str, duration: int | None, rows: int | None) -> None:
    w = Window.parse(text)
    assert (w.duration_ms, w.rows) == (duration, rows)


@pytest.mark.parametrize("text", ["", "1 hour", "0h", "400d", "last 0", "last -1", "h", 5, None])
def test_bad_windows(text: object) -> None:
    with pytest.raises(InvalidInput) as info:
        Window.parse(text)
    assert info.value.hint and "last 1000" in info.value.hint


@settings(deadline=None, max_examples=200)
@given(ms=st.integers(MS_2020, MS_2100), minutes=st.integers(1, 180))
def test_an_interval_schedule_slots_are_multiples_after_now(ms: int, minutes: int) -> None:
    s = Schedule.parse(f"every {minutes}m")
    nxt = s.next_after(ms)
    assert ms < nxt <= ms + minutes * 60_000 and nxt % (minutes * 60_000) == 0


@settings(deadline=None, max_examples=100)
@given(ms=st.integers(MS_2020, MS_2100))
def test_cron_slots_are_the_next_matching_minute(ms: int) -> None:
    nxt = Schedule.parse("*/5 * * * *").next_after(ms)
    assert ms < nxt <= ms + 300_000 and nxt % 300_000 == 0
    daily = Schedule.parse("30 2 * * *").next_after(ms)
    at = datetime.fromtimestamp(daily / 1000, tz=UTC)
    assert (at.hour, at.minute, at.second) == (2, 30, 0) and ms < daily <= ms + 86_400_000


@pytest.mark.parametrize("text", ["", "every", "every 0s", "every soon", "* * *", "61 * * * *"])
def test_bad_schedules(text: str) -> None:
    with pytest.raises(InvalidInput, match=r"[Ss]chedule"):
        Schedule.parse(text)


def test_thresholds_and_directions() -> None:
    assert check_thresholds({"psi": 0.3, "accuracy": 1}) == {"psi": 0.3, "accuracy": 1.0}
    assert check_thresholds(None) == {}
    for bad in ({"psy": 1}, {"psi": float("nan")}, {"psi": True}, [("psi", 1)]):
        with pytest.raises(InvalidInput):
            check_thresholds(bad)
    assert crossed("psi", 0.3, 0.2) and crossed("psi", 0.2, 0.2)  # as drift(): >=
    assert not crossed("psi", 0.19, 0.2)
    assert crossed("ks", 0.01, 0.05) and not crossed("ks", 0.05, 0.05)
    assert crossed("accuracy", 0.7, 0.8) and crossed("rmse", 2.0, 1.0)
    assert not crossed("psi", None, 0.2) and not crossed("psi", 0.5, None)
    assert all(direction in ("above", "below") for direction, _ in METRICS.values())


def test_times() -> None:
    assert to_ms(datetime(2027, 1, 15, 8, tzinfo=UTC)) == 1_800_000_000_000
    assert to_ms(5) == 5
    for bad in (datetime(2027, 1, 1), 1.5, -1, "now", True):
        with pytest.raises(InvalidInput):
            to_ms(bad)  # type: ignore[arg-type]


def test_drift_of_null_constant_and_missing_columns_is_explained() -> None:
    ref = pd.DataFrame({"a": [1.0, 2.0, 3.0] * 50, "b": [None] * 150, "c": [7.0] * 150})
    cur = pd.DataFrame({"a": [1.0, 2.0, 3.0] * 50, "b": [None] * 150})
    out = drift_measurements("feature_drift", ref, cur, {"psi": 0.2})
    by = {m.feature: m for m in out}
    assert by["a"].status == "ok" and by["a"].value == pytest.approx(0.0)
    assert by["b"].status == "empty" and by["b"].details["status"] == "all_null"
    assert by["c"].status == "error" and by["c"].details["status"] == "missing_in_current"
    assert not any(m.breached for m in out)
    assert by[None].metric == "drifted_share" and by[None].value == 0.0


def test_only_counted_or_named_methods_alert() -> None:
    ref = pd.DataFrame({"x": [float(i % 100) for i in range(2000)]})
    cur = pd.DataFrame({"x": [float(i % 100) + 30.0 for i in range(2000)]})
    default = {(m.metric, m.breached) for m in drift_measurements("f", ref, cur, {})}
    assert ("wasserstein", True) in default  # counted for numbers
    psi = next(m for m in drift_measurements("f", ref, cur, {}) if m.metric == "psi")
    assert not psi.breached and "information" in psi.details["drifted"]
    named = drift_measurements("f", ref, cur, {"psi": 0.05})
    # every method is measured; a threshold named for the kind's methods replaces the
    # counted one as what alerts
    assert {m.metric for m in named if m.feature} == {"psi", "ks", "wasserstein", "jensen_shannon"}
    assert {m.metric for m in named if m.breached} == {"psi"}


def test_a_threshold_for_one_kind_leaves_the_other_kind_counted() -> None:
    """wasserstein=0.25 names a numbers-only method: categories still alert on PSI (and
    get every method, never a 'no method' error); a logged column the stored profile
    lacks (the entity key) is not compared, and is named."""
    from milepost.monitoring import profile

    ref = pd.DataFrame({"x": [float(i % 100) for i in range(2000)], "c": ["a", "b"] * 1000})
    cur = pd.DataFrame(
        {
            "x": [float(i % 100) for i in range(2000)],
            "c": ["a"] * 1900 + ["b"] * 100,
            "customer_id": list(range(2000)),
        }
    )
    out = drift_measurements("f", profile(ref), cur, {"wasserstein": 0.25})
    assert {(m.feature, m.metric) for m in out if m.breached} == {("c", "psi")}
    assert not any(m.status == "error" for m in out)
    assert "customer_id" not in {m.feature for m in out}
    share = next(m for m in out if m.metric == "drifted_share")
    assert share.details["not_in_reference"] == ["customer_id"]
