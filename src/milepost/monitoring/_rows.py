"""Rows of the monitor tables <-> the records callers get (no ORM rows leave the service)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from milepost import _validate as check
from milepost.errors import InvalidInput, did_you_mean
from milepost.monitoring.monitors import (
    CHECKS,
    Alert,
    Monitor,
    MonitorResult,
    Schedule,
    Window,
    check_thresholds,
)

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    import sqlalchemy as sa

    from milepost.monitoring.checks import Measurement

_CHECKS_HINT = "Checks: " + ", ".join(CHECKS) + "."

__all__ = ["definition_row", "result_row", "state", "to_alert", "to_monitor", "to_result"]


def definition_row(
    *,
    endpoint: str | None,
    model: str | None,
    version: int | None,
    checks: Sequence[str],
    window: str,
    schedule: str | None,
    thresholds: Mapping[str, float] | None,
    webhook: str | None,
    enabled: bool,
) -> dict[str, Any]:
    """A monitor's definition checked (checks, window, schedule, thresholds, webhook) as
    the columns of its row; the target is checked by the service."""
    kinds = check.string_list(checks, "checks", allow_str=True)
    if not kinds:
        raise InvalidInput("A monitor needs at least one check.", hint=_CHECKS_HINT)
    for kind in kinds:
        if kind not in CHECKS:
            raise InvalidInput(
                f"Unknown check {kind!r}.{did_you_mean(kind, CHECKS)}", hint=_CHECKS_HINT
            )
    limits = check_thresholds(dict(thresholds) if thresholds is not None else None)
    if webhook is not None:
        webhook = check.name(webhook, "Webhook URL", max_length=2048)
        if not webhook.startswith(("http://", "https://")):
            raise InvalidInput(
                f"Webhook {webhook!r} is not an http(s) URL.",
                hint="For example https://hooks.example.com/milepost.",
            )
    return {
        "endpoint": endpoint,
        "model": model,
        "version": version,
        "checks_json": json.dumps(list(dict.fromkeys(kinds))),
        "window_spec": Window.parse(window).text,
        "schedule": None if schedule is None else Schedule.parse(schedule).text,
        "thresholds_json": json.dumps(limits, sort_keys=True),
        "webhook": webhook,
        "enabled": check.boolean(enabled, "enabled"),
    }


def state(mon: Monitor) -> dict[str, Any]:
    """What the audit trail records of a monitor's definition."""
    keep = ("endpoint", "model", "version", "checks", "window", "schedule", "thresholds")
    return {k: getattr(mon, k) for k in (*keep, "webhook", "enabled")}


def to_monitor(r: Mapping[str, Any] | sa.RowMapping) -> Monitor:
    return Monitor(
        name=r["name"],
        endpoint=r["endpoint"],
        model=r["model"],
        version=r["version"],
        checks=json.loads(r["checks_json"]),
        window=r["window_spec"],
        schedule=r["schedule"],
        thresholds=json.loads(r["thresholds_json"]),
        webhook=r["webhook"],
        enabled=bool(r["enabled"]),
        next_run_at=r["next_run_at"],
        last_run_at=r["last_run_at"],
        created_by=r["created_by"],
        created_at=r["created_at"],
        updated_at=r["updated_at"],
    )


def result_row(
    mid: int, run_id: str, run_at: int, start: int | None, end: int, m: Measurement
) -> dict[str, Any]:
    return {
        "monitor_id": mid,
        "run_id": run_id,
        "run_at": run_at,
        "window_start": start,
        "window_end": end,
        "check_kind": m.check,
        "metric": m.metric,
        "feature": m.feature,
        "value": m.value,
        "threshold": m.threshold,
        "breached": m.breached,
        "rows": m.rows,
        "status": m.status,
        "details_json": json.dumps(m.details, default=str) if m.details else None,
    }


def to_result(name: str, r: Mapping[str, Any] | sa.RowMapping) -> MonitorResult:
    details = r["details_json"]
    return MonitorResult(
        monitor=name,
        run_id=r["run_id"],
        run_at=r["run_at"],
        window_start=r["window_start"],
        window_end=r["window_end"],
        check=r["check_kind"],
        metric=r["metric"],
        feature=r["feature"],
        value=r["value"],
        threshold=r["threshold"],
        breached=bool(r["breached"]),
        rows=int(r["rows"]),
        status=r["status"],
        details=json.loads(details) if details else {},
    )


def to_alert(name: str, r: Mapping[str, Any] | sa.RowMapping) -> Alert:
    return Alert(
        alert_id=int(r["alert_id"]),
        monitor=name,
        run_id=r["run_id"],
        raised_at=r["raised_at"],
        check=r["check_kind"],
        metric=r["metric"],
        feature=r["feature"],
        value=r["value"],
        threshold=r["threshold"],
        message=r["message"],
        delivered=r["delivered"],
        delivery_error=r.get("delivery_error"),
        acknowledged_at=r.get("acknowledged_at"),
        acknowledged_by=r.get("acknowledged_by"),
    )
