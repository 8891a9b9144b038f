"""Pipeline runs, their steps and lineage links in the metadata store (revision 0016).

One SQL implementation serves SQLite and PostgreSQL (the metadata store hides the
dialect). Every method is one short transaction: the recorder's writes are on the path of
every step, so each event is one write, and nothing is read back that the caller already
has. Rows never leave this module: callers get :class:`~milepost.pipelines.models.PipelineRun`,
:class:`~milepost.pipelines.models.StepRun` and :class:`~milepost.pipelines.models.PipelineSummary`.

Starting and ending a run append ``pipeline_run.start`` and ``pipeline_run.end`` audit
events in the same transaction, as tracking does for its runs (``run.start``, ``run.end``):
a pipeline run is who-did-what (it can register and deploy models), and its start and end
are its only state changes; step events are progress, not decisions, and are not audited.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from milepost.pipelines.models import PipelineRun, PipelineSummary, StepRun
from milepost.pipelines.records import Link, OutputRef, StepResult
from milepost.stores.audit import append_event
from milepost.stores.schema import pipeline_links, pipeline_runs, pipeline_steps

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from sqlalchemy.engine import Connection

    from milepost.pipelines.records import PlannedStep
    from milepost.stores.metadata import MetadataStore

__all__ = ["Owner", "SqlPipelineStore"]

#: Statuses whose outputs can be reused by a later run with the same cache key.
REUSABLE = ("succeeded", "cached")
#: How many candidate rows a cache lookup checks for outputs still present.
_CACHE_CANDIDATES = 5

_STEP_STARTED = (
    sa.update(pipeline_steps)
    .where(
        pipeline_steps.c.run_id == sa.bindparam("r"),
        pipeline_steps.c.step == sa.bindparam("s"),
    )
    .values(
        status="running",
        attempts=sa.bindparam("attempt"),
        started_at=sa.func.coalesce(pipeline_steps.c.started_at, sa.bindparam("at")),
    )
)


@dataclass(frozen=True)
class Owner:
    """Who runs a RUNNING pipeline run: what :meth:`PipelineService.reap_stale` checks."""

    run_id: str
    host: str | None
    pid: int | None
    pid_started: float | None
    heartbeat_at: int | None
    started_at: int


def _dumps(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


class SqlPipelineStore:
    """Pipeline runs, steps and links on the metadata store.

    Args:
        db: the metadata store.
    """

    def __init__(self, db: MetadataStore) -> None:
        self.db = db

    # -- writes -------------------------------------------------------------------------

    def create_run(self, values: dict[str, Any], *, actor: str) -> None:
        """Insert a RUNNING run (``values``: the ``pipeline_runs`` columns), audited."""
        with self.db.write() as conn:
            conn.execute(sa.insert(pipeline_runs), values)
            append_event(
                conn,
                actor=actor,
                action="pipeline_run.start",
                object_type="pipeline_run",
                object_id=values["run_id"],
                after={
                    "pipeline": values["pipeline"],
                    "ref": values["ref"],
                    "status": values["status"],
                    "runner": values["runner"],
                    "resumed_from": values.get("resumed_from"),
                    "trigger": values.get("trigger"),
                },
            )

    def plan(self, run_id: str, steps: Sequence[PlannedStep]) -> None:
        """Insert every planned step as ``pending``, in the plan's order (one write)."""
        rows = [
            {
                "run_id": run_id,
                "step": p.step,
                "position": i,
                "func": p.func,
                "upstream_json": json.dumps(list(p.upstream)),
                "options_json": _dumps(p.options),
                "status": "pending",
                "attempts": 0,
            }
            for i, p in enumerate(steps)
        ]
        if rows:
            with self.db.write() as conn:
                conn.execute(sa.insert(pipeline_steps), rows)

    def step_started(self, run_id: str, step: str, attempt: int, at_ms: int) -> None:
        """Mark an attempt of a step running (the first attempt's start is kept)."""
        with self.db.write() as conn:
            conn.execute(_STEP_STARTED, {"r": run_id, "s": step, "attempt": attempt, "at": at_ms})

    def step_finished(self, run_id: str, result: StepResult) -> None:
        """Store a step's final result and its links (one write).

        A step the plan did not list (an engine that reports more than it planned) is
        inserted after the planned ones rather than lost.
        """
        values = {
            "status": result.status,
            "attempts": result.attempts,
            "started_at": result.started_at,
            "ended_at": result.ended_at,
            "cache_key": result.cache_key,
            "cached_from": result.cached_from,
            "inputs_json": _dumps(result.inputs),
            "outputs_json": json.dumps([o.to_dict() for o in result.outputs]),
            "logs_key": result.logs_key,
            "error": result.error,
            "traceback": result.traceback,
        }
        where = (pipeline_steps.c.run_id == run_id) & (pipeline_steps.c.step == result.step)
        with self.db.write() as conn:
            changed = conn.execute(sa.update(pipeline_steps).where(where).values(values)).rowcount
            if not changed:
                position = conn.execute(
                    sa.select(sa.func.count())
                    .select_from(pipeline_steps)
                    .where(pipeline_steps.c.run_id == run_id)
                ).scalar_one()
                conn.execute(
                    sa.insert(pipeline_steps),
                    values
                    | {
                        "run_id": run_id,
                        "step": result.step,
                        "position": int(position),
                        "func": "",
                        "upstream_json": "[]",
                        "options_json": "{}",
                    },
                )
            if result.links:
                conn.execute(
                    sa.insert(pipeline_links),
                    [
                        {
                            "run_id": run_id,
                            "step": result.step,
                            "kind": link.kind,
                            "ref": link.ref,
                            "role": link.role,
                        }
                        for link in result.links
                    ],
                )

    def heartbeat(self, run_id: str, at_ms: int) -> bool:
        """Move a RUNNING run's heartbeat; False when the run is no longer running."""
        with self.db.write() as conn:
            changed = conn.execute(
                sa.update(pipeline_runs)
                .where(pipeline_runs.c.run_id == run_id, pipeline_runs.c.status == "running")
                .values(heartbeat_at=at_ms)
            ).rowcount
        return bool(changed)

    def end_run(
        self,
        run_id: str,
        *,
        status: str,
        ended_at: int,
        failed_step: str | None,
        error: str | None,
        actor: str,
        reason: str | None = None,
    ) -> bool:
        """End a RUNNING run, audited; steps still pending become ``skipped`` and steps
        still running ``failed`` (with the run's error). False when the run had ended
        already (a reaper and the run's own end racing: the first one wins)."""
        with self.db.write() as conn:
            changed = conn.execute(
                sa.update(pipeline_runs)
                .where(pipeline_runs.c.run_id == run_id, pipeline_runs.c.status == "running")
                .values(
                    status=status,
                    ended_at=ended_at,
                    heartbeat_at=ended_at,
                    failed_step=failed_step,
                    error=error,
                )
            ).rowcount
            if not changed:
                return False
            this_run = pipeline_steps.c.run_id == run_id
            conn.execute(
                sa.update(pipeline_steps)
                .where(this_run, pipeline_steps.c.status == "running")
                .values(status="failed", ended_at=ended_at, error=error or "run ended")
            )
            conn.execute(
                sa.update(pipeline_steps)
                .where(this_run, pipeline_steps.c.status == "pending")
                .values(status="skipped", error="not run: the run ended before it")
            )
            append_event(
                conn,
                actor=actor,
                action="pipeline_run.end",
                object_type="pipeline_run",
                object_id=run_id,
                before={"status": "running"},
                after={
                    "status": status,
                    "ended_at": ended_at,
                    "failed_step": failed_step,
                    "error": error,
                },
                reason=reason,
            )
        return True

    # -- reads --------------------------------------------------------------------------

    def lookup_cache(self, cache_key: str, exists: Callable[[str], bool]) -> StepResult | None:
        """The newest reusable step with ``cache_key`` whose outputs all still exist
        (``exists(key)`` asks the artifact store), as a result whose ``cached_from`` is the
        run that computed the outputs."""
        query = (
            sa.select(
                pipeline_steps.c.run_id,
                pipeline_steps.c.step,
                pipeline_steps.c.inputs_json,
                pipeline_steps.c.outputs_json,
                pipeline_steps.c.logs_key,
                pipeline_steps.c.cached_from,
            )
            .where(
                pipeline_steps.c.cache_key == cache_key,
                pipeline_steps.c.status.in_(REUSABLE),
            )
            .order_by(pipeline_steps.c.ended_at.desc())
            .limit(_CACHE_CANDIDATES)
        )
        with self.db.read() as conn:
            rows = conn.execute(query).all()
        for row in rows:
            outputs = _outputs(row.outputs_json)
            if all(exists(o.key) for o in outputs):
                return StepResult(
                    step=row.step,
                    status="cached",
                    cache_key=cache_key,
                    inputs=json.loads(row.inputs_json or "{}"),
                    outputs=outputs,
                    logs_key=row.logs_key,
                    cached_from=row.cached_from or row.run_id,
                )
        return None

    def get_run(self, run_id: str) -> PipelineRun | None:
        """A run with its steps and links, or None."""
        with self.db.read() as conn:
            row = conn.execute(
                sa.select(pipeline_runs).where(pipeline_runs.c.run_id == run_id)
            ).first()
            if row is None:
                return None
            steps = _steps(conn, [run_id])
        return _run(row._mapping, steps.get(run_id, ()))

    def run_ids_starting(self, prefix: str, *, limit: int = 2) -> list[str]:
        """Run ids that start with ``prefix`` (hex only: no LIKE wildcards reach SQL)."""
        query = (
            sa.select(pipeline_runs.c.run_id)
            .where(pipeline_runs.c.run_id.like(prefix + "%"))
            .order_by(pipeline_runs.c.run_id)
            .limit(limit)
        )
        with self.db.read() as conn:
            return [r.run_id for r in conn.execute(query).all()]

    def list_runs(
        self, *, pipeline: str | None, status: str | None, limit: int
    ) -> list[PipelineRun]:
        """Runs newest first, with their steps (three queries whatever the count)."""
        query = sa.select(pipeline_runs)
        if pipeline is not None:
            query = query.where(pipeline_runs.c.pipeline == pipeline)
        if status is not None:
            query = query.where(pipeline_runs.c.status == status)
        query = query.order_by(
            pipeline_runs.c.started_at.desc(), pipeline_runs.c.run_id.desc()
        ).limit(limit)
        with self.db.read() as conn:
            rows = conn.execute(query).all()
            steps = _steps(conn, [r.run_id for r in rows])
        return [_run(r._mapping, steps.get(r.run_id, ())) for r in rows]

    def list_pipelines(self) -> list[PipelineSummary]:
        """Every pipeline that has runs, by name: run count and the latest run."""
        latest = (
            sa.select(
                pipeline_runs.c.pipeline,
                sa.func.count().label("runs"),
                sa.func.max(pipeline_runs.c.started_at).label("last"),
            )
            .group_by(pipeline_runs.c.pipeline)
            .subquery()
        )
        query = (
            sa.select(
                pipeline_runs.c.pipeline,
                pipeline_runs.c.ref,
                pipeline_runs.c.run_id,
                pipeline_runs.c.status,
                pipeline_runs.c.started_at,
                latest.c.runs,
            )
            .join(
                latest,
                (latest.c.pipeline == pipeline_runs.c.pipeline)
                & (latest.c.last == pipeline_runs.c.started_at),
            )
            .order_by(pipeline_runs.c.pipeline, pipeline_runs.c.run_id.desc())
        )
        with self.db.read() as conn:
            rows = conn.execute(query).all()
        out: dict[str, PipelineSummary] = {}
        for r in rows:  # two runs started in the same ms: the first (by run id) wins
            out.setdefault(
                r.pipeline,
                PipelineSummary(
                    name=r.pipeline,
                    ref=r.ref,
                    runs=int(r.runs),
                    last_run_id=r.run_id,
                    last_status=r.status,
                    last_started_at=int(r.started_at),
                ),
            )
        return list(out.values())

    def running_owners(self) -> list[Owner]:
        """Who owns each RUNNING run, oldest first."""
        query = (
            sa.select(
                pipeline_runs.c.run_id,
                pipeline_runs.c.host,
                pipeline_runs.c.pid,
                pipeline_runs.c.pid_started,
                pipeline_runs.c.heartbeat_at,
                pipeline_runs.c.started_at,
            )
            .where(pipeline_runs.c.status == "running")
            .order_by(pipeline_runs.c.started_at)
        )
        with self.db.read() as conn:
            return [Owner(*row) for row in conn.execute(query).all()]

    def links_to(self, kind: str, ref: str) -> list[tuple[str, str, Link]]:
        """``(run_id, step, link)`` of every step linked to ``kind``/``ref``, oldest first
        ("which pipeline run made model churn/4")."""
        query = (
            sa.select(
                pipeline_links.c.run_id,
                pipeline_links.c.step,
                pipeline_links.c.role,
            )
            .where(pipeline_links.c.kind == kind, pipeline_links.c.ref == ref)
            .order_by(pipeline_links.c.link_id)
        )
        with self.db.read() as conn:
            rows = conn.execute(query).all()
        return [(r.run_id, r.step, Link(kind, ref, r.role)) for r in rows]  # type: ignore[arg-type]


