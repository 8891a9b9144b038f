"""Read-only views of datasets, versions and their profiles."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable

    import pandas as pd
    import pyarrow as pa

__all__ = ["ColumnSchema", "DatasetInput", "DatasetVersion", "parse_ref"]


@dataclass(frozen=True)
class ColumnSchema:
    """One column: name, Arrow type (as text) and whether it may hold nulls."""

    name: str
    type: str
    nullable: bool

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {"name": self.name, "type": self.type, "nullable": self.nullable}


@dataclass(frozen=True)
class DatasetVersion:
    """An immutable, content-addressed version of a named dataset.

    ``content_hash`` is the SHA-256 of the data's canonical form (schema, then each
    column's values and nulls in row order), independent of file and row-group layout.
    Row order counts: the same rows in another order are another version.
    """

    name: str
    version: int
    content_hash: str
    schema: list[ColumnSchema]
    num_rows: int
    num_files: int
    size_bytes: int
    source_uri: str | None
    description: str | None
    profile: dict[str, dict[str, Any]]
    created_by: str
    created_at: int
    files: list[str] = field(default_factory=list)
    version_id: int = 0
    _loader: Callable[[DatasetVersion], pa.Table] | None = field(
        default=None, repr=False, compare=False
    )

    @property
    def ref(self) -> str:
        """``name@version``, accepted everywhere a dataset version is expected."""
        return f"{self.name}@{self.version}"

    @property
    def columns(self) -> list[str]:
        """Column names in order."""
        return [c.name for c in self.schema]

    def to_arrow(self) -> pa.Table:
        """The snapshot as an Arrow table (exactly the registered values)."""
        if self._loader is None:
            raise RuntimeError("this DatasetVersion was built without a loader")
        return self._loader(self)

    def to_pandas(self) -> pd.DataFrame:
        """The snapshot as a pandas DataFrame (dtypes restored for pandas input)."""
        frame: pd.DataFrame = self.to_arrow().to_pandas()
        return frame

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "name": self.name,
            "version": self.version,
            "ref": self.ref,
            "content_hash": self.content_hash,
            "schema": [c.to_dict() for c in self.schema],
            "num_rows": self.num_rows,
            "num_files": self.num_files,
            "size_bytes": self.size_bytes,
            "source_uri": self.source_uri,
            "description": self.description,
            "profile": self.profile,
            "created_by": self.created_by,
            "created_at": self.created_at,
            "files": list(self.files),
        }


@dataclass(frozen=True)
class DatasetInput:
    """A dataset version a run used, and in which role (train, eval, ...)."""

    run_id: str
    ref: str
    role: str
    content_hash: str
    created_at: int

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "run_id": self.run_id,
            "ref": self.ref,
            "role": self.role,
            "content_hash": self.content_hash,
            "created_at": self.created_at,
        }


def parse_ref(ref: str) -> tuple[str, int | None]:
    """Split ``name@3`` into ``("name", 3)``; ``name`` or ``name@latest`` gives ``None``."""
    from milepost import _validate as check
    from milepost.errors import InvalidInput

    if not isinstance(ref, str) and hasattr(ref, "columns"):
        raise InvalidInput(
            "A dataset reference is 'NAME@N' or a DatasetVersion, not a DataFrame.",
            hint="Register the data first: milepost.data.register('name', df).",
        )
    check.name(ref, "Dataset reference", max_length=300)
    name, sep, version = ref.rpartition("@")
    if not sep:
        return ref, None
    if version in ("latest", ""):
        return name, None
    if not (version.isascii() and version.isdigit()) or not 1 <= int(version) <= check.INT64_MAX:
        raise InvalidInput(
            f"Dataset reference {ref!r} has an invalid version {version!r}.",
            hint="Use NAME, NAME@latest or NAME@N with N at least 1 and at most "
            f"{check.INT64_MAX}.",
        )
    return name, int(version)
