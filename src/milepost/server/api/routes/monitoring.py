"""``/api/v1`` routes: monitors, their results over time, and alerts.

Viewers read; members create, change, delete and run monitors and acknowledge alerts.
Setting a webhook needs admin: the server posts alerts to that URL from its own network,
so a member must not be able to point it at internal hosts.

- ``GET /monitors``, ``POST /monitors``, ``GET|PATCH|DELETE /monitors/{name}``: the
  definitions (a PATCH changes only the fields it names; ``"schedule": null`` makes a
  monitor manual, ``"webhook": null`` removes its webhook).
- ``POST /monitors/{name}/run``: run it once now (or at ``now``, epoch ms).
- ``GET /monitors/{name}/results``: every measured value, oldest first: each
  (``metric``, ``feature``) is a time series (``since`` epoch ms, ``metric``,
  ``feature``, ``limit``).
- ``GET /alerts``, ``POST /alerts/{alert_id}/acknowledge``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict

from milepost.server.api.auth import require_role

if TYPE_CHECKING:
    from milepost.monitoring.service import MonitorService

router = APIRouter(tags=["monitoring"])


def _monitors(request: Request) -> MonitorService:
    monitors: MonitorService = request.app.state.rt.monitors
    return monitors


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class MonitorCreate(_Body):
    """A monitor: ``checks`` on an endpoint or a model version over ``window``, on
    ``schedule`` (cron in UTC or ``every 10m``; null: only when run), alerting when a
    metric crosses ``thresholds`` and posting alerts to ``webhook``."""

    name: str
    endpoint: str | None = None
    model: str | None = None
    version: int | None = None
    checks: list[str] = ["feature_drift"]
    window: str = "1h"
    schedule: str | None = None
    thresholds: dict[str, float] | None = None
    webhook: str | None = None
    enabled: bool = True


class MonitorUpdate(_Body):
    """The fields to change; those left out keep their value."""

    checks: list[str] | None = None
    window: str | None = None
    schedule: str | None = None
    thresholds: dict[str, float] | None = None
    webhook: str | None = None
    enabled: bool | None = None


class MonitorRunNow(_Body):
    """Run over the window ending ``now`` (epoch ms; default now)."""

    now: int | None = None


@router.get("/monitors")
def list_monitors(request: Request) -> dict[str, Any]:
    """Every monitor, by name."""
    return {"items": [m.to_dict() for m in _monitors(request).list()]}


@router.post("/monitors", status_code=201)
def create_monitor(request: Request, body: MonitorCreate) -> dict[str, Any]:
    """Define a monitor (audited); a webhook needs admin."""
    if body.webhook is not None:
        require_role(request, "admin")
    return _monitors(request).create(**body.model_dump()).to_dict()


@router.get("/monitors/{name}")
def get_monitor(request: Request, name: str) -> dict[str, Any]:
    """One monitor's definition, last run and next scheduled run."""
    return _monitors(request).get(name).to_dict()


@router.patch("/monitors/{name}")
def update_monitor(request: Request, name: str, body: MonitorUpdate) -> dict[str, Any]:
    """Change the fields the body names (audited); setting a webhook needs admin."""
    changes = {k: getattr(body, k) for k in body.model_fields_set}
    if changes.get("webhook") is not None:
        require_role(request, "admin")
    return _monitors(request).update(name, **changes).to_dict()


@router.delete("/monitors/{name}", status_code=204)
def delete_monitor(request: Request, name: str, reason: str | None = None) -> None:
    """Delete a monitor with its results and alerts (audited)."""
    _monitors(request).delete(name, reason=reason)


@router.post("/monitors/{name}/run")
def run_monitor(request: Request, name: str, body: MonitorRunNow | None = None) -> dict[str, Any]:
    """Run a monitor once: results stored, alerts raised and delivered."""
    now = None if body is None else body.now
    return _monitors(request).run(name, now).to_dict()


@router.get("/monitors/{name}/results")
def monitor_results(
    request: Request,
    name: str,
    since: int | None = None,
    metric: str | None = None,
    feature: str | None = None,
    limit: int = 10_000,
) -> dict[str, Any]:
    """A monitor's results, oldest first (each (metric, feature) is a time series)."""
    found = _monitors(request).results(
        name, since=since, metric=metric, feature=feature, limit=limit
    )
    return {"items": [r.to_dict() for r in found]}


@router.get("/alerts")
def list_alerts(
    request: Request,
    monitor: str | None = None,
    since: int | None = None,
    acknowledged: bool | None = None,
    limit: int = 100,
) -> dict[str, Any]:
    """Alerts, newest first (of one monitor, or all)."""
    found = _monitors(request).alerts(monitor, since=since, acknowledged=acknowledged, limit=limit)
    return {"items": [a.to_dict() for a in found]}


@router.post("/alerts/{alert_id}/acknowledge")
def acknowledge_alert(request: Request, alert_id: int) -> dict[str, Any]:
    """Mark an alert seen (by the caller, now)."""
    return _monitors(request).acknowledge(alert_id).to_dict()
