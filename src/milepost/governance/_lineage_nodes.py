"""Labels and attributes of lineage nodes, read in one query per kind.

``describe`` returns the nodes that exist; ``names`` lists every ref of a kind (for "did
you mean" when a ref names nothing).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from milepost.governance import _lineage_sql as sql
from milepost.stores.schema import (
    alerts,
    dataset_versions,
    deployment_events,
    endpoints,
    evaluations,
    fairness_audits,
    feature_view_versions,
    gate_results,
    model_versions,
    monitors,
    pipeline_runs,
    pipeline_steps,
    pipeline_triggers,
    promotion_requests,
    runs,
    stage_history,
    trigger_firings,
    validation_results,
)

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

Info = tuple[str, dict[str, Any]]  # (label, attrs)
Describer = Callable[["Connection", list[str]], dict[str, Info]]


def _short(ident: object) -> str:
    return str(ident)[:8]


def _metrics(text: str | None, limit: int = 4) -> dict[str, float]:
    try:
        doc = json.loads(text or "{}")
    except ValueError:
        return {}
    if not isinstance(doc, dict):
        return {}
    out = {k: v for k, v in doc.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
    return dict(sorted(out.items())[:limit])


def _dataset(conn: Connection, refs: list[str]) -> dict[str, Info]:
    ids = sql.dataset_ids(conn, refs)
    t = dataset_versions.c
    query = sa.select(t.version_id, t.num_rows, t.created_at)
    return {
        ids[vid]: (ids[vid], {"rows": rows, "created_at": at})
        for vid, rows, at in sql.rows(conn, query, ids)
    }


def _validation(conn: Connection, refs: list[str]) -> dict[str, Info]:
    out: dict[str, Info] = {}
    t = validation_results.c
    query = sa.select(t.result_id, t.suite_name, t.success, t.num_failed, t.created_at)
    for rid, suite, ok, failed, at in sql.rows(conn, query, refs):
        status = "passed" if ok else "failed"
        out[rid] = (
            f"{suite} {status}",
            {"suite": suite, "status": status, "failed_checks": failed, "created_at": at},
        )
    return out


def _view(conn: Connection, refs: list[str]) -> dict[str, Info]:
    ids = sql.view_ids(conn, refs)
    t = feature_view_versions.c
    query = sa.select(t.version_id, t.status, t.created_at)
    return {
        ids[vid]: (ids[vid], {"status": status, "created_at": at})
        for vid, status, at in sql.rows(conn, query, ids)
    }


def _run(conn: Connection, refs: list[str]) -> dict[str, Info]:
    query = sa.select(runs.c.run_id, runs.c.name, runs.c.status, runs.c.start_time)
    return {
        rid: (f"run {name} ({_short(rid)})", {"name": name, "status": status, "start_time": start})
        for rid, name, status, start in sql.rows(conn, query, refs)
    }


def _pipeline_run(conn: Connection, refs: list[str]) -> dict[str, Info]:
    t = pipeline_runs.c
    query = sa.select(t.run_id, t.pipeline, t.status, t.started_at)
    return {
        rid: (
            f"pipeline {pipe} ({_short(rid)})",
            {"pipeline": pipe, "status": status, "started_at": start},
        )
        for rid, pipe, status, start in sql.rows(conn, query, refs)
    }


def _pipeline_step(conn: Connection, refs: list[str]) -> dict[str, Info]:
    wanted = set(refs)
    t = pipeline_steps.c
    query = sa.select(t.run_id, t.step, t.status, t.started_at)
    run_ids = {r.partition("/")[0] for r in refs}
    return {
        f"{rid}/{step}": (f"step {step}", {"status": status, "started_at": start})
        for rid, step, status, start in sql.rows(conn, query, run_ids)
        if f"{rid}/{step}" in wanted
    }


def _code(conn: Connection, refs: list[str]) -> dict[str, Info]:
    # A code version exists when something names it; the walk only reaches named ones.
    return {r: (f"code {r[:12]}", {}) for r in refs}


def _assessment(kind: str) -> Describer:
    def describe(conn: Connection, refs: list[str]) -> dict[str, Info]:
        out: dict[str, Info] = {}
        if kind == "evaluation":
            t = evaluations
            cols = [t.c.eval_id, t.c.target, t.c.num_rows, t.c.metrics_json, t.c.created_at]
        else:
            t = fairness_audits
            cols = [t.c.audit_id, t.c.target, t.c.num_rows, t.c.summary_json, t.c.created_at]
        for ident, target, rows, doc, at in sql.rows(conn, sa.select(*cols), refs):
            attrs: dict[str, Any] = {"target": target, "rows": rows, "created_at": at}
            if kind == "evaluation":
                attrs["metrics"] = _metrics(doc)
                label = f"evaluation {_short(ident)}"
            else:
                label = f"fairness audit {_short(ident)}"
            out[ident] = (label, attrs)
        return out

    return describe


def _request(conn: Connection, refs: list[str]) -> dict[str, Info]:
    t = promotion_requests.c
    query = sa.select(t.request_id, t.target_stage, t.status, t.requested_by, t.created_at)
    return {
        rid: (
            f"request to {stage} ({status})",
            {"target_stage": stage, "status": status, "requested_by": by, "created_at": at},
        )
        for rid, stage, status, by, at in sql.rows(conn, query, refs)
    }


def _gate(conn: Connection, refs: list[str]) -> dict[str, Info]:
    wanted = set(refs)
    t = gate_results.c
    query = sa.select(t.request_id, t.position, t.name, t.kind, t.status, t.message, t.at)
    rids = {r.rpartition("#")[0] for r in refs}
    return {
        f"{rid}#{pos}": (
            f"gate {name}: {status}",
            {"name": name, "kind": kind, "status": status, "message": message, "at": at},
        )
        for rid, pos, name, kind, status, message, at in sql.rows(conn, query, rids)
        if f"{rid}#{pos}" in wanted
    }


def _transition(conn: Connection, refs: list[str]) -> dict[str, Info]:
    t = stage_history.c
    query = sa.select(t.event_id, t.from_stage, t.to_stage, t.actor, t.at)
    return {
        str(eid): (f"{a} → {b}", {"from": a, "to": b, "actor": actor, "at": at})
        for eid, a, b, actor, at in sql.rows(conn, query, sql.ints(refs))
    }


def _model(conn: Connection, refs: list[str]) -> dict[str, Info]:
    ids = sql.model_ids(conn, refs)
    t = model_versions.c
    query = sa.select(t.version_id, t.stage, t.flavor, t.author, t.created_at)
    return {
        ids[vid]: (ids[vid], {"stage": stage, "flavor": flavor, "author": author, "created_at": at})
        for vid, stage, flavor, author, at in sql.rows(conn, query, ids)
    }


def _endpoint(conn: Connection, refs: list[str]) -> dict[str, Info]:
    out: dict[str, Info] = {}
    t = endpoints.c
    query = sa.select(t.name, t.revision, t.track_model, t.track_stage, t.created_at)
    for name, revision, model, stage, at in sql.rows(conn, query, refs):
        attrs: dict[str, Any] = {"revision": revision, "created_at": at}
        if model:
            attrs["tracks"] = f"{stage} of {model}"
        out[name] = (f"endpoint {name}", attrs)
    return out


def _deployment_event(conn: Connection, refs: list[str]) -> dict[str, Info]:
    t = deployment_events.c
    query = sa.select(t.event_id, t.kind, t.actor, t.at, t.reason)
    return {
        str(eid): (f"{kind} by {actor}", {"kind": kind, "actor": actor, "at": at, "reason": reason})
        for eid, kind, actor, at, reason in sql.rows(conn, query, sql.ints(refs))
    }


def _monitor(conn: Connection, refs: list[str]) -> dict[str, Info]:
    query = sa.select(monitors.c.name, monitors.c.enabled, monitors.c.created_at)
    return {
        name: (f"monitor {name}", {"enabled": bool(enabled), "created_at": at})
        for name, enabled, at in sql.rows(conn, query, refs)
    }


def _alert(conn: Connection, refs: list[str]) -> dict[str, Info]:
    out: dict[str, Info] = {}
    t = alerts.c
    query = sa.select(t.alert_id, t.metric, t.feature, t.value, t.raised_at)
    for aid, metric, feature, value, at in sql.rows(conn, query, sql.ints(refs)):
        what = f"{metric} {feature}" if feature else metric
        out[str(aid)] = (
            f"alert {aid}: {what}",
            {"metric": metric, "feature": feature, "value": value, "raised_at": at},
        )
    return out


def _trigger(conn: Connection, refs: list[str]) -> dict[str, Info]:
    t = pipeline_triggers.c
    return {
        name: (f"trigger {name}", {"kind": kind, "pipeline": pipe})
        for name, kind, pipe in sql.rows(conn, sa.select(t.name, t.kind, t.pipeline_ref), refs)
    }


def _firing(conn: Connection, refs: list[str]) -> dict[str, Info]:
    t = trigger_firings.c
    query = sa.select(t.firing_id, t.cause, t.status, t.fired_at)
    return {
        fid: (f"firing {cause}", {"cause": cause, "status": status, "fired_at": at})
        for fid, cause, status, at in sql.rows(conn, query, refs)
    }


DESCRIBERS: dict[str, Describer] = {
    "dataset_version": _dataset,
    "validation": _validation,
    "feature_view_version": _view,
    "run": _run,
    "pipeline_run": _pipeline_run,
    "pipeline_step": _pipeline_step,
    "code_version": _code,
    "evaluation": _assessment("evaluation"),
    "fairness_audit": _assessment("fairness_audit"),
    "promotion_request": _request,
    "gate_result": _gate,
    "stage_transition": _transition,
    "model_version": _model,
    "endpoint": _endpoint,
    "deployment_event": _deployment_event,
    "monitor": _monitor,
    "alert": _alert,
    "trigger": _trigger,
    "trigger_firing": _firing,
}


def describe(conn: Connection, keys: Iterable[str]) -> dict[str, Info]:
    """``{key: (label, attrs)}`` of the nodes that exist among ``keys``."""
    by_kind: dict[str, list[str]] = {}
    for k in keys:
        kind, ref = sql.split_key(k)
        by_kind.setdefault(kind, []).append(ref)
    out: dict[str, Info] = {}
    for kind, refs in by_kind.items():
        describer = DESCRIBERS.get(kind)
        if describer is None:
            continue
        for ref, info in describer(conn, refs).items():
            out[sql.key(kind, ref)] = info
    return out


def names(conn: Connection, kind: str, limit: int = 5000) -> list[str]:
    """Refs of one kind that exist (for close-name suggestions), newest first, bounded."""
    versioned = {  # query, separator, newest first
        "dataset_version": (sql.DATASETS, "@", True),
        "model_version": (sql.MODELS, "/", True),
        "feature_view_version": (sql.VIEWS, ":v", False),
    }.get(kind)
    if versioned is not None:
        query, sep, newest_first = versioned
        if newest_first:
            query = query.order_by(query.selected_columns[0].desc())
        return [f"{n}{sep}{v}" for _, n, v in conn.execute(query.limit(limit))]
    column = {
        "run": runs.c.run_id,
        "pipeline_run": pipeline_runs.c.run_id,
        "endpoint": endpoints.c.name,
        "monitor": monitors.c.name,
        "trigger": pipeline_triggers.c.name,
        "promotion_request": promotion_requests.c.request_id,
        "evaluation": evaluations.c.eval_id,
        "fairness_audit": fairness_audits.c.audit_id,
        "validation": validation_results.c.result_id,
        "trigger_firing": trigger_firings.c.firing_id,
    }.get(kind)
    if column is None:
        return []
    return [str(v) for v in conn.execute(sa.select(column).limit(limit)).scalars()]
