"""The online feature server: ``milepost features serve``.

``POST /v1/features/online`` with ``{"features": [...], "entities": [{...}, ...]}``
answers ``{"features": [...], "values": {...}, "statuses": {...}}`` — the same call as
``FeatureStore.get_online_features``, with the same definitions loaded once at start.
``GET /health`` answers ``{"status": "ok"}``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastapi import FastAPI
from pydantic import BaseModel, Field

from milepost.server.errors import install_error_handler

if TYPE_CHECKING:
    from milepost.features.api import FeatureStore

__all__ = ["OnlineRequest", "create_app"]


class OnlineRequest(BaseModel):
    """A batch of entity rows and the features wanted for them."""

    features: list[str] = Field(min_length=1, max_length=1000)
    entities: list[dict[str, Any]] = Field(min_length=1, max_length=10_000)
    full_feature_names: bool = False


def create_app(store: FeatureStore) -> FastAPI:
    """The FastAPI app over a loaded FeatureStore."""
    app = FastAPI(title="Milepost feature server", version="1")
    install_error_handler(app)

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/v1/features/online")
    def online(request: OnlineRequest) -> dict[str, Any]:
        response = store.get_online_features(
            request.features, request.entities, full_feature_names=request.full_feature_names
        )
        return {
            "features": response.features,
            "values": response.values,
            "statuses": response.statuses,
        }

    return app
