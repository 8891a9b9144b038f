"""Monitors over HTTP: :class:`RemoteMonitors` stands in for ``rt.monitors``.

Same methods, records (:class:`~milepost.monitoring.monitors.Monitor`,
:class:`~milepost.monitoring.monitors.MonitorRun`, ...) and exceptions as
:class:`milepost.monitoring.MonitorService`. A monitor runs on the server, over the
server's prediction logs; the scheduled watch (``due``, ``run_due``) and a run's HTML
report (``write_report``, which needs the run's drift result in memory) belong where the
monitors run: ``milepost monitor watch`` / ``run --report`` without ``MILEPOST_URL``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from milepost import _validate as check
from milepost._records import record_from_dict
from milepost.client._ops_wire import body, ms, seg
from milepost.errors import InvalidInput

if TYPE_CHECKING:
    import builtins
    import os
    from collections.abc import Mapping, Sequence
    from datetime import datetime
    from pathlib import Path

    from milepost.client._runtime import RemoteRuntime
    from milepost.monitoring.monitors import Alert, Monitor, MonitorResult, MonitorRun

__all__ = ["RemoteMonitors"]

_UNSET: Any = object()


def _host_only(what: str) -> InvalidInput:
    return InvalidInput(
        f"monitors.{what} runs where the monitors run, not over HTTP (MILEPOST_URL is set).",
        hint="Run `milepost monitor watch` (or `monitor run --report`) on the server's host, "
        "without MILEPOST_URL.",
    )


def _monitor(data: Any) -> Monitor:
    from milepost.monitoring.monitors import Monitor

    return record_from_dict(Monitor, data)


class RemoteMonitors:
    """``rt.monitors`` in remote mode (see the module docstring)."""

    def __init__(self, runtime: RemoteRuntime) -> None:
        self._http = runtime.transport

    def _path(self, name: Any, *rest: str) -> str:
        return "/".join(("/monitors", seg(name, "Monitor name"), *rest))

    def create(
        self,
        name: str,
        *,
        endpoint: str | None = None,
        model: str | None = None,
        version: int | None = None,
        checks: Sequence[str] = ("feature_drift",),
        window: str = "1h",
        schedule: str | None = None,
        thresholds: Mapping[str, float] | None = None,
        webhook: str | None = None,
        enabled: bool = True,
    ) -> Monitor:
        """Define a monitor (see :meth:`MonitorService.create`)."""
        if isinstance(checks, str):  # one check by name, as embedded mode takes it
            checks = [checks]
        payload = body(
            name=name,
            endpoint=endpoint,
            model=model,
            version=version,
            checks=checks,
            window=window,
            schedule=schedule,
            thresholds=thresholds,
            webhook=webhook,
            enabled=enabled,
        )
        return _monitor(self._http.request("POST", "/monitors", json=payload))

    def update(
        self,
        name: str,
        *,
        checks: Sequence[str] | None = None,
        window: str | None = None,
        schedule: str | None = _UNSET,
        thresholds: Mapping[str, float] | None = None,
        webhook: str | None = _UNSET,
        enabled: bool | None = None,
    ) -> Monitor:
        """Change a monitor; arguments left out keep their value (``schedule=None``:
        manual, ``webhook=None``: removed)."""
        if isinstance(checks, str):
            checks = [checks]
        given: dict[str, Any] = {
            "checks": checks,
            "window": window,
            "thresholds": thresholds,
            "enabled": enabled,
        }
        changes = {k: v for k, v in given.items() if v is not None}
        if schedule is not _UNSET:
            changes["schedule"] = schedule
        if webhook is not _UNSET:
            changes["webhook"] = webhook
        return _monitor(self._http.request("PATCH", self._path(name), json=body(**changes)))

    def delete(self, name: str, *, reason: str | None = None) -> None:
        """Delete a monitor with its results and alerts (audited)."""
        if reason is not None:
            check.text(reason, "Reason")
        self._http.request("DELETE", self._path(name), params={"reason": reason})

    def get(self, name: str) -> Monitor:
        """One monitor."""
        return _monitor(self._http.request("GET", self._path(name)))

    def list(self) -> builtins.list[Monitor]:
        """Every monitor, by name."""
        return [_monitor(m) for m in self._http.request("GET", "/monitors")["items"]]

    def next_run(self, name: str) -> int | None:
        """Epoch ms of a monitor's next slot (None: manual or disabled)."""
        mon = self.get(name)
        return mon.next_run_at if mon.enabled else None

    def run(self, name: str, now: datetime | int | None = None) -> MonitorRun:
        """Run a monitor once on the server (results stored, alerts delivered there)."""
        from milepost.monitoring.monitors import MonitorRun

        payload = body(now=ms(now, "now"))
        return record_from_dict(
            MonitorRun, self._http.request("POST", self._path(name, "run"), json=payload)
        )

    def results(
        self,
        name: str,
        *,
        since: datetime | int | None = None,
        metric: str | None = None,
        feature: str | None = None,
        limit: int = 10_000,
    ) -> builtins.list[MonitorResult]:
        """A monitor's results, oldest first."""
        from milepost.monitoring.monitors import MonitorResult

        check.integer(limit, "limit", minimum=1, maximum=1_000_000)
        params = {
            "since": ms(since, "since"),
            "metric": None if metric is None else check.string(metric, "Metric"),
            "feature": None if feature is None else check.string(feature, "Feature"),
            "limit": limit,
        }
        answer = self._http.request("GET", self._path(name, "results"), params=params)
        return [record_from_dict(MonitorResult, r) for r in answer["items"]]

    def alerts(
        self,
        name: str | None = None,
        *,
        since: datetime | int | None = None,
        acknowledged: bool | None = None,
        limit: int = 100,
    ) -> builtins.list[Alert]:
        """Alerts, newest first (of one monitor, or all)."""
        from milepost.monitoring.monitors import Alert

        check.integer(limit, "limit", minimum=1, maximum=100_000)
        if acknowledged is not None:
            check.boolean(acknowledged, "acknowledged")
        params = {
            "monitor": None if name is None else check.string(name, "Monitor name"),
            "since": ms(since, "since"),
            "acknowledged": None if acknowledged is None else str(acknowledged).lower(),
            "limit": limit,
        }
        answer = self._http.request("GET", "/alerts", params=params)
        return [record_from_dict(Alert, a) for a in answer["items"]]

    def acknowledge(self, alert_id: int) -> Alert:
        """Mark an alert seen (by the token's user, now)."""
        from milepost.monitoring.monitors import Alert

        alert_id = check.integer(alert_id, "alert id", minimum=1)
        answer = self._http.request("POST", f"/alerts/{alert_id}/acknowledge")
        return record_from_dict(Alert, answer)

    def due(self, now: datetime | int | None = None) -> builtins.list[Monitor]:
        """Not over HTTP: the scheduled watch runs on the server's host."""
        raise _host_only("due")

    def run_due(self, now: datetime | int | None = None) -> builtins.list[MonitorRun]:
        """Not over HTTP: the scheduled watch runs on the server's host."""
        raise _host_only("run_due")

    def write_report(self, path: str | os.PathLike[str], run: MonitorRun) -> tuple[Path, Path]:
        """Not over HTTP: a run's report needs its drift result, kept where it ran."""
        raise _host_only("write_report")
