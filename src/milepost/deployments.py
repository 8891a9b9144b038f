"""``milepost.deployments``: endpoints and their rollouts, as module-level functions.

::

    milepost.deployments.create("churn", "churn-model")          # tracks Production
    milepost.deployments.update("churn", 4, strategy="canary")   # start rolling v4 out
    milepost.deployments.advance("churn")                        # next canary step
    milepost.deployments.rollback("churn", reason="p99 too high")
    milepost.deployments.list_endpoints(); milepost.deployments.get("churn")

Each function is :class:`milepost.Client`'s method of the same meaning on the process's
runtime, as ``httpx.get()`` is a ``Client`` call. ``advance`` moves a rollout forward;
changing a model's stage stays ``milepost.Client().promote`` (``milepost models promote``).
Serve an endpoint with ``milepost endpoints serve``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from milepost._client import Client as _Client

if TYPE_CHECKING:
    from milepost._client import Strategy
    from milepost.serving.spec import CanaryPolicy, EndpointSpec

__all__ = ["advance", "create", "get", "list_endpoints", "rollback", "status", "update"]


def create(
    name: str,
    model: str,
    *,
    version: int | None = None,
    stage: str | None = None,
    replicas: int = 1,
    log_predictions: bool = True,
    consequential: bool = False,
) -> EndpointSpec:
    """Create an endpoint that tracks Production of ``model``, or one pinned to ``version``;
    ``consequential``: each answer is a decision recorded with its explanation.

    Raises:
        InvalidInput: a bad name, both ``version`` and ``stage``, or the version fails its
            smoke test on its input example (or, consequential, cannot be explained).
        Conflict: the model has no Production version to track.
        AlreadyExists: the name is taken, or another endpoint tracks this stage.
    """
    return _Client().create_endpoint(
        name,
        model,
        version=version,
        stage=stage,
        replicas=replicas,
        log_predictions=log_predictions,
        consequential=consequential,
    )


def get(name: str) -> EndpointSpec:
    """An endpoint's spec: variants, weights, replicas and the rollout in progress."""
    return _Client().get_endpoint(name)


def list_endpoints() -> list[str]:
    """The name of every endpoint."""
    return _Client().list_endpoints()


def update(
    name: str,
    version: int | None = None,
    *,
    strategy: Strategy = "canary",
    model: str | None = None,
    policy: CanaryPolicy | None = None,
    share: float | None = None,
    consequential: bool | None = None,
) -> EndpointSpec:
    """Start rolling ``version`` out: ``canary`` (default), ``blue_green``, ``shadow`` or
    ``rolling``, and/or mark the endpoint ``consequential`` (or unmark it); see
    :meth:`milepost.Client.update_endpoint`."""
    return _Client().update_endpoint(
        name,
        version,
        strategy=strategy,
        model=model,
        policy=policy,
        share=share,
        consequential=consequential,
    )


def advance(name: str, *, reason: str | None = None) -> EndpointSpec:
    """Move the rollout forward: a canary's next step, shadow to canary, blue/green switch."""
    return _Client().advance_endpoint(name, reason=reason)


def rollback(name: str, *, reason: str | None = None) -> EndpointSpec:
    """Back to the previous version, instantly (it is still loaded)."""
    return _Client().rollback_endpoint(name, reason=reason)


def status(name: str, *, window_seconds: float = 300) -> dict[str, Any]:
    """The spec, the registry's agreement, the rollout, recent events and per-variant stats."""
    return _Client().get_endpoint_status(name, window_seconds=window_seconds)
