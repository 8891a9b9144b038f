"""Monitors: stored definitions, runs on a schedule, results as time series, alerts.

:class:`MonitorService` keeps monitors in the metadata store (``monitors``,
``monitor_results``, ``alerts``; revision 0015). Creating, changing and deleting a monitor
appends an audit event (``monitor.create``, ``monitor.update``, ``monitor.delete``) in the
same transaction. A run stores all its results and alerts in one transaction, then emits
the alerts (log line, webhook: see :mod:`milepost.monitoring.alerts`).

Monitoring is a foundation capability: what it needs from serving and the registry comes
through :class:`MonitorSources` (the runtime passes
:class:`milepost.serving.monitor_sources.ServingMonitorSources`).

**Schedules.** ``next_run_at`` is a monitor's next slot. :meth:`MonitorService.run_due`
claims each due monitor by moving ``next_run_at`` to the first slot after ``now`` with a
compare-and-set, and runs only the monitors it claimed: however many schedulers (``milepost
monitor watch``, the pipelines scheduler) call it, a slot runs once. Slots missed while
nobody watched run once, not once each. The claim is committed before the run: a
scheduler killed mid-run loses that slot's run (at most once), the next slot runs as usual.
"""

from __future__ import annotations

import re
import time
import uuid
from typing import TYPE_CHECKING, Any, Protocol

import sqlalchemy as sa

from milepost import _validate as check
from milepost._actor import ActorAttribute
from milepost.errors import AlreadyExists, InvalidInput, NotFound, did_you_mean
from milepost.monitoring import _rows
from milepost.monitoring import alerts as emit
from milepost.monitoring.monitors import (
    METRICS,
    Alert,
    Monitor,
    MonitorResult,
    MonitorRun,
    Schedule,
    Window,
    to_ms,
)
from milepost.stores.audit import append_event
from milepost.stores.schema import alerts, monitor_results, monitors

if TYPE_CHECKING:
    import builtins
    import os
    from collections.abc import Callable, Mapping, Sequence
    from datetime import datetime
    from pathlib import Path

    from milepost.monitoring.checks import Measurement
    from milepost.monitoring.labels import LabelSource
    from milepost.monitoring.predictions import SegmentSource
    from milepost.stores.metadata import MetadataStore

__all__ = ["MonitorService", "MonitorSources"]

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
_UNSET: Any = object()


class MonitorSources(Protocol):
    """What monitors read from serving and the registry (wired by the runtime).

    ``segments``: where the prediction log's segments are registered. The ``check_*``
    methods raise :class:`~milepost.errors.NotFound` with a hint. ``labels``: where the
    ground truth sent later is kept (:class:`~milepost.monitoring.LabelSource`, the serving
    store). ``reference_profile`` is
    the model version's stored training profile, or None. ``skew`` returns one mapping per
    feature with ``feature``, ``mismatch_share`` and ``compared``.
    """

    @property
    def segments(self) -> SegmentSource: ...

    def check_endpoint(self, name: str) -> None: ...

    def check_model_version(self, model: str, version: int) -> None: ...

    def endpoints_for(self, model: str, version: int) -> list[str]: ...

    @property
    def labels(self) -> LabelSource: ...

    def reference_profile(self, model: str, version: int) -> Any | None: ...

    def skew(
        self, endpoint: str, *, model: str | None, version: int | None, since_ms: int, until_ms: int
    ) -> list[Mapping[str, Any]]: ...


def _name(name: object) -> str:
    """A monitor name to look up (the alphabet is checked when one is created)."""
    return check.name(name, "Monitor name", max_length=128)


def _now_ms(clock: Callable[[], float]) -> int:
    return int(clock() * 1000)


