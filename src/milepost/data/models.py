"""Read-only views of datasets, versions and their profiles.

Each has a short repr (``DatasetVersion(customers@3, 2,000 rows, sha 1a2b3c4d5e6f...)``)
and a ``to_dict()`` built from its dataclass fields, ready for JSON.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from milepost._records import record_dict
from milepost.data._format import count

if TYPE_CHECKING:
    from collections.abc import Callable

    import pandas as pd
    import pyarrow as pa

__all__ = [
    "ColumnSchema",
    "DatasetInput",
    "DatasetRow",
    "DatasetVersion",
    "parse_ref",
]


@dataclass(frozen=True, repr=False)
class ColumnSchema:
    """One column: name, Arrow type (as text) and whether it may hold nulls."""

    name: str
    type: str
    nullable: bool

    @property
    def logical_type(self) -> str:
        """The type as the content hash sees it (``large_string`` is ``string``...)."""
        from milepost.data._hash import logical_type_name

        return logical_type_name(self.type)

    def __repr__(self) -> str:
        return f"ColumnSchema({self.name}: {self.type}{'' if self.nullable else ', not null'})"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return record_dict(self)


@dataclass(frozen=True, repr=False)
class DatasetVersion:
    """An immutable, content-addressed version of a named dataset.

    ``content_hash`` is the SHA-256 of the data's canonical form (logical column types,
    then each column's values and nulls in row order), independent of file format, file
    and row-group layout and physical encoding (``string`` or ``large_string``, timestamp
    units, integer widths; see :mod:`milepost.data._hash`). Row order counts: the same
    rows in another order are another version. ``hash_version`` says which algorithm made
    the hash (1: before canonical types).
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
    hash_version: int = 2
    _loader: Callable[[DatasetVersion], pa.Table] | None = field(
        default=None, repr=False, compare=False
    )

    def __repr__(self) -> str:
        return (
            f"DatasetVersion({self.ref}, {self.num_rows:,} row{'s' if self.num_rows != 1 else ''}"
            f", sha {self.content_hash[:12]}...)"
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
        """A JSON-ready dict: the fields (not the internal ``version_id``) and ``ref``."""
        out = record_dict(self, exclude=("version_id",))
        return {"name": out.pop("name"), "version": out.pop("version"), "ref": self.ref, **out}


@dataclass(frozen=True, repr=False)
class DatasetRow:
    """A dataset with its newest version number and version count (what
    :func:`milepost.data.list_datasets` returns)."""

    name: str
    description: str | None
    created_by: str
    created_at: int
    latest_version: int | None
    num_versions: int

    def __repr__(self) -> str:
        latest = f"@{self.latest_version}" if self.latest_version else " (no versions)"
        return f"DatasetRow({self.name}{latest}, {count(self.num_versions, 'version')})"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return record_dict(self)


@dataclass(frozen=True, repr=False)
class DatasetInput:
    """A dataset version a run used, and in which role (train, eval, ...)."""

    run_id: str
    ref: str
    role: str
    content_hash: str
    created_at: int

    def __repr__(self) -> str:
        return f"DatasetInput({self.ref} as {self.role!r} by run {self.run_id[:12]})"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return record_dict(self)


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
