"""Gates: named checks a model version must pass to enter a stage.

A gate is a small pydantic model with a ``kind`` and a ``check(ctx) -> GateResult``.
Built in:

- ``metric_vs_baseline``: the candidate and the current Production version are both
  scored on the same evaluation dataset, now; the candidate must improve the primary
  metric by at least ``min_delta`` and not regress any guard metric by more than its
  tolerance. With no Production version, an absolute ``threshold`` applies.
- ``data_validation``: the dataset versions the candidate trained on passed their latest
  validation (optionally of a named suite).
- ``approval``: a person with a role (default ``approver``) approves; until then the
  request waits. The requester cannot approve their own request unless allowed.
- ``fairness``: the candidate is audited now on a dataset (fairlearn's demographic parity
  and equalized odds per sensitive feature, stored as a fairness audit) and each named
  bound must hold for each feature, e.g. the four-fifths rule
  ``min_demographic_parity_ratio: 0.8``.

Add a gate by subclassing :class:`Gate` with a ``kind: Literal["..."]`` field and
decorating it with :func:`register_gate` (or exposing it in the ``milepost.gates``
entry-point group); policies then name it by ``kind``.

Parameters are checked when a policy is set, strictly: numbers must be finite (no NaN or
infinity), a string such as ``"0.5"`` or a boolean is not taken for a number, ``count``
is a whole number, and metric names must be known. Checks fail closed: a comparison that
involves a missing, NaN or infinite value never lets a version through.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Any, Literal, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from milepost._records import record_dict, short
from milepost._validate import safe_chars
from milepost.errors import InvalidInput, MilepostError, did_you_mean
from milepost.evaluation.metrics import HIGHER_IS_BETTER, LOWER_IS_BETTER

if TYPE_CHECKING:
    from collections.abc import Callable

    from milepost.data.service import DataService
    from milepost.evaluation.fairness import FairnessResult
    from milepost.evaluation.service import EvaluationResult
    from milepost.governance.roles import RoleService
    from milepost.models.models import ModelVersion

__all__ = [
    "GATE_KINDS",
    "Approval",
    "DataValidation",
    "Fairness",
    "Gate",
    "GateContext",
    "GateResult",
    "GateStatus",
    "MetricVsBaseline",
    "parse_gate",
    "register_gate",
]

# skipped: never asked, because an automated gate of the same request failed (an approval
# is not requested for a refused promotion, so it is never shown as pending)
GateStatus = Literal["passed", "failed", "pending", "error", "skipped"]


@dataclass(frozen=True)
class GateResult:
    """A gate's recorded outcome."""

    name: str
    kind: str
    status: GateStatus
    message: str
    details: dict[str, Any] = field(default_factory=dict)
    evaluated_by: str = ""
    at: int = 0

    @property
    def passed(self) -> bool:
        """True when the gate let the version through."""
        return self.status == "passed"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return record_dict(self)

    def __repr__(self) -> str:
        return f"GateResult({self.name!r} {self.status}: {short(self.message)})"


@dataclass
class GateContext:
    """What a gate can look at while checking a candidate."""

    model: str
    candidate: ModelVersion
    target_stage: str
    production: ModelVersion | None
    actor: str
    evaluate: Callable[..., EvaluationResult]
    data: DataService
    roles: RoleService
    #: runs and stores a fairness audit (``EvaluationService.audit_fairness``); a
    #: ``fairness`` gate fails closed without it
    audit_fairness: Callable[..., FairnessResult] | None = None


