"""Batched queries the lineage readers share: refs to database ids and back, rows
matched a batch of values at a time, edges of row pairs and of pipeline links.

A frontier of any size costs one query per 500 values (per 50 for a JSON text match),
never one per node.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from milepost.stores.schema import (
    dataset_versions,
    datasets,
    feature_view_versions,
    feature_views,
    model_versions,
    pipeline_links,
    registered_models,
)

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

Edge = tuple[str, str, str]  # (source key, target key, relation)


def key(kind: str, ref: object) -> str:
    """``KIND:REF``."""
    return f"{kind}:{ref}"


def split_key(k: str) -> tuple[str, str]:
    """``(kind, ref)`` of a key."""
    kind, _, ref = k.partition(":")
    return kind, ref


def loads(text: str | None, default: Any) -> Any:
    if not text:
        return default
    try:
        return json.loads(text)
    except ValueError:
        return default


def chunks(values: Iterable[Any], size: int = 500) -> Iterable[list[Any]]:
    batch: list[Any] = []
    for v in values:
        batch.append(v)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def ints(refs: Iterable[str]) -> list[int]:
    """The refs that are integer ids, as ints."""
    return [int(r) for r in refs if r.isdigit()]


def rows(
    conn: Connection, query: sa.Select[Any], values: Iterable[Any], column: Any = None
) -> Iterator[Any]:
    """The rows of ``query`` where ``column`` (by default the first selected one) is one
    of ``values``: a query per 500 values."""
    column = query.selected_columns[0] if column is None else column
    for batch in chunks(values):
        yield from conn.execute(query.where(column.in_(batch))).all()


Names = Mapping[Any, str] | Callable[["Connection", list[Any]], Mapping[Any, str]]


def pairs(
    conn: Connection,
    query: sa.Select[Any],
    values: Iterable[Any],
    source: str,
    target: str,
    relation: str | None = None,
    names: Names | None = None,
    column: Any = None,
) -> list[Edge]:
    """An edge ``(SOURCE:A, TARGET:B, relation)`` per row ``(A, B[, RELATION])`` of
    ``query`` where ``column`` (by default A's) is one of ``values``, a query per 500.

    ``relation`` None takes the row's third column. ``names`` turns A (a database id)
    into its ref: a mapping, or a function of the connection and a batch's A values
    (``model_refs``, ``dataset_refs``); a row whose A it does not name is left out.
    """
    column = query.selected_columns[0] if column is None else column
    out: list[Edge] = []
    for batch in chunks(values):
        found = conn.execute(query.where(column.in_(batch))).all()
        refs = names(conn, [r[0] for r in found]) if callable(names) else names
        for a, b, *rest in found:
            if refs is None or a in refs:
                ref = a if refs is None else refs[a]
                out.append((key(source, ref), key(target, b), relation or rest[0]))
    return out


def mentions(values: Iterable[str], column: Any, text: Callable[[str], str]) -> Iterator[Any]:
    """Where clauses, one per 50 values: ``column``'s JSON text holds ``text(value)``."""
    for batch in chunks(values, 50):
        yield contains_any(column, [text(v) for v in batch])


DATASETS = sa.select(
    dataset_versions.c.version_id, datasets.c.name, dataset_versions.c.version
).join(datasets, datasets.c.dataset_id == dataset_versions.c.dataset_id)

MODELS = sa.select(
    model_versions.c.version_id, registered_models.c.name, model_versions.c.version
).join(registered_models, registered_models.c.model_id == model_versions.c.model_id)

VIEWS = sa.select(
    feature_view_versions.c.version_id, feature_views.c.name, feature_view_versions.c.version
).join(feature_views, feature_views.c.view_id == feature_view_versions.c.view_id)


def _split_versioned(refs: Iterable[str], sep: str, prefix: str = "") -> dict[str, set[int]]:
    out: dict[str, set[int]] = defaultdict(set)
    for ref in refs:
        name, _, version = ref.rpartition(sep)
        version = version.removeprefix(prefix)
        if name and version.isdigit():
            out[name].add(int(version))
    return out


def _ids(conn: Connection, query: sa.Select[Any], refs: Iterable[str], sep: str) -> dict[int, str]:
    """``{version_id: ref}`` of the versions named ``NAME{sep}N`` that exist (``sep`` ":v"
    for feature views)."""
    wanted = _split_versioned(refs, sep[0], sep[1:])
    found = rows(conn, query, wanted, query.selected_columns[1])
    return {r[0]: f"{r[1]}{sep}{r[2]}" for r in found if r[2] in wanted[r[1]]}


def _refs(conn: Connection, query: sa.Select[Any], ids: Iterable[int], sep: str) -> dict[int, str]:
    found = rows(conn, query, {i for i in ids if i is not None})
    return {r[0]: f"{r[1]}{sep}{r[2]}" for r in found}


def dataset_ids(conn: Connection, refs: Iterable[str]) -> dict[int, str]:
    """``{version_id: "NAME@N"}`` of the dataset versions that exist."""
    return _ids(conn, DATASETS, refs, "@")


def dataset_refs(conn: Connection, ids: Iterable[int]) -> dict[int, str]:
    """``{version_id: "NAME@N"}``."""
    return _refs(conn, DATASETS, ids, "@")


def model_ids(conn: Connection, refs: Iterable[str]) -> dict[int, str]:
    """``{version_id: "NAME/N"}`` of the model versions that exist."""
    return _ids(conn, MODELS, refs, "/")


def model_refs(conn: Connection, ids: Iterable[int]) -> dict[int, str]:
    """``{version_id: "NAME/N"}``."""
    return _refs(conn, MODELS, ids, "/")


def view_ids(conn: Connection, refs: Iterable[str]) -> dict[int, str]:
    """``{version_id: "VIEW:vN"}`` of the feature view versions that exist."""
    return _ids(conn, VIEWS, refs, ":v")


def view_of_feature_ref(ref: str) -> str | None:
    """``VIEW:vN`` of a feature ref ``VIEW:vN:FEATURE`` (None when it is not one)."""
    parts = ref.split(":")
    if len(parts) == 3 and parts[1].startswith("v") and parts[1][1:].isdigit():
        return f"{parts[0]}:{parts[1]}"
    return None


def contains_any(column: Any, texts: list[str]) -> Any:
    return sa.or_(*(column.contains(t, autoescape=True) for t in texts))


def link_edges(rows: Iterable[Any]) -> list[Edge]:
    """Edges of ``pipeline_links`` rows ``(run_id, step, kind, ref, role)``."""
    out: list[Edge] = []
    for run_id, step, kind, ref, role in rows:
        s, n = key("pipeline_step", f"{run_id}/{step}"), key(kind, ref)
        out.append((n, s, "input") if role == "input" else (s, n, "output"))
    return out


LINKS = sa.select(
    pipeline_links.c.run_id,
    pipeline_links.c.step,
    pipeline_links.c.kind,
    pipeline_links.c.ref,
    pipeline_links.c.role,
)


def links(conn: Connection, kind: str, refs: list[str], role: str) -> list[Edge]:
    query = LINKS.where(pipeline_links.c.kind == kind, pipeline_links.c.role == role)
    return link_edges(rows(conn, query, refs, pipeline_links.c.ref))
