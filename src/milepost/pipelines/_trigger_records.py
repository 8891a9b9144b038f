"""The records of triggers (:class:`Trigger`, :class:`Firing`), the :class:`Launcher`
protocol, and the pure rules the service applies: the latest schedule slot and how
parameters are stored (see :mod:`milepost.pipelines.triggers` for the design)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal, Protocol

from milepost import _validate as check
from milepost._records import record_dict, short
from milepost.errors import InvalidInput
from milepost.pipelines._sources import ALERT_CHECKS

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    import sqlalchemy as sa

    from milepost.pipelines._sources import TriggerSources

__all__ = [
    "KINDS",
    "Cause",
    "Firing",
    "Launcher",
    "Trigger",
    "TriggerDefinition",
    "TriggerKind",
    "audit_state",
    "clock_ms",
    "define_trigger",
    "iso",
    "latest_slot",
    "next_cause",
    "param_text",
    "to_firing",
    "to_trigger",
]

TriggerKind = Literal["schedule", "drift", "performance", "data_volume"]
KINDS: tuple[str, ...] = ("schedule", "drift", "performance", "data_volume")

_PARAM = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


@dataclass(frozen=True)
class Trigger:
    """A stored trigger. ``spec``: ``{"cron"}``, ``{"monitor"}`` or ``{"source", "name",
    "min_rows"}``; ``state``: its cursor (``last_slot``, ``last_alert_id`` or
    ``baseline_rows`` and ``baseline_token``)."""

    name: str
    pipeline: str
    params: dict[str, str]
    kind: str
    spec: dict[str, Any]
    enabled: bool
    state: dict[str, Any]
    created_by: str
    created_at: int
    updated_at: int
    trigger_id: int

    @property
    def description(self) -> str:
        """The cause in words: ``cron 0 3 * * *``, ``drift alerts of churn-health``."""
        if self.kind == "schedule":
            return f"schedule {self.spec['cron']}"
        if self.kind in ALERT_CHECKS:
            return f"{self.kind} alerts of monitor {self.spec['monitor']}"
        what = "dataset" if self.spec["source"] == "dataset" else "feature view"
        return f"{self.spec['min_rows']:,} new rows in {what} {self.spec['name']}"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (with ``description``)."""
        return record_dict(self, exclude=("trigger_id",), extra={"description": self.description})

    def __repr__(self) -> str:
        return f"Trigger({self.name}: {self.pipeline} on {short(self.description)})"


@dataclass(frozen=True)
class Firing:
    """One time a trigger fired: why, and the pipeline run it launched (``run_id`` is
    chosen before the launch)."""

    firing_id: str
    trigger: str
    cause: str
    reason: str
    fired_at: int
    run_id: str
    status: str
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return record_dict(self)

    def __repr__(self) -> str:
        return f"Firing({self.trigger} {self.cause} -> {self.run_id} {self.status})"


class Launcher(Protocol):
    """Starts the pipeline run of a firing (in this process, or detached)."""

    def launch(self, trigger: Trigger, firing: Firing, run_id: str) -> None:
        """Start ``trigger``'s pipeline as run ``run_id`` for ``firing``; raise on failure."""


@dataclass(frozen=True)
class Cause:
    """What an evaluation found: the cause key, the reason, and the cursor after it."""

    cause: str
    reason: str
    state: dict[str, Any]


def clock_ms(clock: Callable[[], float]) -> int:
    return int(clock() * 1000)


def iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%dT%H:%MZ")


def latest_slot(cron: str, now_ms: int) -> int:
    """The latest slot of a schedule at or before ``now_ms`` (epoch ms)."""
    from milepost.monitoring.monitors import Schedule

    sched = Schedule.parse(cron)
    if sched.interval_ms is not None:
        return now_ms // sched.interval_ms * sched.interval_ms
    from croniter import croniter

    start = datetime.fromtimestamp((now_ms + 1) / 1000, tz=UTC)
    return int(croniter(sched.text, start).get_prev(float) * 1000)


