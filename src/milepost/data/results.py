"""Validation results: stored, usable as a gate, rendered as text, JSON or HTML.

Every form says the same thing: each check's ``summary`` is one sentence (what was found,
against what was expected), and the verdict counts passed and failed checks
(``6 passed, 4 failed of 10 checks``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime, timedelta
from importlib import resources
from typing import Any

from milepost._records import record_dict
from milepost.data._format import count
from milepost.errors import ValidationFailed

__all__ = ["CheckResult", "ValidationResult"]


def _observed_text(observed: Any) -> str:
    if isinstance(observed, dict):
        return ", ".join(f"{k} {v}" for k, v in observed.items())
    return "" if observed is None else str(observed)


@dataclass(frozen=True, repr=False)
class CheckResult:
    """The outcome of one check.

    ``observed`` is what was measured, for machines (a number or a small dict);
    ``summary`` says it in one sentence for people, passed or failed; ``message`` is the
    reason a failed check failed (empty when it passed).
    """

    name: str
    kind: str
    success: bool
    observed: Any
    expected: str
    column: str | None = None
    failing_rows: int | None = None
    failing_fraction: float | None = None
    examples: list[dict[str, Any]] = field(default_factory=list)
    message: str = ""
    summary: str = ""

    def __post_init__(self) -> None:
        if not self.summary:  # results stored before summaries existed
            object.__setattr__(self, "summary", self.message or _observed_text(self.observed))

    def __repr__(self) -> str:
        return f"CheckResult({self.name}: {'ok' if self.success else 'FAIL'}, {self.summary})"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return record_dict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> CheckResult:
        """Inverse of :meth:`to_dict` (also reads results stored by older versions)."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


@dataclass(frozen=True, repr=False)
class ValidationResult:
    """Every check's outcome for one run of a suite over one piece of data."""

    result_id: str
    suite_name: str
    suite_hash: str
    success: bool
    checks: list[CheckResult]
    num_rows: int
    created_at: int
    created_by: str
    dataset_ref: str | None = None
    run_id: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def failing(self) -> list[CheckResult]:
        """The checks that failed."""
        return [c for c in self.checks if not c.success]

    @property
    def passing(self) -> list[CheckResult]:
        """The checks that passed."""
        return [c for c in self.checks if c.success]

    @property
    def summary(self) -> str:
        """``"6 passed, 4 failed of 10 checks"``: what the verdict rests on."""
        return (
            f"{len(self.passing)} passed, {len(self.failing)} failed of "
            f"{count(len(self.checks), 'check')}"
        )

    @property
    def verdict(self) -> str:
        """``PASSED`` or ``FAILED``."""
        return "PASSED" if self.success else "FAILED"

    @property
    def target(self) -> str:
        """What was validated, for messages."""
        return f"Dataset {self.dataset_ref}" if self.dataset_ref else "The data"

    def __repr__(self) -> str:
        on = self.dataset_ref or "data"
        return (
            f"ValidationResult(suite {self.suite_name!r} on {on}: {self.verdict}, "
            f"{self.summary}, {count(self.num_rows, 'row')})"
        )

    def raise_for_failure(self) -> ValidationResult:
        """Raise :class:`ValidationFailed` unless every check passed; returns self."""
        if not self.success:
            failing = self.failing
            listed = "; ".join(f"{c.name}: {c.message or c.summary}" for c in failing[:5])
            more = f" (+{len(failing) - 5} more)" if len(failing) > 5 else ""
            raise ValidationFailed(
                f"{self.target} failed {len(failing)} of {len(self.checks)} checks of suite "
                f"{self.suite_name!r}: {listed}{more}.",
                hint=f"Fix the data or the suite; the full report is result {self.result_id}.",
                details=self.to_dict(),
                result=self,
            )
        return self

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (the counts and summary are derived, for readers)."""
        return {
            "result_id": self.result_id,
            "suite": self.suite_name,
            "suite_hash": self.suite_hash,
            "success": self.success,
            "summary": self.summary,
            "num_checks": len(self.checks),
            "num_passed": len(self.passing),
            "num_failed": len(self.failing),
            "dataset": self.dataset_ref,
            "run_id": self.run_id,
            "num_rows": self.num_rows,
            "created_at": self.created_at,
            "created_by": self.created_by,
            "checks": [c.to_dict() for c in self.checks],
        }

    def to_json(self) -> str:
        """The result as JSON text."""
        return json.dumps(self.to_dict(), indent=2, default=str)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ValidationResult:
        """Inverse of :meth:`to_dict`."""
        return cls(
            result_id=d["result_id"],
            suite_name=d["suite"],
            suite_hash=d["suite_hash"],
            success=d["success"],
            checks=[CheckResult.from_dict(c) for c in d["checks"]],
            num_rows=d["num_rows"],
            created_at=d["created_at"],
            created_by=d["created_by"],
            dataset_ref=d.get("dataset"),
            run_id=d.get("run_id"),
        )

    def to_text(self) -> str:
        """A readable plain-text report."""
        lines = [
            f"{self.target}: suite {self.suite_name!r} {self.verdict} "
            f"({self.summary}, {count(self.num_rows, 'row')})",
        ]
        for c in self.checks:
            said = c.summary if c.summary.startswith(c.name) else f"{c.name}: {c.summary}"
            if c.success:
                lines.append(f"  ok   {said}")
                continue
            lines.append(f"  FAIL {said}")  # the summary says what was expected
            for ex in c.examples[:2]:
                shown = ", ".join(f"{k}={_shown(v)}" for k, v in list(ex.items())[:3])
                lines.append(f"       e.g. {shown}")
        return "\n".join(lines)

    def to_html(self) -> str:
        """A small self-contained HTML report (Jinja2, autoescaped)."""
        import jinja2

        template = resources.files("milepost.data").joinpath("templates/validation.html.j2")
        env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
        created = datetime.fromtimestamp(self.created_at / 1000, tz=UTC)
        return env.from_string(template.read_text()).render(
            r=self,
            created=created.strftime("%Y-%m-%d %H:%M:%S UTC"),
            rows=count(self.num_rows, "row"),
        )


def _shown(value: Any) -> Any:
    """An example value for the text report: ISO times to the second (JSON keeps them whole)."""
    if isinstance(value, str) and len(value) >= 19 and value[10:11] == "T":
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            return value
        zone = (
            ""
            if moment.tzinfo is None
            else " UTC"
            if moment.utcoffset() == timedelta(0)
            else (moment.strftime(" %z"))
        )
        return moment.strftime("%Y-%m-%d %H:%M:%S") + zone
    return value
