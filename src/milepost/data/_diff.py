"""What changed between two dataset versions, from their schemas and profiles."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from milepost.data._format import count, format_stat

if TYPE_CHECKING:
    from milepost.data.models import ColumnSchema, DatasetVersion

__all__ = ["DatasetDiff"]

_STATS = ("nulls", "null_fraction", "min", "max", "mean", "std", "distinct")


def _stat(profile: dict[str, Any], key: str) -> Any:
    if key == "distinct":  # profiles before exact counts held only an approximate one
        return profile.get("distinct", profile.get("distinct_approx"))
    return profile.get(key)


@dataclass(frozen=True, repr=False)
class DatasetDiff:
    """What changed from version ``a`` to version ``b``.

    Only changes a reader can see are listed: a column is retyped when its logical type
    changes (``string`` to ``large_string`` is no change, see
    :attr:`ColumnSchema.logical_type`), and a statistic when its shown value
    (:func:`~milepost.data._format.format_stat`, 6 significant digits) changes.
    """

    a: str
    b: str
    added: list[ColumnSchema]
    removed: list[ColumnSchema]
    retyped: list[tuple[str, str, str]]  # (column, type in a, type in b)
    rows: tuple[int, int]
    stats: dict[str, dict[str, tuple[Any, Any]]]  # column -> statistic -> (in a, in b)
    same_content: bool

    @classmethod
    def between(cls, va: DatasetVersion, vb: DatasetVersion) -> DatasetDiff:
        """Compare two versions' schemas and profiles (no data is read)."""
        sa_, sb = {c.name: c for c in va.schema}, {c.name: c for c in vb.schema}
        stats: dict[str, dict[str, tuple[Any, Any]]] = {}
        for name in sa_:
            if name not in sb:
                continue
            pa_, pb = va.profile.get(name, {}), vb.profile.get(name, {})
            changed = {
                k: (_stat(pa_, k), _stat(pb, k))
                for k in _STATS
                if format_stat(_stat(pa_, k)) != format_stat(_stat(pb, k))
            }
            if changed:
                stats[name] = changed
        return cls(
            a=va.ref,
            b=vb.ref,
            added=[c for n, c in sb.items() if n not in sa_],
            removed=[c for n, c in sa_.items() if n not in sb],
            retyped=[
                (n, sa_[n].type, sb[n].type)
                for n in sa_
                if n in sb and sa_[n].logical_type != sb[n].logical_type
            ],
            rows=(va.num_rows, vb.num_rows),
            stats=stats,
            same_content=va.content_hash == vb.content_hash,
        )

    @property
    def changed(self) -> bool:
        """Whether anything shown changed (columns, types, rows or statistics)."""
        return bool(
            self.added or self.removed or self.retyped or self.stats or self.rows[0] != self.rows[1]
        )

    def __repr__(self) -> str:
        if self.same_content:
            return f"DatasetDiff({self.a} -> {self.b}: identical content)"
        parts = [f"rows {self.rows[0]:,} -> {self.rows[1]:,}"]
        if self.added:
            parts.append(f"+{count(len(self.added), 'column')}")
        if self.removed:
            parts.append(f"-{count(len(self.removed), 'column')}")
        if self.retyped:
            parts.append(f"{len(self.retyped)} retyped")
        if self.stats:
            parts.append(f"statistics of {count(len(self.stats), 'column')} changed")
        return f"DatasetDiff({self.a} -> {self.b}: {', '.join(parts)})"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "from": self.a,
            "to": self.b,
            "same_content": self.same_content,
            "rows": {
                "from": self.rows[0],
                "to": self.rows[1],
                "change": self.rows[1] - self.rows[0],
            },
            "columns_added": [c.to_dict() for c in self.added],
            "columns_removed": [c.to_dict() for c in self.removed],
            "columns_retyped": [{"name": n, "from": a, "to": b} for n, a, b in self.retyped],
            "stats": {
                col: {k: {"from": a, "to": b} for k, (a, b) in changes.items()}
                for col, changes in self.stats.items()
            },
        }