class Gate(BaseModel):
    """Base of every gate. ``name`` labels it in reports (default: its kind).

    Validation is strict (no coercion of strings or booleans into numbers) and refuses
    NaN and infinities; subclasses inherit that.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)

    kind: str
    name: Annotated[str, Field(min_length=1, max_length=200), AfterValidator(safe_chars)] | None = (
        None
    )

    def __init__(self, **data: Any) -> None:
        """Build a gate in Python; a bad field is InvalidInput, as in a policy."""
        try:
            super().__init__(**data)
        except ValidationError as exc:
            kind = data.get("kind", type(self).model_fields["kind"].default)
            raise _invalid_gate(exc, type(self).__name__, str(kind)) from exc

    def label(self) -> str:
        """The name shown in reports."""
        return self.name or self.kind

    def check(self, ctx: GateContext) -> GateResult:  # pragma: no cover - abstract
        """Decide: passed, failed, or pending (waits for a person)."""
        raise NotImplementedError

    def result(self, status: GateStatus, message: str, **details: Any) -> GateResult:
        """A result for this gate, stamped now."""
        return GateResult(
            self.label(), self.kind, status, message, details, at=int(time.time() * 1000)
        )


GATE_KINDS: dict[str, type[Gate]] = {}
G = TypeVar("G", bound=type[Gate])


def register_gate(cls: G) -> G:
    """Class decorator: make a gate kind usable in policies.

    Raises:
        InvalidInput: ``cls`` is not a Gate subclass with a default ``kind``.
    """
    if not (isinstance(cls, type) and issubclass(cls, Gate)):
        raise InvalidInput(
            f"register_gate takes a Gate subclass, got {cls!r}.",
            hint="Decorate a class that derives from milepost.promotion.Gate.",
        )
    kind = cls.model_fields["kind"].default  # type: ignore[call-overload]
    if not isinstance(kind, str):
        raise InvalidInput(f"{cls.__name__} needs a default for its kind field.")
    GATE_KINDS[kind] = cls
    return cls


def _load_entry_points() -> None:
    from importlib.metadata import entry_points

    for ep in entry_points(group="milepost.gates"):
        cls = ep.load()
        if isinstance(cls, type) and issubclass(cls, Gate):
            register_gate(cls)


def parse_gate(data: Any, *, where: str = "gate") -> Gate:
    """A gate from plain data (``{"kind": "approval", ...}``).

    Raises:
        InvalidInput: unknown kind (with close names) or a bad field.
    """
    if not isinstance(data, dict) or not isinstance(data.get("kind"), str):
        got = data.get("kind") if isinstance(data, dict) else data
        raise InvalidInput(
            f"{where}: each gate needs a 'kind' naming it (got {got!r:.80}).",
            hint="Known kinds: " + ", ".join(sorted(GATE_KINDS)) + ".",
        )
    kind = data["kind"]
    if kind not in GATE_KINDS:
        _load_entry_points()
    cls = GATE_KINDS.get(kind)
    if cls is None:
        raise InvalidInput(
            f"{where}: unknown gate kind {kind!r}.{did_you_mean(kind, GATE_KINDS)}",
            hint="Known: " + ", ".join(sorted(GATE_KINDS)) + ".",
        )
    try:
        return cls.model_validate(data)
    except ValidationError as exc:
        raise _invalid_gate(exc, where, kind) from exc
    except InvalidInput as exc:  # from Gate.__init__ (pydantic validates through it)
        if isinstance(exc.__cause__, ValidationError):
            raise _invalid_gate(exc.__cause__, where, kind) from exc.__cause__
        raise


def _invalid_gate(exc: ValidationError, where: str, kind: str) -> InvalidInput:
    """``production[0] (metric_vs_baseline): min_delta: <what is wrong> (got <value>).``"""
    first = exc.errors()[0]
    loc = ".".join(str(p) for p in first["loc"])
    if first["type"] == "value_error":  # our validators name the field and the value
        text = first["msg"].removeprefix("Value error, ")
    else:
        text = f"{first['msg']} (got {first['input']!r:.80})"
    return InvalidInput(
        f"{where} ({kind}): {loc + ': ' if loc else ''}{text}.",
        hint=_TYPE_HINT if first["type"] in _TYPE_ERRORS else None,
    )


_TYPE_ERRORS = {"finite_number", "float_type", "int_type", "bool_type", "string_type"}
_TYPE_HINT = (
    "Write numbers as plain finite numbers (not quoted, not booleans, NaN or infinity), "
    "and true/false for flags."
)


_KNOWN_METRICS = sorted(HIGHER_IS_BETTER | LOWER_IS_BETTER)
# Where each metric's values can lie: a threshold outside can never be met (or always is).
_METRIC_RANGE: dict[str, tuple[float, float]] = {
    **{
        m: (0.0, 1.0)
        for m in (
            "accuracy",
            "balanced_accuracy",
            "precision",
            "recall",
            "f1",
            "roc_auc",
            "pr_auc",
            "brier",
        )
    },
    "r2": (-math.inf, 1.0),
    **{m: (0.0, math.inf) for m in ("log_loss", "rmse", "mae")},
}


_TASK_METRICS = {
    "classification": frozenset(
        {
            "accuracy",
            "balanced_accuracy",
            "precision",
            "recall",
            "f1",
            "roc_auc",
            "pr_auc",
            "log_loss",
            "brier",
        }
    ),
    "regression": frozenset({"rmse", "mae", "r2"}),
}


def _unknown_metric(metric: str) -> str:
    return (
        f"unknown metric {metric!r}.{did_you_mean(metric, _KNOWN_METRICS)} "
        f"Known: {', '.join(_KNOWN_METRICS)}"
    )


def _direction(metric: str) -> int:
    if metric in HIGHER_IS_BETTER:
        return 1
    if metric in LOWER_IS_BETTER:
        return -1
    raise InvalidInput(f"Gate: {_unknown_metric(metric)}.")


def _finite(value: Any) -> float | None:
    """The value as a float when it is a real, finite number, else None (also for NaN,
    infinities, booleans and strings): callers treat None as a failed comparison."""
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None


def _reading(primary: str, cand: dict[str, Any], base: dict[str, Any] | None = None) -> str:
    """What to read the primary metric against on a binary label: PR AUC (candidate vs
    Production) and the base rate, which is what accuracy and PR AUC score with no skill."""
    parts = []
    c_pr = _finite(cand.get("pr_auc"))
    if primary != "pr_auc" and c_pr is not None:
        b_pr = _finite(base.get("pr_auc")) if base is not None else None
        parts.append(f"pr_auc {c_pr:.4f}" + (f" vs {b_pr:.4f}" if b_pr is not None else ""))
    rate = _finite(cand.get("base_rate"))
    if rate is not None:
        parts.append(f"base rate {rate:.3f}")
    return "; " + ", ".join(parts) if parts else ""


NonNegative = Annotated[float, Field(ge=0)]


@register_gate
class MetricVsBaseline(Gate):
    """Better than Production on the same data, by ``min_delta``, without regressions."""

    kind: Literal["metric_vs_baseline"] = "metric_vs_baseline"
    dataset: str = Field(description="Evaluation dataset version, e.g. churn.test@3.")
    target: str = Field(description="The label column.")
    task: Literal["classification", "regression"] | None = None
    primary: str = "roc_auc"
    min_delta: NonNegative = Field(
        default=0.0, description="Smallest improvement over Production that passes (>= 0)."
    )
    guards: dict[str, NonNegative] = Field(
        default_factory=dict, description="metric -> largest allowed regression (absolute)."
    )
    threshold: float | None = Field(
        default=None,
        description="Absolute bar for the primary metric when there is no Production version.",
    )

    @field_validator("dataset", "target")
    @classmethod
    def _not_empty(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("String should have at least 1 character that is not a space")
        return value

    @field_validator("primary")
    @classmethod
    def _known_primary(cls, value: str) -> str:
        if value not in _METRIC_RANGE:
            raise ValueError(_unknown_metric(value))
        return value

    @field_validator("guards")
    @classmethod
    def _known_guards(cls, value: dict[str, float]) -> dict[str, float]:
        for metric in value:
            if metric not in _METRIC_RANGE:
                raise ValueError(_unknown_metric(metric))
        return value

    @model_validator(mode="after")
    def _consistent(self) -> MetricVsBaseline:
        if self.task is not None:
            task_metrics = _TASK_METRICS[self.task]
            for metric in (self.primary, *self.guards):
                if metric not in task_metrics:
                    raise ValueError(
                        f"{metric} is not a {self.task} metric; use one of "
                        f"{', '.join(sorted(task_metrics))} (or drop task to infer it)"
                    )
        if self.threshold is not None:
            low, high = _METRIC_RANGE[self.primary]
            if not low <= self.threshold <= high:
                raise ValueError(
                    f"threshold: {self.threshold:g} can never be met or always is: "
                    f"{self.primary} lies in [{low:g}, {high:g}]"
                )
        return self

    def check(self, ctx: GateContext) -> GateResult:
        sign = _direction(self.primary)
        for g in self.guards:
            _direction(g)
        cand = ctx.evaluate(ctx.candidate, self.dataset, target=self.target, task=self.task)
        c_raw = cand.metrics.get(self.primary)
        c_val = _finite(c_raw)
        if c_val is None:
            return self.result(
                "error",
                f"{self.primary} could not be computed for the candidate on {self.dataset}."
                if c_raw is None
                else f"{self.primary} of the candidate on {self.dataset} is {c_raw}, "
                "not a finite number; the gate fails closed.",
                candidate=c_raw,
                candidate_eval=cand.eval_id,
            )
        details: dict[str, Any] = {
            "dataset": self.dataset,
            "primary": self.primary,
            "candidate": c_val,
            "candidate_eval": cand.eval_id,
        }
        base_model = ctx.production
        if base_model is None or base_model.version == ctx.candidate.version:
            if self.threshold is None:
                return self.result(
                    "failed",
                    f"no Production version to compare with and no threshold set for "
                    f"{self.primary}; add 'threshold' to the gate",
                    **details,
                )
            # written so that anything but a finite comparison that holds fails
            ok = c_val >= self.threshold if sign > 0 else c_val <= self.threshold
            cmp = (">=" if sign > 0 else "<=") if ok else "misses"
            return self.result(
                "passed" if ok else "failed",
                f"{self.primary} {c_val:.4f} {cmp} threshold {self.threshold:g} "
                "(no Production version yet)" + _reading(self.primary, cand.metrics),
                threshold=self.threshold,
                **details,
            )
        base = ctx.evaluate(base_model, self.dataset, target=self.target, task=self.task)
        b_raw = base.metrics.get(self.primary)
        details.update(
            baseline=b_raw, baseline_version=base_model.version, baseline_eval=base.eval_id
        )
        b_val = _finite(b_raw)
        if b_val is None:
            return self.result(
                "error",
                f"{self.primary} could not be computed for Production v{base_model.version}."
                if b_raw is None
                else f"{self.primary} of Production v{base_model.version} on {self.dataset} is "
                f"{b_raw}, not a finite number; the gate fails closed.",
                **details,
            )
        gain = (c_val - b_val) * sign
        details["improvement"] = gain
        problems = []
        if not (math.isfinite(gain) and gain >= self.min_delta):
            problems.append(
                f"{self.primary} {c_val:.4f} vs Production v{base_model.version} "
                f"{b_val:.4f}: improvement {gain:+.4f} < min_delta {self.min_delta:g}"
            )
        guard_report = {}
        for metric, tolerance in self.guards.items():
            cv_raw, bv_raw = cand.metrics.get(metric), base.metrics.get(metric)
            cv, bv = _finite(cv_raw), _finite(bv_raw)
            if cv is None or bv is None:
                problems.append(
                    f"guard {metric} could not be computed"
                    if cv_raw is None or bv_raw is None
                    else f"guard {metric} is not a finite number (candidate {cv_raw}, "
                    f"Production {bv_raw})"
                )
                continue
            regression = (bv - cv) * _direction(metric)
            guard_report[metric] = {
                "candidate": cv,
                "baseline": bv,
                "regression": regression,
                "tolerance": tolerance,
            }
            if not (math.isfinite(regression) and regression <= tolerance):
                problems.append(f"{metric} regressed by {regression:.4f} > tolerance {tolerance:g}")
        details["guards"] = guard_report
        if problems:
            return self.result(
                "failed",
                "; ".join(problems) + _reading(self.primary, cand.metrics, base.metrics),
                **details,
            )
        return self.result(
            "passed",
            f"{self.primary} {c_val:.4f} vs Production v{base_model.version} "
            f"{b_val:.4f}: {gain:+.4f} >= {self.min_delta:g}"
            + (f"; guards within tolerance ({', '.join(guard_report)})" if guard_report else "")
            + _reading(self.primary, cand.metrics, base.metrics),
            **details,
        )


@register_gate
class DataValidation(Gate):
    """The candidate's training data passed its latest validation."""

    kind: Literal["data_validation"] = "data_validation"
    suite: Annotated[str, Field(min_length=1)] | None = Field(
        default=None, description="Only results of this suite count."
    )
    roles: list[Annotated[str, Field(min_length=1)]] = Field(
        default_factory=lambda: ["train"], min_length=1
    )

    def check(self, ctx: GateContext) -> GateResult:
        inputs = [d for d in ctx.candidate.datasets if d.get("role") in self.roles]
        if not inputs:
            return self.result(
                "failed",
                f"the candidate's run recorded no {'/'.join(self.roles)} dataset "
                "(use milepost.log_input in the training run)",
            )
        report: dict[str, Any] = {}
        problems = []
        for item in inputs:
            ref = item["ref"]
            results = [
                r
                for r in ctx.data.validations(ref)
                if self.suite is None or r.suite_name == self.suite
            ]
            if not results:
                problems.append(
                    f"{ref} was never validated"
                    + (f" with suite {self.suite!r}" if self.suite else "")
                )
                report[ref] = None
                continue
            latest = results[0]
            report[ref] = {
                "result_id": latest.result_id,
                "suite": latest.suite_name,
                "success": latest.success,
                "failed": len(latest.failing),
            }
            if not latest.success:
                problems.append(
                    f"{ref} failed suite {latest.suite_name!r} ({len(latest.failing)} checks)"
                )
        if problems:
            return self.result("failed", "; ".join(problems), datasets=report)
        return self.result("passed", "validated: " + ", ".join(report), datasets=report)


