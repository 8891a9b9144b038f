"""Serving: endpoints, the model server and deployment strategies.

::

    milepost deploy create churn --model churn            # the Production version
    milepost serve churn --port 8080 --replicas 2
    milepost deploy canary churn --version 4              # the controller in `serve` takes it on
    milepost deploy status churn
"""

from milepost.serving.service import Decision, DeploymentService, VariantStats
from milepost.serving.spec import CanaryPolicy, EndpointSpec, Rollout, Variant

__all__ = [
    "CanaryPolicy",
    "Decision",
    "DeploymentService",
    "EndpointSpec",
    "Rollout",
    "Variant",
    "VariantStats",
]
