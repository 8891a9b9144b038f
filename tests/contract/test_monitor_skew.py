"""The skew check of a monitor: an endpoint serving pinned features, on every backend.

The served endpoint is part S's (``tests/contract/test_skew.py``): a feature view with a
transform, a model that pins it, an in-process engine writing the real prediction log.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from milepost import Runtime
from tests.contract.test_skew import CUSTOMERS, Served


@pytest.fixture
def spend(runtime: Runtime) -> Iterator[Served]:
    s = Served(runtime)
    yield s
    s.close()


def test_skew_is_measured_per_feature_and_alerts_on_a_mismatch(
    spend: Served, runtime: Runtime
) -> None:
    monitors = runtime.monitors
    monitors.create("spend-skew", endpoint="spend-ep", checks=["skew"], window="1h")
    spend.serve(list(range(1, CUSTOMERS + 1)))
    run = monitors.run("spend-skew")
    assert run.status == "ok" and run.alerts == []
    by = {r.feature: r for r in run.results}
    assert set(by) == {"monthly_spend", "spend_per_ticket"}
    for r in by.values():
        assert (r.metric, r.value, r.threshold, r.rows) == ("mismatch_share", 0.0, 0.001, 30)
        assert r.details["ref"].startswith("activity:v1:") and r.details["mismatches"] == 0

    # the online path computes spend_per_ticket differently for customer 7
    event_ms, _, values = spend.online_row(7)
    spend.write_online(7, [values[0], values[1], values[2] * 2 + 1], event_ms=event_ms)
    spend.serve([5, 7, 9])
    run = monitors.run("spend-skew")
    by = {r.feature: r for r in run.results}
    bad = by["spend_per_ticket"]
    assert bad.breached and bad.value == pytest.approx(1 / 33) and bad.rows == 33
    [example] = bad.details["examples"]
    assert example["entity"] == {"customer_id": 7} and example["served"] == values[2] * 2 + 1
    assert not by["monthly_spend"].breached
    [alert] = run.alerts
    assert (alert.check, alert.metric, alert.feature) == (
        "skew",
        "mismatch_share",
        "spend_per_ticket",
    )
