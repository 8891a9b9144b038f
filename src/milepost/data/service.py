"""Data versioning and validation: register, load, diff, record inputs, validate.

Registration stages the input as local Parquet, hashes its canonical content, returns
the existing version when that content is already registered under the name, and
otherwise profiles it, uploads the snapshot and records the version in one transaction:
a version appears only once its snapshot and profile are fully stored.

Versions registered before hash version 2 keep their version-1 hash. When a dataset has
such versions and the new hash matches none, the data is staged and hashed the old way
too and compared with those; so data registered before an upgrade returns its version
instead of becoming a silent duplicate (in its old encoding: the canonical forms apply to
what is registered from version 2 on).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import re
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.parquet as pq

from milepost import _validate as check
from milepost._actor import ActorAttribute
from milepost.data import _hash, _ingest, _profile
from milepost.data._diff import DatasetDiff
from milepost.data.backends.sql import NewVersion, SqlDataStore
from milepost.data.models import ColumnSchema, DatasetInput, DatasetRow, DatasetVersion, parse_ref
from milepost.data.results import ValidationResult
from milepost.data.validation import CheckContext, Suite, run_checks
from milepost.errors import IntegrityViolation, InvalidInput, NotFound
from milepost.stores.blobs import verify_file

if TYPE_CHECKING:
    from milepost.config import Settings
    from milepost.stores.blobs import BlobStore
    from milepost.stores.metadata import MetadataStore

__all__ = ["DataService", "DatasetDiff"]

_ROLE = re.compile(r"[a-z0-9_-]{1,32}")
_NAME = re.compile(r"(?!\.)[\w.-]+")


class DataService:
    """Everything data versioning and validation do, for every interface."""

    actor = ActorAttribute()

    def __init__(self, db: MetadataStore, blobs: BlobStore, settings: Settings) -> None:
        self.store = SqlDataStore(db)
        self.blobs = blobs
        self.settings = settings
        self.actor = settings.actor()
        self._cache_dir = settings.home / "cache" / "blobs"

    # -- versions -------------------------------------------------------------------

    def register(self, name: str, data: Any, *, description: str | None = None) -> DatasetVersion:
        """Register ``data`` as a version of dataset ``name`` (the same content: the same version).

        "The same content" is the same logical table: its values compared in canonical
        types (see :mod:`milepost.data._hash`), so a DataFrame, its CSV and its Parquet
        files, with any string, integer-width or timestamp-unit encoding, are one version.

        Args:
            name: the dataset's name (letters, digits, ``_ - .``).
            data: a pandas or Polars DataFrame, a pyarrow Table, or a path, glob, directory
                or list of them (Parquet or CSV; local or ``s3://``).
            description: what this version is.

        Raises:
            InvalidInput: unreadable or empty data, mismatched schemas, unsupported types.
        """
        _check_name(name)
        description = check.optional_text(description, "Dataset description")
        check.unique_columns(data, "The data")
        with _ingest.workdir("milepost-ingest-") as tmp:
            staged = _ingest.stage(data, workdir=tmp, storage_options=self._storage_options())
            digest, rows = _ingest.content_hash(staged.files, staged.schema)
            if rows == 0:
                where = staged.source_uri or "The data"
                raise InvalidInput(f"{where} has no rows; an empty dataset cannot be registered.")
            existing = self._existing(name, data, digest, tmp)
            if existing is not None:  # the same content: the same version, nothing stored
                return self._loadable(existing)
            profile = _profile.profile_files(staged.files, staged.schema, rows)
            files: list[tuple[str, int, str]] = []
            for path, source in zip(staged.files, staged.sources, strict=True):
                ref = self.blobs.put_file(path)
                files.append((ref.digest, ref.size, source))
        new = NewVersion(
            content_hash=digest,
            schema_json=json.dumps([_column(f).to_dict() for f in staged.schema]),
            num_rows=rows,
            size_bytes=sum(size for _, size, _ in files),
            source_uri=staged.source_uri,
            description=description,
            profile_json=json.dumps(profile, default=str),
            files=files,
            hash_version=_hash.HASH_VERSION,
        )
        version, _created = self.store.add_version(name, new, actor=self.actor)
        return self._loadable(version)

    def _existing(self, name: str, data: Any, digest: str, tmp: Path) -> DatasetVersion | None:
        """The version of ``name`` holding this content, under either hash version."""
        found = self.store.find_by_hash(name, digest, hash_version=_hash.HASH_VERSION)
        if found is not None or 1 not in self.store.hash_versions(name):
            return found
        old = _ingest.stage(
            data, workdir=tmp / "v1", storage_options=self._storage_options(), legacy=True
        )
        legacy_digest, _ = _hash.legacy_content_hash(old.files, old.schema)
        return self.store.find_by_hash(name, legacy_digest, hash_version=1)

    def get(self, ref: str | DatasetVersion) -> DatasetVersion:
        """A version by ``name@N``, ``name@latest`` or ``name``. Raises NotFound."""
        if isinstance(ref, DatasetVersion):
            return ref
        name, version = parse_ref(ref)
        return self._loadable(self.store.get_version(name, version))

    def versions(self, name: str) -> list[DatasetVersion]:
        """Every version of a dataset, oldest first."""
        _check_name(name)
        return [self._loadable(v) for v in self.store.list_versions(name)]

    def list_datasets(self) -> list[DatasetRow]:
        """Every dataset with its newest version number."""
        return self.store.list_datasets()

    def _loadable(self, version: DatasetVersion) -> DatasetVersion:
        """A stored version that can load its snapshot."""
        return dataclasses.replace(version, _loader=self.load_arrow)

    def local_files(self, version: DatasetVersion) -> list[Path]:
        """Local paths of the snapshot's Parquet files, each checked against its digest.

        Files of a local store are read in place; others are downloaded once into a cache
        (a damaged cached copy is fetched again). Engines read these paths directly, so
        the check happens here, once per file and process while the file is unchanged.

        Raises:
            IntegrityViolation: a stored file was altered or truncated.
        """
        paths = []
        for digest in version.files:
            location = self.blobs.location(digest)
            if "://" not in location:
                paths.append(verify_file(Path(location), digest))
                continue
            cached = self._cache_dir / digest[:2] / f"{digest}.parquet"
            if cached.is_file():
                try:
                    paths.append(verify_file(cached, digest))
                    continue
                except IntegrityViolation:
                    cached.unlink(missing_ok=True)
            self.blobs.download(digest, cached)  # verified before it lands
            paths.append(cached)
        return paths

    def load_arrow(self, version: DatasetVersion) -> pa.Table:
        """The snapshot as one Arrow table."""
        tables = [pq.read_table(p) for p in self.local_files(version)]
        return tables[0] if len(tables) == 1 else pa.concat_tables(tables)

    def _storage_options(self) -> dict[str, Any]:
        if self.settings.s3_endpoint_url:
            return {"client_kwargs": {"endpoint_url": self.settings.s3_endpoint_url}}
        return {}

    # -- lineage --------------------------------------------------------------------

    def log_input(
        self, run_id: str, ref: str | DatasetVersion, *, role: str = "train"
    ) -> DatasetInput:
        """Record that a run used a dataset version in ``role`` (train, eval, test, ...)."""
        check.run_id(run_id)
        check.name(
            role,
            "Input role",
            max_length=32,
            pattern=_ROLE,
            rule="use 1-32 lowercase letters, digits, '_' or '-'",
            hint="For example 'train', 'eval' or 'reference'.",
        )
        version = self.get(ref)
        self.store.add_input(run_id, version.version_id, role, actor=self.actor)
        return DatasetInput(
            run_id, version.ref, role, version.content_hash, int(time.time() * 1000)
        )

    def inputs_of_run(self, run_id: str) -> list[DatasetInput]:
        """The dataset versions a run used."""
        return self.store.inputs(run_id=run_id)

    def runs_using(self, ref: str | DatasetVersion) -> list[DatasetInput]:
        """The runs that used a dataset version."""
        version = self.get(ref)
        return self.store.inputs(version_id=version.version_id)

    # -- diff -------------------------------------------------------------------------

    def diff(self, a: str | DatasetVersion, b: str | DatasetVersion) -> DatasetDiff:
        """Schema, row-count and per-column statistic changes from ``a`` to ``b``."""
        va, vb = self.get(a), self.get(b)
        return DatasetDiff.between(va, vb)

    # -- validation -----------------------------------------------------------------

    def validate(
        self,
        data: Any,
        suite: Suite | str | Path | dict[str, Any],
        *,
        strict: bool = False,
        run_id: str | None = None,
        now: datetime | None = None,
    ) -> ValidationResult:
        """Run an expectation suite over data and store the result.

        Args:
            data: a DatasetVersion or its ref (``name@N``; the result is linked to it), a
                DataFrame, an Arrow table or paths (as for :meth:`register`). A string
                that names no existing file but reads as a ref is taken as a ref.
            suite: a :class:`Suite`, a path to its YAML, YAML text or a dict.
            strict: raise :class:`~milepost.errors.ValidationFailed` when a check fails
                (after storing the result).
            run_id: link the result to a run.
            now: the time freshness is measured against (default: now).
        """
        suite = _suite(suite)
        check.boolean(strict, "strict")
        if run_id is not None:
            check.run_id(run_id)
        if now is not None and not isinstance(now, datetime):
            raise InvalidInput(f"now must be a datetime, got {type(now).__name__}.")
        if isinstance(data, str) and "://" not in data and not Path(data).exists():
            # a dataset ref, as the CLI and evaluate() take; if it is not one either,
            # staging below names the missing path
            with contextlib.suppress(InvalidInput, NotFound):
                data = self.get(data)
        check.unique_columns(data, "The data")
        version = data if isinstance(data, DatasetVersion) else None
        import duckdb

        con = _profile.connect()
        try:
            with _ingest.workdir("milepost-validate-") as tmp:
                if version is not None:
                    files = self.local_files(version)
                    schema = pq.read_schema(files[0])
                else:
                    staged = _ingest.stage(
                        data, workdir=tmp, storage_options=self._storage_options()
                    )
                    files, schema = staged.files, staged.schema
                con.execute(f"CREATE VIEW data AS SELECT * FROM {_profile.source_sql(files)}")
                num_rows = int(con.execute("SELECT count(*) FROM data").fetchall()[0][0])
                refs: dict[str, str] = {}

                def reference(ref: str) -> str:
                    if ref not in refs:
                        view = f"ref_{len(refs)}"
                        ref_files = self.local_files(self.get(ref))
                        con.execute(
                            f"CREATE VIEW {view} AS SELECT * FROM {_profile.source_sql(ref_files)}"
                        )
                        refs[ref] = view
                    return refs[ref]

                ctx = CheckContext(con, schema, num_rows, now or datetime.now(UTC), reference)
                try:
                    checks = run_checks(suite.checks, ctx)
                except duckdb.Error as exc:
                    raise InvalidInput(f"Suite {suite.name!r} could not run: {exc}") from exc
        finally:
            con.close()
        result = ValidationResult(
            result_id=uuid.uuid4().hex,
            suite_name=suite.name,
            suite_hash=suite.fingerprint(),
            success=all(c.success for c in checks),
            checks=checks,
            num_rows=num_rows,
            created_at=int(time.time() * 1000),
            created_by=self.actor,
            dataset_ref=version.ref if version else None,
            run_id=run_id,
        )
        self.store.add_validation(
            {
                "result_id": result.result_id,
                "version_id": version.version_id if version else None,
                "suite_name": suite.name,
                "suite_hash": result.suite_hash,
                "success": result.success,
                "num_checks": len(checks),
                "num_failed": len(result.failing),
                "result_json": result.to_json(),
                "run_id": run_id,
                "created_at": result.created_at,
            },
            actor=self.actor,
            ref=result.dataset_ref,
        )
        if strict:
            result.raise_for_failure()
        return result

    def validations(self, ref: str | DatasetVersion, *, limit: int = 20) -> list[ValidationResult]:
        """Stored validation results of a version, newest first."""
        check.integer(limit, "limit", minimum=1)
        version = self.get(ref)
        return self.store.validations(version.version_id, limit=limit)

    def get_validation(self, result_id: str) -> ValidationResult:
        """One stored validation result."""
        check.name(result_id, "Validation result id", max_length=32)
        return self.store.validation(result_id)


def _check_name(name: Any) -> None:
    check.name(
        name,
        "Dataset name",
        pattern=_NAME,
        rule="use 1-256 letters, digits, '_', '-' or '.', not starting with '.'",
        hint="For example 'customers' or 'churn.train'.",
    )


def _column(f: pa.Field) -> ColumnSchema:
    return ColumnSchema(f.name, str(f.type), f.nullable)


def _suite(suite: Suite | str | Path | dict[str, Any]) -> Suite:
    if isinstance(suite, Suite):
        return suite
    if isinstance(suite, dict):
        return Suite.from_dict(suite)
    if isinstance(suite, (str, os.PathLike)):
        path = check.local_path(suite, "Suite") if "\n" not in str(suite) else None
        if path is not None and (
            isinstance(suite, os.PathLike) or path.suffix in (".yml", ".yaml")
        ):
            path = check.local_path(path, "Suite file", kind="file")
            try:
                return Suite.from_yaml(path)
            except (OSError, UnicodeDecodeError) as exc:
                raise InvalidInput(f"Cannot read suite file {path}: {exc}.") from exc
        return Suite.from_yaml(str(suite))
    raise InvalidInput(f"Cannot use a {type(suite).__name__} as an expectation suite.")
