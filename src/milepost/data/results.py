"""Validation results: stored, usable as a gate, rendered as text, JSON or HTML."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import resources
from typing import Any

from milepost.data.validation import CheckResult
from milepost.errors import ValidationFailed

__all__ = ["ValidationResult"]


@dataclass(frozen=True)
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
    def target(self) -> str:
        """What was validated, for messages."""
        return f"Dataset {self.dataset_ref}" if self.dataset_ref else "The data"

    def raise_for_failure(self) -> ValidationResult:
        """Raise :class:`ValidationFailed` unless every check passed; returns self."""
        if not self.success:
            failing = self.failing
            listed = "; ".join(f"{c.name}: {c.message or c.observed}" for c in failing[:5])
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
        """A JSON-ready dict."""
        return {
            "result_id": self.result_id,
            "suite": self.suite_name,
            "suite_hash": self.suite_hash,
            "success": self.success,
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
        verdict = "PASSED" if self.success else "FAILED"
        lines = [
            f"{self.target}: suite {self.suite_name!r} {verdict} "
            f"({len(self.checks) - len(self.failing)}/{len(self.checks)} checks, "
            f"{self.num_rows:,} rows)",
        ]
        for c in self.checks:
            if c.success:
                observed = str(c.observed)
                lines.append(f"  ok   {c.name}" + (f": {observed}" if len(observed) <= 60 else ""))
                continue
            lines.append(f"  FAIL {c.name}: {c.message or c.observed}")
            if c.expected not in (c.message or ""):
                lines.append(f"       expected: {c.expected}")
            for ex in c.examples[:2]:
                shown = ", ".join(f"{k}={v}" for k, v in list(ex.items())[:3])
                lines.append(f"       e.g. {shown}")
        return "\n".join(lines)

    def to_html(self) -> str:
        """A small self-contained HTML report (Jinja2, autoescaped)."""
        import jinja2

        template = resources.files("milepost.data").joinpath("templates/validation.html.j2")
        env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
        created = datetime.fromtimestamp(self.created_at / 1000, tz=UTC)
        return env.from_string(template.read_text()).render(
            r=self, created=created.strftime("%Y-%m-%d %H:%M:%S UTC")
        )
