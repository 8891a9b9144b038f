"""``milepost.data.register()``, ``get()``, ``validate()``...: the module-level data API.

Thin functions over the process's runtime (``milepost._context.get_runtime().data``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from milepost import _context

if TYPE_CHECKING:
    from datetime import datetime
    from pathlib import Path

    from milepost.data.backends.sql import DatasetRow
    from milepost.data.models import DatasetInput, DatasetVersion
    from milepost.data.results import ValidationResult
    from milepost.data.service import DatasetDiff
    from milepost.data.validation import Suite

__all__ = ["diff", "get", "list_datasets", "register", "validate", "versions"]


def register(name: str, data: Any, *, description: str | None = None) -> DatasetVersion:
    """Register data as a version of ``name``; the same content returns the same version.

    The same content means the same values in canonical types, whatever the file format
    or physical encoding (``string``/``large_string``, integer widths, timestamp units).

    ``data``: a pandas or Polars DataFrame, a pyarrow Table, or paths/globs/directories of
    Parquet or CSV files, local or ``s3://``.
    """
    return _context.get_runtime().data.register(name, data, description=description)


def get(ref: str) -> DatasetVersion:
    """A version by ``name@N``, ``name@latest`` or ``name`` (the newest)."""
    return _context.get_runtime().data.get(ref)


def versions(name: str) -> list[DatasetVersion]:
    """Every version of a dataset, oldest first."""
    return _context.get_runtime().data.versions(name)


def list_datasets() -> list[DatasetRow]:
    """Every dataset with its newest version."""
    return _context.get_runtime().data.list_datasets()


def diff(a: str | DatasetVersion, b: str | DatasetVersion) -> DatasetDiff:
    """Schema, row-count and statistic changes between two versions."""
    return _context.get_runtime().data.diff(a, b)


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
    from milepost._fluent_api import active_run

    run = active_run()
    return _context.get_runtime().data.validate(
        data, suite, strict=strict, run_id=run.run_id if run else None, now=now
    )


def runs_using(ref: str | DatasetVersion) -> list[DatasetInput]:
    """The runs that used a dataset version."""
    return _context.get_runtime().data.runs_using(ref)
