"""The lineage graph's edges and nodes, read from the metadata store's tables.

One function per node kind and direction takes a batch of refs of that kind (the BFS
frontier) and returns the edges touching them, so a walk costs a few queries per level,
not per node. Every edge points from what was used to what was made of it. This module
holds the registry, serving, monitoring and pipeline readers and :data:`READERS`; the
data and training readers are in ``_lineage_data``, the batched queries they share in
``_lineage_sql``. The JSON columns are parsed the way their writers fill them:

- ``model_versions.datasets_json``: ``[{"ref": "NAME@N", "role": ..., "content_hash"}]``
  (``ModelService.log_model``); ``feature_refs_json``: ``["VIEW:vN:FEATURE", ...]``;
- ``feature_retrievals.refs_json`` as above, ``sources_json``: ``[{"view": "VIEW:vN",
  "dataset": "NAME@N", ...}]`` (a dataset source) or files/push details (no node);
- ``gate_results.details_json``: ``candidate_eval``/``baseline_eval``/``eval_id`` name
  evaluations, ``audit_id`` (and ``*_audit``) fairness audits;
- ``endpoints.spec_json`` (``EndpointSpec``) and ``deployment_events.details_json``
  (``EndpointSpec.summary()`` or event details): ``variants`` with ``model``/``version``;
- ``pipeline_steps.upstream_json``: the step ids it takes outputs from;
  ``pipeline_links``: ``kind``/``ref`` with role ``input`` (ref -> step) or ``output``;
- ``pipeline_runs.code_version_json``: ``{"commit", "dirty", "source_sha256"}``;
- ``pipeline_triggers.spec_json``: ``{"monitor": NAME}`` for drift/performance triggers;
  ``trigger_firings.cause``: ``alert:ID`` when an alert caused it.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from milepost.governance._lineage_data import (
    down_code_version,
    down_dataset_version,
    down_feature_view_version,
    down_run,
    pipeline_code_edges,
    up_dataset_version,
    up_feature_view_version,
    up_model_version,
    up_run,
    up_validation,
)
from milepost.governance._lineage_sql import (
    LINKS,
    Edge,
    chunks,
    contains_any,
    dataset_refs,
    ints,
    key,
    link_edges,
    links,
    loads,
    mentions,
    model_ids,
    model_refs,
    pairs,
    rows,
)
from milepost.stores.schema import (
    alerts,
    deployment_events,
    endpoints,
    evaluations,
    fairness_audits,
    gate_results,
    monitors,
    pipeline_links,
    pipeline_runs,
    pipeline_steps,
    pipeline_triggers,
    promotion_requests,
    stage_history,
    trigger_firings,
)

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

#: Dataset roles that are evaluation data, not training data (``models_trained_on``).
EVAL_ROLES = frozenset({"eval", "evaluation", "test", "holdout", "validation", "reference"})


#: Relations that carry training data forward (what ``models_trained_on`` walks), besides
#: a dataset role outside :data:`EVAL_ROLES`.
DERIVATION = frozenset({"feature_source", "produced", "child", "input", "feeds", "output"})


#: What a model version's database id is used by: ``(query, target kind, relation)``.
_MODEL_USES = (
    (sa.select(evaluations.c.version_id, evaluations.c.eval_id), "evaluation", "evaluated"),
    (
        sa.select(fairness_audits.c.version_id, fairness_audits.c.audit_id),
        "fairness_audit",
        "audited",
    ),
    (
        sa.select(promotion_requests.c.version_id, promotion_requests.c.request_id),
        "promotion_request",
        "requested",
    ),
    (sa.select(stage_history.c.version_id, stage_history.c.event_id), "stage_transition", "stage"),
)


def down_model_version(conn: Connection, refs: list[str]) -> list[Edge]:
    ids = model_ids(conn, refs)
    out: list[Edge] = []
    for batch in chunks(ids):
        for query, target, rel in _MODEL_USES:
            out += pairs(conn, query, batch, "model_version", target, rel, names=ids)
    names = {ref.rpartition("/")[0] for ref in ids.values()}
    wanted = set(ids.values())
    for _model, mref, endpoint in _deployed(conn, names):
        if mref in wanted:
            out.append((key("model_version", mref), key("endpoint", endpoint), "deployed"))
    for mon, model, version in conn.execute(
        sa.select(monitors.c.name, monitors.c.model, monitors.c.version).where(
            monitors.c.model.in_(names), monitors.c.version.is_not(None)
        )
    ):
        if f"{model}/{version}" in wanted:
            out.append(
                (key("model_version", f"{model}/{version}"), key("monitor", mon), "monitored")
            )
    out += links(conn, "model_version", list(ids.values()), "input")
    return out


def _variants(doc: Any) -> list[str]:
    """``NAME/N`` of every variant a spec or an event's details name."""
    if not isinstance(doc, dict):
        return []
    out = []
    for v in doc.get("variants") or []:
        if (
            isinstance(v, dict)
            and isinstance(v.get("model"), str)
            and isinstance(v.get("version"), int)
        ):
            out.append(f"{v['model']}/{v['version']}")
    return out


