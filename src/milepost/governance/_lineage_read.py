"""The lineage graph's edges and nodes, read from the metadata store's tables.

One function per node kind and direction takes a batch of refs of that kind (the BFS
frontier) and returns the edges touching them, so a walk costs a few queries per level,
not per node. Every edge points from what was used to what was made of it. The JSON
columns are parsed the way their writers fill them:

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
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from milepost.stores.schema import (
    alerts,
    dataset_versions,
    datasets,
    deployment_events,
    endpoints,
    evaluations,
    fairness_audits,
    feature_retrievals,
    feature_view_versions,
    feature_views,
    gate_results,
    model_versions,
    monitors,
    pipeline_links,
    pipeline_runs,
    pipeline_steps,
    pipeline_triggers,
    promotion_requests,
    registered_models,
    run_inputs,
    runs,
    stage_history,
    trigger_firings,
    validation_results,
)

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

Edge = tuple[str, str, str]  # (source key, target key, relation)

#: Dataset roles that are evaluation data, not training data (``models_trained_on``).
EVAL_ROLES = frozenset({"eval", "evaluation", "test", "holdout", "validation", "reference"})
#: Relations that carry training data forward (what ``models_trained_on`` walks), besides
#: a dataset role outside :data:`EVAL_ROLES`.
DERIVATION = frozenset({"feature_source", "produced", "child", "input", "feeds", "output"})


def key(kind: str, ref: object) -> str:
    """``KIND:REF``."""
    return f"{kind}:{ref}"


def split_key(k: str) -> tuple[str, str]:
    """``(kind, ref)`` of a key."""
    kind, _, ref = k.partition(":")
    return kind, ref


def _loads(text: str | None, default: Any) -> Any:
    if not text:
        return default
    try:
        return json.loads(text)
    except ValueError:
        return default


def _chunks(values: Iterable[Any], size: int = 500) -> Iterable[list[Any]]:
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
    for batch in _chunks(values):
        yield from conn.execute(query.where(column.in_(batch))).all()


Names = Mapping[Any, str] | Callable[["Connection", list[Any]], Mapping[Any, str]]


def _pairs(
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
    for batch in _chunks(values):
        found = conn.execute(query.where(column.in_(batch))).all()
        refs = names(conn, [r[0] for r in found]) if callable(names) else names
        for a, b, *rest in found:
            if refs is None or a in refs:
                ref = a if refs is None else refs[a]
                out.append((key(source, ref), key(target, b), relation or rest[0]))
    return out


def _mentions(values: Iterable[str], column: Any, text: Callable[[str], str]) -> Iterator[Any]:
    """Where clauses, one per 50 values: ``column``'s JSON text holds ``text(value)``."""
    for batch in _chunks(values, 50):
        yield _contains_any(column, [text(v) for v in batch])


# -- refs <-> database ids ---------------------------------------------------------------

