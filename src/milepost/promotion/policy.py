"""Promotion policies: which gates guard Staging and Production, per registered model.

::

    staging:
      - {kind: data_validation}
    production:
      - {kind: metric_vs_baseline, dataset: churn.test@1, target: churned,
         primary: roc_auc, min_delta: 0.005, guards: {log_loss: 0.01}, threshold: 0.7}
      - {kind: approval, role: approver}
    allow_direct_production: false   # the default
    deploy:                          # optional; the default deploys nothing by itself
      automatic: true                # the retraining pipeline may start a canary
      endpoint: churn                # an endpoint that tracks Production of the model
      strategy: canary
      steps: [25, 50, 100]           # percent of traffic, rising, at most 100
      min_seconds: 2                 # each step lasts at least this long ...
      min_requests: 50               # ... and sees at least this many canary requests

Stages are a path: a version entering Production from None (straight past Staging) must
pass the ``staging`` gates too, and both sets are recorded on its request. Set
``allow_direct_production: true`` to let a version enter Production directly through the
``production`` gates alone. A policy without gates lets every legal transition through.

``deploy`` says what automation may do once a version is in Staging (read by
:mod:`milepost.retraining`): with ``automatic: true`` it starts a canary of the version on
``endpoint``, whose rollout carries the version's promotion to Production, so the
``production`` gates run before any traffic (an ``approval`` gate there still waits for a
person); otherwise (the default) it only requests Production and reports the request
pending approval. ``max_error_rate_increase`` and ``max_p99_ratio`` optionally tighten the
canary's verdict (see :class:`milepost.serving.CanaryPolicy`). The section is checked as
strictly as gates: unknown keys, wrong types, NaN and infinities are refused.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from milepost.errors import InvalidInput, did_you_mean
from milepost.promotion.gates import Gate, parse_gate

__all__ = ["DeployPolicy", "PromotionPolicy"]

_SECTIONS = ("staging", "production", "allow_direct_production", "deploy")
_ENDPOINT = re.compile(r"(?=.*[^\W_])[\w-]{1,128}")


class DeployPolicy(BaseModel):
    """What automation may do with a version that reached Staging (the ``deploy`` section).

    ``automatic`` False (the default): request Production and wait for approval.
    ``automatic`` True: start a ``strategy`` rollout (a canary) on ``endpoint`` with these
    steps and minimums; the rollout's promotion request runs the Production gates first.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)

    automatic: bool = False
    endpoint: str | None = None
    strategy: Literal["canary"] = "canary"
    steps: list[float] = Field(default_factory=lambda: [5.0, 25.0, 50.0, 100.0], min_length=1)
    min_seconds: Annotated[float, Field(ge=0)] = 30.0
    min_requests: Annotated[int, Field(ge=1)] = 100
    max_error_rate_increase: Annotated[float, Field(ge=0)] | None = None
    max_p99_ratio: Annotated[float, Field(gt=0)] | None = None

    @field_validator("endpoint")
    @classmethod
    def _endpoint_name(cls, value: str | None) -> str | None:
        if value is not None and not _ENDPOINT.fullmatch(value):
            raise ValueError(
                f"{value!r:.80} is not an endpoint name (letters, digits, '_' and '-', up to 128)"
            )
        return value

    @field_validator("steps")
    @classmethod
    def _rising(cls, value: list[float]) -> list[float]:
        if any(not 0 < s <= 100 for s in value) or value != sorted(value):
            raise ValueError(
                f"steps {value} must rise from above 0 to at most 100 (percent of traffic)"
            )
        return value

    @model_validator(mode="after")
    def _where(self) -> DeployPolicy:
        if self.automatic and self.endpoint is None:
            raise ValueError(
                "automatic deployment needs an endpoint: name the endpoint that tracks "
                "Production of the model (endpoint: NAME)"
            )
        return self

    @property
    def default(self) -> bool:
        """True when the section says nothing beyond the defaults."""
        return self == DeployPolicy()

    def canary_settings(self) -> dict[str, Any]:
        """The keyword arguments of :class:`milepost.serving.CanaryPolicy` it sets."""
        out: dict[str, Any] = {
            "steps": list(self.steps),
            "min_seconds": self.min_seconds,
            "min_requests": self.min_requests,
        }
        for key in ("max_error_rate_increase", "max_p99_ratio"):
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
        return out

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return self.model_dump(mode="json")

    def __repr__(self) -> str:
        return f"DeployPolicy({self.describe()})"

    def describe(self) -> str:
        """One line for people."""
        if not self.automatic:
            return "not automatic (Production waits for a person)"
        steps = " → ".join(f"{s:g}%" for s in self.steps)
        return (
            f"automatic {self.strategy} on {self.endpoint!r}: {steps}, each step >= "
            f"{self.min_seconds:g} s and >= {self.min_requests} canary requests"
        )

    @classmethod
    def parse(cls, data: Any) -> DeployPolicy:
        """From plain data; InvalidInput naming the field (``deploy: steps: ...``)."""
        if data is None:
            return cls()
        if not isinstance(data, dict):
            raise InvalidInput(
                f"Policy section 'deploy' must be a mapping, got {_short(data)} "
                f"({type(data).__name__}).",
                hint="For example deploy: {automatic: true, endpoint: churn}",
            )
        unknown = [k for k in data if k not in cls.model_fields]
        if unknown:
            raise InvalidInput(
                f"deploy: unknown setting(s) {', '.join(map(repr, unknown))}; use "
                + ", ".join(cls.model_fields)
                + "."
                + did_you_mean(str(unknown[0]), cls.model_fields)
            )
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            first = exc.errors()[0]
            loc = ".".join(str(p) for p in first["loc"])
            if first["type"] == "value_error":
                text = first["msg"].removeprefix("Value error, ")
            else:
                text = f"{first['msg']} (got {first['input']!r:.80})"
            raise InvalidInput(
                f"deploy: {loc + ': ' if loc else ''}{text}.",
                hint="Write numbers as plain finite numbers and true/false for flags."
                if first["type"] != "value_error"
                else None,
            ) from exc


@dataclass(frozen=True)
class PromotionPolicy:
    """Gates per target stage. An empty policy lets every legal transition through.

    ``allow_direct_production``: when False (the default), a version entering Production
    from a stage other than Staging passes the ``staging`` gates as well.
    """

    staging: list[Gate] = field(default_factory=list)
    production: list[Gate] = field(default_factory=list)
    allow_direct_production: bool = False
    deploy: DeployPolicy = field(default_factory=DeployPolicy)

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
        out: dict[str, Any] = {
            "staging": [g.model_dump(mode="json", exclude_none=True) for g in self.staging],
            "production": [g.model_dump(mode="json", exclude_none=True) for g in self.production],
            "allow_direct_production": self.allow_direct_production,
        }
        # the default says only what matters: nothing is deployed automatically
        out["deploy"] = (
            {"automatic": False}
            if self.deploy.default
            else self.deploy.model_dump(mode="json", exclude_none=True)
        )
        return out

    def __repr__(self) -> str:
        def kinds(gates: list[Gate]) -> str:
            return ", ".join(g.name or g.kind for g in gates) or "none"

        deploy = f"; deploy: {self.deploy.describe()}" if self.deploy.automatic else ""
        return (
            f"PromotionPolicy(Staging: {kinds(self.staging)}; "
            f"Production: {kinds(self.production)}{deploy})"
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
                "use staging, production, allow_direct_production and deploy."
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
            staging=out["staging"],
            production=out["production"],
            allow_direct_production=direct,
            deploy=DeployPolicy.parse(data.get("deploy")),
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
