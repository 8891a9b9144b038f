"""Monitors through ``milepost.Client``, embedded and remote: define, run, results over
time, alerts and acknowledging them, change and delete; refusals read the same."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd
import pytest

import milepost
from milepost.errors import AlreadyExists, InvalidInput, NotFound
from tests.shared._ops_setup import log_predictions, register_models

MODEL = "ops-mon"
HOUR_MS = 3_600_000


@pytest.fixture(scope="module")
def models(
    platform: dict[str, Any], churn_models: dict[str, Any], churn_frame: pd.DataFrame
) -> str:
    register_models(platform["rt"], MODEL, churn_models, churn_frame, ("good",))
    return MODEL


def _frame(n: int, *, seed: int, age_shift: float = 0.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "age": rng.normal(40 + age_shift, 8, n).round(1),
            "monthly_spend": rng.lognormal(4, 0.4, n).round(2),
            "plan": rng.choice(["basic", "plus", "pro"], n, p=[0.5, 0.3, 0.2]),
        }
    )


@pytest.fixture
def drifting(platform: dict[str, Any], models: str, unique: str) -> tuple[str, int]:
    """An endpoint whose last hour of traffic is older by 12 years than the hour before;
    returns it and the moment that hour ends (epoch ms)."""
    rt = platform["rt"]
    rt.serving.create(unique, models, version=1)
    now = int(time.time() * 1000)
    variant = f"{models}-v1"
    log_predictions(
        rt, unique, variant, _frame(300, seed=1), start_ms=now - HOUR_MS - 30 * 60_000, version=1
    )
    shifted = _frame(300, seed=2, age_shift=12)
    log_predictions(rt, unique, variant, shifted, start_ms=now - 30 * 60_000, version=1)
    return unique, now


def test_a_run_stores_a_time_series_and_raises_alerts(
    client: milepost.Client, platform: dict[str, Any], drifting: tuple[str, int]
) -> None:
    endpoint, now = drifting
    name = f"{endpoint}-drift"
    mon = client.create_monitor(
        name, endpoint=endpoint, window="1h", thresholds={"psi": 0.2}, schedule="every 10m"
    )
    assert mon.checks == ["feature_drift"] and mon.created_by == "alice"
    assert mon.schedule == "every 10m" and mon.next_run_at is not None
    assert client.get_monitor(name) == mon and name in [m.name for m in client.list_monitors()]
    with pytest.raises(AlreadyExists, match="exists already"):
        client.create_monitor(name, endpoint=endpoint)

    run = client.run_monitor(name, now=datetime.fromtimestamp(now / 1000, UTC))
    assert run.rows == 300 and run.status == "breached" and run.breached
    by = {(r.metric, r.feature): r for r in run.results}
    assert by[("psi", "age")].breached and not by[("psi", "plan")].breached
    assert {a.feature for a in run.alerts} == {"age"} and run.alerts[0].monitor == name

    series = client.list_monitor_results(name, metric="psi", feature="age")
    assert [(r.run_id, r.value) for r in series] == [(run.run_id, by[("psi", "age")].value)]
    embedded = platform["rt"].monitors.results(name)
    assert [r.to_dict() for r in client.list_monitor_results(name)] == [
        r.to_dict() for r in embedded
    ]

    alerts = client.list_alerts(name)
    assert [a.alert_id for a in alerts] == [a.alert_id for a in run.alerts]
    acked = client.acknowledge_alert(alerts[0].alert_id)
    assert acked.acknowledged_by == "alice" and acked.acknowledged_at is not None
    assert client.list_alerts(name, acknowledged=False) == []
    assert [a.alert_id for a in client.list_alerts(name, acknowledged=True, since=0)] == [
        alerts[0].alert_id
    ]
    with pytest.raises(NotFound, match="No alert"):
        client.acknowledge_alert(10**9)


def test_update_and_delete(client: milepost.Client, drifting: tuple[str, int]) -> None:
    endpoint, _ = drifting
    name = f"{endpoint}-steady"
    client.create_monitor(name, endpoint=endpoint, webhook="http://127.0.0.1:9/hook")
    changed = client.update_monitor(name, enabled=False, thresholds={"psi": 0.1}, webhook=None)
    assert not changed.enabled and changed.thresholds == {"psi": 0.1} and changed.webhook is None
    manual = client.update_monitor(name, schedule="every 5m")
    assert manual.schedule == "every 5m" and manual.thresholds == {"psi": 0.1}
    assert client.update_monitor(name, schedule=None).schedule is None
    with pytest.raises(InvalidInput, match="cannot change 'endpoint'"):
        client.update_monitor(name, endpoint="other")
    with pytest.raises(InvalidInput, match=r"Window .soon. is not understood"):
        client.update_monitor(name, window="soon")
    client.delete_monitor(name, reason="test over")
    with pytest.raises(NotFound):
        client.get_monitor(name)
    with pytest.raises(NotFound):
        client.create_monitor(f"{name}-x", endpoint=f"{endpoint}-missing")


def test_a_webhook_needs_an_admin_over_http(
    platform: dict[str, Any], drifting: tuple[str, int]
) -> None:
    """The server posts alerts to a monitor's webhook from its own network: a member may
    define and change monitors, but only an admin may point one at a URL."""
    import httpx

    endpoint, _ = drifting
    _, member = platform["rt"].tokens.create("webhook-member", "member", user="mona")
    name = f"{endpoint}-hooked"
    with httpx.Client(
        base_url=platform["url"] + "/api/v1", headers={"Authorization": f"Bearer {member}"}
    ) as http:
        refused = http.post(
            "/monitors", json={"name": name, "endpoint": endpoint, "webhook": "http://10.0.0.1/"}
        )
        assert refused.status_code == 403, refused.text
        assert refused.json()["details"] == {"needed": "admin", "held": "member"}
        made = http.post("/monitors", json={"name": name, "endpoint": endpoint})
        assert made.status_code == 201, made.text
        changed = http.patch(f"/monitors/{name}", json={"webhook": "http://169.254.169.254/"})
        assert changed.status_code == 403
        assert http.patch(f"/monitors/{name}", json={"enabled": False}).status_code == 200
    assert platform["rt"].monitors.get(name).webhook is None
