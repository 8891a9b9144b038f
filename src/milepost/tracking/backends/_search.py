"""The SQL of a run search: a parsed filter and order turned into one SELECT.

Values are always bound parameters, never text in the SQL. Each metric, param or tag the
search names is one join (inner for the filter, outer for the order); the filter's
limits (see ``_filter``) keep that within what every backend can run.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from milepost.errors import InvalidFilter, InvalidInput
from milepost.stores.schema import latest_metrics, params, run_tags, runs
from milepost.tracking._filter import (
    NUMERIC_ATTRIBUTES,
    STRING_ATTRIBUTES,
    Comparison,
    OrderTerm,
    check_search_size,
)

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["filter_error", "search_query"]

_ATTRIBUTE_COLUMNS = {**STRING_ATTRIBUTES, **NUMERIC_ATTRIBUTES}


def search_query(
    experiment_ids: Sequence[int],
    comparisons: Sequence[Comparison],
    order: Sequence[OrderTerm],
    *,
    max_results: int,
    offset: int,
    include_deleted: bool,
) -> sa.Select[Any]:
    """One page (plus one row, to tell whether more follow) of matching runs, in order.

    Ordered first by a metric, the search reads about the page instead of sorting every
    run (see ``_metric_first``); otherwise it is one SELECT ordered by the terms.

    Raises:
        InvalidFilter: the search joins more keys than every backend can.
    """
    check_search_size(comparisons, order)
    if order and order[0].entity == "metric":
        return _metric_first(
            experiment_ids,
            comparisons,
            order,
            max_results=max_results,
            offset=offset,
            include_deleted=include_deleted,
        )
    q, columns = _matching(experiment_ids, comparisons, order, include_deleted=include_deleted)
    return q.order_by(*_ordered(columns, order), *_NEWEST).limit(max_results + 1).offset(offset)


_NEWEST = (runs.c.start_time.desc(), runs.c.run_id)


def _metric_first(
    experiment_ids: Sequence[int],
    comparisons: Sequence[Comparison],
    order: Sequence[OrderTerm],
    *,
    max_results: int,
    offset: int,
    include_deleted: bool,
) -> sa.Select[Any]:
    """A search ordered first by a metric, as two arms that each read only the page.

    NULLs sort last, so the order is: runs with a value for the metric (by value, then the
    other terms), then runs without one (never logged, or NaN, which is stored as NULL) by
    the other terms. ``head`` walks the (experiment_id, key, value) index from ``offset``
    and stops after the page (plus one row). ``tail``, the runs without a value, is read
    only when ``head`` came up short, from its start if the page began in ``head``, else
    from ``offset`` less the count of runs with a value (counted only then). The two
    small pieces are put in order exactly as one ORDER BY over every run would.
    """
    size = max_results + 1
    first = order[0]
    head, head_cols = _matching(
        experiment_ids, comparisons, order, include_deleted=include_deleted, valued=first.key
    )
    # No NULLs here: plain ASC/DESC lets the index give the order (NULLS LAST would not).
    head_order = [_direction(head_cols[0], first, nulls_last=False)]
    head_order += _ordered(head_cols[1:], order[1:])
    head_page = (
        head.with_only_columns(
            runs.c.run_id,
            runs.c.start_time,
            *(c.label(f"_o{i}") for i, c in enumerate(head_cols)),
        )
        .order_by(*head_order, *_NEWEST)
        .limit(size)
        .offset(offset)
        .cte("head_page")
    )
    in_head = sa.select(sa.func.count()).select_from(head_page).scalar_subquery()
    with_value = (
        sa.select(sa.func.count())
        .select_from(head.with_only_columns(runs.c.run_id).subquery("valued"))
        .scalar_subquery()
    )
    tail, tail_cols = _matching(
        experiment_ids, comparisons, order[1:], include_deleted=include_deleted
    )
    has_value = (
        sa.select(latest_metrics.c.run_id)
        .where(
            latest_metrics.c.run_id == runs.c.run_id,
            latest_metrics.c.key == first.key,
            latest_metrics.c.value.is_not(None),
        )
        .exists()
    )
    tail_page = (
        tail.with_only_columns(
            runs.c.run_id,
            runs.c.start_time,
            sa.null().cast(latest_metrics.c.value.type).label("_o0"),
            *(c.label(f"_o{i + 1}") for i, c in enumerate(tail_cols)),
        )
        .where(~has_value)
        .order_by(*_ordered(tail_cols, order[1:]), *_NEWEST)
        .limit(sa.literal(size) - in_head)
        # CASE: the backends evaluate the count only when the page starts past ``head``
        .offset(sa.case((in_head == 0, sa.literal(offset) - with_value), else_=0))
        .subquery("tail_page")
    )
    page = sa.union_all(sa.select(head_page), sa.select(tail_page)).subquery("page")
    return (
        sa.select(runs)
        .join_from(page, runs, runs.c.run_id == page.c.run_id)
        .order_by(*_ordered(_keys(page, order), order), page.c.start_time.desc(), page.c.run_id)
    )


def _keys(page: sa.Subquery, order: Sequence[OrderTerm]) -> list[Any]:
    return [page.c[f"_o{i}"] for i in range(len(order))]


def _ordered(columns: Sequence[Any], order: Sequence[OrderTerm]) -> list[Any]:
    """ORDER BY items for the terms, NULLs last whatever the direction (every backend)."""
    return [_direction(c, t, nulls_last=True) for c, t in zip(columns, order, strict=True)]


def _direction(column: Any, term: OrderTerm, *, nulls_last: bool) -> Any:
    ordered = column.desc() if term.descending else column.asc()
    return ordered.nulls_last() if nulls_last else ordered


def _matching(
    experiment_ids: Sequence[int],
    comparisons: Sequence[Comparison],
    order: Sequence[OrderTerm],
    *,
    include_deleted: bool,
    valued: str | None = None,
) -> tuple[sa.Select[Any], list[Any]]:
    """The runs matching the filter (unordered) and the column of each order term.

    Each metric, param or tag is one join: inner for the filter, outer for the order; with
    ``valued``, that metric's join is inner and keeps only rows with a value.
    """
    q = sa.select(runs).where(runs.c.experiment_id.in_(list(experiment_ids)))
    if not include_deleted:
        q = q.where(runs.c.lifecycle_stage == "active")
    joined: dict[tuple[str, str], sa.FromClause] = {}
    from_clause: sa.FromClause = runs

    def join_for(entity: str, key: str, *, outer: bool) -> sa.FromClause:
        nonlocal from_clause
        if (entity, key) in joined:
            return joined[(entity, key)]
        table = {"metric": latest_metrics, "param": params, "tag": run_tags}[entity]
        alias = table.alias(f"{entity[0]}{len(joined)}")
        on = sa.and_(alias.c.run_id == runs.c.run_id, alias.c.key == key)
        if entity == "metric" and len(experiment_ids) == 1:
            # lets the (experiment_id, key, value) index serve filter and order
            on = sa.and_(on, alias.c.experiment_id == experiment_ids[0])
        if entity == "metric" and key == valued:
            on, outer = sa.and_(on, alias.c.value.is_not(None)), False
        from_clause = from_clause.join(alias, on, isouter=outer)
        joined[(entity, key)] = alias
        return alias

    if valued is not None:
        join_for("metric", valued, outer=False)
    for c in comparisons:
        if c.entity == "attribute":
            column: Any = runs.c[_ATTRIBUTE_COLUMNS[c.key]]
        else:
            column = join_for(c.entity, c.key, outer=False).c.value
        q = q.where(_condition(column, c))
    columns: list[Any] = []
    for term in order:
        if term.entity == "attribute":
            columns.append(runs.c[_ATTRIBUTE_COLUMNS[term.key]])
        else:
            columns.append(join_for(term.entity, term.key, outer=True).c.value)
    return q.select_from(from_clause), columns


_LIKE = {"LIKE": "like", "NOT LIKE": "not_like", "ILIKE": "ilike", "NOT ILIKE": "not_ilike"}


def _condition(column: Any, c: Comparison) -> Any:
    value = c.value
    if c.key == "status" and c.entity == "attribute":
        value = (
            tuple(str(v).upper() for v in value) if isinstance(value, tuple) else str(value).upper()
        )
    op = c.op
    if op == "IN":
        return column.in_(list(value) if isinstance(value, tuple) else [value])
    if op == "NOT IN":
        return column.not_in(list(value) if isinstance(value, tuple) else [value])
    if op in _LIKE:  # one escape character on every backend (SQLite has none by default)
        return getattr(column, _LIKE[op])(value, escape="\\")
    comparators = {
        "=": column.__eq__,
        "!=": column.__ne__,
        "<": column.__lt__,
        "<=": column.__le__,
        ">": column.__gt__,
        ">=": column.__ge__,
    }
    if op not in comparators:  # pragma: no cover - the parser admits only these
        raise InvalidInput(f"Unsupported operator {op!r}.")
    return comparators[op](value)


# SQLite's limits ("Expression tree is too large", "at most 64 tables in a join", "too many
# SQL variables", "LIKE or GLOB pattern too complex", ...); PostgreSQL's are SQLSTATE 54xxx.
_TOO_LARGE = re.compile(
    r"too large|at most \d+ tables|too many (sql variables|terms|columns|arguments)|"
    r"too complex|too big|stack depth|stack overflow|number of parameters",
    re.IGNORECASE,
)


def filter_error(exc: sa.exc.DBAPIError | RecursionError) -> InvalidFilter | None:
    """The filter, not the database, is to blame: its size, or a value it compares with.

    Connection problems, exhausted resources and timeouts (SQLSTATE classes 08, 53, 57,
    "too many clients" among them) are the database's, and return None.
    """
    if isinstance(exc, RecursionError):
        text = "the query nests too deeply to be built"
    else:
        text = str(exc.orig).strip()
        state = str(getattr(exc.orig, "sqlstate", None) or "")
        if state[:2] in ("08", "53", "57"):
            return None
        if not (isinstance(exc, sa.exc.DataError) or state[:2] == "54" or _TOO_LARGE.search(text)):
            return None
    return InvalidFilter(
        f"The metadata database cannot run this filter: {text}.",
        hint="Use fewer comparisons, values or keys, or simpler patterns.",
    )
