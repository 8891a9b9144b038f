"""The promotion records the store returns: a request and its gates' results."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from milepost._records import record_dict

if TYPE_CHECKING:
    from milepost.promotion.gates import GateResult

__all__ = ["PromotionRequest"]


@dataclass(frozen=True, slots=True)
class PromotionRequest:
    """A request to move a version into a stage, with every gate's result."""

    request_id: str
    model: str
    version: int
    target_stage: str
    status: str  # see milepost.promotion.service's docstring
    requested_by: str
    reason: str | None
    created_at: int
    baseline_version: int | None
    decided_by: str | None = None
    decided_at: int | None = None
    decision_reason: str | None = None
    gates: list[GateResult] = field(default_factory=list)
    #: the endpoint tracking the target stage that rolls the version out (None: none did)
    endpoint: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return record_dict(self)

    def __repr__(self) -> str:
        passed = sum(g.passed for g in self.gates)
        return (
            f"PromotionRequest({self.request_id[:12]} {self.model}/{self.version} -> "
            f"{self.target_stage} {self.status}, {passed}/{len(self.gates)} gates passed)"
        )