class MonitorService:
    """Create, run and read monitors.

    Args:
        db: the metadata store.
        actor: who acts (recorded as ``created_by`` and in the audit trail).
        sources: serving and registry access (:class:`MonitorSources`).
        clock: epoch seconds now (``time.time``; tests inject one); ``now=`` arguments
            (an aware datetime or epoch milliseconds) override it.
    """

    actor = ActorAttribute()

    def __init__(
        self,
        db: MetadataStore,
        actor: str,
        sources: MonitorSources,
        *,
        clock: Callable[[], float] = time.time,
        webhook_timeout: float = emit.WEBHOOK_TIMEOUT,
    ) -> None:
        self.db = db
        self.actor = actor
        self.sources = sources
        self.clock = clock
        self.webhook_timeout = webhook_timeout

    # -- definitions ---------------------------------------------------------------------

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
        """Define a monitor on an endpoint (``endpoint``), one model version's rows of it
        (``endpoint`` with ``model`` and ``version``) or a model version wherever it is
        served (``model`` and ``version``).

        Raises:
            InvalidInput: a bad name, window, schedule, check or threshold name, a webhook
                that is not an http(s) URL, or no target.
            NotFound: an unknown endpoint or model version.
            AlreadyExists: a monitor of that name exists.
        """
        name = check.name(
            name,
            "Monitor name",
            max_length=128,
            pattern=_NAME,
            rule="letters, digits, '.', '_' and '-', starting with a letter or digit",
        )
        row = self._validated(
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
        now = _now_ms(self.clock)
        row.update(name=name, created_by=self.actor, created_at=now, updated_at=now)
        row["next_run_at"] = self._next(row, now)
        with self.db.write() as conn:
            if conn.execute(
                sa.select(monitors.c.monitor_id).where(monitors.c.name == name)
            ).first():
                raise AlreadyExists(
                    f"Monitor {name!r} exists already.",
                    hint=f"Change it with `milepost monitor update {name}` or pick another name.",
                )
            conn.execute(sa.insert(monitors), row)
            created = self._get(conn, name)
            append_event(
                conn,
                actor=self.actor,
                action="monitor.create",
                object_type="monitor",
                object_id=name,
                after=_rows.state(created),
            )
        return created

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
        """Change a monitor; arguments left out keep their value (``schedule=None`` makes
        it manual, ``webhook=None`` removes the webhook). A new schedule or re-enabling
        starts from the next slot after now."""
        name = _name(name)
        with self.db.write() as conn:
            before = self._get(conn, name)
            row = self._validated(
                endpoint=before.endpoint,
                model=before.model,
                version=before.version,
                checks=before.checks if checks is None else checks,
                window=before.window if window is None else window,
                schedule=before.schedule if schedule is _UNSET else schedule,
                thresholds=before.thresholds if thresholds is None else thresholds,
                webhook=before.webhook if webhook is _UNSET else webhook,
                enabled=before.enabled if enabled is None else enabled,
                check_target=False,
            )
            now = _now_ms(self.clock)
            rescheduled = row["schedule"] != before.schedule or (
                row["enabled"] and not before.enabled
            )
            row["next_run_at"] = self._next(row, now) if rescheduled else before.next_run_at
            row["updated_at"] = now
            conn.execute(sa.update(monitors).where(monitors.c.name == name).values(**row))
            after = self._get(conn, name)
            append_event(
                conn,
                actor=self.actor,
                action="monitor.update",
                object_type="monitor",
                object_id=name,
                before=_rows.state(before),
                after=_rows.state(after),
            )
        return after

    def delete(self, name: str, *, reason: str | None = None) -> None:
        """Delete a monitor with its results and alerts (audited with its definition)."""
        name = _name(name)
        reason = check.optional_text(reason, "Reason")
        with self.db.write() as conn:
            before = self._get(conn, name)
            mid = self._id(conn, name)
            conn.execute(sa.delete(alerts).where(alerts.c.monitor_id == mid))
            conn.execute(sa.delete(monitor_results).where(monitor_results.c.monitor_id == mid))
            conn.execute(sa.delete(monitors).where(monitors.c.monitor_id == mid))
            append_event(
                conn,
                actor=self.actor,
                action="monitor.delete",
                object_type="monitor",
                object_id=name,
                before=_rows.state(before),
                reason=reason,
            )

    def get(self, name: str) -> Monitor:
        """One monitor by name (NotFound names the close ones)."""
        name = _name(name)
        with self.db.read() as conn:
            return self._get(conn, name)

    def list(self) -> builtins.list[Monitor]:
        """Every monitor, by name."""
        with self.db.read() as conn:
            rows = conn.execute(sa.select(monitors).order_by(monitors.c.name)).mappings().all()
        return [_rows.to_monitor(r) for r in rows]

    # -- runs ----------------------------------------------------------------------------

    def run(self, name: str, now: datetime | int | None = None) -> MonitorRun:
        """Run a monitor once over the window ending at ``now`` (default: the clock).

        Every check's values are stored as results (one transaction, with the alerts for
        the breached ones); a check that fails is a result with status ``error`` and does
        not stop the others. Alerts are then logged and posted to the webhook.
        """
        from milepost.monitoring import _runner

        mon = self.get(name)
        now_ms = _now_ms(self.clock) if now is None else to_ms(now)
        window = _runner.read_window(self.sources, mon, Window.parse(mon.window), now_ms)
        measured = _runner.measure(self.sources, mon, window)
        run_id = uuid.uuid4().hex
        stored: builtins.list[Alert] = []
        with self.db.write() as conn:
            mid = self._id(conn, name)
            results = [
                _rows.result_row(mid, run_id, now_ms, window.start_ms, now_ms, m) for m in measured
            ]
            if results:
                conn.execute(sa.insert(monitor_results), results)
            for m in measured:
                if m.breached:
                    stored.append(self._insert_alert(conn, mon, mid, run_id, now_ms, m))
            conn.execute(
                sa.update(monitors).where(monitors.c.monitor_id == mid).values(last_run_at=now_ms)
            )
        run = MonitorRun(
            mon.name,
            run_id,
            now_ms,
            window.start_ms,
            now_ms,
            window.rows,
            [_rows.to_result(mon.name, r) for r in results],
            stored,
            {m.check: m.result for m in measured if m.result is not None},
        )
        return self._emit(mon, run)

    def due(self, now: datetime | int | None = None) -> builtins.list[Monitor]:
        """Enabled, scheduled monitors whose next slot is at or before ``now``."""
        now_ms = _now_ms(self.clock) if now is None else to_ms(now)
        with self.db.read() as conn:
            rows = (
                conn.execute(
                    sa.select(monitors)
                    .where(monitors.c.enabled.is_(True), monitors.c.next_run_at <= now_ms)
                    .order_by(monitors.c.next_run_at, monitors.c.name)
                )
                .mappings()
                .all()
            )
        return [_rows.to_monitor(r) for r in rows]

    def run_due(self, now: datetime | int | None = None) -> builtins.list[MonitorRun]:
        """Run every due monitor whose slot this call claims (see the module docstring).

        A monitor whose run fails unexpectedly is logged and skipped until its next slot;
        the others still run.
        """
        now_ms = _now_ms(self.clock) if now is None else to_ms(now)
        runs: builtins.list[MonitorRun] = []
        for mon in self.due(now_ms):
            assert mon.schedule is not None and mon.next_run_at is not None
            nxt = Schedule.parse(mon.schedule).next_after(now_ms)
            with self.db.write() as conn:
                claimed = conn.execute(
                    sa.update(monitors)
                    .where(monitors.c.name == mon.name, monitors.c.next_run_at == mon.next_run_at)
                    .values(next_run_at=nxt)
                ).rowcount
            if claimed != 1:
                continue  # another scheduler took this slot
            try:
                runs.append(self.run(mon.name, now_ms))
            except Exception:  # a broken monitor must not stop the others
                emit.LOGGER.exception("monitor %s failed to run", mon.name)
        return runs

    # -- reads ---------------------------------------------------------------------------

    def results(
        self,
        name: str,
        *,
        since: datetime | int | None = None,
        metric: str | None = None,
        feature: str | None = None,
        limit: int = 10_000,
    ) -> builtins.list[MonitorResult]:
        """A monitor's results, oldest first: the time series of each (metric, feature).

        ``since`` is an aware datetime or epoch milliseconds; ``limit`` keeps the newest that many.
        """
        name = _name(name)
        limit = check.integer(limit, "limit", minimum=1, maximum=1_000_000)
        if metric is not None:
            metric = check.name(metric, "Metric", max_length=64)
        if feature is not None:
            feature = check.name(feature, "Feature", max_length=256)
        if metric is not None and metric not in METRICS and metric not in ("rows", "error"):
            raise InvalidInput(
                f"Unknown metric {metric!r}.{did_you_mean(metric, METRICS)}",
                hint="Metrics: " + ", ".join(METRICS) + ".",
            )
        with self.db.read() as conn:
            mid = self._id(conn, name)
            q = sa.select(monitor_results).where(monitor_results.c.monitor_id == mid)
            if since is not None:
                q = q.where(monitor_results.c.run_at >= to_ms(since, "since"))
            if metric is not None:
                q = q.where(monitor_results.c.metric == metric)
            if feature is not None:
                q = q.where(monitor_results.c.feature == feature)
            q = q.order_by(monitor_results.c.run_at.desc(), monitor_results.c.result_id.desc())
            rows = conn.execute(q.limit(limit)).mappings().all()
        return [_rows.to_result(name, r) for r in reversed(rows)]

    def alerts(
        self,
        name: str | None = None,
        *,
        since: datetime | int | None = None,
        acknowledged: bool | None = None,
        limit: int = 100,
    ) -> builtins.list[Alert]:
        """Alerts, newest first: of one monitor or all, ``acknowledged`` True/False to
        filter."""
        limit = check.integer(limit, "limit", minimum=1, maximum=100_000)
        if name is not None:
            name = _name(name)
        if acknowledged is not None:
            acknowledged = check.boolean(acknowledged, "acknowledged")
        q = sa.select(alerts, monitors.c.name).join(
            monitors, monitors.c.monitor_id == alerts.c.monitor_id
        )
        with self.db.read() as conn:
            if name is not None:
                q = q.where(alerts.c.monitor_id == self._id(conn, name))
            if since is not None:
                q = q.where(alerts.c.raised_at >= to_ms(since, "since"))
            if acknowledged is not None:
                col = alerts.c.acknowledged_at
                q = q.where(col.is_not(None) if acknowledged else col.is_(None))
            q = q.order_by(alerts.c.raised_at.desc(), alerts.c.alert_id.desc()).limit(limit)
            rows = conn.execute(q).mappings().all()
        return [_rows.to_alert(r["name"], r) for r in rows]

    def acknowledge(self, alert_id: int) -> Alert:
        """Mark an alert seen (by this actor, now); acknowledging twice keeps the first."""
        alert_id = check.integer(alert_id, "alert id", minimum=1)
        with self.db.write() as conn:
            conn.execute(
                sa.update(alerts)
                .where(alerts.c.alert_id == alert_id, alerts.c.acknowledged_at.is_(None))
                .values(acknowledged_at=_now_ms(self.clock), acknowledged_by=self.actor)
            )
            row = (
                conn.execute(
                    sa.select(alerts, monitors.c.name)
                    .join(monitors, monitors.c.monitor_id == alerts.c.monitor_id)
                    .where(alerts.c.alert_id == alert_id)
                )
                .mappings()
                .first()
            )
        if row is None:
            raise NotFound(
                f"No alert {alert_id}.", hint="List them with `milepost monitor alerts`."
            )
        return _rows.to_alert(row["name"], row)

    def write_report(self, path: str | os.PathLike[str], run: MonitorRun) -> tuple[Path, Path]:
        """Write the report of a run (``<path>.html`` and ``<path>.json``): the run's
        drift result (feature drift, else prediction drift) with the monitor's stored
        results as drift and performance over time and its recent alerts
        (:func:`milepost.monitoring.write_report`).

        Raises:
            InvalidInput: the run computed no drift (an empty window, no reference, or no
                drift check).
        """
        from milepost.monitoring._run_report import write_run_report

        return write_run_report(self, path, run)

    def next_run(self, name: str) -> int | None:
        """Epoch ms of a monitor's next slot (None: manual or disabled)."""
        mon = self.get(name)
        return mon.next_run_at if mon.enabled else None

    # -- internals -----------------------------------------------------------------------

    def _validated(
        self,
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
        check_target: bool = True,
    ) -> dict[str, Any]:
        if endpoint is None and model is None:
            raise InvalidInput(
                "A monitor needs a target: an endpoint, or a model and version.",
                hint="Pass endpoint='churn-ep' (or model='churn', version=3).",
            )
        if (model is None) != (version is None):
            raise InvalidInput(
                "A model and its version go together.", hint="Pass both model= and version=."
            )
        if check_target:
            if endpoint is not None:
                endpoint = check.name(endpoint, "Endpoint name", max_length=128)
                self.sources.check_endpoint(endpoint)
            if model is not None:
                version = check.integer(version, "Model version", minimum=1)
                self.sources.check_model_version(check.name(model, "Model name"), version)
        return _rows.definition_row(
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

    @staticmethod
    def _next(row: Mapping[str, Any], now_ms: int) -> int | None:
        if row["schedule"] is None or not row["enabled"]:
            return None
        return Schedule.parse(row["schedule"]).next_after(now_ms)

    def _get(self, conn: sa.Connection, name: str) -> Monitor:
        row = conn.execute(sa.select(monitors).where(monitors.c.name == name)).mappings().first()
        if row is None:
            names = conn.execute(sa.select(monitors.c.name)).scalars().all()
            raise NotFound(
                f"No monitor named {name!r}.{did_you_mean(str(name), names)}",
                hint="List them with `milepost monitor list`.",
            )
        return _rows.to_monitor(row)

    def _id(self, conn: sa.Connection, name: str) -> int:
        mid = conn.execute(
            sa.select(monitors.c.monitor_id).where(monitors.c.name == name)
        ).scalar_one_or_none()
        if mid is None:
            self._get(conn, name)  # raises NotFound with suggestions
        return int(mid or 0)

    def _insert_alert(
        self, conn: sa.Connection, mon: Monitor, mid: int, run_id: str, now_ms: int, m: Measurement
    ) -> Alert:
        message = emit.alert_message(
            mon.name,
            m.check,
            m.metric,
            m.feature,
            m.value,
            m.threshold,
            METRICS[m.metric][0],
            m.rows,
        )
        row = {
            "monitor_id": mid,
            "run_id": run_id,
            "raised_at": now_ms,
            "check_kind": m.check,
            "metric": m.metric,
            "feature": m.feature,
            "value": m.value,
            "threshold": m.threshold,
            "message": message,
            "delivered": None,
        }
        alert_id = conn.execute(sa.insert(alerts).returning(alerts.c.alert_id), row).scalar_one()
        return _rows.to_alert(mon.name, {**row, "alert_id": alert_id})

    def _emit(self, mon: Monitor, run: MonitorRun) -> MonitorRun:
        for alert in run.alerts:
            emit.LOGGER.warning("ALERT %s", alert.message)
        if not run.alerts or mon.webhook is None:
            return run
        body = {
            "monitor": mon.name,
            "run_id": run.run_id,
            "run_at": run.run_at,
            "window_start": run.window_start,
            "window_end": run.window_end,
            "alerts": [a.to_dict() for a in run.alerts],
        }
        error = emit.post_webhook(mon.webhook, body, timeout=self.webhook_timeout)
        if error is not None:
            emit.LOGGER.warning("monitor %s: webhook %s: %s", mon.name, mon.webhook, error)
        ids = [a.alert_id for a in run.alerts]
        with self.db.write() as conn:
            conn.execute(
                sa.update(alerts)
                .where(alerts.c.alert_id.in_(ids))
                .values(delivered=error is None, delivery_error=error)
            )
        delivered = [
            Alert(**{**a.__dict__, "delivered": error is None, "delivery_error": error})
            for a in run.alerts
        ]
        return MonitorRun(**{**run.__dict__, "alerts": delivered})
