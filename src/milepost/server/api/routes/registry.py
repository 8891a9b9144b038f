"""``/api/v1`` routes: the model registry — models, versions, aliases, stage history,
model cards, evaluations and fairness audits.

Reads need viewer; alias and card changes member. Archiving the Production version takes
a model out of Production, so it needs approver (checked against the version's stage).
Stage changes into Staging or Production go through ``/promotions`` (the gates).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import PlainTextResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict

from milepost.errors import InvalidInput, NotFound
from milepost.server.api.auth import needs, require_role
from milepost.server.api.routes.tracking import scope_run

router = APIRouter(tags=["registry"])

#: The media type of a model upload (see :func:`log_model`).
MODEL_UPLOAD_MEDIA_TYPE = "application/vnd.milepost.model-upload"


class AliasBody(BaseModel):
    """Point an alias at a version."""

    model_config = ConfigDict(extra="forbid")
    version: int


class ArchiveBody(BaseModel):
    """Archive a version."""

    model_config = ConfigDict(extra="forbid")
    reason: str | None = None


class CardFieldsBody(BaseModel):
    """Write card sections, model-wide (``version`` null) or for one version."""

    model_config = ConfigDict(extra="forbid")
    fields: dict[str, str]
    version: int | None = None
    reason: str | None = None


def _rt(request: Request) -> Any:
    return request.app.state.rt


def _items(records: Any) -> dict[str, Any]:
    return {"items": [r.to_dict() for r in records]}


# -- models and versions ------------------------------------------------------------


@router.get("/models")
def list_models(request: Request) -> dict[str, Any]:
    """Every registered model with its stages and aliases."""
    return _items(_rt(request).models.list_models())


@router.get("/models/{name}")
def get_model(request: Request, name: str) -> dict[str, Any]:
    """A registered model."""
    result: dict[str, Any] = _rt(request).models.get_model(name).to_dict()
    return result


@router.get("/models/{name}/versions")
def list_versions(request: Request, name: str) -> dict[str, Any]:
    """Every version of a model, oldest first."""
    return _items(_rt(request).models.versions(name))


@router.post(
    "/models/{name}/versions",
    status_code=201,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                MODEL_UPLOAD_MEDIA_TYPE: {"schema": {"type": "string", "format": "binary"}}
            },
        }
    },
)
async def log_model(request: Request, name: str) -> dict[str, Any]:
    """Register an uploaded model file as the next version of ``name`` (streamed).

    The body: 8 bytes (big-endian) giving the length of a JSON header, the header
    (``run_id``, ``flavor``, ``model_bytes``, ``training_bytes``, and ``log_model``'s
    options), the model file, then optionally the training data as Parquet. The server
    rebuilds the model with *its* loaders' trust (never unpickling) and logs it as
    ``log_model`` does embedded, as the caller.
    """
    from milepost.server.api.routes._model_upload import receive_model

    result: dict[str, Any] = await receive_model(request, name)
    return result


@router.get("/models/{name}/versions/{version}")
def get_version(request: Request, name: str, version: int) -> dict[str, Any]:
    """One version: metadata, metrics, signature, feature refs, dataset versions."""
    result: dict[str, Any] = _rt(request).models.get_version(name, version).to_dict()
    return result


@router.get(
    "/models/{name}/versions/{version}/files/{file}",
    response_class=StreamingResponse,
    responses={200: {"content": {"application/octet-stream": {}}}},
)
def version_file(request: Request, name: str, version: int, file: str) -> StreamingResponse:
    """One of a version's files (``model.skops``, ``model.onnx``, ``profile.json``),
    streamed as stored (``X-Milepost-Digest``: its SHA-256; the store checks it as it
    reads). Loading it is the caller's decision, with the caller's trust."""
    models = _rt(request).models
    v = models.get_version(name, version)
    digest = v.files.get(file)
    if digest is None:
        raise NotFound(
            f"{v.uri} has no file {file!r}.",
            hint="Its files: " + ", ".join(sorted(v.files)) + ".",
        )
    reader = models.blobs.open(digest)

    def chunks() -> Iterator[bytes]:
        with reader:
            while chunk := reader.read(1 << 20):
                yield chunk

    return StreamingResponse(
        chunks(), media_type="application/octet-stream", headers={"X-Milepost-Digest": digest}
    )


@router.get("/models/{name}/stages/{stage}")
def version_in_stage(request: Request, name: str, stage: str) -> dict[str, Any]:
    """The version ``models:/NAME/STAGE`` points at (``latest`` for the newest)."""
    result: dict[str, Any] = _rt(request).models.resolve(f"models:/{name}/{stage}").to_dict()
    return result


@router.get("/models/{name}/aliases/{alias}")
def version_of_alias(request: Request, name: str, alias: str) -> dict[str, Any]:
    """The version ``models:/NAME@ALIAS`` points at."""
    result: dict[str, Any] = _rt(request).models.resolve(f"models:/{name}@{alias}").to_dict()
    return result


@router.put("/models/{name}/aliases/{alias}")
def set_alias(request: Request, name: str, alias: str, body: AliasBody) -> dict[str, Any]:
    """Point an alias at a version; answers the version it pointed at before."""
    return {"previous": _rt(request).models.set_alias(name, alias, body.version)}


@router.delete("/models/{name}/aliases/{alias}", status_code=204)
def delete_alias(request: Request, name: str, alias: str) -> Response:
    """Remove an alias."""
    _rt(request).models.delete_alias(name, alias)
    return Response(status_code=204)


@router.post("/models/{name}/versions/{version}/archive", status_code=204)
def archive(request: Request, name: str, version: int, body: ArchiveBody) -> Response:
    """Archive a version (the Production version only with the approver role)."""
    rt = _rt(request)
    if rt.models.get_version(name, version).stage == "Production":
        require_role(request, "approver")
    rt.models.archive(name, version, reason=body.reason)
    return Response(status_code=204)


@router.get("/models/{name}/history")
def history(request: Request, name: str) -> dict[str, Any]:
    """Every stage change of a model, oldest first."""
    return _items(_rt(request).models.history(name))


@router.get("/models/{name}/production-at")
def production_at(
    request: Request, name: str, at: int = Query(description="epoch milliseconds")
) -> dict[str, Any]:
    """The version in Production at a moment (null: none)."""
    return {"version": _rt(request).models.production_at(name, at)}


# -- model cards --------------------------------------------------------------------


@router.get("/models/{name}/versions/{version}/card", response_model=None)
def card(
    request: Request,
    name: str,
    version: int,
    format: str = Query("json", description="json, markdown or html"),
) -> dict[str, Any] | Response:
    """A version's model card, as JSON or rendered (Markdown, HTML)."""
    if format not in ("json", "markdown", "html"):
        raise InvalidInput(f"Unknown card format {format!r}.", hint="Use json, markdown or html.")
    model_card = _rt(request).cards.card(name, version)
    if format == "json":
        result: dict[str, Any] = model_card.to_dict()
        return result
    from milepost.cards.render import render_card

    media = "text/markdown" if format == "markdown" else "text/html"
    return PlainTextResponse(render_card(model_card, format), media_type=media)


