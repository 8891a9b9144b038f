"""Feature definitions, versions, watermarks and retrieval lineage in the metadata database."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from milepost._records import record_dict
from milepost.errors import Conflict, NotFound, did_you_mean
from milepost.features.intervals import Interval, merge
from milepost.stores import _sql
from milepost.stores.audit import append_event
from milepost.stores.schema import (
    entities,
    feature_retrievals,
    feature_view_versions,
    feature_views,
    model_versions,
    online_watermarks,
    registered_models,
)

if TYPE_CHECKING:
    from collections.abc import Sequence

    from sqlalchemy.engine import Connection

    from milepost.stores.metadata import MetadataStore

__all__ = ["SqlFeatureRegistry", "VersionRecord", "Watermark"]


#: Intervals kept per (view version, online store); older ones are forgotten.
_KEEP_INTERVALS = 64


def _now() -> int:
    return int(time.time() * 1000)


@dataclass(frozen=True)
class VersionRecord:
    """One registered version of a feature view (a row of ``feature_view_versions``)."""

    version_id: int
    view_id: int
    name: str
    kind: str  # feature_view or on_demand
    version: int
    fingerprint: str
    definition: dict[str, Any]
    description: str | None
    status: str  # active or retired
    #: the newest end materialized into any online store (ms; the per-store truth is in
    #: the watermarks)
    materialized_until: int | None
    created_by: str
    created_at: int
    retired_at: int | None
    origin: dict[str, Any] | None

    @property
    def key(self) -> str:
        """``view:vN``."""
        return f"{self.name}:v{self.version}"

    @property
    def active(self) -> bool:
        """True unless the version is retired."""
        return self.status == "active"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict of the fields."""
        return record_dict(self)

    def __repr__(self) -> str:
        return f"VersionRecord({self.key} {self.status} {self.fingerprint[:12]})"


@dataclass(frozen=True)
class Watermark:
    """What one online store holds of one view version: the event-time ``intervals``
    (``(start, end)`` in ms, start None for "from the beginning") materialized into the
    store ``store_id`` (at ``store_uri``), up to ``materialized_until``, at ``revision``."""

    name: str
    version: int
    store_id: str
    store_uri: str
    intervals: tuple[Interval, ...]
    materialized_until: int | None
    revision: int
    updated_by: str
    updated_at: int

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return record_dict(self)


def _int_or_none(value: Any) -> int | None:
    return None if value is None else int(value)


def _intervals(text: str) -> list[Interval]:
    return [(None if s is None else int(s), int(e)) for s, e in json.loads(text)]


