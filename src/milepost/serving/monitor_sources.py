"""What monitors read from serving and the registry: the runtime's
:class:`~milepost.monitoring.service.MonitorSources`.

Monitoring is a foundation capability and imports neither serving nor models; this
adapter, on the serving side of the layering, gives it the prediction log's segments,
endpoint and model-version checks, the labels sent as feedback, the model version's stored
reference profile and the skew check.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from milepost.errors import InvalidInput

if TYPE_CHECKING:
    from collections.abc import Mapping

    from milepost.models.service import ModelService
    from milepost.monitoring.labels import LabelSource
    from milepost.monitoring.predictions import SegmentSource
    from milepost.serving.service import DeploymentService

__all__ = ["ServingMonitorSources"]


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
        """Per-feature training-serving skew of the window (see ``milepost.serving.skew``)."""
        raise InvalidInput(
            "The skew check is not available in this version of Milepost.",
            hint="Use feature_drift, prediction_drift or performance for now.",
        )
