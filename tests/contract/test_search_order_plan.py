"""A search ordered by a metric: the same runs in the same order as a naive sort, read
through the (experiment_id, key, value) index instead of a sort of every run.

Runs are bulk-inserted into the real metadata database (SQLite and PostgreSQL) so that
start times tie and metrics are missing, NaN (stored as NULL) or tied on purpose; the
expected answer is computed in Python from the same data.
"""

from __future__ import annotations

import functools
import json
import math
import random
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from milepost.stores.schema import params, run_tags, runs
from milepost.tracking._filter import parse_filter, parse_order_by
from milepost.tracking.backends._search import search_query

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from milepost import Runtime
    from milepost.tracking.backends.sql import MetricRow, SqlTrackingStore

BASE = 1_700_000_000_000
INDEX = "ix_latest_metrics_experiment_id_key_value"


@dataclass
class Model:
    """What the naive sort knows of a run."""

    run_id: str
    experiment_id: int
    name: str
    status: str
    start_time: int
    deleted: bool
    metrics: dict[str, float | None] = field(default_factory=dict)  # None: NaN (NULL)
    params: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)


def _populate(
    store: SqlTrackingStore, n: int, rnd: random.Random, *, ties: bool = True
) -> list[Model]:
    """``n`` runs over two experiments, with gaps, NaN, deleted runs and (``ties``) many
    equal metric values and start times."""
    exps = [
        store.get_or_create_experiment(f"order-{i}", actor="tester").experiment_id for i in (1, 2)
    ]
    models, metric_rows = [], []
    for i in range(n):
        m = Model(
            run_id=uuid.UUID(int=rnd.getrandbits(128)).hex,
            experiment_id=exps[0] if rnd.random() < 0.8 else exps[1],
            name=f"r{i}",
            status=rnd.choice(["FINISHED", "FAILED"]),
            start_time=BASE + rnd.randrange(max(2, n // 4)) * 1000,  # many ties
            deleted=rnd.random() < 0.15,
        )
        for key in ("a", "b"):
            r = rnd.random()
            if r < 0.2:
                continue  # no value at all
            value = math.nan if r < 0.3 else rnd.choice([-math.inf, 0.1, 0.2, 0.3, 0.5, math.inf])
            if r > 0.9 or not ties:
                value = rnd.random()
            m.metrics[key] = None if math.isnan(value) else value
            metric_rows.append((m.run_id, m.experiment_id, key, value, BASE + i, 0))
        if rnd.random() < 0.8:
            m.params["p"] = rnd.choice(["x", "y"])
        if rnd.random() < 0.5:
            m.tags["t"] = rnd.choice(["u", "v"])
        models.append(m)
    with store.db.write() as conn:
        conn.execute(
            sa.insert(runs),
            [
                {
                    "run_id": m.run_id,
                    "experiment_id": m.experiment_id,
                    "name": m.name,
                    "status": m.status,
                    "start_time": m.start_time,
                    "end_time": m.start_time + 1,
                    "user": "tester",
                    "lifecycle_stage": "deleted" if m.deleted else "active",
                }
                for m in models
            ],
        )
        for table, slot in ((params, "params"), (run_tags, "tags")):
            items = [
                {"run_id": m.run_id, "key": k, "value": v}
                for m in models
                for k, v in getattr(m, slot).items()
            ]
            if items:
                conn.execute(sa.insert(table), items)
    rows: list[MetricRow] = metric_rows
    for k in range(0, len(rows), 5000):
        store.insert_metrics(rows[k : k + 5000])
    return models


def _known(m: Model, key: str) -> bool:
    return m.metrics.get(key) is not None


# Filters with their meaning in Python (a comparison with a missing or NaN value is false).
FILTERS: dict[str | None, Callable[[Model], bool]] = {
    None: lambda m: True,
    "params.p = 'x'": lambda m: m.params.get("p") == "x",
    "metrics.b > 0.2": lambda m: _known(m, "b") and m.metrics["b"] > 0.2,  # type: ignore[operator]
    "metrics.a >= 0.2": lambda m: _known(m, "a") and m.metrics["a"] >= 0.2,  # type: ignore[operator]
    "status = 'FINISHED' AND tags.t != 'u'": lambda m: (
        m.status == "FINISHED" and "t" in m.tags and m.tags["t"] != "u"
    ),
}

ORDERS = [
    ["metrics.a DESC"],
    ["metrics.a ASC"],
    ["metrics.a DESC", "metrics.b ASC"],
    ["metrics.a ASC", "params.p DESC"],
    ["metrics.b DESC", "start_time ASC"],
    ["metrics.a DESC", "tags.t ASC", "run_name DESC"],
    ["metrics.a", "metrics.a DESC"],
]


def _value(m: Model, term: str) -> Any:
    field_, _, _ = term.partition(" ")
    entity, _, key = field_.partition(".")
    if entity == "metrics":
        return m.metrics.get(key)
    if entity == "params":
        return m.params.get(key)
    if entity == "tags":
        return m.tags.get(key)
    return {"start_time": m.start_time, "run_name": m.name}[field_]


def _naive(models: Sequence[Model], order: Sequence[str]) -> list[str]:
    """Every term NULLs last whatever its direction, then newest first, then run id."""

    def compare(x: Model, y: Model) -> int:
        for term in order:
            a, b = _value(x, term), _value(y, term)
            if a == b:
                continue
            if a is None or b is None:
                return 1 if a is None else -1
            sign = -1 if term.endswith(" DESC") else 1
            return sign * (1 if a > b else -1)
        if x.start_time != y.start_time:
            return 1 if x.start_time < y.start_time else -1
        return 1 if x.run_id > y.run_id else -1

    return [m.run_id for m in sorted(models, key=functools.cmp_to_key(compare))]


def _pages(
    store: SqlTrackingStore,
    experiment_ids: list[int],
    filter_: str | None,
    order: list[str],
    size: int,
    *,
    include_deleted: bool,
) -> list[str]:
    got: list[str] = []
    while True:
        page, more = store.search_runs(
            experiment_ids,
            parse_filter(filter_),
            parse_order_by(order),
            max_results=size,
            offset=len(got),
            include_deleted=include_deleted,
        )
        got += [r.run_id for r in page]
        assert len(page) == size or not more
        if not more:
            return got


def test_metric_order_matches_a_naive_sort(runtime: Runtime) -> None:
    store = runtime.tracking.store
    rnd = random.Random(16)
    models = _populate(store, 90, rnd)
    exps = sorted({m.experiment_id for m in models})
    cases = 0
    for filter_, keep in FILTERS.items():
        for order in ORDERS:
            for experiment_ids in ([exps[0]], exps):
                include_deleted = rnd.random() < 0.3
                chosen = [
                    m
                    for m in models
                    if m.experiment_id in experiment_ids
                    and (include_deleted or not m.deleted)
                    and keep(m)
                ]
                want = _naive(chosen, order)
                size = rnd.choice([1, 4, 7, 50, 200])
                got = _pages(
                    store, experiment_ids, filter_, order, size, include_deleted=include_deleted
                )
                assert got == want, (filter_, order, experiment_ids, size, include_deleted)
                cases += 1
    assert cases == len(FILTERS) * len(ORDERS) * 2


def test_a_page_far_into_the_runs_without_the_metric(runtime: Runtime) -> None:
    """Past every run with a value, the page comes from the runs without one."""
    store = runtime.tracking.store
    models = _populate(store, 120, random.Random(3))
    exp = models[0].experiment_id
    live = [m for m in models if m.experiment_id == exp and not m.deleted]
    want = _naive(live, ["metrics.a DESC"])
    with_value = sum(m.metrics.get("a") is not None for m in live)
    for offset in (with_value - 2, with_value, with_value + 3, len(live) - 1, len(live) + 5):
        page, more = store.search_runs(
            [exp], [], parse_order_by(["metrics.a DESC"]), max_results=4, offset=max(0, offset)
        )
        assert [r.run_id for r in page] == want[max(0, offset) : max(0, offset) + 4]
        assert more == (max(0, offset) + 4 < len(want))


def _explain(store: SqlTrackingStore, query: sa.Select[Any]) -> str:
    if store.db.dialect == "postgresql":
        with store.db.write() as conn:
            conn.exec_driver_sql("ANALYZE")  # the statistics a running server would have
    with store.db.read() as conn:
        sql = str(query.compile(conn, compile_kwargs={"literal_binds": True}))
        if conn.dialect.name == "sqlite":
            rows = conn.exec_driver_sql("EXPLAIN QUERY PLAN " + sql)
            return "\n".join(str(r[3]) for r in rows)
        (plan,) = conn.exec_driver_sql("EXPLAIN (ANALYZE, FORMAT JSON) " + sql).one()
        return plan if isinstance(plan, str) else json.dumps(plan)


def _nodes(node: dict[str, Any]) -> list[dict[str, Any]]:
    found = [node]
    for child in node.get("Plans", []):
        found += _nodes(child)
    return found


def test_the_page_is_read_from_the_index_not_sorted(runtime: Runtime) -> None:
    """EXPLAIN: the metric's index gives the order; only ties and the page get sorted."""
    store = runtime.tracking.store
    models = _populate(store, 3000, random.Random(5), ties=False)
    exp = min(m.experiment_id for m in models)
    for order in (["metrics.a DESC"], ["metrics.a ASC"]):
        for filter_ in (None, "params.p = 'x'"):
            query = search_query(
                [exp],
                parse_filter(filter_),
                parse_order_by(order),
                max_results=20,
                offset=40,
                include_deleted=False,
            )
            plan = _explain(store, query)
            if runtime.db.dialect == "sqlite":
                head = plan.split("MATERIALIZE head_page", 1)[1].split("SCAN head_page", 1)[0]
                assert f"SEARCH m0 USING INDEX {INDEX}" in head, plan
                assert "USE TEMP B-TREE FOR RIGHT PART OF ORDER BY" in head, plan
                continue
            nodes = _nodes(json.loads(plan)[0]["Plan"])
            scans = [n for n in nodes if n.get("Index Name") == INDEX]
            assert scans, plan
            # about the page (61 rows) plus its ties and deleted runs, never all ~2,400
            assert all(n["Actual Rows"] < 200 for n in scans), plan
            assert not any(n["Node Type"] == "Sort" and n["Actual Rows"] > 200 for n in nodes), plan
