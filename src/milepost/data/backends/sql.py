"""Datasets, versions, run inputs and validation results in the metadata database."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from milepost.data.models import ColumnSchema, DatasetInput, DatasetRow, DatasetVersion
from milepost.data.results import ValidationResult
from milepost.errors import NotFound, did_you_mean
from milepost.stores import _sql
from milepost.stores.audit import append_event
from milepost.stores.schema import (
    dataset_files,
    dataset_versions,
    datasets,
    run_inputs,
    runs,
    validation_results,
)

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from milepost.stores.metadata import MetadataStore

__all__ = ["DatasetRow", "NewVersion", "SqlDataStore"]


def _now() -> int:
    return int(time.time() * 1000)


@dataclass(frozen=True)
class NewVersion:
    """Everything about a version except its number, which the store assigns."""

    content_hash: str
    schema_json: str
    num_rows: int
    size_bytes: int
    source_uri: str | None
    description: str | None
    profile_json: str
    files: list[tuple[str, int, str]]  # (digest, size, source)
    hash_version: int


class SqlDataStore:
    """Persistence for data versioning and validation."""

    def __init__(self, db: MetadataStore) -> None:
        self.db = db

    def add_version(self, name: str, new: NewVersion, *, actor: str) -> tuple[DatasetVersion, bool]:
        """Insert a version (number = newest + 1) unless the content is already there.

        Returns the version and whether it was created. The dataset row is locked
        first, so concurrent registrations of one dataset serialise.
        """
        with self.db.write() as conn:
            ins = _sql.insert_for(conn, datasets)
            conn.execute(
                ins.values(
                    name=name, description=new.description, created_by=actor, created_at=_now()
                ).on_conflict_do_nothing(index_elements=["name"])
            )
            dataset_id = conn.execute(
                sa.select(datasets.c.dataset_id).where(datasets.c.name == name).with_for_update()
            ).scalar_one()
            existing = (
                conn.execute(
                    sa.select(dataset_versions).where(
                        dataset_versions.c.dataset_id == dataset_id,
                        dataset_versions.c.content_hash == new.content_hash,
                    )
                )
                .mappings()
                .first()
            )
            if existing is not None:
                return _version(name, existing, self._files(conn, existing["version_id"])), False
            latest = conn.execute(
                sa.select(sa.func.max(dataset_versions.c.version)).where(
                    dataset_versions.c.dataset_id == dataset_id
                )
            ).scalar()
            version = (latest or 0) + 1
            version_id = conn.execute(
                sa.insert(dataset_versions)
                .values(
                    dataset_id=dataset_id,
                    version=version,
                    content_hash=new.content_hash,
                    hash_version=new.hash_version,
                    schema_json=new.schema_json,
                    num_rows=new.num_rows,
                    num_files=len(new.files),
                    size_bytes=new.size_bytes,
                    source_uri=new.source_uri,
                    description=new.description,
                    profile_json=new.profile_json,
                    created_by=actor,
                    created_at=_now(),
                )
                .returning(dataset_versions.c.version_id)
            ).scalar_one()
            conn.execute(
                sa.insert(dataset_files),
                [
                    {"version_id": version_id, "position": i, "digest": d, "size": s, "source": src}
                    for i, (d, s, src) in enumerate(new.files)
                ],
            )
            append_event(
                conn,
                actor=actor,
                action="dataset.register",
                object_type="dataset_version",
                object_id=f"{name}@{version}",
                after={
                    "content_hash": new.content_hash,
                    "num_rows": new.num_rows,
                    "source_uri": new.source_uri,
                },
            )
            row = (
                conn.execute(
                    sa.select(dataset_versions).where(dataset_versions.c.version_id == version_id)
                )
                .mappings()
                .one()
            )
            return _version(name, row, [d for d, _, _ in new.files]), True

    def find_by_hash(
        self, name: str, content_hash: str, *, hash_version: int
    ) -> DatasetVersion | None:
        """The version of ``name`` whose content hashed to this under that hash version."""
        with self.db.read() as conn:
            row = (
                conn.execute(
                    sa.select(dataset_versions)
                    .join(datasets, datasets.c.dataset_id == dataset_versions.c.dataset_id)
                    .where(
                        datasets.c.name == name,
                        dataset_versions.c.content_hash == content_hash,
                        dataset_versions.c.hash_version == hash_version,
                    )
                )
                .mappings()
                .first()
            )
            return (
                None if row is None else _version(name, row, self._files(conn, row["version_id"]))
            )

    def hash_versions(self, name: str) -> set[int]:
        """The hash versions the versions of ``name`` were registered with."""
        with self.db.read() as conn:
            return set(
                conn.execute(
                    sa.select(dataset_versions.c.hash_version)
                    .join(datasets, datasets.c.dataset_id == dataset_versions.c.dataset_id)
                    .where(datasets.c.name == name)
                    .distinct()
                ).scalars()
            )

    def _dataset_id(self, conn: Connection, name: str) -> int:
        found = conn.execute(
            sa.select(datasets.c.dataset_id).where(datasets.c.name == name)
        ).scalar()
        if found is None:
            names = list(conn.execute(sa.select(datasets.c.name)).scalars())
            raise NotFound(
                f"Dataset {name!r} does not exist.{did_you_mean(name, names)}",
                hint="List datasets with `milepost data list`.",
            )
        return int(found)

    def get_version(self, name: str, version: int | None) -> DatasetVersion:
        """A version (newest when ``version`` is None), without a loader."""
        with self.db.read() as conn:
            dataset_id = self._dataset_id(conn, name)
            q = sa.select(dataset_versions).where(dataset_versions.c.dataset_id == dataset_id)
            if version is None:
                q = q.order_by(dataset_versions.c.version.desc()).limit(1)
            else:
                q = q.where(dataset_versions.c.version == version)
            row = conn.execute(q).mappings().first()
            if row is None:
                latest = conn.execute(
                    sa.select(sa.func.max(dataset_versions.c.version)).where(
                        dataset_versions.c.dataset_id == dataset_id
                    )
                ).scalar()
                raise NotFound(
                    f"Dataset {name!r} has no version {version}"
                    + (f"; the newest is {latest}." if latest else "."),
                )
            return _version(name, row, self._files(conn, row["version_id"]))

    def version_by_id(self, version_id: int) -> DatasetVersion:
        """A version by its internal id, without a loader."""
        with self.db.read() as conn:
            row = (
                conn.execute(
                    sa.select(dataset_versions, datasets.c.name)
                    .join(datasets, datasets.c.dataset_id == dataset_versions.c.dataset_id)
                    .where(dataset_versions.c.version_id == version_id)
                )
                .mappings()
                .one()
            )
            return _version(str(row["name"]), row, self._files(conn, version_id))

    @staticmethod
    def _files(conn: Connection, version_id: Any) -> list[str]:
        return list(
            conn.execute(
                sa.select(dataset_files.c.digest)
                .where(dataset_files.c.version_id == version_id)
                .order_by(dataset_files.c.position)
            ).scalars()
        )

    def list_versions(self, name: str) -> list[DatasetVersion]:
        """Every version of a dataset, oldest first, without loaders."""
        with self.db.read() as conn:
            dataset_id = self._dataset_id(conn, name)
            rows = list(
                conn.execute(
                    sa.select(dataset_versions)
                    .where(dataset_versions.c.dataset_id == dataset_id)
                    .order_by(dataset_versions.c.version)
                ).mappings()
            )
            files: dict[int, list[str]] = {int(r["version_id"]): [] for r in rows}
            for version_id, digest in conn.execute(
                sa.select(dataset_files.c.version_id, dataset_files.c.digest)
                .join(dataset_versions, dataset_versions.c.version_id == dataset_files.c.version_id)
                .where(dataset_versions.c.dataset_id == dataset_id)
                .order_by(dataset_files.c.version_id, dataset_files.c.position)
            ):
                files[int(version_id)].append(digest)
            return [_version(name, r, files[int(r["version_id"])]) for r in rows]

    def list_datasets(self) -> list[DatasetRow]:
        """Every dataset with its newest version number."""
        q = (
            sa.select(
                datasets.c.name,
                datasets.c.description,
                datasets.c.created_by,
                datasets.c.created_at,
                sa.func.max(dataset_versions.c.version),
                sa.func.count(dataset_versions.c.version_id),
            )
            .select_from(datasets.outerjoin(dataset_versions))
            .group_by(datasets.c.dataset_id)
            .order_by(datasets.c.name)
        )
        with self.db.read() as conn:
            return [
                DatasetRow(r[0], r[1], r[2], int(r[3]), r[4], int(r[5])) for r in conn.execute(q)
            ]

    # -- lineage ----------------------------------------------------------------------

    def add_input(self, run_id: str, version_id: int, role: str, *, actor: str) -> bool:
        """Record that a run used a version in a role; False when already recorded."""
        with self.db.write() as conn:
            if (
                conn.execute(sa.select(runs.c.run_id).where(runs.c.run_id == run_id)).first()
                is None
            ):
                raise NotFound(f"Run {run_id!r} does not exist; cannot record its input.")
            res = conn.execute(
                _sql.insert_for(conn, run_inputs)
                .values(run_id=run_id, version_id=version_id, role=role, created_at=_now())
                .on_conflict_do_nothing(index_elements=["run_id", "version_id", "role"])
            )
            return bool(res.rowcount)

    def inputs(
        self, *, run_id: str | None = None, version_id: int | None = None
    ) -> list[DatasetInput]:
        """The inputs of a run, or the runs that used a version, oldest first."""
        q = (
            sa.select(
                run_inputs.c.run_id,
                run_inputs.c.role,
                run_inputs.c.created_at,
                datasets.c.name,
                dataset_versions.c.version,
                dataset_versions.c.content_hash,
            )
            .join(dataset_versions, dataset_versions.c.version_id == run_inputs.c.version_id)
            .join(datasets, datasets.c.dataset_id == dataset_versions.c.dataset_id)
            .order_by(run_inputs.c.created_at, run_inputs.c.run_id)
        )
        if run_id is not None:
            q = q.where(run_inputs.c.run_id == run_id)
        if version_id is not None:
            q = q.where(run_inputs.c.version_id == version_id)
        with self.db.read() as conn:
            return [
                DatasetInput(
                    r["run_id"],
                    f"{r['name']}@{r['version']}",
                    r["role"],
                    r["content_hash"],
                    int(r["created_at"]),
                )
                for r in conn.execute(q).mappings()
            ]

    # -- validation -------------------------------------------------------------------

    def add_validation(self, values: dict[str, Any], *, actor: str, ref: str | None) -> None:
        """Store a validation result (and audit it when it concerns a dataset version)."""
        with self.db.write() as conn:
            conn.execute(sa.insert(validation_results).values(created_by=actor, **values))
            if ref is not None:
                append_event(
                    conn,
                    actor=actor,
                    action="dataset.validate",
                    object_type="dataset_version",
                    object_id=ref,
                    after={
                        "suite": values["suite_name"],
                        "success": values["success"],
                        "failed": values["num_failed"],
                        "result_id": values["result_id"],
                    },
                )

    def validations(self, version_id: int, *, limit: int = 20) -> list[ValidationResult]:
        """Validation results of a version, newest first."""
        with self.db.read() as conn:
            texts = list(
                conn.execute(
                    sa.select(validation_results.c.result_json)
                    .where(validation_results.c.version_id == version_id)
                    .order_by(validation_results.c.created_at.desc())
                    .limit(limit)
                ).scalars()
            )
        return [ValidationResult.from_dict(json.loads(t)) for t in texts]

    def validation(self, result_id: str) -> ValidationResult:
        """One stored validation result."""
        with self.db.read() as conn:
            text = conn.execute(
                sa.select(validation_results.c.result_json).where(
                    validation_results.c.result_id == result_id
                )
            ).scalar()
        if text is None:
            raise NotFound(f"Validation result {result_id!r} does not exist.")
        return ValidationResult.from_dict(json.loads(text))


def _version(name: str, row: sa.RowMapping, files: list[str]) -> DatasetVersion:
    """A version row as a record (the service gives it a loader)."""
    return DatasetVersion(
        name=name,
        version=int(row["version"]),
        content_hash=row["content_hash"],
        schema=[ColumnSchema(**c) for c in json.loads(row["schema_json"])],
        num_rows=int(row["num_rows"]),
        num_files=int(row["num_files"]),
        size_bytes=int(row["size_bytes"]),
        source_uri=row["source_uri"],
        description=row["description"],
        profile=json.loads(row["profile_json"]),
        created_by=row["created_by"],
        created_at=int(row["created_at"]),
        files=files,
        version_id=int(row["version_id"]),
        hash_version=int(row["hash_version"]),
    )