def _deployed(
    conn: Connection, names: set[str] | None, endpoint_names: list[str] | None = None
) -> list[tuple[str, str, str]]:
    """``(model, NAME/N, endpoint)`` for every version an endpoint serves or served."""
    query = sa.select(endpoints.c.endpoint_id, endpoints.c.name, endpoints.c.spec_json)
    if endpoint_names is not None:
        query = query.where(endpoints.c.name.in_(endpoint_names))
    elif names is not None:
        if not names:
            return []
        query = query.where(
            sa.or_(
                contains_any(endpoints.c.spec_json, [json.dumps(n) for n in names]),
                endpoints.c.endpoint_id.in_(
                    sa.select(deployment_events.c.endpoint_id).where(
                        contains_any(
                            deployment_events.c.details_json, [json.dumps(n) for n in names]
                        )
                    )
                ),
            )
        )
    seen: dict[tuple[str, str], None] = {}
    for eid, ename, spec in conn.execute(query).all():
        found = _variants(loads(spec, {}))
        for (details,) in conn.execute(
            sa.select(deployment_events.c.details_json)
            .where(deployment_events.c.endpoint_id == eid)
            .order_by(deployment_events.c.event_id)
        ):
            found += _variants(loads(details, {}))
        for mref in found:
            seen[(mref, ename)] = None
    return [(m.rpartition("/")[0], m, e) for m, e in seen]


def down_promotion_request(conn: Connection, refs: list[str]) -> list[Edge]:
    out: list[Edge] = []
    for batch in chunks(refs):
        query = sa.select(gate_results.c.request_id, gate_results.c.position)
        for rid, pos in rows(conn, query, batch):
            out.append((key("promotion_request", rid), key("gate_result", f"{rid}#{pos}"), "gate"))
        query = sa.select(stage_history.c.request_id, stage_history.c.event_id)
        out += pairs(conn, query, batch, "promotion_request", "stage_transition", "decided")
        query = sa.select(promotion_requests.c.request_id, promotion_requests.c.endpoint).where(
            promotion_requests.c.endpoint.is_not(None)
        )
        out += pairs(conn, query, batch, "promotion_request", "endpoint", "rolled_out")
    out += links(conn, "promotion_request", refs, "input")
    return out


def up_promotion_request(conn: Connection, refs: list[str]) -> list[Edge]:
    query = sa.select(promotion_requests.c.version_id, promotion_requests.c.request_id)
    column = promotion_requests.c.request_id
    out = pairs(
        conn, query, refs, "model_version", "promotion_request", "requested", model_refs, column
    )
    return out + links(conn, "promotion_request", refs, "output")


def gate_evidence(details_json: str | None) -> list[str]:
    """Keys of the evaluations, fairness audits and validation results a gate result's
    details name (``candidate_eval``, ``baseline_eval``, ``eval_id``, ``audit_id``, and a
    data validation gate's ``datasets: {REF: {"result_id": ...}}``)."""
    out: list[str] = []

    def visit(doc: Any, level: int) -> None:
        if isinstance(doc, list) and level < 3:
            for item in doc:
                visit(item, level + 1)
        if not isinstance(doc, dict):
            return
        for name, value in doc.items():
            if isinstance(value, (dict, list)) and level < 3:
                visit(value, level + 1)
            elif not isinstance(value, str) or not value:
                continue
            elif name in ("eval_id", "evaluation") or name.endswith("_eval"):
                out.append(key("evaluation", value))
            elif name == "audit_id" or name.endswith("_audit"):
                out.append(key("fairness_audit", value))
            elif name == "result_id" and level > 0:
                out.append(key("validation", value))

    visit(loads(details_json, {}), 0)
    return list(dict.fromkeys(out))


