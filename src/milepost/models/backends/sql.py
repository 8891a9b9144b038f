"""The model registry in the metadata database.

Stage changes lock the registered model's row first (``FOR UPDATE`` on PostgreSQL; a
SQLite write transaction is exclusive anyway), then re-check the version's stage and
the Production version the caller expects, so concurrent promotions of one model
serialise and exactly one of two racing promotions to Production wins. A partial
unique index backs this up: the database itself refuses a second Production version.

When an endpoint tracks a model's Production (see :mod:`milepost.serving.spec`),
Production changes only through that endpoint's rollouts, which pass ``endpoint`` and
change the stage in the same transaction as the endpoint's primary: any other attempt to
move a version into Production, or to move a version the endpoint holds (its primary, a
canary, the previous version kept for rollback), is refused. Every path that changes a
stage comes through :meth:`SqlRegistryStore.transition_in` or
:meth:`SqlRegistryStore.restore_in`, so the rule has one home.
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from milepost.errors import Conflict, NotFound, did_you_mean
from milepost.models.models import (
    ModelVersion,
    RegisteredModel,
    StageEvent,
    transition_problem,
)
from milepost.models.signature import Signature
from milepost.stores import _sql
from milepost.stores.audit import append_event
from milepost.stores.schema import (
    endpoints,
    model_aliases,
    model_version_tags,
    model_versions,
    registered_models,
    stage_history,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from sqlalchemy.engine import Connection

    from milepost.stores.metadata import MetadataStore

__all__ = ["SqlRegistryStore"]


def _now() -> int:
    return int(time.time() * 1000)


class SqlRegistryStore:
    """Registered models, versions, aliases and stage history."""

    def __init__(self, db: MetadataStore) -> None:
        self.db = db

    # -- models ---------------------------------------------------------------------

    def _model_row(self, conn: Connection, name: str, *, lock: bool = False) -> sa.RowMapping:
        q = sa.select(registered_models).where(registered_models.c.name == name)
        row = conn.execute(q.with_for_update() if lock else q).mappings().first()
        if row is None:
            names = list(conn.execute(sa.select(registered_models.c.name)).scalars())
            raise NotFound(
                f"Registered model {name!r} does not exist.{did_you_mean(name, names)}",
                hint="List models with `milepost models list`.",
            )
        return row

    def model(self, name: str) -> RegisteredModel:
        """A registered model with its stages and aliases."""
        with self.db.read() as conn:
            return self._registered(conn, self._model_row(conn, name))

    def models(self) -> list[RegisteredModel]:
        """Every registered model."""
        with self.db.read() as conn:
            rows = conn.execute(
                sa.select(registered_models).order_by(registered_models.c.name)
            ).mappings()
            return [self._registered(conn, r) for r in list(rows)]

    def policy(self, name: str) -> str | None:
        """A model's stored promotion policy, as the JSON text stored (None: none set)."""
        with self.db.read() as conn:
            value = self._model_row(conn, name)["policy_json"]
            return None if value is None else str(value)

    def _registered(self, conn: Connection, row: sa.RowMapping) -> RegisteredModel:
        stages: dict[str, list[int]] = {}
        latest = None
        for stage, version in conn.execute(
            sa.select(model_versions.c.stage, model_versions.c.version)
            .where(model_versions.c.model_id == row["model_id"])
            .order_by(model_versions.c.version)
        ):
            stages.setdefault(stage, []).append(int(version))
            latest = int(version)
        return RegisteredModel(
            name=row["name"],
            description=row["description"],
            created_by=row["created_by"],
            created_at=int(row["created_at"]),
            updated_at=int(row["updated_at"]),
            latest_version=latest,
            stages=stages,
            aliases=self._model_aliases(conn, row["model_id"]),
            has_policy=bool(row["policy_json"]),
        )

    def add_version(
        self, name: str, values: dict[str, Any], tags: Mapping[str, str], *, actor: str
    ) -> int:
        """Create the model if needed and add the next version; returns its number."""
        now = _now()
        with self.db.write() as conn:
            model = self._created(conn, name, actor=actor, now=now)
            latest = conn.execute(
                sa.select(sa.func.max(model_versions.c.version)).where(
                    model_versions.c.model_id == model["model_id"]
                )
            ).scalar()
            version = (latest or 0) + 1
            version_id = conn.execute(
                sa.insert(model_versions)
                .values(
                    model_id=model["model_id"],
                    version=version,
                    stage="None",
                    created_at=now,
                    stage_changed_at=now,
                    **values,
                )
                .returning(model_versions.c.version_id)
            ).scalar_one()
            if tags:
                conn.execute(
                    sa.insert(model_version_tags),
                    [{"version_id": version_id, "key": k, "value": v} for k, v in tags.items()],
                )
            conn.execute(
                sa.update(registered_models)
                .where(registered_models.c.model_id == model["model_id"])
                .values(updated_at=now)
            )
            append_event(
                conn,
                actor=actor,
                action="model_version.register",
                object_type="model_version",
                object_id=f"{name}/{version}",
                after={
                    "run_id": values.get("run_id"),
                    "flavor": values["flavor"],
                    "files": json.loads(values["files_json"]),
                },
            )
            return version

    def _created(self, conn: Connection, name: str, *, actor: str, now: int) -> sa.RowMapping:
        """The model's row, locked; the model is created first (audited) when missing."""
        created = conn.execute(
            _sql.insert_for(conn, registered_models)
            .values(name=name, created_by=actor, created_at=now, updated_at=now)
            .on_conflict_do_nothing(index_elements=["name"])
        ).rowcount
        model = self._model_row(conn, name, lock=True)
        if created:
            append_event(
                conn, actor=actor, action="model.create", object_type="model", object_id=name
            )
        return model

    def set_policy(self, name: str, policy_json: str | None, *, actor: str) -> None:
        """Store (or clear) a model's promotion policy, audited.

        Storing a policy for a model that does not exist yet creates it (no versions;
        audited as ``model.create`` in the same transaction), so a policy can be in place
        before the first version is registered. Clearing one needs the model.

        Raises:
            NotFound: clearing the policy of a model that does not exist.
        """
        with self.db.write() as conn:
            if policy_json is None:
                model = self._model_row(conn, name, lock=True)
            else:
                model = self._created(conn, name, actor=actor, now=_now())
            conn.execute(
                sa.update(registered_models)
                .where(registered_models.c.model_id == model["model_id"])
                .values(policy_json=policy_json, updated_at=_now())
            )
            append_event(
                conn,
                actor=actor,
                action="model.policy",
                object_type="model",
                object_id=name,
                before=json.loads(model["policy_json"]) if model["policy_json"] else None,
                after=json.loads(policy_json) if policy_json else None,
            )

    def set_description(self, name: str, version: int | None, text: str, *, actor: str) -> None:
        """Describe a model or one version."""
        with self.db.write() as conn:
            model = self._model_row(conn, name, lock=True)
            if version is None:
                conn.execute(
                    sa.update(registered_models)
                    .where(registered_models.c.model_id == model["model_id"])
                    .values(description=text, updated_at=_now())
                )
            else:
                row = self._version_row(conn, model, version)
                conn.execute(
                    sa.update(model_versions)
                    .where(model_versions.c.version_id == row["version_id"])
                    .values(description=text)
                )

    # -- versions -------------------------------------------------------------------

    @staticmethod
    def _version_row(conn: Connection, model: sa.RowMapping, version: int) -> sa.RowMapping:
        row = (
            conn.execute(
                sa.select(model_versions).where(
                    model_versions.c.model_id == model["model_id"],
                    model_versions.c.version == version,
                )
            )
            .mappings()
            .first()
        )
        if row is None:
            latest = conn.execute(
                sa.select(sa.func.max(model_versions.c.version)).where(
                    model_versions.c.model_id == model["model_id"]
                )
            ).scalar()
            raise NotFound(
                f"Model {model['name']!r} has no version {version}"
                + (f"; the newest is {latest}." if latest else "."),
            )
        return row

    def version(
        self,
        name: str,
        *,
        version: int | None = None,
        stage: str | None = None,
        alias: str | None = None,
    ) -> ModelVersion:
        """A version with its tags and aliases, selected by number, stage or alias."""
        with self.db.read() as conn:
            model = self._model_row(conn, name)
            if version is not None:
                row = self._version_row(conn, model, version)
            elif alias is not None:
                vid = conn.execute(
                    sa.select(model_aliases.c.version_id).where(
                        model_aliases.c.model_id == model["model_id"],
                        model_aliases.c.alias == alias,
                    )
                ).scalar()
                if vid is None:
                    known = list(
                        conn.execute(
                            sa.select(model_aliases.c.alias).where(
                                model_aliases.c.model_id == model["model_id"]
                            )
                        ).scalars()
                    )
                    raise NotFound(
                        f"Model {name!r} has no alias {alias!r}.{did_you_mean(alias, known)}",
                        hint="Set one with `milepost models alias NAME ALIAS VERSION`.",
                    )
                row = (
                    conn.execute(
                        sa.select(model_versions).where(model_versions.c.version_id == vid)
                    )
                    .mappings()
                    .one()
                )
            else:
                q = sa.select(model_versions).where(model_versions.c.model_id == model["model_id"])
                if stage != "latest":
                    q = q.where(model_versions.c.stage == stage)
                found = (
                    conn.execute(q.order_by(model_versions.c.version.desc()).limit(1))
                    .mappings()
                    .first()
                )
                if found is None:
                    raise NotFound(
                        f"Model {name!r} has no version in {stage}."
                        if stage != "latest"
                        else f"Model {name!r} has no versions.",
                        hint=f"See `milepost models list {name}`.",
                    )
                row = found
            return self._version(conn, name, row)

    def promotion_snapshot(
        self, name: str, version: int
    ) -> tuple[int, str | None, ModelVersion, ModelVersion | None]:
        """In one read: the model id, its stored policy JSON, the candidate and the current
        Production version."""
        with self.db.read() as conn:
            model = self._model_row(conn, name)
            row = self._version_row(conn, model, version)
            prod = (
                conn.execute(
                    sa.select(model_versions).where(
                        model_versions.c.model_id == model["model_id"],
                        model_versions.c.stage == "Production",
                    )
                )
                .mappings()
                .first()
            )
            return (
                int(model["model_id"]),
                model["policy_json"],
                self._version(conn, name, row),
                None if prod is None else self._version(conn, name, prod),
            )

    def versions(self, name: str) -> list[ModelVersion]:
        """Every version, oldest first."""
        with self.db.read() as conn:
            model = self._model_row(conn, name)
            rows = list(
                conn.execute(
                    sa.select(model_versions)
                    .where(model_versions.c.model_id == model["model_id"])
                    .order_by(model_versions.c.version)
                ).mappings()
            )
            return [self._version(conn, name, r) for r in rows]

    def _version(self, conn: Connection, name: str, row: sa.RowMapping) -> ModelVersion:
        """A version row, its JSON columns decoded, with its tags and aliases."""
        example = row["input_example_json"]
        return ModelVersion(
            name=name,
            version=int(row["version"]),
            stage=row["stage"],
            flavor=row["flavor"],
            run_id=row["run_id"],
            author=row["author"],
            created_at=int(row["created_at"]),
            stage_changed_at=int(row["stage_changed_at"]),
            files=json.loads(row["files_json"]),
            signature=Signature.from_dict(json.loads(row["signature_json"]))
            if row["signature_json"]
            else None,
            input_example=json.loads(example) if example else None,
            metrics=json.loads(row["metrics_json"]),
            datasets=json.loads(row["datasets_json"]),
            feature_refs=json.loads(row["feature_refs_json"]),
            trusted_types=json.loads(row["trusted_types_json"]),
            onnx=json.loads(row["onnx_json"]) if row["onnx_json"] else None,
            env_hash=row["env_hash"],
            code_version=row["code_version"],
            description=row["description"],
            tags=self._tags(conn, row["version_id"]),
            aliases=self._aliases_of(conn, row["version_id"]),
            version_id=int(row["version_id"]),
        )

    def version_by_id(self, version_id: int) -> ModelVersion:
        """A version by its internal id."""
        with self.db.read() as conn:
            row = (
                conn.execute(
                    sa.select(model_versions, registered_models.c.name)
                    .join(
                        registered_models, registered_models.c.model_id == model_versions.c.model_id
                    )
                    .where(model_versions.c.version_id == version_id)
                )
                .mappings()
                .one()
            )
            return self._version(conn, str(row["name"]), row)

    @staticmethod
    def _tags(conn: Connection, version_id: int) -> dict[str, str]:
        return {
            k: v
            for k, v in conn.execute(
                sa.select(model_version_tags.c.key, model_version_tags.c.value)
                .where(model_version_tags.c.version_id == version_id)
                .order_by(model_version_tags.c.key)
            )
        }

    @staticmethod
    def _aliases_of(conn: Connection, version_id: int) -> list[str]:
        return list(
            conn.execute(
                sa.select(model_aliases.c.alias)
                .where(model_aliases.c.version_id == version_id)
                .order_by(model_aliases.c.alias)
            ).scalars()
        )

    def aliases(self, name: str) -> dict[str, int]:
        """``alias -> version`` of a model."""
        with self.db.read() as conn:
            return self._model_aliases(conn, self._model_row(conn, name)["model_id"])

    @staticmethod
    def _model_aliases(conn: Connection, model_id: int) -> dict[str, int]:
        return {
            a: int(v)
            for a, v in conn.execute(
                sa.select(model_aliases.c.alias, model_versions.c.version)
                .join(model_versions, model_versions.c.version_id == model_aliases.c.version_id)
                .where(model_aliases.c.model_id == model_id)
                .order_by(model_aliases.c.alias)
            )
        }

    def set_tags(self, name: str, version: int, tags: Mapping[str, str]) -> None:
        """Set version tags (replacing values)."""
        with self.db.write() as conn:
            row = self._version_row(conn, self._model_row(conn, name), version)
            if not tags:
                return
            ins = _sql.insert_for(conn, model_version_tags)
            conn.execute(
                ins.on_conflict_do_update(
                    index_elements=["version_id", "key"], set_={"value": ins.excluded.value}
                ),
                [{"version_id": row["version_id"], "key": k, "value": v} for k, v in tags.items()],
            )

    # -- aliases and stages -----------------------------------------------------------

    def set_alias(self, name: str, alias: str, version: int | None, *, actor: str) -> int | None:
        """Point ``alias`` at ``version`` (None removes it), audited; returns the old version."""
        with self.db.write() as conn:
            model = self._model_row(conn, name, lock=True)
            old = conn.execute(
                sa.select(model_versions.c.version)
                .join(model_aliases, model_aliases.c.version_id == model_versions.c.version_id)
                .where(
                    model_aliases.c.model_id == model["model_id"], model_aliases.c.alias == alias
                )
            ).scalar()
            if version is None:
                if old is None:
                    raise NotFound(f"Model {name!r} has no alias {alias!r}.")
                conn.execute(
                    sa.delete(model_aliases).where(
                        model_aliases.c.model_id == model["model_id"],
                        model_aliases.c.alias == alias,
                    )
                )
            else:
                row = self._version_row(conn, model, version)
                ins = _sql.insert_for(conn, model_aliases)
                conn.execute(
                    ins.values(
                        model_id=model["model_id"],
                        alias=alias,
                        version_id=row["version_id"],
                        updated_by=actor,
                        updated_at=_now(),
                    ).on_conflict_do_update(
                        index_elements=["model_id", "alias"],
                        set_={
                            "version_id": ins.excluded.version_id,
                            "updated_by": ins.excluded.updated_by,
                            "updated_at": ins.excluded.updated_at,
                        },
                    )
                )
            append_event(
                conn,
                actor=actor,
                action="model.alias",
                object_type="model",
                object_id=f"{name}@{alias}",
                before={"version": old},
                after={"version": version},
            )
            return None if old is None else int(old)

    def lock_model(self, conn: Connection, name: str) -> int:
        """Lock a registered model's row for the rest of ``conn``'s transaction; its id.

        Everything that changes a stage or an endpoint tracking a stage takes this lock
        first, so they serialise per model (and always lock in the same order).
        """
        return int(self._model_row(conn, name, lock=True)["model_id"])

    @staticmethod
    def production_in(conn: Connection, model_id: int) -> int | None:
        """The version in Production of a (locked) model, by id, or None."""
        value = conn.execute(
            sa.select(model_versions.c.version).where(
                model_versions.c.model_id == model_id,
                model_versions.c.stage == "Production",
            )
        ).scalar()
        return None if value is None else int(value)

    @staticmethod
    def tracking_endpoint(
        conn: Connection, name: str, stage: str = "Production"
    ) -> tuple[str, dict[int, str]] | None:
        """The endpoint tracking ``stage`` of model ``name``, with ``{version: role}`` of
        the versions it holds: its primary and the candidate of a rollout under way (a
        canary, or a blue/green or rolling candidate). None without such an endpoint.

        The previous version kept warm for a rollback is not held: it may be re-reviewed
        (a rollback then says it cannot restore it)."""
        row = conn.execute(
            sa.select(endpoints.c.name, endpoints.c.spec_json).where(
                endpoints.c.track_model == name, endpoints.c.track_stage == stage
            )
        ).first()
        if row is None:
            return None
        try:
            spec = json.loads(row.spec_json)
            variants = spec.get("variants") or []
            rollout = spec.get("rollout") or {}
        except (TypeError, ValueError, AttributeError):
            variants, rollout = [], {}
        under_way = rollout.get("status") in ("preview", "progressing", "in_progress", "paused")
        held = {
            int(v["version"]): "candidate" if v.get("role") == "standby" else str(v["role"])
            for v in variants
            if isinstance(v, dict)
            and (
                v.get("role") in ("primary", "canary")
                or (under_way and v.get("name") == rollout.get("candidate"))
            )
        }
        return str(row.name), held

    def transition(
        self,
        name: str,
        version: int,
        to_stage: str,
        *,
        actor: str,
        reason: str | None,
        request_id: str | None = None,
        expected_production: int | bool | None = False,
        details: Any = None,
        in_transaction: Callable[[Connection], None] | None = None,
    ) -> list[tuple[int, str, str]]:
        """Change a version's stage in one transaction, audited; returns the changes made.

        See :meth:`transition_in`. ``in_transaction`` runs inside the same transaction
        (the promotion service records its request's outcome there, so both commit or
        neither does).
        """
        with self.db.write() as conn:
            changes = self.transition_in(
                conn,
                name,
                version,
                to_stage,
                actor=actor,
                reason=reason,
                request_id=request_id,
                expected_production=expected_production,
                details=details,
            )
            if in_transaction is not None:
                in_transaction(conn)
            return changes

    def transition_in(
        self,
        conn: Connection,
        name: str,
        version: int,
        to_stage: str,
        *,
        actor: str,
        reason: str | None,
        request_id: str | None = None,
        expected_production: int | bool | None = False,
        details: Any = None,
        endpoint: str | None = None,
    ) -> list[tuple[int, str, str]]:
        """Change a version's stage inside ``conn``'s transaction, audited.

        Promoting to Production archives the current Production version. When
        ``expected_production`` is not False, the current Production version must still be
        that one (None: no Production version), or the change is refused as stale.
        ``endpoint`` names the tracking endpoint whose rollout makes this change (only
        it may change Production of a model it tracks).

        Raises:
            Conflict: an illegal change, Production moved since the caller looked, or an
                endpoint tracks Production of the model and this is not its rollout.
        """
        now = _now()
        model, row, current_prod = self._checked(conn, name, version, to_stage, expected_production)
        self._refuse_behind_endpoint(conn, name, version, to_stage, endpoint)
        changes: list[tuple[int, str, str]] = []
        if to_stage == "Production" and current_prod is not None:
            self._set_stage(
                conn,
                model,
                current_prod.version_id,
                "Production",
                "Archived",
                actor,
                f"replaced by version {version}",
                request_id,
                now,
            )
            changes.append((int(current_prod.version), "Production", "Archived"))
        self._set_stage(
            conn,
            model,
            row["version_id"],
            row["stage"],
            to_stage,
            actor,
            reason,
            request_id,
            now,
        )
        changes.append((version, row["stage"], to_stage))
        append_event(
            conn,
            actor=actor,
            action="model_version.stage",
            object_type="model_version",
            object_id=f"{name}/{version}",
            before={"stage": row["stage"]},
            after={
                "stage": to_stage,
                "request_id": request_id,
                "changes": changes,
                "gates": details,
                **({"endpoint": endpoint} if endpoint else {}),
            },
            reason=reason,
        )
        return changes

    def _checked(
        self,
        conn: Connection,
        name: str,
        version: int,
        to_stage: str,
        expected_production: int | bool | None,
    ) -> tuple[sa.RowMapping, sa.RowMapping, Any]:
        """Lock the model; check the move is legal and Production is what was expected."""
        model = self._model_row(conn, name, lock=True)
        row = self._version_row(conn, model, version)
        problem = transition_problem(row["stage"], to_stage)
        if problem:
            raise Conflict(f"Cannot move {name} version {version} to {to_stage}: {problem}.")
        current_prod = conn.execute(
            sa.select(model_versions.c.version_id, model_versions.c.version).where(
                model_versions.c.model_id == model["model_id"],
                model_versions.c.stage == "Production",
            )
        ).first()
        if expected_production is not False:
            now_prod = None if current_prod is None else int(current_prod.version)
            if now_prod != expected_production:
                raise Conflict(
                    f"Production of {name} changed while this promotion was decided "
                    f"(expected {expected_production or 'none'}, now {now_prod or 'none'}).",
                    hint="Run the promotion again so its gates compare with the current "
                    "Production version.",
                )
        return model, row, current_prod

    def check_transition_in(
        self,
        conn: Connection,
        name: str,
        version: int,
        to_stage: str,
        *,
        expected_production: int | bool | None = False,
    ) -> None:
        """Lock the model and check that the move is legal now, without making it (a
        promotion that waits for a tracking endpoint's rollout checks this).

        Raises:
            Conflict: as :meth:`transition_in` would, for the same reasons.
        """
        self._checked(conn, name, version, to_stage, expected_production)

    def _refuse_behind_endpoint(
        self, conn: Connection, name: str, version: int, to_stage: str, endpoint: str | None
    ) -> None:
        """Refuse a stage change that would make the registry and a tracking endpoint
        disagree (anything but that endpoint's own rollout)."""
        bound = self.tracking_endpoint(conn, name)
        if bound is None or bound[0] == endpoint:
            return
        tracker, held = bound
        if to_stage == "Production":
            raise Conflict(
                f"Endpoint {tracker!r} tracks Production of {name}: {name} v{version} enters "
                "Production only through a rollout there, so that the registry and the "
                "endpoint change together.",
                hint=f"Roll it out: `milepost endpoints update {tracker} {version}` "
                "(a canary; or --strategy blue-green / rolling); its Production gates run first.",
            )
        if version in held:
            role = held[version]
            what = {
                "primary": "serves it as Production",
                "canary": "is rolling it out as a canary",
                "candidate": "is rolling it out",
            }.get(role, f"holds it ({role})")
            raise Conflict(
                f"{name} v{version} cannot move to {to_stage}: endpoint {tracker!r}, which "
                f"tracks Production of {name}, {what}.",
                hint=f"Change it through the endpoint: roll out another version, roll back, "
                f"or finalize (`milepost endpoints show {tracker}`).",
            )

    def restore_in(
        self,
        conn: Connection,
        name: str,
        *,
        current: int,
        previous: int,
        actor: str,
        reason: str | None,
        request_id: str | None,
        endpoint: str,
    ) -> list[tuple[int, str, str]]:
        """Roll Production back: ``current`` leaves Production (Archived) and ``previous``,
        archived when ``current`` replaced it, returns to it; audited, in ``conn``.

        Only a tracking endpoint's rollback does this (a version coming back from the
        archive otherwise goes through Staging and its gates again).

        Raises:
            Conflict: ``current`` is not in Production, or ``previous`` is not the version
                ``current`` replaced there (moved since, or never in Production).
        """
        now = _now()
        model = self._model_row(conn, name, lock=True)
        cur = self._version_row(conn, model, current)
        prev = self._version_row(conn, model, previous)
        if cur["stage"] != "Production":
            raise Conflict(
                f"Cannot roll {name} back to v{previous}: v{current} is in {cur['stage']}, "
                "not Production."
            )
        last = conn.execute(
            sa.select(stage_history.c.from_stage, stage_history.c.to_stage)
            .where(stage_history.c.version_id == prev["version_id"])
            .order_by(stage_history.c.at.desc(), stage_history.c.event_id.desc())
            .limit(1)
        ).first()
        if prev["stage"] != "Archived" or last is None or tuple(last) != ("Production", "Archived"):
            raise Conflict(
                f"Cannot roll {name} back to v{previous}: it is in {prev['stage']} now, not "
                f"the Production version v{current} replaced.",
                hint="Promote the version you want through the gates and roll it out.",
            )
        self._set_stage(
            conn, model, cur["version_id"], "Production", "Archived", actor, reason, request_id, now
        )
        self._set_stage(
            conn,
            model,
            prev["version_id"],
            "Archived",
            "Production",
            actor,
            reason,
            request_id,
            now,
        )
        changes = [(current, "Production", "Archived"), (previous, "Archived", "Production")]
        append_event(
            conn,
            actor=actor,
            action="model_version.stage",
            object_type="model_version",
            object_id=f"{name}/{previous}",
            before={"stage": "Archived"},
            # no request_id: the request rolled back is recorded by its own event
            after={
                "stage": "Production",
                "changes": changes,
                "rollback_of": request_id,
                "endpoint": endpoint,
            },
            reason=reason,
        )
        return changes

    @staticmethod
    def _set_stage(
        conn: Connection,
        model: sa.RowMapping,
        version_id: int,
        from_stage: str,
        to_stage: str,
        actor: str,
        reason: str | None,
        request_id: str | None,
        now: int,
    ) -> None:
        conn.execute(
            sa.update(model_versions)
            .where(model_versions.c.version_id == version_id)
            .values(stage=to_stage, stage_changed_at=now)
        )
        conn.execute(
            sa.insert(stage_history).values(
                model_id=model["model_id"],
                version_id=version_id,
                from_stage=from_stage,
                to_stage=to_stage,
                actor=actor,
                reason=reason,
                request_id=request_id,
                at=now,
            )
        )

    def history(self, name: str) -> list[StageEvent]:
        """Every stage change of a model, oldest first."""
        with self.db.read() as conn:
            model = self._model_row(conn, name)
            rows = conn.execute(
                sa.select(stage_history, model_versions.c.version)
                .join(model_versions, model_versions.c.version_id == stage_history.c.version_id)
                .where(stage_history.c.model_id == model["model_id"])
                .order_by(stage_history.c.at, stage_history.c.event_id)
            ).mappings()
            return [
                StageEvent(
                    name,
                    int(r["version"]),
                    r["from_stage"],
                    r["to_stage"],
                    r["actor"],
                    r["reason"],
                    r["request_id"],
                    int(r["at"]),
                )
                for r in rows
            ]
