"""A model card as a CycloneDX 1.6 ML-BOM, validated against the CycloneDX schema.

The BOM is built with cyclonedx-python-lib: its subject (``metadata.component``) is the
model version, a ``machine-learning-model`` component with the SHA-256 of its main
file, its files as nested ``file`` components, its details as ``milepost:`` properties
and its license; each dataset version it was trained or evaluated on is a ``data``
component (content hash, rows, columns, role); the model depends on its training data.

The library has no model-card object (``Component.model_card`` is commented out in it),
so the CycloneDX 1.6 ``modelCard`` is added to the serialized JSON: ``modelParameters``
(approach, task, dataset refs, inputs and outputs), ``quantitativeAnalysis``
(``performanceMetrics`` overall and per slice), ``considerations`` (use cases,
technical limitations, ethical considerations, fairness assessments) and properties
for the sections with no slot of their own. Each dataset component gets its ``data``
(a ``componentData`` of type ``dataset``) the same way.

:func:`cyclonedx_json` validates the document with the library's
``JsonStrictValidator(SchemaVersion.V1_6)`` and refuses to return an invalid one.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from milepost.errors import MilepostError

if TYPE_CHECKING:
    from milepost.cards.models import CardDataset, ModelCard

__all__ = ["cyclonedx_bom", "cyclonedx_json", "validate_bom"]

_SHA256 = re.compile(r"[0-9a-f]{64}")
_MAIN_FILES = ("model.skops", "model.onnx", "model.pkl", "model.joblib")


def _model_ref(card: ModelCard) -> str:
    return f"model:{card.name}/{card.version}"


def _data_ref(ref: str) -> str:
    return f"data:{ref}"


def _iso(ms: int | None) -> str | None:
    if not ms:
        return None
    return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat()


def _value(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def _datasets(card: ModelCard) -> list[CardDataset]:
    seen: set[str] = set()
    out = []
    for d in [*card.training_data, *card.evaluation_data]:
        if d.ref not in seen:
            seen.add(d.ref)
            out.append(d)
    return out


def _build(card: ModelCard) -> Any:
    """The BOM as cyclonedx-python-lib objects (no model card yet)."""
    from cyclonedx.model import HashAlgorithm, HashType, Property
    from cyclonedx.model.bom import Bom
    from cyclonedx.model.component import Component, ComponentType
    from cyclonedx.model.contact import OrganizationalContact
    from cyclonedx.model.license import DisjunctiveLicense

    def sha256(digest: str | None) -> list[HashType]:
        if digest and _SHA256.fullmatch(digest):
            return [HashType(alg=HashAlgorithm.SHA_256, content=digest)]
        return []

    main = next((f for f in _MAIN_FILES if f in card.files), next(iter(card.files), None))
    properties = {
        "milepost:uri": card.uri,
        "milepost:stage": card.stage,
        "milepost:flavor": card.flavor,
        "milepost:created": _iso(card.created_at),
        "milepost:run_id": card.run_id,
        "milepost:code_version": card.code_version,
        "milepost:aliases": ", ".join(card.aliases) or None,
        "milepost:env_hash": (card.environment or {}).get("env_hash"),
        "milepost:python": (card.environment or {}).get("python_version"),
        "milepost:main_file": main,
        "milepost:feature_refs": ", ".join(card.feature_refs) or None,
    }
    for request in card.promotions:
        for i, gate in enumerate(request.gates):
            properties[f"milepost:gate:{request.request_id[:12]}:{i}"] = (
                f"{request.target_stage} {gate.name} ({gate.kind}) {gate.status}: {gate.message}"
            )
    for event in card.stage_history:
        properties[f"milepost:stage_change:{event.at}"] = (
            f"{event.from_stage} -> {event.to_stage} by {event.actor}"
        )
    for dep in card.deployments:
        properties[f"milepost:endpoint:{dep.endpoint}"] = (
            f"{'/'.join(dep.roles) or '-'}, {'serving' if dep.serving else 'retired'}"
        )
    license_text = card.text("license")
    model = Component(
        name=card.name,
        version=str(card.version),
        type=ComponentType.MACHINE_LEARNING_MODEL,
        bom_ref=_model_ref(card),
        description=card.description or None,
        hashes=sha256(card.files.get(main) if main else None),
        authors=[OrganizationalContact(name=card.author)] if card.author else None,
        licenses=[DisjunctiveLicense(name=license_text)] if license_text else None,
        properties=[Property(name=k, value=v) for k, v in properties.items() if v],
        components=[
            Component(
                name=fname,
                type=ComponentType.FILE,
                bom_ref=f"{_model_ref(card)}/{fname}",
                hashes=sha256(digest),
            )
            for fname, digest in card.files.items()
        ],
    )
    bom = Bom()
    bom.metadata.component = model
    training = {d.ref for d in card.training_data}
    depends = []
    for d in _datasets(card):
        name, _, version = d.ref.rpartition("@")
        data = Component(
            name=name or d.ref,
            version=version or None,
            type=ComponentType.DATA,
            bom_ref=_data_ref(d.ref),
            description=d.description or None,
            hashes=sha256(d.content_hash),
            properties=[
                Property(name=k, value=v)
                for k, v in {
                    "milepost:role": d.role,
                    "milepost:rows": None if d.num_rows is None else str(d.num_rows),
                    "milepost:columns": str(len(d.columns)) if d.found else None,
                    "milepost:found": "false" if not d.found else None,
                }.items()
                if v
            ],
        )
        bom.components.add(data)
        if d.ref in training:
            depends.append(data)
    bom.register_dependency(model, depends)
    return bom


def _component_data(d: CardDataset) -> dict[str, Any]:
    props = [{"name": "role", "value": d.role}]
    if d.num_rows is not None:
        props.append({"name": "rows", "value": str(d.num_rows)})
    for c in d.columns:
        stats = ", ".join(
            f"{k} {_value(c[k])}" for k in ("nulls", "min", "max", "mean") if c.get(k) is not None
        )
        props.append({"name": f"column:{c['name']}", "value": f"{c['type']}; {stats}".rstrip("; ")})
    out: dict[str, Any] = {
        "type": "dataset",
        "name": d.ref,
        "contents": {"properties": props},
    }
    if d.description:
        out["description"] = d.description
    return out


def _performance(card: ModelCard) -> list[dict[str, Any]]:
    """Overall metrics of the newest evaluation per dataset, and each slice column from
    the newest evaluation that has it (gates store evaluations without slices)."""
    metrics: list[dict[str, Any]] = []
    by_dataset: dict[str | None, list[Any]] = {}
    for e in card.evaluations:  # newest first
        by_dataset.setdefault(e.dataset_ref, []).append(e)
    several = len(by_dataset) > 1
    for ref, results in by_dataset.items():
        prefix = f"dataset={ref or 'frame'}" if several else ""
        for k, v in results[0].metrics.items():
            if v is not None:
                entry = {"type": k, "value": _value(v)}
                if prefix:
                    entry["slice"] = prefix
                metrics.append(entry)
        columns: dict[str, dict[str, dict[str, Any]]] = {}
        for e in results:
            for column, values in (e.slices or {}).items():
                columns.setdefault(column, values)
        for column, values in columns.items():
            for group, m in values.items():
                where = f"{column}={group}"
                for k, v in m.items():
                    if v is None or k == "n":
                        continue
                    metrics.append(
                        {
                            "type": k,
                            "value": _value(v),
                            "slice": f"{prefix}, {where}" if prefix else where,
                        }
                    )
    if not metrics:  # no evaluation stored: the metrics logged with the run
        metrics = [{"type": k, "value": _value(v)} for k, v in sorted(card.metrics.items())]
    return metrics


def _fairness(card: ModelCard) -> list[dict[str, Any]]:
    out = []
    for audit in card.fairness:
        for feature, summary in audit.summary.items():
            groups = [g for g in audit.groups if g.get("feature") == feature]
            rated = [g for g in groups if g.get("selection_rate") is not None]
            low = min(rated, key=lambda g: g["selection_rate"]) if rated else None
            measures = "; ".join(
                f"{k.replace('_', ' ')} {_value(v)}" for k, v in summary.items() if v is not None
            )
            entry = {
                "groupAtRisk": f"{feature}={low['group']}" if low else feature,
                "harms": f"audit {audit.audit_id[:12]} on {audit.dataset_ref or 'a frame'}: "
                + (measures or "no measure could be computed"),
            }
            unreliable = [u for u in audit.unreliable_groups if u.startswith(f"{feature}=")]
            if unreliable:
                entry["harms"] += (
                    f"; statistically unreliable (< {audit.min_group_size} rows): "
                    + ", ".join(unreliable)
                )
            out.append(entry)
    for request, gate in card.failed_gates:
        if gate.kind == "fairness":
            out.append(
                {
                    "groupAtRisk": ", ".join(gate.details.get("summary") or {})
                    or "sensitive features",
                    "harms": gate.message,
                    "mitigationStrategy": f"promotion {request.request_id[:12]} to "
                    f"{request.target_stage} was refused by gate {gate.name!r}",
                }
            )
    return out


def _considerations(card: ModelCard) -> dict[str, Any]:
    considerations: dict[str, Any] = {}
    if card.text("intended_use"):
        considerations["useCases"] = [card.text("intended_use")]
    limits = [t for t in (card.text("limitations"), card.text("caveats")) if t]
    if limits:
        considerations["technicalLimitations"] = limits
    if card.text("ethical_considerations"):
        considerations["ethicalConsiderations"] = [{"name": card.text("ethical_considerations")}]
    fairness = _fairness(card)
    if fairness:
        considerations["fairnessAssessments"] = fairness
    return considerations


def _model_card(card: ModelCard) -> dict[str, Any]:
    params: dict[str, Any] = {}
    tasks = {e.task for e in card.evaluations}
    if card.evaluations:
        params["approach"] = {"type": "supervised"}  # every evaluation scores against labels
    if len(tasks) == 1:
        params["task"] = tasks.pop()
    params["architectureFamily"] = card.flavor
    datasets = _datasets(card)
    if datasets:
        params["datasets"] = [{"ref": _data_ref(d.ref)} for d in datasets]
    signature = card.signature or {}
    if signature.get("inputs"):
        params["inputs"] = [
            {"format": f"{c['name']}: {c['type']}{' (nullable)' if c.get('nullable') else ''}"}
            for c in signature["inputs"]
        ]
    if signature.get("outputs"):
        params["outputs"] = [{"format": f"{c['name']}: {c['type']}"} for c in signature["outputs"]]
    considerations = _considerations(card)
    out: dict[str, Any] = {
        "bom-ref": f"model-card:{card.name}/{card.version}",
        "modelParameters": params,
        "quantitativeAnalysis": {"performanceMetrics": _performance(card)},
    }
    if considerations:
        out["considerations"] = considerations
    properties = [
        {"name": f"milepost:card:{f}", "value": card.fields[f].text}
        for f in ("out_of_scope_use", "factors", "training_data_notes", "evaluation_data_notes")
        if f in card.fields
    ]
    if card.text("contact"):
        properties.append({"name": "milepost:card:contact", "value": str(card.text("contact"))})
    if card.missing:
        properties.append({"name": "milepost:card:missing", "value": ", ".join(card.missing)})
    if properties:
        out["properties"] = properties
    return out


def cyclonedx_bom(card: ModelCard) -> dict[str, Any]:
    """The card as a CycloneDX 1.6 ML-BOM (a JSON-ready dict), validated.

    Raises:
        MilepostError: the document does not validate (a bug: nothing is returned).
    """
    from cyclonedx.output.json import JsonV1Dot6

    doc: dict[str, Any] = json.loads(JsonV1Dot6(_build(card)).output_as_string())
    doc["metadata"]["component"]["modelCard"] = _model_card(card)
    by_ref = {d.ref: d for d in _datasets(card)}
    for component in doc.get("components", []):
        ref = str(component.get("bom-ref", "")).removeprefix("data:")
        if component.get("type") == "data" and ref in by_ref:
            component["data"] = [_component_data(by_ref[ref])]
    validate_bom(doc)
    return doc


def cyclonedx_json(card: ModelCard) -> str:
    """:func:`cyclonedx_bom` as indented JSON text."""
    return json.dumps(cyclonedx_bom(card), indent=2) + "\n"


def validate_bom(doc: dict[str, Any] | str) -> None:
    """Check a BOM against the CycloneDX 1.6 JSON schema (strict).

    Raises:
        MilepostError: it does not validate; the message names the first error.
    """
    from cyclonedx.schema import SchemaVersion
    from cyclonedx.validation.json import JsonStrictValidator

    text = doc if isinstance(doc, str) else json.dumps(doc)
    error = JsonStrictValidator(SchemaVersion.V1_6).validate_str(text)
    if error is not None:
        raise MilepostError(
            f"The CycloneDX ML-BOM does not validate against the CycloneDX 1.6 schema: "
            f"{error}; nothing was written.",
            hint="This is a bug in Milepost's BOM export: please report it with the card.",
        )
