"""Endpoints, their deployment events, prediction log segments, feedback and leases."""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from milepost.errors import AlreadyExists, Conflict, NotFound, did_you_mean
from milepost.serving.spec import DeploymentEvent, EndpointSpec
from milepost.stores import _sql
from milepost.stores.audit import append_event
from milepost.stores.schema import (
    controller_leases,
    deployment_events,
    endpoints,
    feedback,
    prediction_segments,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from sqlalchemy.engine import Connection

    from milepost.stores.metadata import MetadataStore

__all__ = ["SqlServingStore"]


def _now() -> int:
    return int(time.time() * 1000)


class SqlServingStore:
    """Persistence for serving. Every spec change bumps the endpoint's revision.

    ``storage_options``: fsspec options for reading prediction-log segments registered
    with a URL (e.g. ``{"client_kwargs": {"endpoint_url": ...}}`` for MinIO or moto).
    """

    def __init__(self, db: MetadataStore, *, storage_options: dict[str, Any] | None = None) -> None:
        self.db = db
        self.storage_options: dict[str, Any] = dict(storage_options or {})
        self._revision_query = sa.select(endpoints.c.revision).where(
            endpoints.c.name == sa.bindparam("name")
        )

    def create(
        self,
        name: str,
        spec: EndpointSpec,
        *,
        actor: str,
        before: Callable[[Connection], None] | None = None,
    ) -> int:
        """Create an endpoint (audited).

        ``before`` runs first in the same transaction (a tracking endpoint's creator locks
        the model and checks its Production version there).

        Raises:
            AlreadyExists: the name is taken, or another endpoint tracks the same stage.
        """
        now = _now()
        with self.db.write() as conn:
            if before is not None:
                before(conn)
            if conn.execute(
                sa.select(endpoints.c.endpoint_id).where(endpoints.c.name == name)
            ).first():
                raise AlreadyExists(
                    f"Endpoint {name!r} exists already.",
                    hint="Deploy a new version to it with `milepost endpoints update ...`.",
                )
            track = spec.track
            if track is not None:
                other = conn.execute(
                    sa.select(endpoints.c.name).where(
                        endpoints.c.track_model == track.model,
                        endpoints.c.track_stage == track.stage,
                    )
                ).scalar()
                if other is not None:
                    raise AlreadyExists(
                        f"Endpoint {other!r} tracks {track} already; one endpoint per stage "
                        "of a model, so that the stage and its primary change together.",
                        hint=f"Serve {track} through {other!r}, or pin versions on a new "
                        f"endpoint: `milepost endpoints create {name} --model {track.model} "
                        "--version N`.",
                    )
            endpoint_id = conn.execute(
                sa.insert(endpoints)
                .values(
                    name=name,
                    spec_json=spec.to_json(),
                    revision=1,
                    created_by=actor,
                    created_at=now,
                    updated_at=now,
                    track_model=track.model if track else None,
                    track_stage=track.stage if track else None,
                )
                .returning(endpoints.c.endpoint_id)
            ).scalar_one()
            conn.execute(
                sa.insert(deployment_events).values(
                    endpoint_id=endpoint_id,
                    at=now,
                    actor=actor,
                    kind="create",
                    revision=1,
                    reason=None,
                    details_json=json.dumps(spec.summary()),
                )
            )
            append_event(
                conn,
                actor=actor,
                action="endpoint.create",
                object_type="endpoint",
                object_id=name,
                after=spec.summary(),
            )
            return 1

    def get(self, name: str) -> tuple[EndpointSpec, int]:
        """The spec and revision of an endpoint."""
        with self.db.read() as conn:
            row = conn.execute(
                sa.select(endpoints.c.spec_json, endpoints.c.revision).where(
                    endpoints.c.name == name
                )
            ).first()
            if row is None:
                known = list(conn.execute(sa.select(endpoints.c.name)).scalars())
                raise NotFound(
                    f"Endpoint {name!r} does not exist.{did_you_mean(name, known)}",
                    hint="Create one with `milepost endpoints create`.",
                )
        return EndpointSpec.model_validate_json(row.spec_json), int(row.revision)

    def revision(self, name: str) -> int | None:
        """The endpoint's revision (one indexed read; replicas poll it)."""
        with self.db.read() as conn:
            value = conn.execute(self._revision_query, {"name": name}).scalar()
        return None if value is None else int(value)

    def names(self) -> list[str]:
        """Every endpoint name."""
        with self.db.read() as conn:
            return list(
                conn.execute(sa.select(endpoints.c.name).order_by(endpoints.c.name)).scalars()
            )

    def update(
        self,
        name: str,
        change: Callable[[EndpointSpec], EndpointSpec],
        *,
        kind: str,
        actor: str,
        reason: str | None = None,
        details: Any = None,
        before: Callable[[Connection], None] | None = None,
        after: Callable[[Connection, EndpointSpec, EndpointSpec], None] | None = None,
    ) -> tuple[EndpointSpec, int]:
        """Apply ``change`` to the stored spec in one transaction (locked), audited.

        ``change`` may raise to refuse; nothing is written then. ``before`` runs first in
        the transaction (tracking endpoints lock their model's row there, always before
        the endpoint's); ``after(conn, old, new)`` runs once the new spec is written (the
        registry and the promotion request change there), and may raise to undo it all.
        What an endpoint tracks never changes.
        """
        with self.db.write() as conn:
            if before is not None:
                before(conn)
            row = (
                conn.execute(sa.select(endpoints).where(endpoints.c.name == name).with_for_update())
                .mappings()
                .first()
            )
            if row is None:
                raise NotFound(
                    f"Endpoint {name!r} does not exist.",
                    hint="Create one with `milepost endpoints create`.",
                )
            old = EndpointSpec.model_validate_json(row["spec_json"])
            new = change(old.model_copy(deep=True))
            if new.track != old.track:
                raise Conflict(
                    f"What endpoint {name!r} tracks cannot change ({old.kind}).",
                    hint="Create another endpoint for another model or stage.",
                )
            revision = int(row["revision"]) + 1
            now = _now()
            conn.execute(
                sa.update(endpoints)
                .where(endpoints.c.endpoint_id == row["endpoint_id"])
                .values(spec_json=new.to_json(), revision=revision, updated_at=now)
            )
            conn.execute(
                sa.insert(deployment_events).values(
                    endpoint_id=row["endpoint_id"],
                    at=now,
                    actor=actor,
                    kind=kind,
                    revision=revision,
                    reason=reason,
                    details_json=json.dumps(
                        details if details is not None else new.summary(), default=str
                    ),
                )
            )
            append_event(
                conn,
                actor=actor,
                action=f"deploy.{kind}",
                object_type="endpoint",
                object_id=name,
                before=old.summary(),
                after=new.summary(),
                reason=reason,
            )
            if after is not None:
                after(conn, old, new)
            return new, revision

    def add_event(
        self, name: str, kind: str, *, actor: str, reason: str | None = None, details: Any = None
    ) -> None:
        """Record an event that changes no routing (replica replacements, rolling steps)."""
        with self.db.write() as conn:
            row = conn.execute(
                sa.select(endpoints.c.endpoint_id, endpoints.c.revision).where(
                    endpoints.c.name == name
                )
            ).first()
            if row is None:
                raise NotFound(f"Endpoint {name!r} does not exist.")
            conn.execute(
                sa.insert(deployment_events).values(
                    endpoint_id=row.endpoint_id,
                    at=_now(),
                    actor=actor,
                    kind=kind,
                    revision=row.revision,
                    reason=reason,
                    details_json=None if details is None else json.dumps(details, default=str),
                )
            )

    def events(self, name: str, *, limit: int = 50) -> list[DeploymentEvent]:
        """Deployment events, newest first."""
        with self.db.read() as conn:
            rows = conn.execute(
                sa.select(deployment_events)
                .join(endpoints, endpoints.c.endpoint_id == deployment_events.c.endpoint_id)
                .where(endpoints.c.name == name)
                .order_by(deployment_events.c.event_id.desc())
                .limit(limit)
            ).mappings()
            return [
                DeploymentEvent(
                    at=int(r["at"]),
                    actor=r["actor"],
                    kind=r["kind"],
                    revision=int(r["revision"]),
                    reason=r["reason"],
                    details=json.loads(r["details_json"]) if r["details_json"] else None,
                )
                for r in rows
            ]

    # -- prediction logs and feedback ---------------------------------------------------

    def add_segments(self, rows: Sequence[dict[str, Any]]) -> None:
        """Register written prediction log segments: ``endpoint``, ``path`` (a local path,
        or a URL such as ``s3://...`` of the artifact store), ``rows``, ``first_at`` and
        ``last_at`` (epoch ms)."""
        if rows:
            with self.db.write() as conn:
                conn.execute(
                    sa.insert(prediction_segments), [{**r, "created_at": _now()} for r in rows]
                )

    def segments(
        self, endpoint: str | None, *, since_ms: int = 0, until_ms: int | None = None
    ) -> list[str]:
        """Where the segments holding predictions at or after ``since_ms`` (and, with
        ``until_ms``, at or before it) are, oldest first: local paths (no scheme) or
        URLs of the artifact store (read them with ``storage_options``). ``endpoint``
        None: every endpoint's."""
        query = sa.select(prediction_segments.c.path).where(
            prediction_segments.c.last_at >= since_ms,
        )
        if endpoint is not None:
            query = query.where(prediction_segments.c.endpoint == endpoint)
        if until_ms is not None:
            query = query.where(prediction_segments.c.first_at <= until_ms)
        with self.db.read() as conn:
            return list(conn.execute(query.order_by(prediction_segments.c.segment_id)).scalars())

    def segments_before(self, before_ms: int) -> list[dict[str, Any]]:
        """Registered segments whose newest row is older than ``before_ms``, oldest
        first: ``segment_id``, ``endpoint``, ``path``, ``rows``, ``first_at``, ``last_at``."""
        t = prediction_segments
        query = (
            sa.select(t.c.segment_id, t.c.endpoint, t.c.path, t.c.rows, t.c.first_at, t.c.last_at)
            .where(t.c.last_at < before_ms)
            .order_by(t.c.segment_id)
        )
        with self.db.read() as conn:
            return [dict(r) for r in conn.execute(query).mappings()]

    def delete_segments(
        self,
        segments: Sequence[dict[str, Any]],
        request_ids: dict[str, set[str]],
        *,
        actor: str,
        details: dict[str, dict[str, Any]],
    ) -> tuple[int, int, list[str]]:
        """Unregister segments and delete the feedback of their requests, in one
        transaction, with one audited ``predictions.prune`` event per endpoint (its
        ``after``: ``details[endpoint]`` plus the counts deleted).

        Args:
            segments: rows of :meth:`segments_before` to delete.
            request_ids: endpoint -> the request ids those segments hold.
            actor: who prunes (the audit trail's actor).
            details: endpoint -> what the audit event records beside the counts.

        Returns:
            ``(segments, feedback rows, paths)``: what was deleted, and the locations no
            registered segment uses any more (the caller deletes those files).
        """
        ids = [int(s["segment_id"]) for s in segments]
        if not ids:
            return 0, 0, []
        t = prediction_segments
        with self.db.write() as conn:
            deleted, labels = 0, 0
            per_endpoint: dict[str, list[int]] = {}
            for seg in segments:
                per_endpoint.setdefault(str(seg["endpoint"]), []).append(int(seg["segment_id"]))
            for endpoint, seg_ids in sorted(per_endpoint.items()):
                gone = 0
                for chunk in _chunks(seg_ids):
                    gone += conn.execute(sa.delete(t).where(t.c.segment_id.in_(chunk))).rowcount
                fb = 0
                for chunk in _chunks(sorted(request_ids.get(endpoint, ()))):
                    fb += conn.execute(
                        sa.delete(feedback).where(
                            feedback.c.endpoint == endpoint, feedback.c.request_id.in_(chunk)
                        )
                    ).rowcount
                deleted, labels = deleted + gone, labels + fb
                append_event(
                    conn,
                    actor=actor,
                    action="predictions.prune",
                    object_type="endpoint",
                    object_id=endpoint,
                    after={**details.get(endpoint, {}), "segments": gone, "feedback": fb},
                )
            paths = sorted({str(s["path"]) for s in segments})
            still = set()
            for chunk in _chunks(paths):
                still |= set(conn.execute(sa.select(t.c.path).where(t.c.path.in_(chunk))).scalars())
        return deleted, labels, [p for p in paths if p not in still]

    def count_feedback(self, request_ids: dict[str, set[str]]) -> int:
        """How many labels the requests hold (endpoint -> request ids)."""
        total = 0
        with self.db.read() as conn:
            for endpoint, ids in request_ids.items():
                for chunk in _chunks(sorted(ids)):
                    total += conn.execute(
                        sa.select(sa.func.count()).where(
                            feedback.c.endpoint == endpoint, feedback.c.request_id.in_(chunk)
                        )
                    ).scalar_one()
        return total

    def add_feedback(
        self, endpoint: str, request_id: str, values: Sequence[Any], *, offset: int = 0
    ) -> tuple[int, int]:
        """Record ground truth for rows ``offset ...`` of a request, in one transaction.

        A label is never replaced: sending the same labels again changes nothing (a retry
        is safe), and a different label for a row that has one refuses the whole call.

        Returns:
            ``(recorded, unchanged)``: rows labelled now, rows that had this label already.

        Raises:
            Conflict: a row has a different label already (nothing is written).
        """
        wanted = {offset + i: json.dumps(v, sort_keys=True) for i, v in enumerate(values)}
        with self.db.write() as conn:
            # Insert what is new and skip what exists: a concurrent call for the same rows
            # (another replica) waits for this row lock instead of failing the transaction.
            ins = _sql.insert_for(conn, feedback)
            inserted = conn.execute(
                ins.on_conflict_do_nothing(index_elements=["request_id", "row"]).returning(
                    feedback.c.row
                ),
                [
                    {
                        "request_id": request_id,
                        "row": row,
                        "endpoint": endpoint,
                        "value_json": value,
                        "at": _now(),
                    }
                    for row, value in wanted.items()
                ],
            )
            recorded = len(inserted.all())
            stored = dict(
                conn.execute(
                    sa.select(feedback.c.row, feedback.c.value_json).where(
                        feedback.c.request_id == request_id,
                        feedback.c.row.between(offset, offset + len(values) - 1),
                    )
                ).all()
            )
            clashes = [row for row, value in wanted.items() if stored.get(row) != value]
            if clashes:
                shown = ", ".join(
                    f"row {row} has {stored.get(row)}, not {wanted[row]}" for row in clashes[:3]
                )
                more = f" (and {len(clashes) - 3} more)" if len(clashes) > 3 else ""
                raise Conflict(
                    f"Request {request_id!r} is labelled already: {shown}{more}. "
                    "Nothing was recorded.",
                    hint="Labels are never overwritten; send only rows without a label.",
                    details={"rows": clashes},
                )
        return recorded, len(values) - recorded

    def feedback(self, request_id: str) -> dict[int, Any]:
        """The labels recorded for a request, by row."""
        with self.db.read() as conn:
            rows = conn.execute(
                sa.select(feedback.c.row, feedback.c.value_json)
                .where(feedback.c.request_id == request_id)
                .order_by(feedback.c.row)
            ).all()
        return {int(row): json.loads(value) for row, value in rows}

    def feedback_between(
        self, endpoint: str, since_ms: int, until_ms: int | None = None
    ) -> list[tuple[str, int, Any, int]]:
        """The labels of ``endpoint``'s requests made in the window, both ends inclusive,
        as ``(request_id, row, label, labelled_at_ms)`` in request order.

        A request's time is the one in its id (the server's ids are time-ordered hex,
        see :func:`milepost.serving.logger.new_request_id`), so this is one range read on
        the feedback table's key, however many labels the window holds (monitoring's
        ``LabelSource``).
        """
        query = sa.select(
            feedback.c.request_id, feedback.c.row, feedback.c.value_json, feedback.c.at
        ).where(
            feedback.c.endpoint == endpoint,
            feedback.c.request_id >= f"{max(int(since_ms), 0):012x}",
        )
        if until_ms is not None:
            # an id's first 12 hex digits are its time: below the next millisecond's prefix
            query = query.where(feedback.c.request_id < f"{max(int(until_ms) + 1, 0):012x}")
        with self.db.read() as conn:
            rows = conn.execute(query.order_by(feedback.c.request_id, feedback.c.row)).all()
        return [(rid, int(row), json.loads(value), int(at)) for rid, row, value, at in rows]

    # -- controller lease ---------------------------------------------------------------

    def take_lease(self, endpoint: str, holder: str, seconds: float) -> bool:
        """Hold (or renew) the right to run an endpoint's rollout controller."""
        now = _now()
        with self.db.write() as conn:
            row = (
                conn.execute(
                    sa.select(controller_leases)
                    .where(controller_leases.c.endpoint == endpoint)
                    .with_for_update()
                )
                .mappings()
                .first()
            )
            if row is not None and row["holder"] != holder and row["expires_at"] > now:
                return False
            values = {"holder": holder, "expires_at": now + int(seconds * 1000)}
            if row is None:
                conn.execute(sa.insert(controller_leases).values(endpoint=endpoint, **values))
            else:
                conn.execute(
                    sa.update(controller_leases)
                    .where(controller_leases.c.endpoint == endpoint)
                    .values(**values)
                )
            return True


def _chunks(values: Sequence[Any], size: int = 500) -> list[Sequence[Any]]:
    """``values`` in slices small enough for one ``IN (...)`` on every backend."""
    return [values[i : i + size] for i in range(0, len(values), size)]
