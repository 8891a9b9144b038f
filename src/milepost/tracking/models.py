"""Read-only views of tracking objects. Store rows never reach callers."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

from milepost._records import record_dict

__all__ = [
    "ArtifactInfo",
    "Environment",
    "Experiment",
    "Metric",
    "PagedList",
    "Run",
    "RunStatus",
]


def ms_to_datetime(ms: int | None) -> datetime | None:
    """Milliseconds since the epoch to an aware UTC datetime."""
    return None if ms is None else datetime.fromtimestamp(ms / 1000, tz=UTC)


class RunStatus(enum.StrEnum):
    """Where a run is in its life."""

    RUNNING = "RUNNING"
    FINISHED = "FINISHED"
    FAILED = "FAILED"
    KILLED = "KILLED"

    @property
    def terminal(self) -> bool:
        """True once the run has ended."""
        return self is not RunStatus.RUNNING


@dataclass(frozen=True)
class Experiment:
    """A named group of runs."""

    experiment_id: int
    name: str
    lifecycle_stage: str
    description: str | None
    created_by: str
    created_at: int
    updated_at: int

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return record_dict(self)

    def __repr__(self) -> str:
        return f"Experiment({self.experiment_id} {self.name!r} {self.lifecycle_stage})"


@dataclass(frozen=True)
class Metric:
    """One logged value of a metric."""

    key: str
    value: float
    step: int
    timestamp: int

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (NaN and infinities as strings)."""
        return record_dict(self)

    def __repr__(self) -> str:
        return f"Metric({self.key}={self.value:.6g} step {self.step})"


@dataclass(frozen=True)
class Environment:
    """The software a run ran with."""

    env_hash: str
    python_version: str
    platform: str
    packages_hash: str
    packages: list[str]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return record_dict(self)

    def __repr__(self) -> str:
        return (
            f"Environment(python {self.python_version}, {len(self.packages)} packages, "
            f"{self.env_hash[:12]})"
        )


@dataclass(frozen=True)
class Run:
    """A run with its params, latest metrics and tags."""

    run_id: str
    experiment_id: int
    name: str
    status: RunStatus
    start_time: int
    end_time: int | None
    user: str
    parent_run_id: str | None
    source: str | None
    git_commit: str | None
    git_dirty: bool | None
    error: str | None
    env_hash: str | None
    params: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)

    @property
    def start_datetime(self) -> datetime | None:
        """Start time as an aware UTC datetime."""
        return ms_to_datetime(self.start_time)

    @property
    def duration_s(self) -> float | None:
        """Seconds from start to end, or ``None`` while running."""
        if self.end_time is None:
            return None
        return (self.end_time - self.start_time) / 1000

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (NaN and infinite metrics as strings)."""
        return record_dict(self)

    def __repr__(self) -> str:
        return (
            f"Run({self.run_id[:12]} {self.name!r} {self.status.value}, "
            f"{len(self.metrics)} metrics)"
        )


@dataclass(frozen=True)
class ArtifactInfo:
    """A file logged with a run."""

    path: str
    digest: str
    size: int

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return record_dict(self)

    def __repr__(self) -> str:
        return f"ArtifactInfo({self.path}, {self.size:,} bytes, sha256 {self.digest[:12]})"


T = TypeVar("T")


class PagedList(list[T], Generic[T]):
    """A page of results; ``token`` fetches the next page (``None`` on the last)."""

    def __init__(self, items: list[T], token: str | None) -> None:
        super().__init__(items)
        self.token = token

    def __repr__(self) -> str:
        shown = ", ".join(repr(item) for item in self[:3]) + (", …" if len(self) > 3 else "")
        more = ", more with .token" if self.token else ""
        return f"PagedList({len(self)} items{more}: [{shown}])"
