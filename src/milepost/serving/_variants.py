"""Checks before anything is served: endpoint names, rollout targets and variants.

A variant is checked before it is written into an endpoint's spec (see
:meth:`~milepost.serving.service.DeploymentService.create` and the strategies): the
version exists, loads, predicts its input example, its pinned features are
materialized and, on a consequential endpoint, it can be explained.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from milepost import _validate as check
from milepost.errors import InvalidInput
from milepost.models.uri import check_model_name
from milepost.serving.spec import Variant

if TYPE_CHECKING:
    from milepost.features.service import FeatureService
    from milepost.models.service import ModelService
    from milepost.serving.spec import EndpointSpec

__all__ = ["check_create", "checked_variant", "endpoint_name", "explained_for", "target"]

_ENDPOINT = re.compile(r"(?=.*[^\W_])[\w-]+")


def endpoint_name(name: object) -> str:
    """An endpoint's name: letters, digits, '-' and '_' (at most 128)."""
    return check.name(
        name,
        "Endpoint name",
        max_length=128,
        pattern=_ENDPOINT,
        rule="use letters, digits, '-' and '_'",
    )


def target(version: object, model: object) -> None:
    """The version (and model) a rollout asks for, checked before anything is loaded."""
    if version is not None:
        check.integer(version, "Model version", minimum=1)
    if model is not None:
        check_model_name(model)


def check_create(
    name: str,
    model: object,
    version: object,
    stage: object,
    replicas: object,
    log_predictions: object,
    consequential: object,
) -> None:
    """The arguments of a new endpoint (its name already checked), before anything loads.

    Raises:
        InvalidInput: a bad value, both ``version`` and ``stage``, or a consequential
            endpoint that does not log its predictions.
    """
    check_model_name(model)
    target(version, None)
    check.integer(replicas, "replicas", minimum=1, maximum=64)
    check.boolean(log_predictions, "log_predictions")
    check.boolean(consequential, "consequential")
    if consequential and not log_predictions:
        raise InvalidInput(
            f"Endpoint {name!r} cannot be consequential without logging its predictions: "
            "its decision records are kept in the prediction log.",
            hint="Leave out --no-log (log_predictions=False).",
        )
    if stage is not None:
        check.name(stage, "Stage", max_length=16)
    if version is not None and stage is not None:
        raise InvalidInput(
            f"Give the endpoint either a version to pin ({version}) or a stage to track "
            f"({stage!r}), not both."
        )


def explained_for(name: str, spec: EndpointSpec) -> str | None:
    """The endpoint's name when versions brought into it must be explainable."""
    return name if spec.consequential else None


def checked_variant(
    models: ModelService,
    features: FeatureService,
    model: str,
    version: int | None,
    role: str,
    *,
    explained_for: str | None = None,
    **extra: Any,
) -> Variant:
    """A checked variant: the version exists, loads, predicts its example, and its
    pinned features are materialized (serving refuses it otherwise); with
    ``explained_for`` (a consequential endpoint's name), it can be explained too.

    Raises:
        InvalidInput: the version fails its smoke test or cannot be explained.
    """
    from milepost.serving._decisions_read import require_explainable

    mv = (
        models.get_version(model, version)
        if version is not None
        else models.resolve(f"models:/{model}/Production")
    )
    loaded = models.load(mv, prefer_onnx=True)
    if mv.feature_refs:
        features.serving_reader(mv.feature_refs)
    if mv.input_example:
        try:
            loaded.predict(mv.input_example)
        except Exception as exc:
            raise InvalidInput(
                f"{mv.uri} failed its smoke test on its input example: {type(exc).__name__}: {exc}"
            ) from exc
    if explained_for is not None and role != "shadow":
        require_explainable(models, explained_for, mv, loaded)
    return Variant.model_validate(
        {
            "name": f"{model}-v{mv.version}",
            "model": model,
            "version": mv.version,
            "role": role,
            **extra,
        }
    )