@router.get("/models/{name}/card-fields")
def card_fields(request: Request, name: str, version: int | None = None) -> dict[str, Any]:
    """The written sections a version's card shows (no version: the model's own)."""
    fields = _rt(request).cards.fields(name, version)
    return {"fields": {k: v.to_dict() for k, v in fields.items()}}


@router.put("/models/{name}/card-fields")
def set_card_fields(request: Request, name: str, body: CardFieldsBody) -> dict[str, Any]:
    """Write card sections in one transaction (audited)."""
    return _items(
        _rt(request).cards.set_fields(name, body.fields, version=body.version, reason=body.reason)
    )


@router.delete("/models/{name}/card-fields/{field}", status_code=204)
def clear_card_field(
    request: Request,
    name: str,
    field: str,
    version: int | None = None,
    reason: str | None = None,
) -> Response:
    """Remove one written section (the model's, or one version's override)."""
    _rt(request).cards.clear_field(name, field, version=version, reason=reason)
    return Response(status_code=204)


# -- evaluations and fairness audits ------------------------------------------------


@router.get("/models/{name}/versions/{version}/evaluations")
def evaluations(
    request: Request, name: str, version: int, limit: int = Query(20, ge=1, le=1000)
) -> dict[str, Any]:
    """Stored evaluations of a version, newest first."""
    return _items(_rt(request).evaluation.for_version(f"models:/{name}/{version}", limit=limit))