_DATASETS = sa.select(
    dataset_versions.c.version_id, datasets.c.name, dataset_versions.c.version
).join(datasets, datasets.c.dataset_id == dataset_versions.c.dataset_id)
_MODELS = sa.select(
    model_versions.c.version_id, registered_models.c.name, model_versions.c.version
).join(registered_models, registered_models.c.model_id == model_versions.c.model_id)
_VIEWS = sa.select(
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
    return _ids(conn, _DATASETS, refs, "@")


def dataset_refs(conn: Connection, ids: Iterable[int]) -> dict[int, str]:
    """``{version_id: "NAME@N"}``."""
    return _refs(conn, _DATASETS, ids, "@")


def model_ids(conn: Connection, refs: Iterable[str]) -> dict[int, str]:
    """``{version_id: "NAME/N"}`` of the model versions that exist."""
    return _ids(conn, _MODELS, refs, "/")


def model_refs(conn: Connection, ids: Iterable[int]) -> dict[int, str]:
    """``{version_id: "NAME/N"}``."""
    return _refs(conn, _MODELS, ids, "/")


def view_ids(conn: Connection, refs: Iterable[str]) -> dict[int, str]:
    """``{version_id: "VIEW:vN"}`` of the feature view versions that exist."""
    return _ids(conn, _VIEWS, refs, ":v")


def view_of_feature_ref(ref: str) -> str | None:
    """``VIEW:vN`` of a feature ref ``VIEW:vN:FEATURE`` (None when it is not one)."""
    parts = ref.split(":")
    if len(parts) == 3 and parts[1].startswith("v") and parts[1][1:].isdigit():
        return f"{parts[0]}:{parts[1]}"
    return None


# -- edges, per kind and direction -------------------------------------------------------


def _model_dataset_edges(mref: str, datasets_json: str | None) -> list[Edge]:
    out = []
    for d in _loads(datasets_json, []):
        if isinstance(d, dict) and isinstance(d.get("ref"), str):
            out.append(
                (
                    key("dataset_version", d["ref"]),
                    key("model_version", mref),
                    d.get("role") or "trained_on",
                )
            )
    return out


def _feature_views(refs_json: str | None) -> list[str]:
    views = []
    for r in _loads(refs_json, []):
        view = view_of_feature_ref(r) if isinstance(r, str) else None
        if view is not None and view not in views:
            views.append(view)
    return views


def _model_feature_edges(mref: str, refs_json: str | None) -> list[Edge]:
    views = _feature_views(refs_json)
    return [(key("feature_view_version", v), key("model_version", mref), "features") for v in views]


def _retrieval_edges(run_id: str | None, refs_json: str, sources_json: str) -> list[Edge]:
    out: list[Edge] = []
    for s in _loads(sources_json, []):
        if isinstance(s, dict) and isinstance(s.get("dataset"), str):
            ds = key("dataset_version", s["dataset"])
            if isinstance(s.get("view"), str):
                out.append((ds, key("feature_view_version", s["view"]), "source"))
            if run_id:
                out.append((ds, key("run", run_id), "feature_source"))
    if run_id:
        views = _feature_views(refs_json)
        out += [(key("feature_view_version", v), key("run", run_id), "features") for v in views]
    return out


def _model_rows(conn: Connection, where: Any) -> list[Any]:
    return list(
        conn.execute(
            sa.select(
                model_versions.c.version_id,
                registered_models.c.name,
                model_versions.c.version,
                model_versions.c.run_id,
                model_versions.c.datasets_json,
                model_versions.c.feature_refs_json,
                model_versions.c.code_version,
            )
            .join(registered_models, registered_models.c.model_id == model_versions.c.model_id)
            .where(where)
        )
    )


def _retrievals(conn: Connection, where: Any) -> list[Any]:
    """``(run_id, refs_json, sources_json)`` of the feature retrievals ``where`` picks."""
    r = feature_retrievals.c
    return list(conn.execute(sa.select(r.run_id, r.refs_json, r.sources_json).where(where)))


def _contains_any(column: Any, texts: list[str]) -> Any:
    return sa.or_(*(column.contains(t, autoescape=True) for t in texts))


def _link_edges(rows: Iterable[Any]) -> list[Edge]:
    """Edges of ``pipeline_links`` rows ``(run_id, step, kind, ref, role)``."""
    out: list[Edge] = []
    for run_id, step, kind, ref, role in rows:
        s, n = key("pipeline_step", f"{run_id}/{step}"), key(kind, ref)
        out.append((n, s, "input") if role == "input" else (s, n, "output"))
    return out


_LINKS = sa.select(
    pipeline_links.c.run_id,
    pipeline_links.c.step,
    pipeline_links.c.kind,
    pipeline_links.c.ref,
    pipeline_links.c.role,
)


def _links(conn: Connection, kind: str, refs: list[str], role: str) -> list[Edge]:
    query = _LINKS.where(pipeline_links.c.kind == kind, pipeline_links.c.role == role)
    return _link_edges(rows(conn, query, refs, pipeline_links.c.ref))


#: What a dataset version's database id is used by: ``(query, target kind, relation)``,
#: each query selecting ``(version_id, target[, relation])``.
_DATASET_USES = (
    (sa.select(run_inputs.c.version_id, run_inputs.c.run_id, run_inputs.c.role), "run", None),
    (
        sa.select(validation_results.c.version_id, validation_results.c.result_id),
        "validation",
        "validated",
    ),
    (
        sa.select(evaluations.c.dataset_version_id, evaluations.c.eval_id),
        "evaluation",
        "evaluated_on",
    ),
    (
        sa.select(fairness_audits.c.dataset_version_id, fairness_audits.c.audit_id),
        "fairness_audit",
        "evaluated_on",
    ),
)


def down_dataset_version(conn: Connection, refs: list[str]) -> list[Edge]:
    ids = dataset_ids(conn, refs)
    out: list[Edge] = []
    for batch in _chunks(ids):
        for query, target, rel in _DATASET_USES:
            out += _pairs(conn, query, batch, "dataset_version", target, rel, names=ids)
    names = list(ids.values())
    wanted = {key("dataset_version", r) for r in names}
    for batch in _chunks(names, 50):
        texts = [f'"ref": {json.dumps(r)}' for r in batch]
        for row in _model_rows(conn, _contains_any(model_versions.c.datasets_json, texts)):
            out += [e for e in _model_dataset_edges(f"{row[1]}/{row[2]}", row[4]) if e[0] in wanted]
        texts = [f'"dataset": {json.dumps(r)}' for r in batch]
        for row in _retrievals(conn, _contains_any(feature_retrievals.c.sources_json, texts)):
            out += [
                e
                for e in _retrieval_edges(*row)
                if e[0] in wanted and not e[0].startswith("feature_view_version")
            ]
    out += _links(conn, "dataset_version", names, "input")
    return out


def up_dataset_version(conn: Connection, refs: list[str]) -> list[Edge]:
    return _links(conn, "dataset_version", refs, "output")


def down_feature_view_version(conn: Connection, refs: list[str]) -> list[Edge]:
    out: list[Edge] = []
    wanted = {key("feature_view_version", r) for r in refs}
    for batch in _chunks(refs, 50):
        texts = [json.dumps(r + ":")[:-1] for r in batch]  # '"VIEW:vN:' prefix of a feature
        for row in _model_rows(conn, _contains_any(model_versions.c.feature_refs_json, texts)):
            out += [e for e in _model_feature_edges(f"{row[1]}/{row[2]}", row[5]) if e[0] in wanted]
        for row in _retrievals(conn, _contains_any(feature_retrievals.c.refs_json, texts)):
            out += [e for e in _retrieval_edges(*row) if e[0] in wanted]
    return out


def up_feature_view_version(conn: Connection, refs: list[str]) -> list[Edge]:
    wanted = {key("feature_view_version", r) for r in refs}
    return [
        e
        for where in _mentions(refs, feature_retrievals.c.sources_json, _view_text)
        for row in _retrievals(conn, where)
        for e in _retrieval_edges(*row)
        if e[1] in wanted
    ]


def _view_text(ref: str) -> str:
    return f'"view": {json.dumps(ref)}'


def down_run(conn: Connection, refs: list[str]) -> list[Edge]:
    out: list[Edge] = []
    for batch in _chunks(refs):
        out += _pairs(
            conn, sa.select(runs.c.parent_run_id, runs.c.run_id), batch, "run", "run", "child"
        )
        for row in _model_rows(conn, model_versions.c.run_id.in_(batch)):
            out.append((key("run", row[3]), key("model_version", f"{row[1]}/{row[2]}"), "produced"))
    out += _links(conn, "run", refs, "input")
    return out


def up_run(conn: Connection, refs: list[str]) -> list[Edge]:
    out: list[Edge] = []
    for batch in _chunks(refs):
        query = sa.select(runs.c.run_id, runs.c.parent_run_id, runs.c.git_commit)
        for run_id, parent, commit in rows(conn, query, batch):
            if parent:
                out.append((key("run", parent), key("run", run_id), "child"))
            if commit:
                out.append((key("code_version", commit), key("run", run_id), "code"))
        query = sa.select(run_inputs.c.version_id, run_inputs.c.run_id, run_inputs.c.role)
        out += _pairs(
            conn,
            query,
            batch,
            "dataset_version",
            "run",
            names=dataset_refs,
            column=run_inputs.c.run_id,
        )
        for row in _retrievals(conn, feature_retrievals.c.run_id.in_(batch)):
            out += [e for e in _retrieval_edges(*row) if e[1].startswith("run:")]
    out += _links(conn, "run", refs, "output")
    return out


def down_code_version(conn: Connection, refs: list[str]) -> list[Edge]:
    out: list[Edge] = []
    for batch in _chunks(refs):
        query = sa.select(runs.c.git_commit, runs.c.run_id)
        out += _pairs(conn, query, batch, "code_version", "run", "code")
        for row in _model_rows(conn, model_versions.c.code_version.in_(batch)):
            out.append(
                (key("code_version", row[6]), key("model_version", f"{row[1]}/{row[2]}"), "code")
            )
        texts = [json.dumps(r) for r in batch]
        for run_id, cv in conn.execute(
            sa.select(pipeline_runs.c.run_id, pipeline_runs.c.code_version_json).where(
                _contains_any(pipeline_runs.c.code_version_json, texts)
            )
        ):
            out += [e for e in _pipeline_code_edges(run_id, cv) if split_key(e[0])[1] in batch]
    return out


def _pipeline_code(cv_json: str | None) -> str | None:
    cv = _loads(cv_json, {})
    if not isinstance(cv, dict):
        return None
    ref = cv.get("commit") or cv.get("source_sha256")
    return ref if isinstance(ref, str) else None


def _pipeline_code_edges(run_id: str, cv_json: str | None) -> list[Edge]:
    ref = _pipeline_code(cv_json)
    return [(key("code_version", ref), key("pipeline_run", run_id), "code")] if ref else []


def up_model_version(conn: Connection, refs: list[str]) -> list[Edge]:
    ids = model_ids(conn, refs)
    out: list[Edge] = []
    for batch in _chunks(ids):
        for row in _model_rows(conn, model_versions.c.version_id.in_(batch)):
            mref = f"{row[1]}/{row[2]}"
            if row[3]:
                out.append((key("run", row[3]), key("model_version", mref), "produced"))
            out += _model_dataset_edges(mref, row[4])
            out += _model_feature_edges(mref, row[5])
            if row[6]:
                out.append((key("code_version", row[6]), key("model_version", mref), "code"))
    out += _links(conn, "model_version", list(ids.values()), "output")
    return out


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
    for batch in _chunks(ids):
        for query, target, rel in _MODEL_USES:
            out += _pairs(conn, query, batch, "model_version", target, rel, names=ids)
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
    out += _links(conn, "model_version", list(ids.values()), "input")
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
                _contains_any(endpoints.c.spec_json, [json.dumps(n) for n in names]),
                endpoints.c.endpoint_id.in_(
                    sa.select(deployment_events.c.endpoint_id).where(
                        _contains_any(
                            deployment_events.c.details_json, [json.dumps(n) for n in names]
                        )
                    )
                ),
            )
        )
    seen: dict[tuple[str, str], None] = {}
    for eid, ename, spec in conn.execute(query).all():
        found = _variants(_loads(spec, {}))
        for (details,) in conn.execute(
            sa.select(deployment_events.c.details_json)
            .where(deployment_events.c.endpoint_id == eid)
            .order_by(deployment_events.c.event_id)
        ):
            found += _variants(_loads(details, {}))
        for mref in found:
            seen[(mref, ename)] = None
    return [(m.rpartition("/")[0], m, e) for m, e in seen]


