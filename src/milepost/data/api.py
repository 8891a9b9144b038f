"""``milepost.data.register()``, ``get()``, ``validate()``...: the module-level data API.

Thin functions over the data service of the process's store context: the same instance
as ``milepost.get_runtime().data`` (see :mod:`milepost.stores.context`).
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any, cast

from milepost.data.service import DataService
from milepost.stores.context import StoreContext, default_context, process_remote
from milepost.tracking._active import active_run_id

if TYPE_CHECKING:
    from datetime import datetime
    from pathlib import Path

    from milepost.data.backends.sql import DatasetRow
    from milepost.data.models import DatasetInput, DatasetVersion
    from milepost.data.results import ValidationResult
    from milepost.data.service import DatasetDiff
    from milepost.data.validation import Suite

__all__ = [
    "data_service",
    "diff",
    "get",
    "list_datasets",
    "list_versions",
    "register",
    "runs_using",
    "validate",
    "versions",
]


def data_service(ctx: StoreContext | None = None) -> DataService:
    """The data service of a store context (default: the process's), one per context.

    In remote mode (``MILEPOST_URL``) the process's is the server's, through the remote
    client's proxy with the same methods."""
    if ctx is None:
        remote = process_remote()
        if remote is not None:
            return cast("DataService", remote.data)
    return (ctx or default_context()).component(
        DataService, lambda c: DataService(c.db, c.blobs, c.settings)
    )


def register(name: str, data: Any, *, description: str | None = None) -> DatasetVersion:
    """Register data as a version of ``name``; the same content returns the same version.

    The same content means the same values in canonical types, whatever the file format
    or physical encoding (``string``/``large_string``, integer widths, timestamp units).

    ``data``: a pandas or Polars DataFrame, a pyarrow Table, or paths/globs/directories of
    Parquet or CSV files, local or ``s3://``.
    """
    return data_service().register(name, data, description=description)


def get(ref: str) -> DatasetVersion:
    """A version by ``name@N``, ``name@latest`` or ``name`` (the newest)."""
    return data_service().get(ref)


def list_versions(name: str) -> list[DatasetVersion]:
    """Every version of a dataset, oldest first."""
    return data_service().versions(name)


def versions(name: str) -> list[DatasetVersion]:
    """Deprecated: the name before ``list_*`` listings; use :func:`list_versions`."""
    warnings.warn(
        "milepost.data.versions is now milepost.data.list_versions; the old name goes in "
        "the next release.",
        DeprecationWarning,
        stacklevel=2,
    )
    return list_versions(name)


versions.__deprecated__ = "milepost.data.versions is now milepost.data.list_versions"  # type: ignore[attr-defined]


def list_datasets() -> list[DatasetRow]:
    """Every dataset with its newest version."""
    return data_service().list_datasets()


def diff(a: str | DatasetVersion, b: str | DatasetVersion) -> DatasetDiff:
    """Schema, row-count and statistic changes between two versions."""
    return data_service().diff(a, b)


def validate(
    data: Any,
    suite: Suite | str | Path | dict[str, Any],
    *,
    strict: bool = False,
    now: datetime | None = None,
) -> ValidationResult:
    """Run an expectation suite over data; stored, and linked to the active run if any.

    With ``strict=True`` a failing check raises :class:`milepost.errors.ValidationFailed`.
    """
    return data_service().validate(data, suite, strict=strict, run_id=active_run_id(), now=now)


def runs_using(ref: str | DatasetVersion) -> list[DatasetInput]:
    """The runs that used a dataset version."""
    return data_service().runs_using(ref)