def _outputs(text: str | None) -> tuple[OutputRef, ...]:
    return tuple(OutputRef(**o) for o in json.loads(text or "[]"))


def _steps(conn: Connection, run_ids: Sequence[str]) -> dict[str, tuple[StepRun, ...]]:
    """The steps of each run, in plan order, with their links (two queries)."""
    if not run_ids:
        return {}
    rows = conn.execute(
        sa.select(pipeline_steps)
        .where(pipeline_steps.c.run_id.in_(run_ids))
        .order_by(pipeline_steps.c.run_id, pipeline_steps.c.position)
    ).all()
    links: dict[tuple[str, str], list[Link]] = {}
    for link in conn.execute(
        sa.select(pipeline_links)
        .where(pipeline_links.c.run_id.in_(run_ids))
        .order_by(pipeline_links.c.link_id)
    ).all():
        links.setdefault((link.run_id, link.step), []).append(Link(link.kind, link.ref, link.role))
    out: dict[str, list[StepRun]] = {}
    for r in rows:
        out.setdefault(r.run_id, []).append(
            StepRun(
                step=r.step,
                func=r.func,
                upstream=tuple(json.loads(r.upstream_json)),
                options=json.loads(r.options_json),
                status=r.status,
                attempts=int(r.attempts),
                started_at=r.started_at,
                ended_at=r.ended_at,
                cache_key=r.cache_key,
                inputs=json.loads(r.inputs_json or "{}"),
                outputs=_outputs(r.outputs_json),
                logs_key=r.logs_key,
                error=r.error,
                traceback=r.traceback,
                links=tuple(links.get((r.run_id, r.step), ())),
                cached_from=r.cached_from,
            )
        )
    return {k: tuple(v) for k, v in out.items()}


def _run(r: Any, steps: Sequence[StepRun]) -> PipelineRun:
    return PipelineRun(
        run_id=r["run_id"],
        pipeline=r["pipeline"],
        ref=r["ref"],
        params=json.loads(r["params_json"]),
        status=r["status"],
        runner=r["runner"],
        started_at=int(r["started_at"]),
        ended_at=r["ended_at"],
        code_version=json.loads(r["code_version_json"] or "{}"),
        resumed_from=r["resumed_from"],
        trigger=r["trigger"],
        error=r["error"],
        failed_step=r["failed_step"],
        actor=r["actor"],
        steps=tuple(steps),
    )