@register_gate
class Approval(Gate):
    """A person with ``role`` approves (``count`` different people)."""

    kind: Literal["approval"] = "approval"
    role: str = Field(default="approver", min_length=1)
    count: int = Field(default=1, ge=1, le=10)
    allow_self_approval: bool = False

    def check(self, ctx: GateContext) -> GateResult:
        holders = ctx.roles.holders(self.role)
        hint = (
            f" (holders: {', '.join(holders[:5])})"
            if holders
            else f" (nobody holds it yet: `milepost roles grant USER {self.role}`)"
        )
        return self.result(
            "pending",
            f"awaiting {self.count} approval(s) by role {self.role!r}{hint}",
            approvals=[],
            spec=self.model_dump(),
        )


#: The bounds of a ``fairness`` gate: field -> (summary key, words, "min" or "max").
_FAIRNESS_BOUNDS: dict[str, tuple[str, str, str]] = {
    "min_demographic_parity_ratio": (
        "demographic_parity_ratio",
        "demographic parity ratio",
        "min",
    ),
    "max_demographic_parity_difference": (
        "demographic_parity_difference",
        "demographic parity difference",
        "max",
    ),
    "min_equalized_odds_ratio": ("equalized_odds_ratio", "equalized odds ratio", "min"),
    "max_equalized_odds_difference": (
        "equalized_odds_difference",
        "equalized odds difference",
        "max",
    ),
}
Unit = Annotated[float, Field(ge=0, le=1)]
Column = Annotated[str, Field(min_length=1, max_length=256), AfterValidator(safe_chars)]