def to_trigger(row: sa.RowMapping) -> Trigger:
    return Trigger(
        name=row["name"],
        pipeline=row["pipeline_ref"],
        params=json.loads(row["params_json"]),
        kind=row["kind"],
        spec=json.loads(row["spec_json"]),
        enabled=bool(row["enabled"]),
        state=json.loads(row["state_json"]),
        created_by=row["created_by"],
        created_at=int(row["created_at"]),
        updated_at=int(row["updated_at"]),
        trigger_id=int(row["trigger_id"]),
    )


def audit_state(trigger: Trigger) -> dict[str, Any]:
    """What the audit trail records of a trigger."""
    keep = ("pipeline", "params", "kind", "spec", "enabled")
    return {k: getattr(trigger, k) for k in keep}


def to_firing(row: sa.RowMapping) -> Firing:
    return Firing(
        firing_id=row["firing_id"],
        trigger=row["name"],
        cause=row["cause"],
        reason=row["reason"],
        fired_at=int(row["fired_at"]),
        run_id=row["pipeline_run_id"],
        status=row["status"],
        error=row["error"],
    )


def param_text(params: Mapping[str, Any] | None) -> dict[str, str]:
    """Parameters as the text ``--param k=v`` gives (converted by the pipeline at launch)."""
    if params is None:
        return {}
    out: dict[str, str] = {}
    for key, value in check.mapping(params, "params").items():
        if not isinstance(key, str) or not _PARAM.fullmatch(key):
            raise InvalidInput(
                f"Parameter name {check.short_repr(key)} is not an identifier.",
                hint="Parameters are named like the pipeline function's arguments.",
            )
        if isinstance(value, str):
            out[key] = value
        elif isinstance(value, bool):
            out[key] = str(value).lower()
        elif isinstance(value, (int, float)):
            out[key] = str(value)
        else:
            try:  # lists, dicts, tuples: JSON, as on the command line
                out[key] = json.dumps(value)
            except (TypeError, ValueError):
                raise InvalidInput(
                    f"Parameter {key}={check.short_repr(value)}: a trigger stores parameters "
                    f"as text, and {type(value).__name__} has no text form.",
                    hint="Give a string, number, bool or JSON-able list or dict, as on the "
                    "command line (--param k=v).",
                ) from None
    return out


@dataclass(frozen=True)
class TriggerDefinition:
    """A trigger as :meth:`TriggerService.add` takes it, checked as far as it can be
    without a store (:func:`define_trigger`).

    Attributes:
        params: the parameters as stored (the text ``--param k=v`` gives).
        spec: ``{"cron"}``, ``{"monitor"}`` or ``{"name", "min_rows"}`` (whether the name
            is a dataset or a feature view is known only to a store).
    """

    name: str
    pipeline: str
    params: dict[str, str]
    kind: TriggerKind
    spec: dict[str, Any]
    enabled: bool = True

    @property
    def description(self) -> str:
        """The cause in words: ``schedule 0 3 * * *``, ``drift alerts of monitor m``."""
        if self.kind == "schedule":
            return f"schedule {self.spec['cron']}"
        if self.kind in ALERT_CHECKS:
            return f"{self.kind} alerts of monitor {self.spec['monitor']}"
        return f"{self.spec['min_rows']:,} new rows in {self.spec['name']}"


