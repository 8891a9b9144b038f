"""Tracking on the metadata database (SQLite or PostgreSQL) through SQLAlchemy Core."""

from __future__ import annotations

import base64
import hashlib
import json
import math
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from milepost.errors import AlreadyExists, Conflict, InvalidInput, NotFound
from milepost.stores import _sql
from milepost.stores.audit import append_event
from milepost.stores.schema import (
    artifacts,
    environments,
    experiments,
    latest_metrics,
    metrics,
    params,
    run_tags,
    runs,
)
from milepost.tracking.backends._search import filter_error, search_query
from milepost.tracking.models import (
    ArtifactInfo,
    Environment,
    Experiment,
    Metric,
    Run,
    RunStatus,
)

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence

    from sqlalchemy.engine import Connection

    from milepost.stores.metadata import MetadataStore
    from milepost.tracking._filter import Comparison, OrderTerm
    from milepost.tracking.environment import EnvironmentInfo

__all__ = ["METRIC_ERRORS_TAG", "MetricRow", "RunOwner", "SqlTrackingStore"]

#: The run tag counting metric values the database refused (see ``record_metric_errors``).
METRIC_ERRORS_TAG = "milepost.metric_errors"

# (run_id, experiment_id, key, value, timestamp_ms, step)
MetricRow = tuple[str, int, str, float, int, int]

_INSERT_RUN = sa.insert(runs)
_METRIC_COLUMNS = ("run_id", "key", "value", "timestamp", "step")


@dataclass(frozen=True, slots=True)
class RunOwner:
    """Who runs a RUNNING run: the owning process and its last heartbeat (what stale-run
    detection looks at)."""

    run_id: str
    owner_host: str | None
    owner_pid: int | None
    owner_started: float | None
    heartbeat_at: int | None
    start_time: int


def now_ms() -> int:
    """Milliseconds since the epoch."""
    return int(time.time() * 1000)