@register_gate
class Fairness(Gate):
    """Fair enough across sensitive features on a dataset, by fairlearn's measures.

    The candidate is audited when the gate runs (the audit is stored; the result's
    ``details`` name it and carry its summary). Each bound set applies to every feature
    in ``sensitive_features``; a value that cannot be computed (e.g. equalized odds when a
    group has no positive label) fails the gate. Small groups are reported, not failed on.
    """

    kind: Literal["fairness"] = "fairness"
    dataset: str = Field(description="Audit dataset version, e.g. churn.test@1.")
    target: str = Field(description="The label column.")
    sensitive_features: list[Column] = Field(
        min_length=1, description="Columns to audit, e.g. [gender]."
    )
    min_demographic_parity_ratio: Unit | None = Field(
        default=None, description="Lowest selection-rate ratio that passes (0.8: four-fifths)."
    )
    max_demographic_parity_difference: Unit | None = None
    min_equalized_odds_ratio: Unit | None = None
    max_equalized_odds_difference: Unit | None = None
    min_group_size: int = Field(default=30, ge=1, le=10**9)
    threshold: Unit = 0.5
    positive_label: str | int | None = None

    @field_validator("dataset", "target")
    @classmethod
    def _not_empty(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("String should have at least 1 character that is not a space")
        return value

    @model_validator(mode="after")
    def _bounded(self) -> Fairness:
        if all(getattr(self, b) is None for b in _FAIRNESS_BOUNDS):
            raise ValueError(
                "set at least one bound: " + ", ".join(_FAIRNESS_BOUNDS) + " (e.g. "
                "min_demographic_parity_ratio: 0.8, the four-fifths rule)"
            )
        if len(set(self.sensitive_features)) != len(self.sensitive_features):
            raise ValueError(f"sensitive_features repeats a column: {self.sensitive_features}")
        if self.target in self.sensitive_features:
            raise ValueError(f"the target {self.target!r} cannot be a sensitive feature too")
        return self

    def check(self, ctx: GateContext) -> GateResult:
        if ctx.audit_fairness is None:
            return self.result("error", "no fairness auditor is wired in; the gate fails closed")
        audit = ctx.audit_fairness(
            ctx.candidate,
            self.dataset,
            target=self.target,
            sensitive_features=self.sensitive_features,
            min_group_size=self.min_group_size,
            threshold=self.threshold,
            positive_label=self.positive_label,
        )
        bounds = {b: getattr(self, b) for b in _FAIRNESS_BOUNDS if getattr(self, b) is not None}
        problems: list[str] = []
        held: list[str] = []
        for feature in self.sensitive_features:
            values = audit.summary.get(feature, {})
            for bound, limit in bounds.items():
                key, words, side = _FAIRNESS_BOUNDS[bound]
                raw = values.get(key)
                value = _finite(raw)
                if value is None:
                    problems.append(
                        f"{feature}: {words} could not be computed (a group lacks positive "
                        "or negative labels, or no group is selected); the gate fails closed"
                    )
                    continue
                # written so that only a finite comparison that holds passes
                ok = value >= limit if side == "min" else value <= limit
                cmp = (">=" if ok else "<") if side == "min" else ("<=" if ok else ">")
                (held if ok else problems).append(
                    f"{feature}: {words} {value:.2f} {cmp} {limit:.2f}"
                )
        unreliable = audit.unreliable_groups
        note = f" (unreliable: {', '.join(unreliable)})" if unreliable else ""
        details = {
            "audit_id": audit.audit_id,
            "dataset": self.dataset,
            "summary": audit.summary,
            "bounds": bounds,
            "unreliable_groups": unreliable,
        }
        if problems:
            return self.result("failed", "; ".join(problems) + note, **details)
        return self.result("passed", "; ".join(held) + note, **details)


def run_gate(gate: Gate, ctx: GateContext) -> GateResult:
    """Check a gate; a Milepost error inside it becomes an ``error`` result, not a crash."""
    try:
        return gate.check(ctx)
    except MilepostError as exc:
        return gate.result("error", f"{exc.message}{(' ' + exc.hint) if exc.hint else ''}")
