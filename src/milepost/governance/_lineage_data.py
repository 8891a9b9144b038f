"""Lineage edges of data and training: dataset versions, validations, feature view
versions, runs, code versions and a model version's inputs (see ``_lineage_read`` for
how the JSON columns are parsed).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from milepost.governance._lineage_sql import (
    Edge,
    chunks,
    contains_any,
    dataset_ids,
    dataset_refs,
    key,
    links,
    loads,
    mentions,
    model_ids,
    pairs,
    rows,
    split_key,
    view_of_feature_ref,
)
from milepost.stores.schema import (
    evaluations,
    fairness_audits,
    feature_retrievals,
    model_versions,
    pipeline_runs,
    registered_models,
    run_inputs,
    runs,
    validation_results,
)

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection


def _model_dataset_edges(mref: str, datasets_json: str | None) -> list[Edge]:
    out = []
    for d in loads(datasets_json, []):
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
    for r in loads(refs_json, []):
        view = view_of_feature_ref(r) if isinstance(r, str) else None
        if view is not None and view not in views:
            views.append(view)
    return views


def _model_feature_edges(mref: str, refs_json: str | None) -> list[Edge]:
    views = _feature_views(refs_json)
    return [(key("feature_view_version", v), key("model_version", mref), "features") for v in views]


def _retrieval_edges(run_id: str | None, refs_json: str, sources_json: str) -> list[Edge]:
    out: list[Edge] = []
    for s in loads(sources_json, []):
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
    for batch in chunks(ids):
        for query, target, rel in _DATASET_USES:
            out += pairs(conn, query, batch, "dataset_version", target, rel, names=ids)
    names = list(ids.values())
    wanted = {key("dataset_version", r) for r in names}
    for batch in chunks(names, 50):
        texts = [f'"ref": {json.dumps(r)}' for r in batch]
        for row in _model_rows(conn, contains_any(model_versions.c.datasets_json, texts)):
            out += [e for e in _model_dataset_edges(f"{row[1]}/{row[2]}", row[4]) if e[0] in wanted]
        texts = [f'"dataset": {json.dumps(r)}' for r in batch]
        for row in _retrievals(conn, contains_any(feature_retrievals.c.sources_json, texts)):
            out += [
                e
                for e in _retrieval_edges(*row)
                if e[0] in wanted and not e[0].startswith("feature_view_version")
            ]
    out += links(conn, "dataset_version", names, "input")
    return out


def up_dataset_version(conn: Connection, refs: list[str]) -> list[Edge]:
    return links(conn, "dataset_version", refs, "output")


def down_feature_view_version(conn: Connection, refs: list[str]) -> list[Edge]:
    out: list[Edge] = []
    wanted = {key("feature_view_version", r) for r in refs}
    for batch in chunks(refs, 50):
        texts = [json.dumps(r + ":")[:-1] for r in batch]  # '"VIEW:vN:' prefix of a feature
        for row in _model_rows(conn, contains_any(model_versions.c.feature_refs_json, texts)):
            out += [e for e in _model_feature_edges(f"{row[1]}/{row[2]}", row[5]) if e[0] in wanted]
        for row in _retrievals(conn, contains_any(feature_retrievals.c.refs_json, texts)):
            out += [e for e in _retrieval_edges(*row) if e[0] in wanted]
    return out


def up_feature_view_version(conn: Connection, refs: list[str]) -> list[Edge]:
    wanted = {key("feature_view_version", r) for r in refs}
    return [
        e
        for where in mentions(refs, feature_retrievals.c.sources_json, _view_text)
        for row in _retrievals(conn, where)
        for e in _retrieval_edges(*row)
        if e[1] in wanted
    ]


def _view_text(ref: str) -> str:
    return f'"view": {json.dumps(ref)}'


def down_run(conn: Connection, refs: list[str]) -> list[Edge]:
    out: list[Edge] = []
    for batch in chunks(refs):
        out += pairs(
            conn, sa.select(runs.c.parent_run_id, runs.c.run_id), batch, "run", "run", "child"
        )
        for row in _model_rows(conn, model_versions.c.run_id.in_(batch)):
            out.append((key("run", row[3]), key("model_version", f"{row[1]}/{row[2]}"), "produced"))
    out += links(conn, "run", refs, "input")
    return out


def up_run(conn: Connection, refs: list[str]) -> list[Edge]:
    out: list[Edge] = []
    for batch in chunks(refs):
        query = sa.select(runs.c.run_id, runs.c.parent_run_id, runs.c.git_commit)
        for run_id, parent, commit in rows(conn, query, batch):
            if parent:
                out.append((key("run", parent), key("run", run_id), "child"))
            if commit:
                out.append((key("code_version", commit), key("run", run_id), "code"))
        query = sa.select(run_inputs.c.version_id, run_inputs.c.run_id, run_inputs.c.role)
        out += pairs(
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
    out += links(conn, "run", refs, "output")
    return out


def down_code_version(conn: Connection, refs: list[str]) -> list[Edge]:
    out: list[Edge] = []
    for batch in chunks(refs):
        query = sa.select(runs.c.git_commit, runs.c.run_id)
        out += pairs(conn, query, batch, "code_version", "run", "code")
        for row in _model_rows(conn, model_versions.c.code_version.in_(batch)):
            out.append(
                (key("code_version", row[6]), key("model_version", f"{row[1]}/{row[2]}"), "code")
            )
        texts = [json.dumps(r) for r in batch]
        for run_id, cv in conn.execute(
            sa.select(pipeline_runs.c.run_id, pipeline_runs.c.code_version_json).where(
                contains_any(pipeline_runs.c.code_version_json, texts)
            )
        ):
            out += [e for e in pipeline_code_edges(run_id, cv) if split_key(e[0])[1] in batch]
    return out


def _pipeline_code(cv_json: str | None) -> str | None:
    cv = loads(cv_json, {})
    if not isinstance(cv, dict):
        return None
    ref = cv.get("commit") or cv.get("source_sha256")
    return ref if isinstance(ref, str) else None


def pipeline_code_edges(run_id: str, cv_json: str | None) -> list[Edge]:
    ref = _pipeline_code(cv_json)
    return [(key("code_version", ref), key("pipeline_run", run_id), "code")] if ref else []


def up_model_version(conn: Connection, refs: list[str]) -> list[Edge]:
    ids = model_ids(conn, refs)
    out: list[Edge] = []
    for batch in chunks(ids):
        for row in _model_rows(conn, model_versions.c.version_id.in_(batch)):
            mref = f"{row[1]}/{row[2]}"
            if row[3]:
                out.append((key("run", row[3]), key("model_version", mref), "produced"))
            out += _model_dataset_edges(mref, row[4])
            out += _model_feature_edges(mref, row[5])
            if row[6]:
                out.append((key("code_version", row[6]), key("model_version", mref), "code"))
    out += links(conn, "model_version", list(ids.values()), "output")
    return out


def up_validation(conn: Connection, refs: list[str]) -> list[Edge]:
    query = sa.select(validation_results.c.version_id, validation_results.c.result_id)
    column = validation_results.c.result_id
    return pairs(
        conn, query, refs, "dataset_version", "validation", "validated", dataset_refs, column
    )