def down_promotion_request(conn: Connection, refs: list[str]) -> list[Edge]:
    out: list[Edge] = []
    for batch in _chunks(refs):
        query = sa.select(gate_results.c.request_id, gate_results.c.position)
        for rid, pos in rows(conn, query, batch):
            out.append((key("promotion_request", rid), key("gate_result", f"{rid}#{pos}"), "gate"))
        query = sa.select(stage_history.c.request_id, stage_history.c.event_id)
        out += _pairs(conn, query, batch, "promotion_request", "stage_transition", "decided")
        query = sa.select(promotion_requests.c.request_id, promotion_requests.c.endpoint).where(
            promotion_requests.c.endpoint.is_not(None)
        )
        out += _pairs(conn, query, batch, "promotion_request", "endpoint", "rolled_out")
    out += _links(conn, "promotion_request", refs, "input")
    return out


def up_promotion_request(conn: Connection, refs: list[str]) -> list[Edge]:
    query = sa.select(promotion_requests.c.version_id, promotion_requests.c.request_id)
    column = promotion_requests.c.request_id
    out = _pairs(
        conn, query, refs, "model_version", "promotion_request", "requested", model_refs, column
    )
    return out + _links(conn, "promotion_request", refs, "output")


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

    visit(_loads(details_json, {}), 0)
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
    for batch in _chunks(by_request):
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
        for batch in _chunks(refs, 50):
            rows = _gate_rows(
                conn, _contains_any(gate_results.c.details_json, [json.dumps(r) for r in batch])
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
        for batch in _chunks(refs):
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


def up_validation(conn: Connection, refs: list[str]) -> list[Edge]:
    query = sa.select(validation_results.c.version_id, validation_results.c.result_id)
    column = validation_results.c.result_id
    return _pairs(
        conn, query, refs, "dataset_version", "validation", "validated", dataset_refs, column
    )


def up_stage_transition(conn: Connection, refs: list[str]) -> list[Edge]:
    out: list[Edge] = []
    t = stage_history.c
    for batch in _chunks(ints(refs)):
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
    out += _pairs(conn, query, refs, "promotion_request", "endpoint", "rolled_out", column=column)
    return out + _links(conn, "endpoint", refs, "output")


_ENDPOINT_EVENTS = sa.select(endpoints.c.name, deployment_events.c.event_id).join(
    endpoints, endpoints.c.endpoint_id == deployment_events.c.endpoint_id
)


def down_endpoint(conn: Connection, refs: list[str]) -> list[Edge]:
    out: list[Edge] = []
    for batch in _chunks(refs):
        query = _ENDPOINT_EVENTS.order_by(deployment_events.c.event_id)
        out += _pairs(conn, query, batch, "endpoint", "deployment_event", "event")
        query = sa.select(monitors.c.endpoint, monitors.c.name)
        out += _pairs(conn, query, batch, "endpoint", "monitor", "monitored")
    return out + _links(conn, "endpoint", refs, "input")


def up_deployment_event(conn: Connection, refs: list[str]) -> list[Edge]:
    column = deployment_events.c.event_id
    return _pairs(
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
    out = _pairs(conn, query, refs, "monitor", "alert", "raised", column=monitors.c.name)
    wanted = set(refs)
    query = sa.select(pipeline_triggers.c.name, pipeline_triggers.c.spec_json)
    for where in _mentions(refs, pipeline_triggers.c.spec_json, json.dumps):
        for name, spec in conn.execute(query.where(where)):
            mon = _loads(spec, {}).get("monitor") if isinstance(_loads(spec, {}), dict) else None
            if mon in wanted:
                out.append((key("monitor", mon), key("trigger", name), "watched_by"))
    return out


def up_alert(conn: Connection, refs: list[str]) -> list[Edge]:
    column = alerts.c.alert_id
    return _pairs(conn, _MONITOR_ALERTS, ints(refs), "monitor", "alert", "raised", column=column)


def down_alert(conn: Connection, refs: list[str]) -> list[Edge]:
    causes = {f"alert:{r}": r for r in refs}
    query = sa.select(trigger_firings.c.cause, trigger_firings.c.firing_id)
    return _pairs(conn, query, causes, "alert", "trigger_firing", "caused", causes)


def up_trigger(conn: Connection, refs: list[str]) -> list[Edge]:
    out: list[Edge] = []
    query = sa.select(pipeline_triggers.c.name, pipeline_triggers.c.spec_json)
    for name, spec in rows(conn, query, refs):
        doc = _loads(spec, {})
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
    for batch in _chunks(refs):
        out += _firings(conn, trigger_firings.c.pipeline_run_id, batch, 1, "pipeline_run:")
        query = sa.select(pipeline_runs.c.run_id, pipeline_runs.c.code_version_json)
        for run_id, cv in rows(conn, query, batch):
            out += _pipeline_code_edges(run_id, cv)
    return out + _links(conn, "pipeline_run", refs, "output")


def down_pipeline_run(conn: Connection, refs: list[str]) -> list[Edge]:
    s = pipeline_steps.c
    query = sa.select(s.run_id, s.step).order_by(s.run_id, s.position)
    out = [
        (key("pipeline_run", run_id), key("pipeline_step", f"{run_id}/{step}"), "step")
        for run_id, step in rows(conn, query, refs)
    ]
    return out + _links(conn, "pipeline_run", refs, "input")


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
    query = _LINKS.order_by(pipeline_links.c.link_id)
    found = rows(conn, query, by_run, pipeline_links.c.run_id)
    return _link_edges(r for r in found if r[1] in by_run[r[0]])


def up_pipeline_step(conn: Connection, refs: list[str]) -> list[Edge]:
    out: list[Edge] = []
    for run_id, step, upstream, wanted in _step_rows(conn, refs):
        if wanted:
            s = key("pipeline_step", f"{run_id}/{step}")
            out.append((key("pipeline_run", run_id), s, "step"))
            out += [
                (key("pipeline_step", f"{run_id}/{u}"), s, "feeds")
                for u in _loads(upstream, [])
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
            for u in _loads(upstream, [])
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
