"""Read-only views of tracking objects. Store rows never reach callers."""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

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
        return {
            "experiment_id": self.experiment_id,
            "name": self.name,
            "lifecycle_stage": self.lifecycle_stage,
            "description": self.description,
            "created_by": self.created_by,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
        }


@dataclass(frozen=True)
class Metric:
    """One logged value of a metric."""

    key: str
    value: float
    step: int
    timestamp: int

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (NaN and infinities as strings)."""
        return {
            "key": self.key,
            "value": json_float(self.value),
            "step": self.step,
            "timestamp": self.timestamp,
        }


def json_float(value: float) -> float | str:
    """A float for JSON: NaN and infinities become strings, as JSON has none."""
    if math.isnan(value) or math.isinf(value):
        return str(value)
    return value


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
        return {
            "env_hash": self.env_hash,
            "python_version": self.python_version,
            "platform": self.platform,
            "packages_hash": self.packages_hash,
            "packages": list(self.packages),
        }


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
        """A JSON-ready dict."""
        return {
            "run_id": self.run_id,
            "experiment_id": self.experiment_id,
            "name": self.name,
            "status": self.status.value,
            "start_time": self.start_time,
            "end_time": self.end_time,
            "user": self.user,
            "parent_run_id": self.parent_run_id,
            "source": self.source,
            "git_commit": self.git_commit,
            "git_dirty": self.git_dirty,
            "error": self.error,
            "env_hash": self.env_hash,
            "params": dict(self.params),
            "metrics": {k: json_float(v) for k, v in self.metrics.items()},
            "tags": dict(self.tags),
        }


@dataclass(frozen=True)
class ArtifactInfo:
    """A file logged with a run."""

    path: str
    digest: str
    size: int

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {"path": self.path, "digest": self.digest, "size": self.size}


T = TypeVar("T")


class PagedList(list[T], Generic[T]):
    """A page of results; ``token`` fetches the next page (``None`` on the last)."""

    def __init__(self, items: list[T], token: str | None) -> None:
        super().__init__(items)
        self.token = token
