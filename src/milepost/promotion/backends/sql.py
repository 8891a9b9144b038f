"""Promotion requests and their gate results."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from milepost.errors import NotFound
from milepost.promotion.gates import GateResult
from milepost.promotion.models import PromotionRequest
from milepost.stores.schema import (
    gate_results,
    model_versions,
    promotion_requests,
    registered_models,
)

if TYPE_CHECKING:
    from collections.abc import Sequence

    from sqlalchemy.engine import Connection

    from milepost.stores.metadata import MetadataStore

__all__ = ["SqlPromotionStore"]


class SqlPromotionStore:
    """Statements take a connection so they can join another service's transaction."""

    def __init__(self, db: MetadataStore) -> None:
        self.db = db

    @staticmethod
    def insert(conn: Connection, values: dict[str, Any], results: Sequence[GateResult]) -> None:
        """Insert a request and its gate results."""
        conn.execute(sa.insert(promotion_requests).values(**values))
        if results:
            conn.execute(
                sa.insert(gate_results),
                [_gate_row(values["request_id"], i, r) for i, r in enumerate(results)],
            )

    @staticmethod
    def add_gate(conn: Connection, request_id: str, position: int, result: GateResult) -> None:
        """Append a gate result (a rollout's verdict) to a request."""
        conn.execute(sa.insert(gate_results).values(**_gate_row(request_id, position, result)))

    @staticmethod
    def update(conn: Connection, request_id: str, **values: Any) -> None:
        """Update a request's status and decision."""
        conn.execute(
            sa.update(promotion_requests)
            .where(promotion_requests.c.request_id == request_id)
            .values(**values)
        )

    @staticmethod
    def update_gate(conn: Connection, request_id: str, position: int, result: GateResult) -> None:
        """Replace one gate's recorded result (approvals)."""
        conn.execute(
            sa.update(gate_results)
            .where(gate_results.c.request_id == request_id, gate_results.c.position == position)
            .values(
                status=result.status,
                message=result.message,
                details_json=json.dumps(result.details, default=str),
                evaluated_by=result.evaluated_by,
                at=result.at,
            )
        )

    def get(self, request_id: str, conn: Connection | None = None) -> PromotionRequest:
        """A request (with its model name) and its gate results in order."""

        def run(c: Connection) -> PromotionRequest:
            row = (
                c.execute(
                    sa.select(
                        promotion_requests, registered_models.c.name, model_versions.c.version
                    )
                    .join(
                        registered_models,
                        registered_models.c.model_id == promotion_requests.c.model_id,
                    )
                    .join(
                        model_versions,
                        model_versions.c.version_id == promotion_requests.c.version_id,
                    )
                    .where(promotion_requests.c.request_id == request_id)
                )
                .mappings()
                .first()
            )
            if row is None:
                raise NotFound(
                    f"Promotion request {request_id!r} does not exist.",
                    hint="List them with `milepost promotions list`.",
                )
            gates = c.execute(
                sa.select(gate_results)
                .where(gate_results.c.request_id == request_id)
                .order_by(gate_results.c.position)
            ).mappings()
            return _request(row, [_gate_result(g) for g in gates])

        if conn is not None:
            return run(conn)
        with self.db.read() as c:
            return run(c)

    def find(self, request_id_prefix: str) -> str:
        """The full id of a request given a unique prefix (as the CLI prints 12 characters)."""
        with self.db.read() as conn:
            ids = list(
                conn.execute(
                    sa.select(promotion_requests.c.request_id)
                    .where(
                        promotion_requests.c.request_id.like(
                            request_id_prefix.replace("%", "") + "%"
                        )
                    )
                    .limit(2)
                ).scalars()
            )
        if len(ids) != 1:
            raise NotFound(
                f"No single promotion request matches {request_id_prefix!r}.",
                hint="List them with `milepost promotions list`.",
            )
        return str(ids[0])

    def list(
        self,
        *,
        status: str | Sequence[str] | None = None,
        model: str | None = None,
        version: int | None = None,
        target_stage: str | None = None,
        limit: int = 50,
    ) -> list[str]:
        """Request ids, newest first (``status``: one status or several)."""
        q = (
            sa.select(promotion_requests.c.request_id)
            .join(registered_models, registered_models.c.model_id == promotion_requests.c.model_id)
            .order_by(promotion_requests.c.created_at.desc(), promotion_requests.c.request_id)
            .limit(limit)
        )
        if isinstance(status, str):
            q = q.where(promotion_requests.c.status == status)
        elif status:
            q = q.where(promotion_requests.c.status.in_(list(status)))
        if model:
            q = q.where(registered_models.c.name == model)
        if version is not None:
            q = q.join(
                model_versions, model_versions.c.version_id == promotion_requests.c.version_id
            ).where(model_versions.c.version == version)
        if target_stage:
            q = q.where(promotion_requests.c.target_stage == target_stage)
        with self.db.read() as conn:
            return list(conn.execute(q).scalars())


def _request(row: sa.RowMapping, gates: list[GateResult]) -> PromotionRequest:
    return PromotionRequest(
        request_id=row["request_id"],
        model=row["name"],
        version=int(row["version"]),
        target_stage=row["target_stage"],
        status=row["status"],
        requested_by=row["requested_by"],
        reason=row["reason"],
        created_at=int(row["created_at"]),
        baseline_version=row["baseline_version"],
        decided_by=row["decided_by"],
        decided_at=row["decided_at"],
        decision_reason=row["decision_reason"],
        gates=gates,
        endpoint=row["endpoint"],
    )


def _gate_result(row: sa.RowMapping) -> GateResult:
    return GateResult(
        row["name"],
        row["kind"],
        row["status"],
        row["message"] or "",
        json.loads(row["details_json"]),
        row["evaluated_by"],
        int(row["at"]),
    )


def _gate_row(request_id: str, position: int, r: GateResult) -> dict[str, Any]:
    return {
        "request_id": request_id,
        "position": position,
        "name": r.name,
        "kind": r.kind,
        "status": r.status,
        "message": r.message,
        "details_json": json.dumps(r.details, default=str),
        "evaluated_by": r.evaluated_by,
        "at": r.at,
    }