def _gate_rows(conn: Connection, where: Any) -> list[Any]:
    return list(
        conn.execute(
            sa.select(
                gate_results.c.request_id, gate_results.c.position, gate_results.c.details_json
            ).where(where)
        )
    )


def up_gate_result(conn: Connection, refs: list[str]) -> list[Edge]:
    out: list[Edge] = []
    by_request: dict[str, set[int]] = defaultdict(set)
    for ref in refs:
        rid, _, pos = ref.rpartition("#")
        if pos.isdigit():
            by_request[rid].add(int(pos))
    for batch in chunks(by_request):
        for rid, pos, details in _gate_rows(conn, gate_results.c.request_id.in_(batch)):
            if pos in by_request[rid]:
                g = key("gate_result", f"{rid}#{pos}")
                out.append((key("promotion_request", rid), g, "gate"))
                out += [(e, g, "evidence") for e in gate_evidence(details)]
    return out


def _down_evidence(kind: str) -> Callable[[Connection, list[str]], list[Edge]]:
    def down(conn: Connection, refs: list[str]) -> list[Edge]:
        out: list[Edge] = []
        wanted = {key(kind, r) for r in refs}
        for batch in chunks(refs, 50):
            rows = _gate_rows(
                conn, contains_any(gate_results.c.details_json, [json.dumps(r) for r in batch])
            )
            for rid, pos, details in rows:
                g = key("gate_result", f"{rid}#{pos}")
                out += [(e, g, "evidence") for e in gate_evidence(details) if e in wanted]
        return out

    return down


def _up_assessment(
    kind: str, table: sa.Table, ident: Any
) -> Callable[[Connection, list[str]], list[Edge]]:
    rel_model = "evaluated" if kind == "evaluation" else "audited"

    def up(conn: Connection, refs: list[str]) -> list[Edge]:
        out: list[Edge] = []
        for batch in chunks(refs):
            rows = conn.execute(
                sa.select(ident, table.c.version_id, table.c.dataset_version_id).where(
                    ident.in_(batch)
                )
            ).all()
            mnames = model_refs(conn, [r[1] for r in rows])
            dnames = dataset_refs(conn, [r[2] for r in rows])
            for eid, vid, did in rows:
                if vid in mnames:
                    out.append((key("model_version", mnames[vid]), key(kind, eid), rel_model))
                if did in dnames:
                    out.append(
                        (key("dataset_version", dnames[did]), key(kind, eid), "evaluated_on")
                    )
        return out

    return up


def up_stage_transition(conn: Connection, refs: list[str]) -> list[Edge]:
    out: list[Edge] = []
    t = stage_history.c
    for batch in chunks(ints(refs)):
        found = list(rows(conn, sa.select(t.event_id, t.version_id, t.request_id), batch))
        names = model_refs(conn, [r[1] for r in found])
        for eid, vid, rid in found:
            if vid in names:
                out.append(
                    (key("model_version", names[vid]), key("stage_transition", eid), "stage")
                )
            if rid:
                out.append((key("promotion_request", rid), key("stage_transition", eid), "decided"))
    return out


def up_endpoint(conn: Connection, refs: list[str]) -> list[Edge]:
    out: list[Edge] = [
        (key("model_version", mref), key("endpoint", e), "deployed")
        for _, mref, e in _deployed(conn, None, refs)
    ]
    query = sa.select(promotion_requests.c.request_id, promotion_requests.c.endpoint)
    column = promotion_requests.c.endpoint
    out += pairs(conn, query, refs, "promotion_request", "endpoint", "rolled_out", column=column)
    return out + links(conn, "endpoint", refs, "output")


_ENDPOINT_EVENTS = sa.select(endpoints.c.name, deployment_events.c.event_id).join(
    endpoints, endpoints.c.endpoint_id == deployment_events.c.endpoint_id
)


def down_endpoint(conn: Connection, refs: list[str]) -> list[Edge]:
    out: list[Edge] = []
    for batch in chunks(refs):
        query = _ENDPOINT_EVENTS.order_by(deployment_events.c.event_id)
        out += pairs(conn, query, batch, "endpoint", "deployment_event", "event")
        query = sa.select(monitors.c.endpoint, monitors.c.name)
        out += pairs(conn, query, batch, "endpoint", "monitor", "monitored")
    return out + links(conn, "endpoint", refs, "input")


def up_deployment_event(conn: Connection, refs: list[str]) -> list[Edge]:
    column = deployment_events.c.event_id
    return pairs(
        conn, _ENDPOINT_EVENTS, ints(refs), "endpoint", "deployment_event", "event", column=column
    )


