"""The written sections of model cards in the metadata database (``model_card_fields``).

A row holds one section of one model: ``version`` 0 for the whole model, N for one
version (which overrides the model's text when that version's card is built). Every
change appends a ``model_card.update`` event (object ``model`` NAME, ``before`` and
``after`` holding the field, the version and the text) in the same transaction.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from milepost.cards.models import CardField
from milepost.errors import NotFound, did_you_mean
from milepost.stores.audit import append_event
from milepost.stores.schema import model_card_fields, model_versions, registered_models

if TYPE_CHECKING:
    from collections.abc import Mapping

    from sqlalchemy.engine import Connection

    from milepost.stores.metadata import MetadataStore

__all__ = ["SqlCardStore"]


def _now() -> int:
    return int(time.time() * 1000)


def _field(row: sa.RowMapping) -> CardField:
    return CardField(
        field=row["field"],
        text=row["text"],
        version=int(row["version"]),
        updated_by=row["updated_by"],
        updated_at=int(row["updated_at"]),
    )


def _state(field: str, version: int, text: str | None) -> dict[str, Any] | None:
    return None if text is None else {"field": field, "version": version, "text": text}


class SqlCardStore:
    """Reads and writes the sections people wrote."""

    def __init__(self, db: MetadataStore) -> None:
        self.db = db

    @staticmethod
    def _model_id(conn: Connection, name: str, *, lock: bool = False) -> int:
        q = sa.select(registered_models.c.model_id).where(registered_models.c.name == name)
        model_id = conn.execute(q.with_for_update() if lock else q).scalar()
        if model_id is None:
            names = list(conn.execute(sa.select(registered_models.c.name)).scalars())
            raise NotFound(
                f"Registered model {name!r} does not exist.{did_you_mean(name, names)}",
                hint="List models with `milepost models list`.",
            )
        return int(model_id)

    @staticmethod
    def _check_version(conn: Connection, name: str, model_id: int, version: int) -> None:
        versions = list(
            conn.execute(
                sa.select(model_versions.c.version).where(model_versions.c.model_id == model_id)
            ).scalars()
        )
        if version not in versions:
            newest = max(versions) if versions else None
            raise NotFound(
                f"Model {name!r} has no version {version}"
                + (f"; the newest is {newest}." if newest else "."),
                hint=f"List its versions with `milepost models list {name}`.",
            )

    def fields(self, name: str, version: int) -> list[CardField]:
        """The model-wide sections and ``version``'s own (both, unmerged)."""
        with self.db.read() as conn:
            model_id = self._model_id(conn, name)
            rows = conn.execute(
                sa.select(model_card_fields)
                .where(
                    model_card_fields.c.model_id == model_id,
                    model_card_fields.c.version.in_((0, version)),
                )
                .order_by(model_card_fields.c.version, model_card_fields.c.field)
            ).mappings()
            return [_field(r) for r in rows]

    def write(
        self,
        name: str,
        version: int,
        changes: Mapping[str, str | None],
        *,
        actor: str,
        reason: str | None,
    ) -> list[CardField]:
        """Set (text) or clear (None) sections of ``name`` at ``version`` (0: the model) in
        one transaction, one audit event per section that changes. Returns the sections
        written (cleared ones are left out).

        Raises:
            NotFound: no such model or version.
        """
        now = _now()
        written: list[CardField] = []
        with self.db.write() as conn:
            model_id = self._model_id(conn, name, lock=True)
            if version:
                self._check_version(conn, name, model_id, version)
            key = (model_card_fields.c.model_id == model_id) & (
                model_card_fields.c.version == version
            )
            current = {
                r["field"]: r["text"]
                for r in conn.execute(
                    sa.select(model_card_fields.c.field, model_card_fields.c.text).where(key)
                ).mappings()
            }
            for field, text in changes.items():
                old = current.get(field)
                if text is not None:
                    written.append(CardField(field, text, version, actor, now))
                if old == text:
                    continue  # nothing changes: no event
                where = key & (model_card_fields.c.field == field)
                if text is None:
                    conn.execute(sa.delete(model_card_fields).where(where))
                elif old is None:
                    conn.execute(
                        sa.insert(model_card_fields).values(
                            model_id=model_id,
                            version=version,
                            field=field,
                            text=text,
                            updated_by=actor,
                            updated_at=now,
                        )
                    )
                else:
                    conn.execute(
                        sa.update(model_card_fields)
                        .where(where)
                        .values(text=text, updated_by=actor, updated_at=now)
                    )
                append_event(
                    conn,
                    actor=actor,
                    action="model_card.update",
                    object_type="model",
                    object_id=name,
                    before=_state(field, version, old),
                    after={"field": field, "version": version, "text": text},
                    reason=reason,
                )
        return written
