"""An endpoint's status: its spec, the registry's view, the rollout's request, recent
events and per-variant stats (:meth:`~milepost.serving.service.DeploymentService.status`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from milepost import _validate as check
from milepost.errors import InvalidInput
from milepost.monitoring import variant_stats
from milepost.serving._rollouts import now

if TYPE_CHECKING:
    from milepost.serving._registry import RegistryLink
    from milepost.serving.backends.sql import SqlServingStore

__all__ = ["endpoint_status"]

#: the longest window ``status`` reads stats over, in seconds
MAX_WINDOW_S = 10 * 365 * 86400


def endpoint_status(
    store: SqlServingStore, registry: RegistryLink, name: str, window_seconds: float
) -> dict[str, Any]:
    """The status of endpoint ``name`` (already checked) over the last ``window_seconds``,
    or since the current rollout step started if that is later.

    Raises:
        InvalidInput: ``window_seconds`` is not a positive number (at most ten years).
    """
    if (
        isinstance(window_seconds, bool)
        or not isinstance(window_seconds, (int, float))
        or not 0 < window_seconds <= MAX_WINDOW_S
    ):
        raise InvalidInput(
            f"window_seconds must be a positive number of seconds (at most ten years), "
            f"got {check.short_repr(window_seconds)}."
        )
    spec, revision = store.get(name)
    until = now()
    since = until - int(window_seconds * 1000)
    if spec.rollout is not None and spec.rollout.status in ("progressing", "mirroring", "preview"):
        since = max(since, spec.rollout.step_started_at)
    stats = variant_stats(store, name, since_ms=since, until_ms=until)
    out: dict[str, Any] = {
        "endpoint": name,
        "revision": revision,
        **spec.summary(),
        "window": {"since": since, "until": until},
        "stats": {k: v.to_dict() for k, v in stats.items()},
        "events": [e.to_dict() for e in store.events(name, limit=15)],
    }
    if spec.track is not None:
        production = registry.models.get_model(spec.track.model).production_version
        out["registry"] = {
            "production_version": production,
            "agrees": production == spec.primary.version,
        }
    if spec.rollout is not None and spec.rollout.request_id is not None:
        req = registry.promotion.get_request(spec.rollout.request_id)
        out["request"] = {
            "request_id": req.request_id,
            "version": req.version,
            "status": req.status,
        }
    return out