class SqlFeatureRegistry:
    """Persistence of the feature store's definitions."""

    def __init__(self, db: MetadataStore) -> None:
        self.db = db

    def versions(self, *, include_retired: bool = True) -> list[VersionRecord]:
        """Every view version, by view name then version."""
        q = (
            sa.select(feature_views.c.name, feature_views.c.kind, feature_view_versions)
            .join(feature_views, feature_views.c.view_id == feature_view_versions.c.view_id)
            .order_by(feature_views.c.name, feature_view_versions.c.version)
        )
        if not include_retired:
            q = q.where(feature_view_versions.c.status == "active")
        with self.db.read() as conn:
            return [self._record(r) for r in conn.execute(q).mappings()]

    @staticmethod
    def _record(r: sa.RowMapping) -> VersionRecord:
        return VersionRecord(
            version_id=int(r["version_id"]),
            view_id=int(r["view_id"]),
            name=r["name"],
            kind=r["kind"],
            version=int(r["version"]),
            fingerprint=r["fingerprint"],
            definition=json.loads(r["definition_json"]),
            description=r["description"],
            status=r["status"],
            materialized_until=_int_or_none(r["materialized_until"]),
            created_by=r["created_by"],
            created_at=int(r["created_at"]),
            retired_at=_int_or_none(r["retired_at"]),
            origin=json.loads(r["origin_json"]) if r["origin_json"] else None,
        )

    def entities(self) -> dict[str, list[str]]:
        """Registered entities and their join keys."""
        with self.db.read() as conn:
            return {
                n: json.loads(k)
                for n, k in conn.execute(sa.select(entities.c.name, entities.c.join_keys_json))
            }

    def apply(
        self,
        entity_defs: Sequence[dict[str, Any]],
        view_defs: Sequence[dict[str, Any]],
        *,
        actor: str,
    ) -> list[tuple[str, int, str, int | None]]:
        """Register entities and new view versions in one transaction (all or nothing).

        ``view_defs`` items: name, kind, fingerprint, definition, description, version
        (declared or None), origin (where it was defined; stored with a new version).
        Returns ``(view, version, change, newest active version before)`` for each view,
        change being ``new``, ``new_version``, ``unchanged`` or ``reactivated``.
        """
        results: list[tuple[str, int, str, int | None]] = []
        now = _now()
        with self.db.write() as conn:
            for ent in entity_defs:
                existing = conn.execute(
                    sa.select(entities.c.join_keys_json).where(entities.c.name == ent["name"])
                ).scalar()
                if existing is None:
                    conn.execute(
                        sa.insert(entities).values(
                            name=ent["name"],
                            join_keys_json=json.dumps(ent["join_keys"]),
                            description=ent.get("description"),
                            created_by=actor,
                            created_at=now,
                        )
                    )
                    append_event(
                        conn,
                        actor=actor,
                        action="feature.entity",
                        object_type="entity",
                        object_id=ent["name"],
                        after=ent,
                    )
                elif json.loads(existing) != list(ent["join_keys"]):
                    raise Conflict(
                        f"Entity {ent['name']!r} is registered with join keys "
                        f"{json.loads(existing)}; the definition says {list(ent['join_keys'])}.",
                        hint="Entities cannot change keys; define a new entity with another name.",
                    )
            for view in view_defs:
                results.append(self._apply_view(conn, view, actor, now))
        return results

    def _apply_view(
        self, conn: Connection, view: dict[str, Any], actor: str, now: int
    ) -> tuple[str, int, str, int | None]:
        name = view["name"]
        ins = _sql.insert_for(conn, feature_views)
        conn.execute(
            ins.values(
                name=name, kind=view["kind"], created_by=actor, created_at=now
            ).on_conflict_do_nothing(index_elements=["name"])
        )
        row = (
            conn.execute(
                sa.select(feature_views).where(feature_views.c.name == name).with_for_update()
            )
            .mappings()
            .one()
        )
        if row["kind"] != view["kind"]:
            raise Conflict(f"{name!r} is registered as a {row['kind']} view, not {view['kind']}.")
        same = (
            conn.execute(
                sa.select(feature_view_versions).where(
                    feature_view_versions.c.view_id == row["view_id"],
                    feature_view_versions.c.fingerprint == view["fingerprint"],
                )
            )
            .mappings()
            .first()
        )
        latest = conn.execute(
            sa.select(sa.func.max(feature_view_versions.c.version)).where(
                feature_view_versions.c.view_id == row["view_id"]
            )
        ).scalar()
        current = conn.execute(
            sa.select(sa.func.max(feature_view_versions.c.version)).where(
                feature_view_versions.c.view_id == row["view_id"],
                feature_view_versions.c.status == "active",
            )
        ).scalar()
        declared = view.get("version")
        if same is not None:
            if declared is not None and declared != same["version"]:
                raise Conflict(
                    f"{name}: the definition is version {same['version']}, but it "
                    f"declares version={declared}."
                )
            if same["status"] == "retired":
                conn.execute(
                    sa.update(feature_view_versions)
                    .where(feature_view_versions.c.version_id == same["version_id"])
                    # retiring deleted its online rows: it must be materialized again
                    .values(status="active", retired_at=None, materialized_until=None)
                )
                append_event(
                    conn,
                    actor=actor,
                    action="feature.reactivate",
                    object_type="feature_view",
                    object_id=f"{name}:v{same['version']}",
                )
                return name, int(same["version"]), "reactivated", current
            return name, int(same["version"]), "unchanged", current
        version = (latest or 0) + 1
        if declared is not None and declared != version:
            raise Conflict(
                f"{name}: the definition changed, so it becomes version {version}, but it "
                f"declares version={declared}.",
                hint=f"Set version={version} (or remove version=) to accept the new version.",
            )
        conn.execute(
            sa.insert(feature_view_versions).values(
                view_id=row["view_id"],
                version=version,
                fingerprint=view["fingerprint"],
                definition_json=json.dumps(view["definition"]),
                origin_json=json.dumps(view["origin"]) if view.get("origin") else None,
                description=view.get("description"),
                status="active",
                created_by=actor,
                created_at=now,
            )
        )
        append_event(
            conn,
            actor=actor,
            action="feature.apply",
            object_type="feature_view",
            object_id=f"{name}:v{version}",
            after={"fingerprint": view["fingerprint"], "definition": view["definition"]},
        )
        return name, version, "new" if latest is None else "new_version", current

    def retire(self, name: str, version: int, *, actor: str) -> None:
        """Retire a version unless a Staging or Production model pins it (audited)."""
        ref = f"{name}:v{version}:"
        with self.db.write() as conn:
            row = conn.execute(
                sa.select(feature_view_versions.c.version_id, feature_view_versions.c.status)
                .join(feature_views, feature_views.c.view_id == feature_view_versions.c.view_id)
                .where(feature_views.c.name == name, feature_view_versions.c.version == version)
            ).first()
            if row is None:
                raise NotFound(f"Feature view {name}:v{version} does not exist.")
            pinned = conn.execute(
                sa.select(
                    registered_models.c.name, model_versions.c.version, model_versions.c.stage
                )
                .join(registered_models, registered_models.c.model_id == model_versions.c.model_id)
                .where(
                    model_versions.c.stage.in_(["Staging", "Production"]),
                    model_versions.c.feature_refs_json.like(f'%"{ref}%'),
                )
            ).first()
            if pinned is not None:
                raise Conflict(
                    f"Cannot retire {name}:v{version}: model {pinned.name} v{pinned.version} "
                    f"({pinned.stage}) pins it.",
                    hint="Archive that model version first, or keep this feature version.",
                )
            conn.execute(
                sa.update(feature_view_versions)
                .where(feature_view_versions.c.version_id == row.version_id)
                .values(status="retired", retired_at=_now())
            )
            append_event(
                conn,
                actor=actor,
                action="feature.retire",
                object_type="feature_view",
                object_id=f"{name}:v{version}",
            )

    def pinned_by(self, name: str) -> list[tuple[str, int, str, int]]:
        """Models (not Archived) that pin a version of view ``name``:
        ``(model, model version, stage, view version)``, one per pinned view version."""
        prefix = f"{name}:v"
        with self.db.read() as conn:
            rows = conn.execute(
                sa.select(
                    registered_models.c.name,
                    model_versions.c.version,
                    model_versions.c.stage,
                    model_versions.c.feature_refs_json,
                )
                .join(registered_models, registered_models.c.model_id == model_versions.c.model_id)
                .where(
                    model_versions.c.stage != "Archived",
                    model_versions.c.feature_refs_json.like(f'%"{prefix}%'),
                )
                .order_by(registered_models.c.name, model_versions.c.version)
            ).all()
        out = []
        for model, version, stage, refs_json in rows:
            pinned = set()
            for ref in json.loads(refs_json or "[]"):
                view, _, rest = str(ref).partition(":")
                number = rest.partition(":")[0][1:]
                if view == name and number.isdigit():
                    pinned.add(int(number))
            out += [(model, int(version), stage or "None", v) for v in sorted(pinned)]
        return out

    def _version_id(self, conn: Connection, name: str, version: int) -> int:
        found = conn.execute(
            sa.select(feature_view_versions.c.version_id)
            .join(feature_views, feature_views.c.view_id == feature_view_versions.c.view_id)
            .where(feature_views.c.name == name, feature_view_versions.c.version == version)
        ).scalar()
        if found is None:
            raise NotFound(f"Feature view {name}:v{version} does not exist.")
        return int(found)

    def watermarks(
        self, *, store_id: str | None = None, name: str | None = None
    ) -> list[Watermark]:
        """What online stores hold: of one store, of one view's versions, or everything."""
        q = (
            sa.select(
                feature_views.c.name,
                feature_view_versions.c.version,
                online_watermarks.c.store_id,
                online_watermarks.c.store_uri,
                online_watermarks.c.intervals_json,
                online_watermarks.c.materialized_until,
                online_watermarks.c.revision,
                online_watermarks.c.updated_by,
                online_watermarks.c.updated_at,
            )
            .join(
                feature_view_versions,
                feature_view_versions.c.version_id == online_watermarks.c.version_id,
            )
            .join(feature_views, feature_views.c.view_id == feature_view_versions.c.view_id)
            .order_by(online_watermarks.c.updated_at.desc())
        )
        if store_id is not None:
            q = q.where(online_watermarks.c.store_id == store_id)
        if name is not None:
            q = q.where(feature_views.c.name == name)
        out = []
        with self.db.read() as conn:
            for r in conn.execute(q).mappings():
                out.append(
                    Watermark(
                        name=r["name"],
                        version=int(r["version"]),
                        store_id=r["store_id"],
                        store_uri=r["store_uri"],
                        intervals=tuple(_intervals(r["intervals_json"])),
                        materialized_until=_int_or_none(r["materialized_until"]),
                        revision=int(r["revision"]),
                        updated_by=r["updated_by"],
                        updated_at=int(r["updated_at"]),
                    )
                )
        return out

    def max_revision(self, store_id: str) -> int | None:
        """The highest store revision any materialization recorded for ``store_id``."""
        with self.db.read() as conn:
            found = conn.execute(
                sa.select(sa.func.max(online_watermarks.c.revision)).where(
                    online_watermarks.c.store_id == store_id
                )
            ).scalar()
        return None if found is None else int(found)

    def record_materialization(
        self,
        name: str,
        version: int,
        *,
        store_id: str,
        store_uri: str,
        written: Sequence[Interval],
        revision: int,
        actor: str,
    ) -> list[Interval]:
        """Add ``written`` to what the store ``store_id`` holds of this version.

        One transaction: concurrent materializations merge their intervals, never lose
        one. Also moves the version's legacy ``materialized_until`` (any store) forward.
        Returns the store's intervals for the version afterwards.
        """
        now = _now()
        with self.db.write() as conn:
            version_id = self._version_id(conn, name, version)
            ins = _sql.insert_for(conn, online_watermarks)
            conn.execute(
                ins.values(
                    version_id=version_id,
                    store_id=store_id,
                    store_uri=store_uri,
                    intervals_json="[]",
                    materialized_until=0,
                    revision=revision,
                    updated_by=actor,
                    updated_at=now,
                ).on_conflict_do_nothing(index_elements=["version_id", "store_id"])
            )
            key = (online_watermarks.c.version_id == version_id) & (
                online_watermarks.c.store_id == store_id
            )
            row = (
                conn.execute(sa.select(online_watermarks).where(key).with_for_update())
                .mappings()
                .one()
            )
            # the newest intervals only: forgetting an old one costs at most a rewrite
            merged = merge([*_intervals(row["intervals_json"]), *written])[-_KEEP_INTERVALS:]
            until = max((e for _, e in merged), default=0)
            conn.execute(
                sa.update(online_watermarks)
                .where(key)
                .values(
                    store_uri=store_uri,
                    intervals_json=json.dumps(merged),
                    materialized_until=until,
                    revision=max(int(row["revision"]), revision),
                    updated_by=actor,
                    updated_at=now,
                )
            )
            # the legacy watermark (any store) only moves forward
            conn.execute(
                sa.update(feature_view_versions)
                .where(
                    feature_view_versions.c.version_id == version_id,
                    sa.or_(
                        feature_view_versions.c.materialized_until.is_(None),
                        feature_view_versions.c.materialized_until < until,
                    ),
                )
                .values(materialized_until=until)
            )
        return merged

    def forget_watermark(self, name: str, version: int, store_id: str) -> None:
        """The store ``store_id`` no longer holds this version's rows (they were deleted)."""
        with self.db.write() as conn:
            version_id = self._version_id(conn, name, version)
            conn.execute(
                sa.delete(online_watermarks).where(
                    online_watermarks.c.version_id == version_id,
                    online_watermarks.c.store_id == store_id,
                )
            )

    def record_retrieval(self, values: dict[str, Any]) -> None:
        """Store the lineage of one historical retrieval."""
        with self.db.write() as conn:
            conn.execute(sa.insert(feature_retrievals).values(**values))

    def refs_of_run(self, run_id: str) -> list[str]:
        """Every feature ref the run's retrievals used, in first-use order."""
        with self.db.read() as conn:
            rows = conn.execute(
                sa.select(feature_retrievals.c.refs_json)
                .where(feature_retrievals.c.run_id == run_id)
                .order_by(feature_retrievals.c.created_at)
            ).scalars()
            out: list[str] = []
            for refs in rows:
                out += [r for r in json.loads(refs) if r not in out]
            return out

    def unknown(self, name: str, known: Sequence[str]) -> NotFound:
        """A NotFound for an unknown view, with close names."""
        return NotFound(
            f"Feature view {name!r} is not registered.{did_you_mean(name, known)}",
            hint="Register definitions with `milepost features apply`.",
        )
