"""Stored evaluations."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from milepost.errors import NotFound
from milepost.stores.schema import evaluations

if TYPE_CHECKING:
    from milepost.stores.metadata import MetadataStore

__all__ = ["SqlEvaluationStore"]


class SqlEvaluationStore:
    """Evaluations linked to model versions and dataset versions."""

    def __init__(self, db: MetadataStore) -> None:
        self.db = db

    def add(self, values: dict[str, Any]) -> None:
        """Store one evaluation."""
        with self.db.write() as conn:
            conn.execute(sa.insert(evaluations).values(**values))

    def for_version(self, version_id: int, *, limit: int = 20) -> list[sa.RowMapping]:
        """A model version's evaluations, newest first."""
        with self.db.read() as conn:
            return list(
                conn.execute(
                    sa.select(evaluations)
                    .where(evaluations.c.version_id == version_id)
                    .order_by(evaluations.c.created_at.desc())
                    .limit(limit)
                ).mappings()
            )

    def get(self, eval_id: str) -> sa.RowMapping:
        """One evaluation."""
        with self.db.read() as conn:
            row = (
                conn.execute(sa.select(evaluations).where(evaluations.c.eval_id == eval_id))
                .mappings()
                .first()
            )
        if row is None:
            raise NotFound(f"Evaluation {eval_id!r} does not exist.")
        return row
