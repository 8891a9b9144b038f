"""Serving: endpoints, the model server and deployment strategies.

::

    milepost deploy create churn --model churn            # tracks Production of churn
    milepost deploy create pinned --model churn --version 3   # serves v3, no stage binding
    milepost serve churn --port 8080 --replicas 2
    milepost deploy canary churn 4      # v4's promotion gates first; `serve` runs the canary,
                                        # whose end makes v4 Production and primary at once
    milepost deploy status churn
"""

from milepost.serving.service import Decision, DeploymentService, VariantStats
from milepost.serving.spec import CanaryPolicy, EndpointSpec, Rollout, Track, Variant

__all__ = [
    "CanaryPolicy",
    "Decision",
    "DeploymentService",
    "EndpointSpec",
    "Rollout",
    "Track",
    "Variant",
    "VariantStats",
]