def _experiment(row: sa.RowMapping) -> Experiment:
    return Experiment(
        experiment_id=int(row["experiment_id"]),
        name=row["name"],
        lifecycle_stage=row["lifecycle_stage"],
        description=row["description"],
        created_by=row["created_by"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


def _float(value: float | None) -> float:
    return math.nan if value is None else float(value)


def _db_float(value: float) -> float | None:
    return None if math.isnan(value) else value


class SqlTrackingStore:
    """Experiments, runs, params, tags, metrics and artifact records in one database.

    Every state change that matters for governance (experiment lifecycle, run start and
    end) appends an audit event in the same transaction.
    """

    def __init__(self, db: MetadataStore) -> None:
        self.db = db
        self._known_envs: set[str] = set()

    # -- experiments ----------------------------------------------------------------

    def create_experiment(self, name: str, *, description: str | None, actor: str) -> Experiment:
        """Create an experiment. Raises AlreadyExists (naming a deleted one too)."""
        now = now_ms()
        with self.db.write() as conn:
            existing = self._experiment_row(conn, name=name)
            if existing is not None:
                if existing["lifecycle_stage"] == "deleted":
                    raise AlreadyExists(
                        f"Experiment {name!r} exists but is deleted.",
                        hint=f"Restore it with `milepost experiments restore {name!r}` "
                        "or choose another name.",
                    )
                raise AlreadyExists(f"Experiment {name!r} already exists.")
            return self._insert_experiment(conn, name, description, actor, now)

    def get_or_create_experiment(self, name: str, *, actor: str) -> Experiment:
        """The active experiment named ``name``, created when missing."""
        with self.db.read() as conn:
            row = self._experiment_row(conn, name=name)
        if row is None:
            with self.db.write() as conn:
                row = self._experiment_row(conn, name=name)
                if row is None:
                    ins = _sql.insert_for(conn, experiments)
                    created = conn.execute(
                        ins.values(
                            name=name,
                            lifecycle_stage="active",
                            created_by=actor,
                            created_at=now_ms(),
                            updated_at=now_ms(),
                        )
                        .on_conflict_do_nothing(index_elements=["name"])
                        .returning(experiments.c.experiment_id)
                    ).first()
                    row = self._experiment_row(conn, name=name)
                    assert row is not None
                    if created is not None:
                        append_event(
                            conn,
                            actor=actor,
                            action="experiment.create",
                            object_type="experiment",
                            object_id=str(row["experiment_id"]),
                            after=_experiment(row).to_dict(),
                        )
        experiment = _experiment(row)
        if experiment.lifecycle_stage == "deleted":
            raise Conflict(
                f"Experiment {name!r} is deleted; runs cannot be added to it.",
                hint=f"Restore it with `milepost experiments restore {name!r}` or use another.",
            )
        return experiment

    def _insert_experiment(
        self, conn: Connection, name: str, description: str | None, actor: str, now: int
    ) -> Experiment:
        new_id = conn.execute(
            sa.insert(experiments)
            .values(
                name=name,
                lifecycle_stage="active",
                description=description,
                created_by=actor,
                created_at=now,
                updated_at=now,
            )
            .returning(experiments.c.experiment_id)
        ).scalar_one()
        row = self._experiment_row(conn, experiment_id=int(new_id))
        assert row is not None
        experiment = _experiment(row)
        append_event(
            conn,
            actor=actor,
            action="experiment.create",
            object_type="experiment",
            object_id=str(experiment.experiment_id),
            after=experiment.to_dict(),
        )
        return experiment

    @staticmethod
    def _experiment_row(
        conn: Connection, *, name: str | None = None, experiment_id: int | None = None
    ) -> sa.RowMapping | None:
        q = sa.select(experiments)
        q = (
            q.where(experiments.c.name == name)
            if name is not None
            else q.where(experiments.c.experiment_id == experiment_id)
        )
        return conn.execute(q).mappings().first()

    def get_experiment(
        self, *, name: str | None = None, experiment_id: int | None = None
    ) -> Experiment | None:
        """An experiment by name or id, deleted ones included."""
        with self.db.read() as conn:
            row = self._experiment_row(conn, name=name, experiment_id=experiment_id)
        return None if row is None else _experiment(row)

    def list_experiments(self, *, include_deleted: bool = False) -> list[Experiment]:
        """All experiments, oldest first."""
        q = sa.select(experiments).order_by(experiments.c.experiment_id)
        if not include_deleted:
            q = q.where(experiments.c.lifecycle_stage == "active")
        with self.db.read() as conn:
            return [_experiment(r) for r in conn.execute(q).mappings()]

    def update_experiment(
        self,
        experiment_id: int,
        *,
        actor: str,
        action: str,
        name: str | None = None,
        lifecycle_stage: str | None = None,
        reason: str | None = None,
    ) -> Experiment:
        """Rename or change the lifecycle stage of an experiment, audited."""
        with self.db.write() as conn:
            before_row = self._experiment_row(conn, experiment_id=experiment_id)
            if before_row is None:
                raise NotFound(f"Experiment {experiment_id} does not exist.")
            before = _experiment(before_row)
            values: dict[str, Any] = {"updated_at": now_ms()}
            if name is not None:
                clash = self._experiment_row(conn, name=name)
                if clash is not None and clash["experiment_id"] != experiment_id:
                    raise AlreadyExists(
                        f"Cannot rename experiment {before.name!r} to {name!r}: "
                        "that name is taken.",
                        hint="Choose another name.",
                    )
                values["name"] = name
            if lifecycle_stage is not None:
                values["lifecycle_stage"] = lifecycle_stage
            conn.execute(
                sa.update(experiments)
                .where(experiments.c.experiment_id == experiment_id)
                .values(**values)
            )
            after_row = self._experiment_row(conn, experiment_id=experiment_id)
            assert after_row is not None
            after = _experiment(after_row)
            append_event(
                conn,
                actor=actor,
                action=action,
                object_type="experiment",
                object_id=str(experiment_id),
                before=before.to_dict(),
                after=after.to_dict(),
                reason=reason,
            )
            return after

    # -- runs -----------------------------------------------------------------------

    def create_run(
        self,
        values: dict[str, Any],
        *,
        env: EnvironmentInfo,
        tags: Mapping[str, str],
        actor: str,
    ) -> None:
        """Insert a run (and its environment, once) with initial tags, audited."""
        with self.db.write() as conn:
            if env.env_hash not in self._known_envs:
                conn.execute(
                    _sql.insert_for(conn, environments)
                    .values(
                        env_hash=env.env_hash,
                        python_version=env.python_version,
                        platform=env.platform,
                        packages_hash=env.packages_hash,
                        packages=json.dumps(list(env.packages)),
                        created_at=now_ms(),
                    )
                    .on_conflict_do_nothing(index_elements=["env_hash"])
                )
            exp_stage = conn.execute(
                sa.select(experiments.c.lifecycle_stage).where(
                    experiments.c.experiment_id == values["experiment_id"]
                )
            ).scalar()
            if exp_stage != "active":
                raise Conflict(
                    f"Experiment {values['experiment_id']} is "
                    f"{'deleted' if exp_stage else 'missing'}; cannot start a run in it."
                )
            conn.execute(_INSERT_RUN, values)
            if tags:
                conn.execute(
                    sa.insert(run_tags),
                    [{"run_id": values["run_id"], "key": k, "value": v} for k, v in tags.items()],
                )
            append_event(
                conn,
                actor=actor,
                action="run.start",
                object_type="run",
                object_id=values["run_id"],
                after={
                    "experiment_id": values["experiment_id"],
                    "name": values["name"],
                    "status": values["status"],
                    "parent_run_id": values.get("parent_run_id"),
                },
            )
        self._known_envs.add(env.env_hash)

    def end_run(
        self,
        run_id: str,
        *,
        status: RunStatus,
        end_time: int,
        error: str | None,
        actor: str,
        reason: str | None = None,
        only_if_running: bool = False,
    ) -> bool:
        """Move a run to a terminal status, audited. Returns False when nothing changed.

        A run marked KILLED by stale-run detection can still be ended by its owner.
        """
        with self.db.write() as conn:
            row = conn.execute(
                sa.select(runs.c.status, runs.c.error).where(runs.c.run_id == run_id)
            ).first()
            if row is None:
                raise NotFound(f"Run {run_id} does not exist.")
            current = RunStatus(row.status)
            if current is status:
                return False
            if current is not RunStatus.RUNNING and (
                only_if_running or current is not RunStatus.KILLED
            ):
                if only_if_running:
                    return False
                raise Conflict(
                    f"Run {run_id} already ended as {current.value}; it cannot become "
                    f"{status.value}.",
                    hint="Start a new run to record more work.",
                )
            conn.execute(
                sa.update(runs)
                .where(runs.c.run_id == run_id)
                .values(status=status.value, end_time=end_time, error=error)
            )
            append_event(
                conn,
                actor=actor,
                action="run.end",
                object_type="run",
                object_id=run_id,
                before={"status": current.value},
                after={"status": status.value, "end_time": end_time, "error": error},
                reason=reason,
            )
            return True

    def set_run_lifecycle(self, run_id: str, stage: str, *, actor: str) -> None:
        """Soft-delete or restore a run, audited."""
        with self.db.write() as conn:
            before = conn.execute(
                sa.select(runs.c.lifecycle_stage).where(runs.c.run_id == run_id)
            ).scalar()
            if before is None:
                raise NotFound(f"Run {run_id} does not exist.")
            conn.execute(
                sa.update(runs).where(runs.c.run_id == run_id).values(lifecycle_stage=stage)
            )
            append_event(
                conn,
                actor=actor,
                action="run.delete" if stage == "deleted" else "run.restore",
                object_type="run",
                object_id=run_id,
                before={"lifecycle_stage": before},
                after={"lifecycle_stage": stage},
            )

    def heartbeat(self, run_ids: Sequence[str]) -> None:
        """Record that the runs' owner is alive."""
        if not run_ids:
            return
        with self.db.write() as conn:
            conn.execute(
                sa.update(runs)
                .where(runs.c.run_id.in_(list(run_ids)), runs.c.status == RunStatus.RUNNING.value)
                .values(heartbeat_at=now_ms())
            )

    def running_owners(
        self, *, experiment_ids: Sequence[int] | None = None, run_ids: Sequence[str] | None = None
    ) -> list[RunOwner]:
        """Owner details of RUNNING runs (for stale-run detection)."""
        q = sa.select(
            runs.c.run_id,
            runs.c.owner_host,
            runs.c.owner_pid,
            runs.c.owner_started,
            runs.c.heartbeat_at,
            runs.c.start_time,
        ).where(runs.c.status == RunStatus.RUNNING.value)
        if experiment_ids is not None:
            q = q.where(runs.c.experiment_id.in_(list(experiment_ids)))
        if run_ids is not None:
            q = q.where(runs.c.run_id.in_(list(run_ids)))
        with self.db.read() as conn:
            return [RunOwner(*r) for r in conn.execute(q)]

    def run_experiments(self, run_ids: Iterable[str]) -> dict[str, tuple[int, str, str]]:
        """``run_id -> (experiment_id, status, lifecycle_stage)`` for existing runs."""
        ids = list(run_ids)
        with self.db.read() as conn:
            rows = conn.execute(
                sa.select(
                    runs.c.run_id, runs.c.experiment_id, runs.c.status, runs.c.lifecycle_stage
                ).where(runs.c.run_id.in_(ids))
            )
            return {r.run_id: (int(r.experiment_id), r.status, r.lifecycle_stage) for r in rows}

    # -- params, tags, metrics --------------------------------------------------------

    def log_params(self, run_id: str, items: Mapping[str, str]) -> None:
        """Add params; a key logged before with another value is a Conflict (all or nothing)."""
        with self.db.write() as conn:
            self._check_run_writable(conn, run_id)
            conn.execute(
                _sql.insert_for(conn, params).on_conflict_do_nothing(
                    index_elements=["run_id", "key"]
                ),
                [{"run_id": run_id, "key": k, "value": v} for k, v in items.items()],
            )
            stored = {
                key: value
                for key, value in conn.execute(
                    sa.select(params.c.key, params.c.value).where(
                        params.c.run_id == run_id, params.c.key.in_(list(items))
                    )
                )
            }
            for key, value in items.items():
                if stored.get(key) != value:
                    raise Conflict(
                        f"Param {key!r} of run {run_id} is already {stored.get(key)!r}; "
                        f"cannot change it to {value!r}. Params are immutable.",
                        hint="Log the new value under another key, as a tag, or in a new run.",
                    )

    def set_tags(self, run_id: str, items: Mapping[str, str]) -> None:
        """Set tags, replacing earlier values."""
        with self.db.write() as conn:
            self._check_run_writable(conn, run_id)
            ins = _sql.insert_for(conn, run_tags)
            conn.execute(
                ins.on_conflict_do_update(
                    index_elements=["run_id", "key"], set_={"value": ins.excluded.value}
                ),
                [{"run_id": run_id, "key": k, "value": v} for k, v in items.items()],
            )

    def delete_tag(self, run_id: str, key: str) -> None:
        """Remove a tag. Raises NotFound when it is not set."""
        with self.db.write() as conn:
            res = conn.execute(
                sa.delete(run_tags).where(run_tags.c.run_id == run_id, run_tags.c.key == key)
            )
            if res.rowcount == 0:
                raise NotFound(f"Run {run_id} has no tag {key!r}.")

    @staticmethod
    def _check_run_writable(conn: Connection, run_id: str) -> None:
        stage = conn.execute(
            sa.select(runs.c.lifecycle_stage).where(runs.c.run_id == run_id)
        ).scalar()
        if stage is None:
            raise NotFound(f"Run {run_id} does not exist.")
        if stage != "active":
            raise Conflict(
                f"Run {run_id} is deleted.",
                hint=f"Restore it with `milepost runs restore {run_id}` first.",
            )

    def insert_metrics(self, rows: Sequence[MetricRow]) -> None:
        """Append metric values and update each (run, key)'s latest value, one transaction.

        Raises:
            InvalidInput: the database or its driver refused a value (for example a step
                beyond BIGINT). Conflict: a constraint refused a row. Either way one of
                ``rows`` is to blame and nothing was written.
            BackendUnavailable: the database failed (down, locked, timed out).
        """
        if not rows:
            return
        try:
            self._insert_metrics(rows)
        except (OverflowError, ValueError, TypeError) as exc:
            # raised by the driver while binding a value (sqlite3 cannot bind 2**70)
            raise InvalidInput(f"The metadata database cannot store a metric row: {exc}.") from exc

    def _insert_metrics(self, rows: Sequence[MetricRow]) -> None:
        latest: dict[tuple[str, str], MetricRow] = {}
        for row in rows:
            k = (row[0], row[2])
            cur = latest.get(k)
            if cur is None or (row[5], row[4]) >= (cur[5], cur[4]):
                latest[k] = row
        with self.db.write() as conn:
            # Straight to the driver's executemany: per-row parameter processing in
            # SQLAlchemy cost as much as the database's own insert.
            _sql.bulk_insert(
                conn,
                metrics,
                _METRIC_COLUMNS,
                [(r[0], r[2], _db_float(r[3]), r[4], r[5]) for r in rows],
            )
            ins = _sql.insert_for(conn, latest_metrics)
            ex = ins.excluded
            conn.execute(
                ins.on_conflict_do_update(
                    index_elements=["run_id", "key"],
                    set_={"value": ex.value, "step": ex.step, "timestamp": ex.timestamp},
                    where=sa.or_(
                        ex.step > latest_metrics.c.step,
                        sa.and_(
                            ex.step == latest_metrics.c.step,
                            ex.timestamp >= latest_metrics.c.timestamp,
                        ),
                    ),
                ),
                [
                    {
                        "run_id": r[0],
                        "experiment_id": r[1],
                        "key": r[2],
                        "value": _db_float(r[3]),
                        "timestamp": r[4],
                        "step": r[5],
                    }
                    for r in latest.values()
                ],
            )

    def record_metric_errors(self, errors: Mapping[str, tuple[int, str]]) -> None:
        """Count metric values the database refused on their runs, as run tags.

        ``errors`` maps a run id to (how many values were refused, the first message).
        ``milepost.metric_errors`` holds the running count and
        ``milepost.metric_errors.first`` the first message ever recorded.
        """
        if not errors:
            return
        with self.db.write() as conn:
            current = dict(
                conn.execute(
                    sa.select(run_tags.c.run_id, run_tags.c.value).where(
                        run_tags.c.run_id.in_(list(errors)),
                        run_tags.c.key == METRIC_ERRORS_TAG,
                    )
                ).all()
            )
            ins = _sql.insert_for(conn, run_tags)
            counts = []
            for run_id, (count, _) in errors.items():
                before = current.get(run_id, "0")
                total = count + (int(before) if before.isdigit() else 0)
                counts.append({"run_id": run_id, "key": METRIC_ERRORS_TAG, "value": str(total)})
            conn.execute(
                ins.on_conflict_do_update(
                    index_elements=["run_id", "key"], set_={"value": ins.excluded.value}
                ),
                counts,
            )
            conn.execute(
                ins.on_conflict_do_nothing(index_elements=["run_id", "key"]),
                [
                    {"run_id": run_id, "key": METRIC_ERRORS_TAG + ".first", "value": message}
                    for run_id, (_, message) in errors.items()
                ],
            )

    def metric_history(self, run_id: str, key: str) -> list[Metric]:
        """Every value of one metric, by step then time."""
        with self.db.read() as conn:
            rows = conn.execute(
                sa.select(metrics.c.key, metrics.c.value, metrics.c.step, metrics.c.timestamp)
                .where(metrics.c.run_id == run_id, metrics.c.key == key)
                .order_by(metrics.c.step, metrics.c.timestamp, metrics.c.id)
            )
            return [Metric(r.key, _float(r.value), int(r.step), int(r.timestamp)) for r in rows]

    # -- reading runs -----------------------------------------------------------------

    def get_run(self, run_id: str) -> Run | None:
        """A run with its data, or None."""
        with self.db.read() as conn:
            row = conn.execute(sa.select(runs).where(runs.c.run_id == run_id)).mappings().first()
            if row is None:
                return None
            return self._with_data(conn, [row])[0]

    def get_environment(self, env_hash: str) -> Environment | None:
        """A stored environment."""
        with self.db.read() as conn:
            row = (
                conn.execute(sa.select(environments).where(environments.c.env_hash == env_hash))
                .mappings()
                .first()
            )
        if row is None:
            return None
        return Environment(
            env_hash=row["env_hash"],
            python_version=row["python_version"],
            platform=row["platform"],
            packages_hash=row["packages_hash"],
            packages=json.loads(row["packages"]),
        )

    def search_runs(
        self,
        experiment_ids: Sequence[int],
        comparisons: Sequence[Comparison],
        order: Sequence[OrderTerm],
        *,
        max_results: int,
        offset: int,
        include_deleted: bool = False,
    ) -> tuple[list[Run], bool]:
        """One page of runs and whether more follow. See ``_filter`` for the language."""
        q = search_query(
            experiment_ids,
            comparisons,
            order,
            max_results=max_results,
            offset=offset,
            include_deleted=include_deleted,
        )
        with self.db.read() as conn:
            try:
                rows = list(conn.execute(q).mappings())
            except (sa.exc.DBAPIError, RecursionError) as exc:
                problem = filter_error(exc)
                if problem is None:
                    raise
                raise problem from exc
            more = len(rows) > max_results
            return self._with_data(conn, rows[:max_results]), more

    def _with_data(self, conn: Connection, rows: Sequence[sa.RowMapping]) -> list[Run]:
        ids = [r["run_id"] for r in rows]
        data: dict[str, dict[str, dict[str, Any]]] = {
            i: {"params": {}, "metrics": {}, "tags": {}} for i in ids
        }
        if ids:
            for table, slot in (
                (params, "params"),
                (run_tags, "tags"),
                (latest_metrics, "metrics"),
            ):
                for run_id, key, value in conn.execute(
                    sa.select(table.c.run_id, table.c.key, table.c.value).where(
                        table.c.run_id.in_(ids)
                    )
                ):
                    data[run_id][slot][key] = _float(value) if slot == "metrics" else value
        return [
            Run(
                run_id=r["run_id"],
                experiment_id=int(r["experiment_id"]),
                name=r["name"],
                status=RunStatus(r["status"]),
                start_time=int(r["start_time"]),
                end_time=None if r["end_time"] is None else int(r["end_time"]),
                user=r["user"],
                parent_run_id=r["parent_run_id"],
                source=r["source"],
                git_commit=r["git_commit"],
                git_dirty=r["git_dirty"],
                error=r["error"],
                env_hash=r["env_hash"],
                params=dict(sorted(data[r["run_id"]]["params"].items())),
                metrics=dict(sorted(data[r["run_id"]]["metrics"].items())),
                tags=dict(sorted(data[r["run_id"]]["tags"].items())),
            )
            for r in rows
        ]

    # -- artifacts ------------------------------------------------------------------

    def record_artifacts(self, run_id: str, entries: Sequence[ArtifactInfo]) -> None:
        """Record (or replace) artifact paths of a run, all in one transaction."""
        if not entries:
            return
        with self.db.write() as conn:
            self._check_run_writable(conn, run_id)
            ins = _sql.insert_for(conn, artifacts)
            conn.execute(
                ins.on_conflict_do_update(
                    index_elements=["run_id", "path"],
                    set_={
                        "digest": ins.excluded.digest,
                        "size": ins.excluded.size,
                        "created_at": ins.excluded.created_at,
                    },
                ),
                [
                    {
                        "run_id": run_id,
                        "path": e.path,
                        "digest": e.digest,
                        "size": e.size,
                        "created_at": now_ms(),
                    }
                    for e in entries
                ],
            )

    def list_artifacts(self, run_id: str, prefix: str = "") -> list[ArtifactInfo]:
        """Artifacts whose path is ``prefix`` or lies under it (all when empty)."""
        q = sa.select(artifacts.c.path, artifacts.c.digest, artifacts.c.size).where(
            artifacts.c.run_id == run_id
        )
        if prefix:
            escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            q = q.where(
                sa.or_(
                    artifacts.c.path == prefix, artifacts.c.path.like(escaped + "/%", escape="\\")
                )
            )
        with self.db.read() as conn:
            return [
                ArtifactInfo(r.path, r.digest, int(r.size))
                for r in conn.execute(q.order_by(artifacts.c.path))
            ]


def encode_page_token(offset: int, query_key: str) -> str:
    """An opaque token for the next page of one particular query."""
    raw = json.dumps({"o": offset, "q": query_key}).encode()
    return base64.urlsafe_b64encode(raw).decode()


def decode_page_token(token: str, query_key: str) -> int:
    """The offset in a token made by :func:`encode_page_token` for the same query."""
    try:
        data = json.loads(base64.urlsafe_b64decode(token.encode()))
        offset, key = int(data["o"]), str(data["q"])
    except (ValueError, KeyError, TypeError) as exc:
        raise InvalidInput(
            f"page_token {token!r} is not a token Milepost issued.",
            hint="Pass the token from the previous page unchanged.",
        ) from exc
    if key != query_key or offset < 0:
        raise InvalidInput(
            "page_token belongs to a different search (other experiments, filter or order).",
            hint="Repeat the same search arguments when you pass a page_token.",
        )
    return offset


def query_key(*parts: Any) -> str:
    """A short fingerprint of a search's arguments."""
    return hashlib.sha256(json.dumps(parts, default=str).encode()).hexdigest()[:16]
