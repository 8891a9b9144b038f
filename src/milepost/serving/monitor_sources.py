"""What monitors read from serving and the registry: the runtime's
:class:`~milepost.monitoring.service.MonitorSources`.

Monitoring is a foundation capability and imports neither serving nor models; this
adapter, on the serving side of the layering, gives it the prediction log's segments,
endpoint and model-version checks, the labels sent as feedback, the model version's stored
reference profile and the skew check.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from milepost._records import jsonable

if TYPE_CHECKING:
    from collections.abc import Mapping

    from milepost.models.service import ModelService
    from milepost.monitoring.labels import LabelSource
    from milepost.monitoring.predictions import SegmentSource
    from milepost.serving.service import DeploymentService

__all__ = ["ServingMonitorSources"]

_COUNTS = ("rows", "compared", "mismatches", "no_offline", "no_served")


class ServingMonitorSources:
    """Serving and registry access for :class:`~milepost.monitoring.MonitorService`."""

    def __init__(self, serving: DeploymentService, models: ModelService) -> None:
        self.serving = serving
        self.models = models

    @property
    def segments(self) -> SegmentSource:
        """The serving store: where prediction-log segments are registered."""
        return self.serving.store

    def check_endpoint(self, name: str) -> None:
        """NotFound unless the endpoint exists."""
        self.serving.require(name)

    def check_model_version(self, model: str, version: int) -> None:
        """NotFound unless the model version is registered."""
        self.models.get_version(model, version)

    def endpoints_for(self, model: str, version: int) -> list[str]:
        """The endpoints whose variants include the model version now."""
        out = []
        for name in self.serving.list_endpoints():
            spec, _ = self.serving.get(name)
            if any(v.model == model and v.version == version for v in spec.variants):
                out.append(name)
        return out

    @property
    def labels(self) -> LabelSource:
        """The serving store: where feedback (ground truth) is kept."""
        return self.serving.store

    def reference_profile(self, model: str, version: int) -> Any | None:
        """The model version's stored training profile (``log_model(training_data=)``),
        or None."""
        return self.models.get_profile(model, version)

    def skew(
        self, endpoint: str, *, model: str | None, version: int | None, since_ms: int, until_ms: int
    ) -> list[Mapping[str, Any]]:
        """Per-feature training-serving skew of the window, per entity
        (:func:`milepost.serving.skew.entity_skew`: each served row's pinned features
        recomputed offline at its time; a seeded sample of 1,000 rows), one mapping per
        pinned feature (``feature``, ``ref``, ``mismatch_share`` (None: nothing compared),
        ``compared``, ``mismatches``, ``no_offline``, ``no_served``, ``status``,
        ``examples``); only ``model`` ``version``'s features when given."""
        from milepost.serving.skew import entity_skew

        result = entity_skew(self.serving, endpoint, since_ms=since_ms, until_ms=until_ms)
        out: list[Mapping[str, Any]] = []
        for r in result.by_feature.to_dict("records"):
            if model is not None and (r["model"] != model or int(r["version"]) != version):
                continue
            share = float(r["mismatch_share"])
            examples = [
                e for e in result.examples if e["feature"] == r["feature"] and e["ref"] == r["ref"]
            ]
            out.append(
                {
                    "feature": str(r["feature"]),
                    "ref": str(r["ref"]),
                    "mismatch_share": None if math.isnan(share) else share,
                    **{k: int(r[k]) for k in _COUNTS},
                    "status": str(r["status"]),
                    "examples": jsonable(examples[:3]),
                }
            )
        return out
