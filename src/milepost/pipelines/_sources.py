"""What triggers read from the other capabilities: pipelines, monitors, datasets and feature
views.

:class:`TriggerSources` is the small surface the trigger service and the scheduler need;
:class:`RuntimeSources` implements it on the services (the runtime wires it). A test may
pass an in-memory implementation of the Protocol.

**Row counts for data-volume triggers.** A *dataset* counts the rows of its newest
version (versions are whole snapshots, so "rows added" is the newest version's count
minus the baseline; a version with fewer rows adds none); its token is the version number,
so the cause reads ``rows:customers@4``. A *feature view* counts the rows of its newest
active version's source: a dataset source as above (token: the dataset's version), a push
source or Parquet files by summing the Parquet footers' row counts (no data is read;
token: the count itself, ``rows:clicks@12000``). On-demand views have no rows of their
own and are refused at ``add``. Materialized rows are not counted: materialization
writes the latest row per entity online, which says nothing about new training data.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol

from milepost.errors import InvalidInput, NotFound, did_you_mean

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

    from milepost.data.service import DataService
    from milepost.features.service import FeatureService
    from milepost.monitoring.monitors import Alert
    from milepost.monitoring.service import MonitorService
    from milepost.pipelines.service import PipelineService
    from milepost.serving.service import DeploymentService
    from milepost.tracking.service import TrackingService

__all__ = [
    "ALERT_CHECKS",
    "CANARY_LEASE_SECONDS",
    "PRUNE_EVERY_MS",
    "DataKind",
    "PruneLogs",
    "RowCount",
    "RuntimeSources",
    "TriggerSources",
    "check_pipeline_ref",
    "orphan_canaries",
    "reap_pipeline_runs",
    "reap_tracking_runs",
    "run_due_monitors",
]

#: The monitor checks whose alerts each alert-driven trigger kind listens to.
ALERT_CHECKS: dict[str, tuple[str, ...]] = {
    "drift": ("feature_drift", "prediction_drift", "multivariate", "skew"),
    "performance": ("performance",),
}

DataKind = Literal["dataset", "feature_view"]


@dataclass(frozen=True)
class RowCount:
    """How many rows a data source holds now, and the token naming that state (a dataset
    version number, or the count itself for a feature view's files)."""

    kind: DataKind
    name: str
    rows: int
    token: str


class TriggerSources(Protocol):
    """What triggers need from pipelines, monitoring, data and features."""

    def check_pipeline(self, ref: str, params: Mapping[str, str]) -> str:
        """The pipeline's canonical ``module:attr`` after checking that ``ref`` imports, is a
        pipeline and takes ``params`` (InvalidInput naming what is wrong)."""

    def check_monitor(self, name: str, kind: str) -> None:
        """NotFound for an unknown monitor; InvalidInput when it has no check of ``kind``
        (``drift`` or ``performance``)."""

    def alerts_after(self, monitor: str, after_id: int, kind: str) -> list[Alert]:
        """The monitor's alerts of checks of ``kind`` with an id above ``after_id``, newest
        first."""

    def last_alert_id(self, monitor: str) -> int:
        """The highest alert id of the monitor (0: none yet)."""

    def data_kind(self, name: str) -> DataKind:
        """``dataset`` or ``feature_view`` (a dataset wins a name both have); NotFound
        naming close names, InvalidInput for an on-demand view."""

    def row_count(self, kind: DataKind, name: str) -> RowCount:
        """The rows the dataset or feature view holds now."""


def check_pipeline_ref(ref: str, params: Mapping[str, str]) -> str:
    """The pipeline's canonical ``module:attr`` after checking that ``ref`` imports, is a
    pipeline and takes ``params`` (the text ``--param k=v`` gives); no store is needed.

    Raises:
        InvalidInput: naming what is wrong (the import error, a missing or unknown
            parameter, a value that does not parse).
    """
    from milepost.pipelines.dag import load_pipeline

    pipe = load_pipeline(ref)
    pipe.parse_params(dict(params))
    return str(pipe.ref)


class RuntimeSources:
    """:class:`TriggerSources` on the services (each reached on first use).

    Args:
        monitors, data, features: callables returning the services (so a trigger that
            only reads a schedule never builds the feature store).
    """

    def __init__(
        self,
        *,
        monitors: Callable[[], MonitorService],
        data: Callable[[], DataService],
        features: Callable[[], FeatureService],
    ) -> None:
        self._monitors = monitors
        self._data = data
        self._features = features

    # -- pipelines -------------------------------------------------------------------------

    def check_pipeline(self, ref: str, params: Mapping[str, str]) -> str:
        return check_pipeline_ref(ref, params)

    # -- monitors --------------------------------------------------------------------------

    def check_monitor(self, name: str, kind: str) -> None:
        mon = self._monitors().get(name)
        wanted = ALERT_CHECKS[kind]
        if not any(c in wanted for c in mon.checks):
            raise InvalidInput(
                f"Monitor {name!r} has no {kind} check (its checks: {', '.join(mon.checks)}), "
                f"so it never raises the alerts a {kind} trigger waits for.",
                hint=f"Add one of {', '.join(wanted)} with `milepost monitor update {name} "
                f"--check ...`, or pick another monitor.",
            )

    def alerts_after(self, monitor: str, after_id: int, kind: str) -> list[Alert]:
        wanted = ALERT_CHECKS[kind]
        found = self._monitors().alerts(monitor, limit=1000)
        return [a for a in found if a.alert_id > after_id and a.check in wanted]

    def last_alert_id(self, monitor: str) -> int:
        found = self._monitors().alerts(monitor, limit=1)
        return found[0].alert_id if found else 0

    # -- data ------------------------------------------------------------------------------

    def data_kind(self, name: str) -> DataKind:
        datasets = [d.name for d in self._data().list_datasets()]
        if name in datasets:
            return "dataset"
        records = self._features().records(fresh=True)
        views = [r for r in records if r.name == name and r.status == "active"]
        if views:
            if max(views, key=lambda r: r.version).kind != "feature_view":
                raise InvalidInput(
                    f"{name!r} is an on-demand feature view: it computes features at request "
                    "time and holds no rows to count.",
                    hint="Watch the dataset or feature view it reads from instead.",
                )
            return "feature_view"
        names = sorted({*datasets, *(r.name for r in records)})
        raise NotFound(
            f"No dataset or feature view named {name!r}.{did_you_mean(name, names)}",
            hint="List them with `milepost data list` and `milepost features list`.",
        )

    def row_count(self, kind: DataKind, name: str) -> RowCount:
        if kind == "dataset":
            version = self._data().get(name)
            return RowCount(kind, name, int(version.num_rows), str(version.version))
        features = self._features()
        records = [
            r
            for r in features.records(fresh=True)
            if r.name == name and r.status == "active" and r.kind == "feature_view"
        ]
        if not records:
            raise NotFound(
                f"Feature view {name!r} has no active version.",
                hint="Apply its definition with `milepost features apply`.",
            )
        newest = max(records, key=lambda r: r.version)
        source = dict(newest.definition.get("source") or {})
        if source.get("kind") == "dataset":
            version = self._data().get(str(source["ref"]))
            return RowCount(kind, name, int(version.num_rows), str(version.version))
        rows = _parquet_rows(features, source)
        return RowCount(kind, name, rows, str(rows))


def _parquet_rows(features: FeatureService, source: Mapping[str, Any]) -> int:
    """Rows of a push source's segments or a file source's Parquet files, from footers."""
    import pyarrow.parquet as pq

    from milepost.features.definitions import FileSource, PushSource

    src: FileSource | PushSource
    if source.get("kind") == "push":
        src = PushSource(str(source["name"]))
    elif source.get("kind") == "file":
        src = FileSource(str(source["path"]))
    else:
        raise InvalidInput(
            f"A feature view source of kind {source.get('kind')!r} cannot be counted.",
            hint="Data-volume triggers count dataset, push and Parquet file sources.",
        )
    files: Sequence[Any] = features.offline.source_files(src)[0]
    return sum(int(pq.ParquetFile(f).metadata.num_rows) for f in files)


# -- periodic work the scheduler runs ------------------------------------------------------

#: How long the scheduler holds an endpoint's controller lease when it advances a canary
#: (as long as the model server's own controller holds it).
CANARY_LEASE_SECONDS = 10.0


def run_due_monitors(monitors: MonitorService, now_ms: int) -> list[str]:
    """Run the monitors due now (each slot claimed once); one line per run."""
    return [
        f"{r.monitor}: {r.status} · {r.rows:,} rows · {len(r.alerts)} alert(s)"
        for r in monitors.run_due(now_ms)
    ]


def reap_tracking_runs(tracking: TrackingService) -> list[str]:
    """Mark KILLED the RUNNING tracking runs whose process is gone; one line per run."""
    return [f"run {s.run_id} marked killed: {s.reason}" for s in tracking.reap_stale_runs()]


def reap_pipeline_runs(pipelines: PipelineService) -> list[str]:
    """End ``failed`` the RUNNING pipeline runs whose process is gone; one line per run."""
    return [
        f"pipeline run {r.run_id} ({r.pipeline}) marked failed: {r.error}"
        for r in pipelines.reap_stale()
    ]


PRUNE_EVERY_MS = 3_600_000  # prediction-log retention is counted in days: hourly is plenty


class PruneLogs:
    """The scheduler's retention work: prune the prediction logs at most once per
    ``every_ms`` (reading old segments costs I/O; retention is counted in days)."""

    def __init__(self, serving: Callable[[], DeploymentService], every_ms: int = PRUNE_EVERY_MS):
        self._serving = serving
        self.every_ms = every_ms
        self._last: int | None = None

    def __call__(self, now_ms: int) -> list[str]:
        """One line when something was deleted."""
        if self._last is not None and now_ms - self._last < self.every_ms:
            return []
        settings = self._serving().settings
        if (
            settings.prediction_log_retention_days is None
            and settings.decision_retention_days is None
        ):
            return []
        report = self._serving().prune_prediction_logs(now=now_ms)
        self._last = now_ms
        if not report.segments:
            return []
        return [
            f"pruned {report.segments} prediction-log segment(s) ({report.rows:,} rows, "
            f"{report.decision_segments} with decision records, {report.feedback} label(s))"
        ]


def orphan_canaries(serving: DeploymentService, holder: str) -> list[str]:
    """One controller step for every canary in progress whose controller is gone.

    The model server (``milepost endpoints serve``) runs an endpoint's canary controller
    while it holds the endpoint's controller lease, which it renews on every step (a
    10-second lease). A controller is **gone** when that lease has expired (or was never
    taken): no server of the endpoint is stepping its canary. The scheduler then takes the
    lease itself (so a server that comes back waits for it, and two schedulers never step
    together) and calls :meth:`DeploymentService.tick`, which is safe from several
    processes. Holds are not reported; advances, promotions and rollbacks are.
    """
    lines = []
    for name in serving.list_endpoints():
        spec, _ = serving.get(name)
        ro = spec.rollout
        if ro is None or ro.kind != "canary" or ro.status != "progressing":
            continue
        if not serving.store.take_lease(name, holder, CANARY_LEASE_SECONDS):
            continue  # a live controller holds it
        decision = serving.tick(name)
        if decision.action not in ("none", "hold"):
            lines.append(f"canary {name}: {decision.action}: {decision.reason}")
    return lines
