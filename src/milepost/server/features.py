"""The online feature server: ``milepost features serve``.

``POST /v1/features/online`` with ``{"features": [...], "entities": [{...}, ...]}``
answers ``{"features": [...], "values": {...}, "statuses": {...}}`` — the same call as
``FeatureStore.get_online_features``, with the same definitions loaded once at start.
``GET /health`` answers ``{"status": "ok"}``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson
from fastapi import FastAPI, Response
from pydantic import BaseModel, Field

from milepost.server.errors import install_error_handler

if TYPE_CHECKING:
    from milepost.features.api import FeatureStore

__all__ = ["REPO_ENV", "OnlineRequest", "app_from_env", "create_app"]

#: Where ``milepost features serve --workers N`` tells its worker processes the repo.
REPO_ENV = "MILEPOST_FEATURE_SERVER_REPO"


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

    # async, so the read runs on the event loop (an online read takes tens of
    # microseconds; a sync route would pay a thread hand-off on every request), and the
    # answer is serialized by orjson directly rather than through jsonable_encoder.
    @app.post("/v1/features/online")
    async def online(request: OnlineRequest) -> Response:
        response = store.get_online_features(
            request.features, request.entities, full_feature_names=request.full_feature_names
        )
        body = {
            "features": response.features,
            "values": response.values,
            "statuses": response.statuses,
        }
        return Response(orjson.dumps(body), media_type="application/json")

    return app


def app_from_env() -> FastAPI:
    """The app for one uvicorn worker process (``--workers N``)."""
    import os

    from milepost.features.api import FeatureStore

    return create_app(FeatureStore(os.environ.get(REPO_ENV) or None))
