"""Promotion policies: which gates guard Staging and Production, per registered model.

::

    staging:
      - {kind: data_validation}
    production:
      - {kind: metric_vs_baseline, dataset: churn.test@1, target: churned,
         primary: roc_auc, min_delta: 0.005, guards: {log_loss: 0.01}, threshold: 0.7}
      - {kind: approval, role: approver}
    allow_direct_production: false   # the default

Stages are a path: a version entering Production from None (straight past Staging) must
pass the ``staging`` gates too, and both sets are recorded on its request. Set
``allow_direct_production: true`` to let a version enter Production directly through the
``production`` gates alone. A policy without gates lets every legal transition through.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from milepost.errors import InvalidInput, did_you_mean
from milepost.promotion.gates import Gate, parse_gate

__all__ = ["PromotionPolicy"]

_SECTIONS = ("staging", "production", "allow_direct_production")


@dataclass(frozen=True)
class PromotionPolicy:
    """Gates per target stage. An empty policy lets every legal transition through.

    ``allow_direct_production``: when False (the default), a version entering Production
    from a stage other than Staging passes the ``staging`` gates as well.
    """

    staging: list[Gate] = field(default_factory=list)
    production: list[Gate] = field(default_factory=list)
    allow_direct_production: bool = False

    def gates_for(self, stage: str) -> list[Gate]:
        """The gates guarding entry into ``stage`` (Archived and None have none)."""
        return {"Staging": self.staging, "Production": self.production}.get(stage, [])

    def gates_on_path(self, from_stage: str, to_stage: str) -> list[tuple[str, Gate]]:
        """``(stage, gate)`` for every gate a version moving ``from_stage -> to_stage``
        passes: the target's gates, preceded by Staging's when the move skips Staging on
        the way to Production (unless ``allow_direct_production``)."""
        path = [(to_stage, g) for g in self.gates_for(to_stage)]
        if (
            to_stage == "Production"
            and from_stage != "Staging"
            and not self.allow_direct_production
        ):
            path = [("Staging", g) for g in self.staging] + path
        return path

    @property
    def empty(self) -> bool:
        """True when no gate is configured."""
        return not self.staging and not self.production

    def to_dict(self) -> dict[str, Any]:
        """Plain data (stored, and written as YAML)."""
        return {
            "staging": [g.model_dump(mode="json", exclude_none=True) for g in self.staging],
            "production": [g.model_dump(mode="json", exclude_none=True) for g in self.production],
            "allow_direct_production": self.allow_direct_production,
        }

    def __repr__(self) -> str:
        def kinds(gates: list[Gate]) -> str:
            return ", ".join(g.name or g.kind for g in gates) or "none"

        return (
            f"PromotionPolicy(Staging: {kinds(self.staging)}; Production: {kinds(self.production)})"
        )

    def to_yaml(self) -> str:
        """The policy as YAML."""
        import yaml

        return yaml.safe_dump(self.to_dict(), sort_keys=False)

    @classmethod
    def from_dict(cls, data: Any) -> PromotionPolicy:
        """Parse plain data. Raises InvalidInput naming the section, gate and field."""
        if data is None:
            return cls()
        if not isinstance(data, dict):
            raise InvalidInput(
                "A promotion policy is a mapping with 'staging' and/or 'production', "
                f"got {_short(data)} ({type(data).__name__})."
            )
        unknown = [k for k in data if k not in (*_SECTIONS, "model")]
        if unknown:
            raise InvalidInput(
                f"Unknown policy section(s) {', '.join(map(repr, unknown))}; "
                "use staging, production and allow_direct_production."
                + did_you_mean(str(unknown[0]), _SECTIONS)
            )
        direct = data.get("allow_direct_production", False)
        if not isinstance(direct, bool):
            raise InvalidInput(
                f"allow_direct_production must be true or false, got {_short(direct)} "
                f"({type(direct).__name__}).",
                hint="Write it unquoted: allow_direct_production: true",
            )
        out: dict[str, list[Gate]] = {}
        for stage in ("staging", "production"):
            items = data.get(stage) or []
            if not isinstance(items, list):
                raise InvalidInput(
                    f"Policy section {stage!r} must be a list of gates, got {_short(items)}."
                )
            out[stage] = [parse_gate(g, where=f"{stage}[{i}]") for i, g in enumerate(items)]
        return cls(
            staging=out["staging"], production=out["production"], allow_direct_production=direct
        )

    @classmethod
    def from_yaml(cls, source: str | Path) -> PromotionPolicy:
        """Parse YAML text, or a YAML file given as a Path or a path ending in .yml/.yaml.

        Raises:
            InvalidInput: not text or a path, a file that cannot be read as UTF-8 text, bad
                YAML, or a bad policy.
        """
        import yaml

        if isinstance(source, str) and "\n" not in source and source.endswith((".yml", ".yaml")):
            source = Path(source)
        if isinstance(source, Path):
            text = _read_policy_file(source)
        elif isinstance(source, str):
            text = source
        else:
            raise InvalidInput(
                f"A promotion policy is YAML text or a path to a YAML file, or a mapping; "
                f"got {_short(source)} ({type(source).__name__})."
            )
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise InvalidInput(f"The policy is not valid YAML: {exc}") from exc
        except RecursionError as exc:
            raise InvalidInput("The policy is nested too deeply to be a policy.") from exc
        if isinstance(data, str):
            raise InvalidInput(
                f"The policy text {_short(data)} is a plain string, not a mapping with "
                "'staging' and/or 'production'.",
                hint="To read a file, pass a pathlib.Path or a path ending in .yml or .yaml.",
            )
        return cls.from_dict(data)


def _read_policy_file(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InvalidInput(f"Policy file {str(path)!r} does not exist.") from None
    except IsADirectoryError:
        raise InvalidInput(
            f"Policy file {str(path)!r} is a directory.", hint="Pass the YAML file inside it."
        ) from None
    except UnicodeDecodeError as exc:
        raise InvalidInput(
            f"Policy file {str(path)!r} is not UTF-8 text (byte {exc.start}).",
            hint="Save the policy as UTF-8 YAML.",
        ) from None
    except (OSError, ValueError) as exc:
        raise InvalidInput(f"Cannot read policy file {str(path)!r}: {exc}.") from exc


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