def up_monitor(conn: Connection, refs: list[str]) -> list[Edge]:
    out: list[Edge] = []
    query = sa.select(monitors.c.name, monitors.c.endpoint, monitors.c.model, monitors.c.version)
    for name, endpoint, model, version in rows(conn, query, refs):
        if endpoint:
            out.append((key("endpoint", endpoint), key("monitor", name), "monitored"))
        if model and version is not None:
            out.append(
                (key("model_version", f"{model}/{version}"), key("monitor", name), "monitored")
            )
    return out


_MONITOR_ALERTS = sa.select(monitors.c.name, alerts.c.alert_id).join(
    monitors, monitors.c.monitor_id == alerts.c.monitor_id
)


def down_monitor(conn: Connection, refs: list[str]) -> list[Edge]:
    query = _MONITOR_ALERTS.order_by(alerts.c.alert_id)
    out = pairs(conn, query, refs, "monitor", "alert", "raised", column=monitors.c.name)
    wanted = set(refs)
    query = sa.select(pipeline_triggers.c.name, pipeline_triggers.c.spec_json)
    for where in mentions(refs, pipeline_triggers.c.spec_json, json.dumps):
        for name, spec in conn.execute(query.where(where)):
            mon = loads(spec, {}).get("monitor") if isinstance(loads(spec, {}), dict) else None
            if mon in wanted:
                out.append((key("monitor", mon), key("trigger", name), "watched_by"))
    return out


def up_alert(conn: Connection, refs: list[str]) -> list[Edge]:
    column = alerts.c.alert_id
    return pairs(conn, _MONITOR_ALERTS, ints(refs), "monitor", "alert", "raised", column=column)


def down_alert(conn: Connection, refs: list[str]) -> list[Edge]:
    causes = {f"alert:{r}": r for r in refs}
    query = sa.select(trigger_firings.c.cause, trigger_firings.c.firing_id)
    return pairs(conn, query, causes, "alert", "trigger_firing", "caused", causes)


def up_trigger(conn: Connection, refs: list[str]) -> list[Edge]:
    out: list[Edge] = []
    query = sa.select(pipeline_triggers.c.name, pipeline_triggers.c.spec_json)
    for name, spec in rows(conn, query, refs):
        doc = loads(spec, {})
        if isinstance(doc, dict) and isinstance(doc.get("monitor"), str):
            out.append((key("monitor", doc["monitor"]), key("trigger", name), "watched_by"))
    return out


_FIRINGS = (
    sa.select(
        trigger_firings.c.firing_id,
        pipeline_triggers.c.name,
        trigger_firings.c.cause,
        trigger_firings.c.pipeline_run_id,
    )
    .join(pipeline_triggers, pipeline_triggers.c.trigger_id == trigger_firings.c.trigger_id)
    .order_by(trigger_firings.c.fired_at)
)


def _firing_edges(fid: str, trigger: str, cause: str, run_id: str) -> list[Edge]:
    f = key("trigger_firing", fid)
    out = [(key("trigger", trigger), f, "fired"), (f, key("pipeline_run", run_id), "launched")]
    if cause.startswith("alert:"):
        out.append((key("alert", cause.removeprefix("alert:")), f, "caused"))
    return out


def _firings(conn: Connection, column: Any, refs: list[str], end: int, prefix: str) -> list[Edge]:
    """The edges of the trigger firings whose ``column`` is in ``refs`` with a key that
    starts with ``prefix`` at ``end`` (0: source, 1: target)."""
    found = rows(conn, _FIRINGS, refs, column)
    return [e for row in found for e in _firing_edges(*row) if e[end].startswith(prefix)]


def down_trigger(conn: Connection, refs: list[str]) -> list[Edge]:
    return _firings(conn, pipeline_triggers.c.name, refs, 0, "trigger:")


def _firing_side(source: bool) -> Callable[[Connection, list[str]], list[Edge]]:
    def read(conn: Connection, refs: list[str]) -> list[Edge]:
        edges = _firings(conn, trigger_firings.c.firing_id, refs, 0, "")
        return [e for e in edges if e[0].startswith("trigger_firing:") == source]

    return read


