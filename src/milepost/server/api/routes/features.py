"""``/api/v1`` routes: the feature registry's admin side — view versions (schema, TTL,
entity, transformation source in their definition), entities, what the online store
holds of each version, and retiring a version.

Applying definitions, materializing and pushing run where the definitions module and the
offline data are (``milepost features ...`` without MILEPOST_URL); reading features
online is the feature server's job (``milepost features serve``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Query, Request, Response

from milepost.errors import NotFound

if TYPE_CHECKING:
    from milepost.features.materialize import OnlineCoverage
    from milepost.features.service import FeatureService

router = APIRouter(tags=["features"])


def _features(request: Request) -> FeatureService:
    return request.app.state.rt.features  # type: ignore[no-any-return]


def coverage_dict(c: OnlineCoverage) -> dict[str, Any]:
    """An OnlineCoverage as JSON, with the fields its ``to_dict()`` leaves out."""
    return {**c.to_dict(), "ttl_seconds": c.ttl_seconds, "elsewhere": c.elsewhere}


@router.get("/feature-views")
def list_versions(
    request: Request, include_retired: Annotated[bool, Query()] = True
) -> dict[str, Any]:
    """Every registered view version, by view name then version."""
    records = _features(request).registry.versions(include_retired=include_retired)
    return {"items": [r.to_dict() for r in records]}


@router.get("/feature-views/{name}/versions")
def view_versions(request: Request, name: str) -> dict[str, Any]:
    """The versions of one view, oldest first."""
    records = [r for r in _features(request).registry.versions() if r.name == name]
    if not records:
        raise _unknown(request, name)
    return {"items": [r.to_dict() for r in records]}


@router.get("/feature-views/{name}/versions/{version}")
def view_version(request: Request, name: str, version: int) -> dict[str, Any]:
    """One view version: its definition (schema, TTL, entities, source, transformation)."""
    for r in _features(request).registry.versions():
        if r.name == name and r.version == version:
            result: dict[str, Any] = r.to_dict()
            return result
    raise _unknown(request, name, version)


@router.post("/feature-views/{name}/versions/{version}/retire", status_code=204)
def retire(request: Request, name: str, version: int) -> Response:
    """Retire a version (refused while a Staging or Production model pins it)."""
    _features(request).retire(name, version)
    return Response(status_code=204)


@router.get("/feature-entities")
def entities(request: Request) -> dict[str, Any]:
    """Registered entities and their join keys."""
    return {"entities": _features(request).registry.entities()}


@router.get("/feature-online-status")
def online_status(request: Request) -> dict[str, Any]:
    """Per registered version: what the server's online store holds of it."""
    return {"items": [coverage_dict(c) for c in _features(request).online_status()]}


def _unknown(request: Request, name: str, version: int | None = None) -> NotFound:
    known = sorted({r.name for r in _features(request).registry.versions()})
    if version is None or name not in known:
        return _features(request).registry.unknown(name, known)
    return NotFound(
        f"Feature view {name!r} has no version {version}.",
        hint=f"See its versions: GET /api/v1/feature-views/{name}/versions.",
    )
