"""Read-only views of registered models, versions and their history."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from milepost._records import record_dict

if TYPE_CHECKING:
    from milepost.models.signature import Signature

__all__ = [
    "ALLOWED_TRANSITIONS",
    "STAGES",
    "ModelVersion",
    "RegisteredModel",
    "Stage",
    "StageEvent",
    "TrustedType",
    "transition_problem",
]

#: The version file holding the training data's reference profile.
PROFILE_FILE = "profile.json"

Stage = Literal["None", "Staging", "Production", "Archived"]
STAGES: tuple[Stage, ...] = ("None", "Staging", "Production", "Archived")


@dataclass(frozen=True)
class ModelVersion:
    """One registered version of a model, with everything needed to trace it."""

    name: str
    version: int
    stage: Stage
    flavor: str
    run_id: str | None
    author: str
    created_at: int
    stage_changed_at: int
    files: dict[str, str]
    signature: Signature | None
    input_example: list[dict[str, Any]] | None
    metrics: dict[str, float]
    datasets: list[dict[str, str]]
    feature_refs: list[str]
    #: The types the author declared the file holds when logging it: information only.
    #: Loading trusts the built-in allow-list plus what the loading side names.
    trusted_types: list[str]
    onnx: dict[str, Any] | None
    env_hash: str | None
    code_version: str | None
    description: str | None
    tags: dict[str, str] = field(default_factory=dict)
    aliases: list[str] = field(default_factory=list)
    version_id: int = 0

    @property
    def uri(self) -> str:
        """``models:/NAME/VERSION``."""
        return f"models:/{self.name}/{self.version}"

    @property
    def has_onnx(self) -> bool:
        """True when a verified ONNX twin is stored (the serving fast path)."""
        return "model.onnx" in self.files

    @property
    def has_profile(self) -> bool:
        """True when the training data's reference profile is stored (``profile.json``,
        read with ``ModelService.get_profile``; drift monitors compare with it)."""
        return PROFILE_FILE in self.files

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (with ``uri``; the database row id stays internal)."""
        return record_dict(self, exclude=("version_id",), extra={"uri": self.uri})

    def __repr__(self) -> str:
        return f"ModelVersion({self.name}/{self.version} {self.stage}, {self.flavor})"


@dataclass(frozen=True)
class RegisteredModel:
    """A named model and where its versions stand."""

    name: str
    description: str | None
    created_by: str
    created_at: int
    updated_at: int
    latest_version: int | None
    stages: dict[str, list[int]]
    aliases: dict[str, int]
    has_policy: bool

    @property
    def production_version(self) -> int | None:
        """The version in Production, if any."""
        versions = self.stages.get("Production") or []
        return versions[0] if versions else None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (with ``production_version``)."""
        return record_dict(self, extra={"production_version": self.production_version})

    def __repr__(self) -> str:
        production = self.production_version
        return f"RegisteredModel({self.name}, latest v{self.latest_version}, " + (
            f"Production v{production})" if production else "no Production version)"
        )


@dataclass(frozen=True)
class StageEvent:
    """A stage change: who moved which version from where to where, when and why."""

    name: str
    version: int
    from_stage: str
    to_stage: str
    actor: str
    reason: str | None
    request_id: str | None
    at: int

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return record_dict(self)

    def __repr__(self) -> str:
        return (
            f"StageEvent({self.name}/{self.version} {self.from_stage} -> {self.to_stage} "
            f"by {self.actor})"
        )


@dataclass(frozen=True)
class TrustedType:
    """A type every loader trusts in model files: who added it, when and why."""

    type_name: str
    added_by: str
    added_at: int
    reason: str
    #: False when no audit event backs the row (written to the database directly):
    #: loaders then ignore it.
    audited: bool = True

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return record_dict(self)

    def __repr__(self) -> str:
        unaudited = "" if self.audited else ", NOT AUDITED: ignored"
        return f"TrustedType({self.type_name} by {self.added_by}{unaudited})"


# Which stage changes are legal. Production is reached through Staging or directly from
# None (both through the Production gates); an archived version must be re-reviewed in
# Staging first; Production leaves only to Archived (promoting another version does so).
ALLOWED_TRANSITIONS: dict[str, frozenset[str]] = {
    "None": frozenset({"Staging", "Production", "Archived"}),
    "Staging": frozenset({"Production", "Archived"}),
    "Production": frozenset({"Archived"}),
    "Archived": frozenset({"Staging"}),
}


def transition_problem(current: str, target: str) -> str | None:
    """Why ``current -> target`` is not allowed, or None when it is."""
    if current == target:
        return f"it is already in {target}"
    if target in ALLOWED_TRANSITIONS.get(current, frozenset()):
        return None
    if current == "Archived" and target == "Production":
        return (
            "an archived version must be re-reviewed: promote it to Staging first, then "
            "to Production"
        )
    if current == "Production":
        return (
            "a Production version leaves only to Archived (promote another version or archive it)"
        )
    allowed = ", ".join(sorted(ALLOWED_TRANSITIONS.get(current, frozenset()))) or "nothing"
    return f"{current} -> {target} is not a legal change (from {current}: {allowed})"