def up_pipeline_run(conn: Connection, refs: list[str]) -> list[Edge]:
    out: list[Edge] = []
    for batch in chunks(refs):
        out += _firings(conn, trigger_firings.c.pipeline_run_id, batch, 1, "pipeline_run:")
        query = sa.select(pipeline_runs.c.run_id, pipeline_runs.c.code_version_json)
        for run_id, cv in rows(conn, query, batch):
            out += pipeline_code_edges(run_id, cv)
    return out + links(conn, "pipeline_run", refs, "output")


def down_pipeline_run(conn: Connection, refs: list[str]) -> list[Edge]:
    s = pipeline_steps.c
    query = sa.select(s.run_id, s.step).order_by(s.run_id, s.position)
    out = [
        (key("pipeline_run", run_id), key("pipeline_step", f"{run_id}/{step}"), "step")
        for run_id, step in rows(conn, query, refs)
    ]
    return out + links(conn, "pipeline_run", refs, "input")


def _by_run(refs: list[str]) -> dict[str, set[str]]:
    by_run: dict[str, set[str]] = defaultdict(set)
    for ref in refs:
        run_id, _, step = ref.partition("/")
        by_run[run_id].add(step)
    return by_run


def _step_rows(conn: Connection, refs: list[str]) -> list[Any]:
    by_run = _by_run(refs)
    s = pipeline_steps.c
    query = sa.select(s.run_id, s.step, s.upstream_json)
    return [(r[0], r[1], r[2], r[1] in by_run[r[0]]) for r in rows(conn, query, by_run)]


def _step_links(conn: Connection, refs: list[str]) -> list[Edge]:
    by_run = _by_run(refs)
    query = LINKS.order_by(pipeline_links.c.link_id)
    found = rows(conn, query, by_run, pipeline_links.c.run_id)
    return link_edges(r for r in found if r[1] in by_run[r[0]])


def up_pipeline_step(conn: Connection, refs: list[str]) -> list[Edge]:
    out: list[Edge] = []
    for run_id, step, upstream, wanted in _step_rows(conn, refs):
        if wanted:
            s = key("pipeline_step", f"{run_id}/{step}")
            out.append((key("pipeline_run", run_id), s, "step"))
            out += [
                (key("pipeline_step", f"{run_id}/{u}"), s, "feeds")
                for u in loads(upstream, [])
                if isinstance(u, str)
            ]
    return out + [e for e in _step_links(conn, refs) if e[2] == "input"]


def down_pipeline_step(conn: Connection, refs: list[str]) -> list[Edge]:
    out: list[Edge] = []
    wanted = {key("pipeline_step", r) for r in refs}
    for run_id, step, upstream, _ in _step_rows(conn, refs):
        s = key("pipeline_step", f"{run_id}/{step}")
        out += [
            (key("pipeline_step", f"{run_id}/{u}"), s, "feeds")
            for u in loads(upstream, [])
            if isinstance(u, str) and key("pipeline_step", f"{run_id}/{u}") in wanted
        ]
    return out + [e for e in _step_links(conn, refs) if e[2] == "output"]


def _none(conn: Connection, refs: list[str]) -> list[Edge]:
    return []


Reader = Callable[["Connection", list[str]], list[Edge]]


#: ``kind -> (upstream reader, downstream reader)``.
READERS: dict[str, tuple[Reader, Reader]] = {
    "dataset_version": (up_dataset_version, down_dataset_version),
    "validation": (up_validation, _down_evidence("validation")),
    "feature_view_version": (up_feature_view_version, down_feature_view_version),
    "run": (up_run, down_run),
    "pipeline_run": (up_pipeline_run, down_pipeline_run),
    "pipeline_step": (up_pipeline_step, down_pipeline_step),
    "code_version": (_none, down_code_version),
    "evaluation": (
        _up_assessment("evaluation", evaluations, evaluations.c.eval_id),
        _down_evidence("evaluation"),
    ),
    "fairness_audit": (
        _up_assessment("fairness_audit", fairness_audits, fairness_audits.c.audit_id),
        _down_evidence("fairness_audit"),
    ),
    "promotion_request": (up_promotion_request, down_promotion_request),
    "gate_result": (up_gate_result, _none),
    "stage_transition": (up_stage_transition, _none),
    "model_version": (up_model_version, down_model_version),
    "endpoint": (up_endpoint, down_endpoint),
    "deployment_event": (up_deployment_event, _none),
    "monitor": (up_monitor, down_monitor),
    "alert": (up_alert, down_alert),
    "trigger": (up_trigger, down_trigger),
    "trigger_firing": (_firing_side(False), _firing_side(True)),
}
