"""``/api/v1`` routes: lineage (read-only, viewers).

``GET /lineage?ref=models:/churn/3&direction=upstream&depth=2`` is the graph around a
ref (anything :meth:`milepost.governance.lineage.LineageService.resolve` takes: the ref
goes in the query since it holds slashes); ``GET /lineage/models-trained-on?dataset=NAME@4``
the model versions trained on a dataset version.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from fastapi import APIRouter, Request

if TYPE_CHECKING:
    from milepost.governance.lineage import LineageService

router = APIRouter(tags=["lineage"])


def _lineage(request: Request) -> LineageService:
    lineage: LineageService = request.app.state.rt.lineage
    return lineage


@router.get("/lineage")
def graph(
    request: Request,
    ref: str,
    direction: Literal["upstream", "downstream", "both"] = "both",
    depth: int | None = None,
    max_nodes: int | None = None,
) -> dict[str, Any]:
    """The lineage graph around ``ref``: nodes, edges and how it was walked."""
    found = _lineage(request).graph(ref, direction=direction, depth=depth, max_nodes=max_nodes)
    return found.to_dict()


@router.get("/lineage/models-trained-on")
def models_trained_on(request: Request, dataset: str, stage: str | None = None) -> dict[str, Any]:
    """Model versions trained on ``dataset`` (``NAME@VERSION``), directly or not."""
    nodes = _lineage(request).models_trained_on(dataset, stage=stage)
    return {"items": [n.to_dict() for n in nodes]}
