"""Feature definitions, written in Python in the user's repository.

::

    customer = Entity("customer", join_keys=["customer_id"])

    def spend_features(df):                     # one function for training and serving
        df["spend_per_ticket"] = df["monthly_spend"] / (1 + df["support_tickets"])
        return df

    activity = FeatureView(
        name="customer_activity", entity=customer,
        source=DatasetSource("customers"),       # or FileSource("s3://...") or PushSource("events")
        timestamp_field="event_timestamp", ttl=timedelta(days=30),
        schema=[Field("monthly_spend", "float"), Field("spend_per_ticket", "float")],
        transform=spend_features,
    )

A transform maps source rows to feature rows one row at a time (it may add or compute
columns; it must not aggregate across rows or drop rows), so running it on a batch, a
chunk or a single pushed row gives the same values. Each definition has a fingerprint
over everything that changes its values (entity keys, source, timestamp fields, TTL,
schema, the transform's source code); a new fingerprint is a new version ``view:vN``.
Older versions stay readable after the file moves on: their transforms are found by the
fingerprint of their code (see :mod:`milepost.features.transforms`).
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Literal

from milepost import _validate as check
from milepost._records import short
from milepost.errors import InvalidInput
from milepost.features import transforms

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    import pandas as pd

__all__ = [
    "DatasetSource",
    "Entity",
    "FeatureView",
    "Field",
    "FileSource",
    "OnDemandFeatureView",
    "PushSource",
    "Source",
]

DType = Literal["float", "int", "string", "bool"]
_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,127}")


def _check_name(kind: str, name: Any) -> str:
    return check.name(
        name,
        f"{kind} name",
        max_length=128,
        pattern=_NAME,
        rule="start with a letter; use letters, digits and '_'",
    )


def _column_name(kind: str, name: Any) -> str:
    """A column the data holds (a join key, a field): any name without control
    characters, and without ':' (it separates the parts of ``view:feature``)."""
    check.name(name, kind)
    if ":" in name:
        raise InvalidInput(
            f"{kind} {name!r} contains ':', which separates view and feature in refs.",
            hint="Rename the column, or its Field, without ':'.",
        )
    return str(name)


@dataclass(frozen=True)
class Entity:
    """What features describe (a customer, a product), identified by join keys."""

    name: str
    join_keys: tuple[str, ...]
    description: str = ""

    def __init__(self, name: str, join_keys: str | Sequence[str], description: str = "") -> None:
        if not isinstance(join_keys, (str, list, tuple)):
            raise InvalidInput(
                f"Entity {name!r}: join_keys must be a name or a list of names, got "
                f"{type(join_keys).__name__}."
            )
        keys = (join_keys,) if isinstance(join_keys, str) else tuple(join_keys)
        for key in keys:
            _column_name("Join key", key)
        if not keys:
            raise InvalidInput(f"Entity {name!r} needs at least one join key.")
        object.__setattr__(self, "name", _check_name("Entity", name))
        object.__setattr__(self, "join_keys", keys)
        object.__setattr__(self, "description", description)

    def to_dict(self) -> dict[str, Any]:
        """Plain data."""
        return {
            "name": self.name,
            "join_keys": list(self.join_keys),
            "description": self.description,
        }

    def __repr__(self) -> str:
        return f"Entity({self.name}, keys {', '.join(self.join_keys)})"


@dataclass(frozen=True)
class Field:
    """A feature column and its type (float, int, string or bool)."""

    name: str
    dtype: DType = "float"

    def __post_init__(self) -> None:
        _column_name("Field name", self.name)
        if self.dtype not in ("float", "int", "string", "bool"):
            raise InvalidInput(
                f"Field {self.name!r}: dtype {self.dtype!r} is not float, int, string or bool."
            )


@dataclass(frozen=True)
class FileSource:
    """Parquet files (a path, directory or glob; local or s3://)."""

    path: str

    def describe(self) -> dict[str, Any]:
        """What the fingerprint and lineage record."""
        return {"kind": "file", "path": self.path}


@dataclass(frozen=True)
class DatasetSource:
    """A registered dataset: ``name`` follows its newest version, ``name@N`` pins one."""

    ref: str

    def describe(self) -> dict[str, Any]:
        """What the fingerprint and lineage record."""
        return {"kind": "dataset", "ref": self.ref}


@dataclass(frozen=True)
class PushSource:
    """Rows pushed by an application (``FeatureStore.push``), kept in the offline store."""

    name: str

    def __post_init__(self) -> None:
        _check_name("Push source", self.name)

    def describe(self) -> dict[str, Any]:
        """What the fingerprint and lineage record."""
        return {"kind": "push", "name": self.name}


Source = FileSource | DatasetSource | PushSource


def _code(fn: Callable[..., Any] | None) -> str | None:
    return transforms.source_of(fn)


def _fingerprint(payload: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


def _span(ttl: timedelta) -> str:
    """``30d``, ``6h``, ``90s``: a TTL as people write it."""
    seconds = int(ttl.total_seconds())
    for unit, size in (("d", 86_400), ("h", 3_600), ("m", 60)):
        if seconds and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{ttl.total_seconds():g}s"


@dataclass(frozen=True, eq=False)
class FeatureView:
    """Features of one entity from one source, with a time-to-live.

    Args:
        name: the view's name.
        entity: whose features these are.
        source: where rows come from.
        timestamp_field: the event time of each source row.
        schema: the feature columns served (after the transform).
        ttl: how long a value stays valid after its event time (offline and online).
        created_timestamp_field: breaks ties between rows with the same event time (the
            latest created wins), e.g. for corrected rows.
        transform: a row-wise function over a DataFrame of source rows, returning it with
            the feature columns; the same code runs offline and online.
        version: declare the version this definition should be; ``apply`` then refuses a
            changed definition that keeps the old number.
    """

    name: str
    entity: Entity
    source: Source
    timestamp_field: str
    schema: list[Field]
    ttl: timedelta
    created_timestamp_field: str | None = None
    transform: Callable[[pd.DataFrame], pd.DataFrame] | None = None
    description: str = ""
    version: int | None = None
    tags: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _check_name("Feature view", self.name)
        if not isinstance(self.ttl, timedelta) or self.ttl <= timedelta(0):
            raise InvalidInput(f"Feature view {self.name!r}: ttl must be a positive timedelta.")
        if not self.schema:
            raise InvalidInput(f"Feature view {self.name!r} has no features in its schema.")
        names = [f.name for f in self.schema]
        dup = {n for n in names if names.count(n) > 1}
        clash = set(names) & {*self.entity.join_keys, self.timestamp_field}
        if dup or clash:
            raise InvalidInput(
                f"Feature view {self.name!r}: feature names {sorted(dup | clash)} "
                "repeat or clash with join keys/timestamps."
            )
        if self.transform is not None:  # older versions find their code by fingerprint
            transforms.remember([self.transform])

    @property
    def features(self) -> list[str]:
        """Feature column names."""
        return [f.name for f in self.schema]

    def __repr__(self) -> str:
        pinned = f" v{self.version}" if self.version else ""
        return (
            f"FeatureView({self.name}{pinned} of {self.entity.name}, ttl {_span(self.ttl)}: "
            f"{short(', '.join(self.features))})"
        )

    def definition(self) -> dict[str, Any]:
        """Everything that determines the values, as plain data (stored with each version)."""
        return {
            "kind": "feature_view",
            "entity": self.entity.to_dict(),
            "source": self.source.describe(),
            "timestamp_field": self.timestamp_field,
            "created_timestamp_field": self.created_timestamp_field,
            "ttl_seconds": self.ttl.total_seconds(),
            "schema": [[f.name, f.dtype] for f in self.schema],
            "transform": _code(self.transform),
        }

    def fingerprint(self) -> str:
        """SHA-256 of :meth:`definition` (description and tags excluded)."""
        return _fingerprint(self.definition())


@dataclass(frozen=True, eq=False)
class OnDemandFeatureView:
    """Features computed at request time from request data and stored features.

    ``transform`` receives a DataFrame with the request columns and the input features
    (named ``view__feature``) and returns it with the output columns; retrieval for
    training runs the same function over the historical rows.
    """

    name: str
    sources: list[FeatureView]
    request_schema: list[Field]
    schema: list[Field]
    transform: Callable[[pd.DataFrame], pd.DataFrame]
    description: str = ""
    version: int | None = None

    def __post_init__(self) -> None:
        _check_name("On-demand feature view", self.name)
        if not self.schema:
            raise InvalidInput(f"On-demand view {self.name!r} has no output features.")
        if len({v.entity.name for v in self.sources}) > 1:
            raise InvalidInput(
                f"On-demand view {self.name!r}: its sources describe different "
                "entities; use views of one entity."
            )
        transforms.remember([self.transform])

    @property
    def features(self) -> list[str]:
        """Output feature names."""
        return [f.name for f in self.schema]

    def __repr__(self) -> str:
        sources = ", ".join(v.name for v in self.sources) or "request data"
        return f"OnDemandFeatureView({self.name} from {sources}: {short(', '.join(self.features))})"

    @property
    def input_refs(self) -> list[str]:
        """The stored features it reads, as ``view:feature``."""
        return [f"{v.name}:{f}" for v in self.sources for f in v.features]

    def definition(self) -> dict[str, Any]:
        """Everything that determines the values, as plain data."""
        return {
            "kind": "on_demand",
            "sources": [v.name for v in self.sources],
            "source_fingerprints": [v.fingerprint() for v in self.sources],
            "request_schema": [[f.name, f.dtype] for f in self.request_schema],
            "schema": [[f.name, f.dtype] for f in self.schema],
            "transform": _code(self.transform),
        }

    def fingerprint(self) -> str:
        """SHA-256 of :meth:`definition`."""
        return _fingerprint(self.definition())
