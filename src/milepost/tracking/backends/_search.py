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

    Raises:
        InvalidFilter: the search joins more keys than every backend can.
    """
    check_search_size(comparisons, order)
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
        from_clause = from_clause.join(alias, on, isouter=outer)
        joined[(entity, key)] = alias
        return alias

    for c in comparisons:
        if c.entity == "attribute":
            column: Any = runs.c[_ATTRIBUTE_COLUMNS[c.key]]
        else:
            column = join_for(c.entity, c.key, outer=False).c.value
        q = q.where(_condition(column, c))
    order_by: list[Any] = []
    for term in order:
        if term.entity == "attribute":
            column = runs.c[_ATTRIBUTE_COLUMNS[term.key]]
        else:
            column = join_for(term.entity, term.key, outer=True).c.value
        order_by.append((column.desc() if term.descending else column.asc()).nulls_last())
    order_by += [runs.c.start_time.desc(), runs.c.run_id]
    return q.select_from(from_clause).order_by(*order_by).limit(max_results + 1).offset(offset)


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
