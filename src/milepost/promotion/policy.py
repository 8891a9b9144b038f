"""Promotion policies: which gates guard Staging and Production, per registered model.

::

    staging:
      - {kind: data_validation}
    production:
      - {kind: metric_vs_baseline, dataset: churn.test@1, target: churned,
         primary: roc_auc, min_delta: 0.005, guards: {log_loss: 0.01}, threshold: 0.7}
      - {kind: approval, role: approver}
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from milepost.errors import InvalidInput
from milepost.promotion.gates import Gate, parse_gate

__all__ = ["PromotionPolicy"]


@dataclass(frozen=True)
class PromotionPolicy:
    """Gates per target stage. An empty policy lets every legal transition through."""

    staging: list[Gate] = field(default_factory=list)
    production: list[Gate] = field(default_factory=list)

    def gates_for(self, stage: str) -> list[Gate]:
        """The gates guarding entry into ``stage`` (Archived and None have none)."""
        return {"Staging": self.staging, "Production": self.production}.get(stage, [])

    @property
    def empty(self) -> bool:
        """True when no gate is configured."""
        return not self.staging and not self.production

    def to_dict(self) -> dict[str, Any]:
        """Plain data (stored, and written as YAML)."""
        return {
            "staging": [g.model_dump(mode="json", exclude_none=True) for g in self.staging],
            "production": [g.model_dump(mode="json", exclude_none=True) for g in self.production],
        }

    def to_yaml(self) -> str:
        """The policy as YAML."""
        import yaml

        return yaml.safe_dump(self.to_dict(), sort_keys=False)

    @classmethod
    def from_dict(cls, data: Any) -> PromotionPolicy:
        """Parse plain data. Raises InvalidInput naming the bad gate."""
        if data is None:
            return cls()
        if not isinstance(data, dict):
            raise InvalidInput(
                "A promotion policy is a mapping with 'staging' and/or 'production'."
            )
        unknown = set(data) - {"staging", "production", "model"}
        if unknown:
            raise InvalidInput(
                f"Unknown policy section(s) {sorted(unknown)}; use staging and production."
            )
        out: dict[str, list[Gate]] = {}
        for stage in ("staging", "production"):
            items = data.get(stage) or []
            if not isinstance(items, list):
                raise InvalidInput(f"Policy section {stage!r} must be a list of gates.")
            out[stage] = [parse_gate(g, where=f"{stage}[{i}]") for i, g in enumerate(items)]
        return cls(**out)

    @classmethod
    def from_yaml(cls, source: str | Path) -> PromotionPolicy:
        """Parse YAML text or a YAML file."""
        import yaml

        text = source.read_text() if isinstance(source, Path) else source
        if isinstance(source, str) and "\n" not in source and source.endswith((".yml", ".yaml")):
            path = Path(source)
            if not path.is_file():
                raise InvalidInput(f"Policy file {source} does not exist.")
            text = path.read_text()
        try:
            return cls.from_dict(yaml.safe_load(text))
        except yaml.YAMLError as exc:
            raise InvalidInput(f"The policy is not valid YAML: {exc}") from exc
