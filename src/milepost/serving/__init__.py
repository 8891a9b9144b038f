"""Serving: endpoints, the model server and deployment strategies.

::

    milepost endpoints create churn --model churn            # tracks Production of churn
    milepost endpoints create pinned --model churn --version 3   # serves v3, no stage binding
    milepost endpoints serve churn --port 8080 --replicas 2
    milepost endpoints update churn 4   # a canary; v4's promotion gates first; `serve` runs
                                        # it, and its end makes v4 Production and primary
    milepost endpoints show churn
    milepost endpoints update churn --consequential   # decisions recorded with explanations
    milepost decisions show REQUEST_ID                # input, version, answer, why, lineage
    milepost endpoints prune-logs --dry-run           # retention of logs and decisions
"""

from milepost.serving.decisions import DecisionRecord, PruneReport
from milepost.serving.service import Decision, DeploymentService, VariantStats
from milepost.serving.spec import CanaryPolicy, EndpointSpec, Rollout, Track, Variant

__all__ = [
    "CanaryPolicy",
    "Decision",
    "DecisionRecord",
    "DeploymentService",
    "EndpointSpec",
    "PruneReport",
    "Rollout",
    "Track",
    "Variant",
    "VariantStats",
]
