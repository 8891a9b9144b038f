"""The promotion workflow: policies of gates, approvals, and audited stage changes."""

from milepost.promotion.gates import (
    GATE_KINDS,
    Approval,
    DataValidation,
    Fairness,
    Gate,
    GateContext,
    GateResult,
    MetricVsBaseline,
    register_gate,
)
from milepost.promotion.policy import DeployPolicy, PromotionPolicy
from milepost.promotion.service import PromotionRequest, PromotionService

__all__ = [
    "GATE_KINDS",
    "Approval",
    "DataValidation",
    "DeployPolicy",
    "Fairness",
    "Gate",
    "GateContext",
    "GateResult",
    "MetricVsBaseline",
    "PromotionPolicy",
    "PromotionRequest",
    "PromotionService",
    "register_gate",
]
