"""Triggers: when to launch a pipeline, and the record of every time one fired.

A **trigger** attaches a pipeline (``module:attr`` with parameters) to a cause:

- ``schedule``: a cron expression in UTC (``"0 3 * * *"``) or ``"every 10m"``, read by
  :class:`milepost.monitoring.Schedule` so monitors and triggers share one syntax. It
  fires for the latest slot at or before now that it has not fired for. Slots missed
  while no scheduler ran fire **once**, for the latest slot (Airflow's
  ``catchup=False``); slots before the trigger existed never fire.
- ``drift`` / ``performance``: an alert of a monitor's drift checks (feature_drift,
  prediction_drift, multivariate, skew) or performance check raised after the trigger was
  created. Alerts arriving together fire once, for the newest, and the reason names the
  others: one retrain, not five.
- ``data_volume``: at least ``min_rows`` new rows in a dataset or feature view since the
  baseline (the count when the trigger was created or last fired; how rows are counted:
  :mod:`milepost.pipelines._sources`).

Each firing is a row of ``trigger_firings`` with its **cause** (``slot:2026-11-30T03:00Z``,
``alert:17``, ``rows:customers@4``, ``manual:<uuid>``) and a **reason** in words.
UNIQUE(trigger_id, cause) makes the database guarantee that a cause fires once, however
many schedulers race; the trigger's cursor (``state``) moves by compare-and-set in the
same transaction, so a cursor and its firing are written together or not at all. A state
survives restarts because it lives in the metadata store.

Validation happens at :meth:`TriggerService.add`, not at 3 a.m.: the pipeline imports and
takes the parameters, the cron parses, the monitor exists and has a check of the right
kind, the dataset or view exists. Creating, removing, enabling and disabling a trigger
and firing one by hand are audited (``trigger.create``, ``trigger.delete``,
``trigger.enable``, ``trigger.disable``, ``trigger.fire``).

A firing's status: ``pending`` (written, launch not yet done: a scheduler that died there
leaves it so), ``launched``, ``launch_failed`` (with the error; a cause is not retried),
then, when read, the pipeline run's own status (``running``, ``succeeded``, ``failed``).
Parameters are stored as the text a ``--param k=v`` gives and converted by the pipeline's
annotations at every launch, inline or in a subprocess alike.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from milepost import _validate as check
from milepost._actor import ActorAttribute
from milepost.errors import AlreadyExists, InvalidInput, MilepostError, NotFound, did_you_mean
from milepost.pipelines._sources import ALERT_CHECKS
from milepost.pipelines._trigger_records import (
    KINDS,
    Cause,
    Firing,
    Launcher,
    Trigger,
    TriggerDefinition,
    audit_state,
    clock_ms,
    define_trigger,
    latest_slot,
    next_cause,
    to_firing,
    to_trigger,
)
from milepost.stores import _sql
from milepost.stores.audit import append_event
from milepost.stores.schema import pipeline_triggers, trigger_firings

if TYPE_CHECKING:
    import builtins
    from collections.abc import Callable, Mapping

    from milepost.pipelines._sources import TriggerSources
    from milepost.pipelines.scheduler import Lease
    from milepost.stores.metadata import MetadataStore

__all__ = [
    "KINDS",
    "Cause",
    "Firing",
    "Launcher",
    "Trigger",
    "TriggerDefinition",
    "TriggerService",
    "define_trigger",
    "latest_slot",
]


class TriggerService:
    """Add, list, remove, enable, disable and fire triggers; evaluate their causes.

    Args:
        db: the metadata store.
        actor: who acts (``created_by``, the audit trail).
        sources: pipelines, monitors, datasets and feature views
            (:class:`~milepost.pipelines._sources.TriggerSources`).
        clock: epoch seconds now (tests inject one).
        launcher: the launcher :meth:`fire` uses by default (``name`` -> Launcher:
            ``"inline"`` or ``"subprocess"``).
        run_status: a pipeline run id -> its status, or None when unknown (firings read
            their run's status through it).
    """

    actor = ActorAttribute()

    def __init__(
        self,
        db: MetadataStore,
        actor: str,
        sources: TriggerSources,
        *,
        clock: Callable[[], float] = time.time,
        launcher: Callable[[str], Launcher] | None = None,
        run_status: Callable[[str], str | None] | None = None,
    ) -> None:
        self.db = db
        self.actor = actor
        self.sources = sources
        self.clock = clock
        self._launcher = launcher
        self._run_status = run_status

    # -- definitions -----------------------------------------------------------------------

    def add(
        self,
        name: str,
        pipeline: str,
        *,
        params: Mapping[str, Any] | None = None,
        schedule: str | None = None,
        on_drift: str | None = None,
        on_performance: str | None = None,
        on_data: str | None = None,
        min_rows: int | None = None,
        enabled: bool = True,
    ) -> Trigger:
        """Define a trigger launching ``pipeline`` with ``params`` on exactly one cause.

        Args:
            name: the trigger's name (letters, digits, ``.``, ``_``, ``-``).
            pipeline: ``package.module:attr`` of a pipeline.
            params: its parameters, as values or as the text ``--param k=v`` gives.
            schedule: a cron expression in UTC or ``"every 10m"``.
            on_drift: a monitor whose drift alerts fire the trigger.
            on_performance: a monitor whose performance alerts fire the trigger.
            on_data: a dataset or feature view; fires at ``min_rows`` new rows.
            min_rows: with ``on_data``, the rows that make a firing (>= 1).
            enabled: whether the scheduler evaluates it.

        Raises:
            InvalidInput: a bad name, not exactly one cause, a pipeline that cannot be
                imported or does not take the parameters, a bad cron, a monitor without a
                check of the kind, a bad ``min_rows``.
            NotFound: an unknown monitor, dataset or feature view.
            AlreadyExists: a trigger of that name exists.
        """
        definition = define_trigger(
            name,
            pipeline,
            params=params,
            schedule=schedule,
            on_drift=on_drift,
            on_performance=on_performance,
            on_data=on_data,
            min_rows=min_rows,
            enabled=enabled,
        )
        name, kind, spec = definition.name, definition.kind, dict(definition.spec)
        text, enabled = definition.params, definition.enabled
        if kind in ALERT_CHECKS:
            self.sources.check_monitor(spec["monitor"], kind)
        elif kind == "data_volume":
            spec = {"source": self.sources.data_kind(spec["name"]), **spec}
        ref = self.sources.check_pipeline(definition.pipeline, text)
        now = clock_ms(self.clock)
        state = self._initial_state(kind, spec, now)
        row = {
            "name": name,
            "pipeline_ref": ref,
            "params_json": json.dumps(text, sort_keys=True),
            "kind": kind,
            "spec_json": json.dumps(spec, sort_keys=True),
            "enabled": enabled,
            "state_json": json.dumps(state, sort_keys=True),
            "created_by": self.actor,
            "created_at": now,
            "updated_at": now,
        }
        with self.db.write() as conn:
            if self._row(conn, name) is not None:
                raise AlreadyExists(
                    f"Trigger {name!r} exists already.",
                    hint=f"Remove it with `milepost triggers remove {name}` or pick another name.",
                )
            conn.execute(sa.insert(pipeline_triggers), row)
            created = self._get(conn, name)
            append_event(
                conn,
                actor=self.actor,
                action="trigger.create",
                object_type="trigger",
                object_id=name,
                after=audit_state(created),
            )
        return created

    def get(self, name: str) -> Trigger:
        """One trigger by name (NotFound names the close ones)."""
        name = check.name(name, "Trigger name", max_length=128)
        with self.db.read() as conn:
            return self._get(conn, name)

    def lease(self) -> Lease | None:
        """Which scheduler holds the lease that evaluates these triggers, and until when
        (None: no scheduler ever ran on this store)."""
        from milepost.pipelines.scheduler import read_lease

        return read_lease(self.db)

    def list(self) -> builtins.list[Trigger]:
        """Every trigger, by name."""
        with self.db.read() as conn:
            rows = conn.execute(sa.select(pipeline_triggers).order_by(pipeline_triggers.c.name))
            return [to_trigger(r) for r in rows.mappings()]

    def remove(self, name: str, *, reason: str | None = None) -> None:
        """Delete a trigger and its firings (audited with its definition)."""
        name = check.name(name, "Trigger name", max_length=128)
        reason = check.optional_text(reason, "Reason")
        with self.db.write() as conn:
            before = self._get(conn, name)
            tid = before.trigger_id
            conn.execute(sa.delete(trigger_firings).where(trigger_firings.c.trigger_id == tid))
            conn.execute(sa.delete(pipeline_triggers).where(pipeline_triggers.c.trigger_id == tid))
            append_event(
                conn,
                actor=self.actor,
                action="trigger.delete",
                object_type="trigger",
                object_id=name,
                before=audit_state(before),
                reason=reason,
            )

    def enable(self, name: str) -> Trigger:
        """Evaluate the trigger again. Its cursor starts from now: what happened while it
        was disabled (slots, alerts, rows) does not fire it."""
        return self._set_enabled(name, True)

    def disable(self, name: str) -> Trigger:
        """Stop evaluating the trigger (its definition and firings stay)."""
        return self._set_enabled(name, False)

    # -- firings ---------------------------------------------------------------------------

    def fire(
        self, name: str, *, reason: str | None = None, launcher: Launcher | str | None = None
    ) -> Firing:
        """Fire a trigger by hand (cause ``manual:<uuid>``) and launch its pipeline like
        any firing; returns the firing (``launch_failed`` with the error if it failed).

        ``launcher``: a :class:`Launcher`, ``"inline"`` or ``"subprocess"`` (default: the
        service's). A manual firing does not move the trigger's cursor.
        """
        reason = check.optional_text(reason, "Reason", max_length=2000)
        trigger = self.get(name)
        launch = self._resolve_launcher(launcher)
        why = f"fired by hand by {self.actor}" + (f": {reason}" if reason else "")
        with self.db.write() as conn:
            firing = self._insert_firing(conn, trigger, f"manual:{uuid.uuid4().hex}", why)
            assert firing is not None  # a fresh uuid cannot clash
            append_event(
                conn,
                actor=self.actor,
                action="trigger.fire",
                object_type="trigger",
                object_id=trigger.name,
                after={"firing": firing.firing_id, "run_id": firing.run_id},
                reason=reason,
            )
        return self.launch(trigger, firing, launch)

    def firings(self, name: str | None = None, *, limit: int = 50) -> builtins.list[Firing]:
        """Firings, newest first (of one trigger or all), with their run's status."""
        limit = check.integer(limit, "limit", minimum=1, maximum=100_000)
        q = sa.select(trigger_firings, pipeline_triggers.c.name).join(
            pipeline_triggers, pipeline_triggers.c.trigger_id == trigger_firings.c.trigger_id
        )
        with self.db.read() as conn:
            if name is not None:
                trigger = self._get(conn, check.name(name, "Trigger name", max_length=128))
                q = q.where(trigger_firings.c.trigger_id == trigger.trigger_id)
            q = q.order_by(trigger_firings.c.fired_at.desc(), trigger_firings.c.firing_id)
            rows = conn.execute(q.limit(limit)).mappings().all()
        return [self._refreshed(to_firing(r)) for r in rows]

    def get_firing(self, firing_id: str) -> Firing:
        """One firing by id."""
        firing_id = check.name(firing_id, "Firing id", max_length=32)
        with self.db.read() as conn:
            row = (
                conn.execute(
                    sa.select(trigger_firings, pipeline_triggers.c.name)
                    .join(
                        pipeline_triggers,
                        pipeline_triggers.c.trigger_id == trigger_firings.c.trigger_id,
                    )
                    .where(trigger_firings.c.firing_id == firing_id)
                )
                .mappings()
                .first()
            )
        if row is None:
            raise NotFound(
                f"No firing {firing_id!r}.", hint="List them with `milepost triggers firings`."
            )
        return self._refreshed(to_firing(row))

    # -- evaluation (the scheduler's side) --------------------------------------------------

    def evaluate(self, trigger: Trigger, now_ms: int) -> Cause | None:
        """The cause that fires ``trigger`` now, with its reason and the cursor after it,
        or None. Reads only; :meth:`record` writes."""
        return next_cause(trigger, now_ms, self.sources)

    def record(self, trigger: Trigger, cause: Cause) -> Firing | None:
        """Write a firing for ``cause`` and move the trigger's cursor, in one transaction.

        Returns None (and writes nothing) when another evaluator moved the cursor first or
        the cause has fired already.
        """
        now = clock_ms(self.clock)
        with self.db.write() as conn:
            moved = conn.execute(
                sa.update(pipeline_triggers)
                .where(
                    pipeline_triggers.c.trigger_id == trigger.trigger_id,
                    pipeline_triggers.c.state_json == json.dumps(trigger.state, sort_keys=True),
                )
                .values(state_json=json.dumps(cause.state, sort_keys=True), updated_at=now)
            ).rowcount
            if moved != 1:
                return None
            return self._insert_firing(conn, trigger, cause.cause, cause.reason)

    def launch(self, trigger: Trigger, firing: Firing, launcher: Launcher) -> Firing:
        """Launch a recorded firing; ``launched``, or ``launch_failed`` with the error (a
        cause is not retried)."""
        status, error = "launched", None
        try:
            launcher.launch(trigger, firing, firing.run_id)
        except Exception as exc:  # any failure to start is the firing's, not the caller's
            status = "launch_failed"
            error = (
                exc.message if isinstance(exc, MilepostError) else f"{type(exc).__name__}: {exc}"
            )
        with self.db.write() as conn:
            conn.execute(
                sa.update(trigger_firings)
                .where(
                    trigger_firings.c.firing_id == firing.firing_id,
                    trigger_firings.c.status == "pending",
                )
                .values(status=status, error=error)
            )
        return self._refreshed(replace(firing, status=status, error=error))

    def expire_pending(self, now_ms: int, older_than_ms: int) -> builtins.list[Firing]:
        """Mark ``launch_failed`` the firings left ``pending`` (written, never launched:
        their scheduler died in between) for longer than ``older_than_ms`` whose run was
        never registered. Needs the pipeline runs (``run_status``); returns those marked."""
        if self._run_status is None:
            return []
        q = (
            sa.select(trigger_firings, pipeline_triggers.c.name)
            .join(pipeline_triggers, pipeline_triggers.c.trigger_id == trigger_firings.c.trigger_id)
            .where(
                trigger_firings.c.status == "pending",
                trigger_firings.c.fired_at < now_ms - older_than_ms,
            )
        )
        with self.db.read() as conn:
            stale = [to_firing(r) for r in conn.execute(q).mappings()]
        marked = []
        for firing in stale:
            try:
                self._run_status(firing.run_id)
                continue  # its run exists: it was launched (an inline run still going)
            except NotFound:
                pass
            error = "its scheduler stopped before launching it (no run was registered)"
            with self.db.write() as conn:
                done = conn.execute(
                    sa.update(trigger_firings)
                    .where(
                        trigger_firings.c.firing_id == firing.firing_id,
                        trigger_firings.c.status == "pending",
                    )
                    .values(status="launch_failed", error=error)
                ).rowcount
            if done == 1:
                marked.append(replace(firing, status="launch_failed", error=error))
        return marked

    # -- internals -------------------------------------------------------------------------

    def _initial_state(self, kind: str, spec: Mapping[str, Any], now_ms: int) -> dict[str, Any]:
        """The cursor at creation (or re-enabling): nothing before now fires."""
        if kind == "schedule":
            return {"last_slot": latest_slot(spec["cron"], now_ms)}
        if kind in ALERT_CHECKS:
            return {"last_alert_id": self.sources.last_alert_id(spec["monitor"])}
        count = self.sources.row_count(spec["source"], spec["name"])
        return {"baseline_rows": count.rows, "baseline_token": count.token}

    def _set_enabled(self, name: str, enabled: bool) -> Trigger:
        name = check.name(name, "Trigger name", max_length=128)
        before = self.get(name)
        if before.enabled == enabled:
            return before
        state = self._initial_state(before.kind, before.spec, clock_ms(self.clock))
        with self.db.write() as conn:
            conn.execute(
                sa.update(pipeline_triggers)
                .where(pipeline_triggers.c.trigger_id == before.trigger_id)
                .values(
                    enabled=enabled,
                    state_json=json.dumps(state if enabled else before.state, sort_keys=True),
                    updated_at=clock_ms(self.clock),
                )
            )
            after = self._get(conn, name)
            append_event(
                conn,
                actor=self.actor,
                action="trigger.enable" if enabled else "trigger.disable",
                object_type="trigger",
                object_id=name,
                before=audit_state(before),
                after=audit_state(after),
            )
        return after

    def _insert_firing(
        self, conn: sa.Connection, trigger: Trigger, cause: str, reason: str
    ) -> Firing | None:
        firing = Firing(
            firing_id=uuid.uuid4().hex,
            trigger=trigger.name,
            cause=cause,
            reason=reason,
            fired_at=clock_ms(self.clock),
            run_id=uuid.uuid4().hex,
            status="pending",
        )
        inserted = conn.execute(
            _sql.insert_for(conn, trigger_firings)
            .values(
                firing_id=firing.firing_id,
                trigger_id=trigger.trigger_id,
                cause=cause,
                reason=reason,
                fired_at=firing.fired_at,
                pipeline_run_id=firing.run_id,
                status="pending",
            )
            .on_conflict_do_nothing(index_elements=["trigger_id", "cause"])
            .returning(trigger_firings.c.firing_id)  # rowcount is not reliable here on psycopg
        ).first()
        return firing if inserted is not None else None

    def _resolve_launcher(self, launcher: Launcher | str | None) -> Launcher:
        if launcher is not None and not isinstance(launcher, str):
            return launcher
        if self._launcher is None:
            raise InvalidInput(
                "This trigger service has no launcher to start pipelines with.",
                hint="Pass launcher= (a Launcher), or use the runtime's `rt.triggers`.",
            )
        return self._launcher(launcher or "subprocess")

    def _refreshed(self, firing: Firing) -> Firing:
        if self._run_status is None or firing.status not in ("pending", "launched"):
            return firing
        try:
            status = self._run_status(firing.run_id)
        except MilepostError:
            return firing
        return firing if status is None else replace(firing, status=status)

    def _row(self, conn: sa.Connection, name: str) -> sa.RowMapping | None:
        return (
            conn.execute(sa.select(pipeline_triggers).where(pipeline_triggers.c.name == name))
            .mappings()
            .first()
        )

    def _get(self, conn: sa.Connection, name: str) -> Trigger:
        row = self._row(conn, name)
        if row is None:
            names = conn.execute(sa.select(pipeline_triggers.c.name)).scalars().all()
            raise NotFound(
                f"No trigger named {name!r}.{did_you_mean(name, names)}",
                hint="List them with `milepost triggers list`.",
            )
        return to_trigger(row)