@router.get("/models/{name}/versions/{version}/fairness-audits")
def fairness_audits(
    request: Request, name: str, version: int, limit: int = Query(20, ge=1, le=1000)
) -> dict[str, Any]:
    """Stored fairness audits of a version, newest first."""
    return _items(
        _rt(request).evaluation.fairness_for_version(f"models:/{name}/{version}", limit=limit)
    )


class EvaluateBody(BaseModel):
    """Evaluate a version on a registered dataset version (run on the server)."""

    model_config = ConfigDict(extra="forbid")
    dataset: str
    target: str
    task: str | None = None
    slices: list[str] = []
    threshold: float = 0.5
    run_id: str | None = None


class FairnessBody(BaseModel):
    """Audit a version's fairness on a registered dataset version (run on the server)."""

    model_config = ConfigDict(extra="forbid")
    dataset: str
    target: str
    sensitive_features: list[str]
    min_group_size: int = 30
    threshold: float = 0.5
    positive_label: str | int | float | bool | None = None


@router.post("/models/{name}/versions/{version}/evaluations", status_code=201)
def evaluate(request: Request, name: str, version: int, body: EvaluateBody) -> dict[str, Any]:
    """Evaluate a version on a dataset version (``name@N``) and store the result. The
    model loads as the server's loaders trust it (never ``trusted`` from a request)."""
    if body.run_id is not None:
        scope_run(request, body.run_id)
    result: dict[str, Any] = (
        _rt(request)
        .evaluation.evaluate(
            f"models:/{name}/{version}",
            _dataset_ref(body.dataset),
            target=body.target,
            task=body.task,
            slices=body.slices,
            threshold=body.threshold,
            run_id=body.run_id,
        )
        .to_dict()
    )
    return result


@router.post("/models/{name}/versions/{version}/fairness-audits", status_code=201)
def audit_fairness(request: Request, name: str, version: int, body: FairnessBody) -> dict[str, Any]:
    """Audit a version's fairness on a dataset version (``name@N``); stored, audited."""
    result: dict[str, Any] = (
        _rt(request)
        .evaluation.audit_fairness(
            f"models:/{name}/{version}",
            _dataset_ref(body.dataset),
            target=body.target,
            sensitive_features=body.sensitive_features,
            min_group_size=body.min_group_size,
            threshold=body.threshold,
            positive_label=body.positive_label,
        )
        .to_dict()
    )
    return result


def _dataset_ref(ref: str) -> str:
    """A dataset version reference (never a path on the server)."""
    from milepost.data.models import parse_ref

    parse_ref(ref)
    return ref


@router.get("/fairness-audits/{audit_id}")
def get_fairness_audit(request: Request, audit_id: str) -> dict[str, Any]:
    """One fairness audit by its id (or a prefix of at least 4 hex digits)."""
    result: dict[str, Any] = _rt(request).evaluation.get_fairness_audit(audit_id).to_dict()
    return result


# -- trusted types ------------------------------------------------------------------


class TrustedTypeBody(BaseModel):
    """Trust a type in model files."""

    model_config = ConfigDict(extra="forbid")
    type_name: str
    reason: str


@router.get("/trusted-types")
def list_trusted_types(request: Request) -> dict[str, Any]:
    """Types every loader trusts beyond the built-in allow-list."""
    return _items(_rt(request).models.list_trusted_types())


@router.post("/trusted-types", status_code=201, openapi_extra=needs("approver"))
def add_trusted_type(request: Request, body: TrustedTypeBody) -> dict[str, Any]:
    """Trust a type in every loader (audited)."""
    record = _rt(request).models.add_trusted_type(body.type_name, reason=body.reason)
    result: dict[str, Any] = record.to_dict()
    return result


@router.delete("/trusted-types/{type_name}", openapi_extra=needs("approver"))
def remove_trusted_type(
    request: Request, type_name: str, reason: str | None = None
) -> dict[str, Any]:
    """Stop trusting a type (audited); answers the removed record."""
    record = _rt(request).models.remove_trusted_type(type_name, reason=reason)
    result: dict[str, Any] = record.to_dict()
    return result