def define_trigger(
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
) -> TriggerDefinition:
    """Check a trigger's definition without a store: what :meth:`TriggerService.add`
    checks before it asks the store (and before it imports the pipeline).

    The name, the parameters' names and text, the pipeline reference's form, exactly one
    cause, the cron expression (``"every 10m"`` too), ``min_rows`` with ``on_data``.
    ``add`` then imports the pipeline with the parameters
    (:func:`~milepost.pipelines._sources.check_pipeline_ref`) and checks that the monitor,
    dataset or feature view exists; ``milepost check project`` runs this and the
    pipeline check, with no store.

    Raises:
        InvalidInput: what is wrong, with a hint.
    """
    name = check.name(
        name,
        "Trigger name",
        max_length=128,
        pattern=_NAME,
        rule="letters, digits, '.', '_' and '-', starting with a letter or digit",
    )
    enabled = check.boolean(enabled, "enabled")
    text = param_text(params)
    ref = check.name(pipeline, "Pipeline reference", max_length=512)
    given = {
        "schedule": schedule,
        "on_drift": on_drift,
        "on_performance": on_performance,
        "on_data": on_data,
    }
    chosen = [k for k, v in given.items() if v is not None]
    if len(chosen) != 1:
        raise InvalidInput(
            "A trigger needs exactly one cause"
            + (f"; got {', '.join(chosen)}." if chosen else "; got none."),
            hint="Pass one of schedule='0 3 * * *', on_drift=MONITOR, "
            "on_performance=MONITOR or on_data=DATASET with min_rows=N.",
        )
    if min_rows is not None and on_data is None:
        raise InvalidInput(
            "min_rows goes with on_data (a data-volume trigger).",
            hint="Drop min_rows, or pass on_data=DATASET_OR_VIEW.",
        )
    kind: TriggerKind
    spec: dict[str, Any]
    if schedule is not None:
        from milepost.monitoring.monitors import Schedule

        kind, spec = "schedule", {"cron": Schedule.parse(schedule).text}
    elif on_drift is not None or on_performance is not None:
        kind = "drift" if on_drift is not None else "performance"
        monitor = check.name(on_drift or on_performance, "Monitor name", max_length=128)
        spec = {"monitor": monitor}
    else:
        source = check.name(on_data, "Dataset or feature view name")
        if min_rows is None:
            raise InvalidInput(
                f"A data-volume trigger on {source!r} needs min_rows: how many new rows fire it.",
                hint="For example min_rows=1000 (--min-rows 1000).",
            )
        rows = check.integer(min_rows, "min_rows", minimum=1)
        kind, spec = "data_volume", {"name": source, "min_rows": rows}
    return TriggerDefinition(name, ref, text, kind, spec, enabled)


def next_cause(trigger: Trigger, now_ms: int, sources: TriggerSources) -> Cause | None:
    """The cause that fires ``trigger`` at ``now_ms``, with its reason and the cursor after
    it, or None (see :mod:`milepost.pipelines.triggers` for each kind's rule)."""
    if trigger.kind == "schedule":
        slot = latest_slot(trigger.spec["cron"], now_ms)
        if slot <= int(trigger.state.get("last_slot", 0)):
            return None
        return Cause(
            f"slot:{iso(slot)}",
            f"schedule {trigger.spec['cron']}: slot {iso(slot)} (UTC) came",
            {**trigger.state, "last_slot": slot},
        )
    if trigger.kind in ALERT_CHECKS:
        monitor = trigger.spec["monitor"]
        seen = int(trigger.state.get("last_alert_id", 0))
        new = sources.alerts_after(monitor, seen, trigger.kind)
        if not new:
            return None
        newest = max(new, key=lambda a: a.alert_id)
        message = newest.message.removeprefix(f"monitor={monitor} ")
        reason = f"monitor {monitor} raised alert {newest.alert_id}: {message}"
        others = sorted(a.alert_id for a in new if a is not newest)
        if others:
            reason += f" (with alert{'s' if len(others) > 1 else ''} "
            reason += ", ".join(map(str, others)) + ", one firing for all)"
        return Cause(
            f"alert:{newest.alert_id}",
            reason,
            {**trigger.state, "last_alert_id": newest.alert_id},
        )
    spec = trigger.spec
    count = sources.row_count(spec["source"], spec["name"])
    baseline = int(trigger.state.get("baseline_rows", 0))
    added = count.rows - baseline
    if added < int(spec["min_rows"]):
        return None
    what = "dataset" if spec["source"] == "dataset" else "feature view"
    return Cause(
        f"rows:{spec['name']}@{count.token}",
        f"{added:,} new rows in {what} {spec['name']} ({count.rows:,} at "
        f"{count.token}, baseline {baseline:,}) reached min_rows {spec['min_rows']:,}",
        {**trigger.state, "baseline_rows": count.rows, "baseline_token": count.token},
    )
