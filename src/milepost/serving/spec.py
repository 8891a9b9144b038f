"""An endpoint's routing state: variants, weights, roles and the rollout in progress.

Roles:

- ``primary``: serves the traffic the canary does not take;
- ``canary``: serves ``weight`` percent of traffic, sticky per request key;
- ``shadow``: receives a copy of ``share`` of requests; its answers are never returned;
- ``standby``: loaded and warm, no traffic (blue/green: the new version before the
  switch, the old one after it, until ``finalize``).

An endpoint either **tracks a stage** of a model (``track``: "Production of churn") or is
**pinned** to the versions its variants name (``track`` is None). A tracking endpoint's
primary is always the version the registry has in that stage; its rollouts carry the
promotion request (``Rollout.request_id``) whose completion changes the stage.

An endpoint marked **consequential** makes decisions about people (credit, claims,
triage): every answer it gives is logged with its explanation (the top SHAP
contributions), so each decision can be explained later without the model
(:meth:`milepost.serving.DeploymentService.decision`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from milepost._records import record_dict, short

__all__ = ["CanaryPolicy", "DeploymentEvent", "EndpointSpec", "Rollout", "Track", "Variant"]

Role = Literal["primary", "canary", "shadow", "standby"]


class Variant(BaseModel):
    """A model version in an endpoint."""

    model_config = ConfigDict(extra="forbid")

    name: str
    model: str
    version: int
    role: Role
    weight: float = 0.0  # percent of traffic (canary); primary takes the rest
    share: float = 0.0  # fraction of requests mirrored (shadow)

    @property
    def uri(self) -> str:
        """``models:/NAME/VERSION``."""
        return f"models:/{self.model}/{self.version}"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return self.model_dump(mode="json")

    def __repr__(self) -> str:
        return f"Variant({_label(self)}, {self.uri})"


def _label(v: Variant) -> str:
    """``churn-v3 canary 25%``: a variant's name, role and share of traffic."""
    share = {"canary": f" {v.weight:g}%", "shadow": f" {v.share:.0%} mirrored"}
    return f"{v.name} {v.role}{share.get(v.role, '')}"


class CanaryPolicy(BaseModel):
    """How a canary advances: steps, how long and how much traffic each needs, thresholds."""

    model_config = ConfigDict(extra="forbid")

    steps: list[float] = Field(default_factory=lambda: [5.0, 25.0, 50.0, 100.0])
    min_seconds: float = Field(default=30.0, ge=0)
    min_requests: int = Field(default=100, ge=1)
    max_error_rate_increase: float = Field(default=0.01, ge=0)
    max_p99_ratio: float = Field(default=1.5, gt=0)
    # ... and only when it is also this many ms slower: sub-millisecond jitter between two
    # fast variants is not a regression worth a rollback
    min_p99_increase_ms: float = Field(default=5.0, ge=0)
    max_prediction_psi: float | None = Field(default=None, gt=0)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return self.model_dump(mode="json")

    def __repr__(self) -> str:
        steps = " → ".join(f"{s:g}%" for s in self.steps)
        return (
            f"CanaryPolicy({steps}, each >= {self.min_seconds:g} s and "
            f">= {self.min_requests} requests)"
        )


class Track(BaseModel):
    """The stage of a registered model an endpoint serves ("Production of churn")."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    model: str
    stage: Literal["Production"] = "Production"

    def __str__(self) -> str:
        return f"{self.stage} of {self.model}"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return self.model_dump(mode="json")

    def __repr__(self) -> str:
        return f"Track({self})"


class Rollout(BaseModel):
    """The strategy in progress (or the last one) and where it stands."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["blue_green", "canary", "shadow", "rolling"]
    status: str
    candidate: str
    previous: str | None = None
    step: int = 0
    step_started_at: int = 0
    canary: CanaryPolicy | None = None
    target_generation: int = 0
    detail: str = ""
    # tracking endpoints: the promotion request this rollout carries into the stage
    request_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return self.model_dump(mode="json")

    def __repr__(self) -> str:
        return f"Rollout({self.kind} {self.status} of {self.candidate}, step {self.step})"


class EndpointSpec(BaseModel):
    """Everything a replica needs to route requests."""

    model_config = ConfigDict(extra="forbid")

    variants: list[Variant]
    replicas: int = Field(default=1, ge=1, le=64)
    generation: int = 0
    rollout: Rollout | None = None
    log_predictions: bool = True
    track: Track | None = None
    # answers are decisions about people: each is logged with its explanation
    consequential: bool = False

    def variant(self, name: str) -> Variant | None:
        """A variant by name."""
        return next((v for v in self.variants if v.name == name), None)

    @property
    def primary(self) -> Variant:
        """The primary variant (every endpoint has exactly one)."""
        return next(v for v in self.variants if v.role == "primary")

    @property
    def kind(self) -> str:
        """``tracks Production of churn`` or ``pinned`` (serves the versions it names)."""
        return f"tracks {self.track}" if self.track is not None else "pinned"

    def to_json(self) -> str:
        """Stored form."""
        return self.model_dump_json()

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return self.model_dump(mode="json")

    def __repr__(self) -> str:
        others = [_label(v) for v in self.variants if v.role != "primary"]
        rollout = f", {self.rollout.kind} {self.rollout.status}" if self.rollout else ""
        return (
            f"EndpointSpec(primary {self.primary.name}"
            + "".join(f" + {o}" for o in others)
            + f", {self.replicas} replica(s){rollout}"
            + (", consequential" if self.consequential else "")
            + ")"
        )

    def summary(self) -> dict[str, Any]:
        """A short, JSON-ready view."""
        return {
            "variants": [v.model_dump() for v in self.variants],
            "replicas": self.replicas,
            "rollout": self.rollout.model_dump() if self.rollout else None,
            "track": self.track.model_dump() if self.track else None,
            "kind": self.kind,
            "consequential": self.consequential,
        }


@dataclass(frozen=True, slots=True)
class DeploymentEvent:
    """One recorded change of an endpoint (created, a rollout step, a rollback...)."""

    at: int  # ms since the epoch
    actor: str
    kind: str
    revision: int
    reason: str | None
    details: Any = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return record_dict(self)

    def __repr__(self) -> str:
        why = f": {short(self.reason)}" if self.reason else ""
        return f"DeploymentEvent({self.kind} at revision {self.revision} by {self.actor}{why})"
