"""An in-memory Recorder (a real implementation of the Protocol) and a local blob store."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from milepost.pipelines.records import PlannedStep, StepResult
from milepost.pipelines.runners import LocalRunner
from milepost.stores.blobs import LocalBlobStore


class MemoryRecorder:
    """Keeps what the engine reports; serves cache lookups from every run it saw.

    ``run_id`` is the run being recorded: a cache hit's ``cached_from`` names the run
    that stored the result, as the service's store does.
    """

    def __init__(self) -> None:
        self.run_id = "run-1"
        self.plans: list[list[PlannedStep]] = []
        self.events: list[tuple[str, ...]] = []
        self.results: dict[tuple[str, str], StepResult] = {}
        self.thread_ids: set[int] = set()

    def _note(self) -> None:
        self.thread_ids.add(threading.get_ident())

    def plan(self, steps: Sequence[PlannedStep]) -> None:
        self._note()
        self.plans.append(list(steps))
        self.events.append(("plan",))

    def lookup_cache(self, step: str, cache_key: str) -> StepResult | None:
        self._note()
        self.events.append(("lookup", step))
        for (run_id, _), r in self.results.items():
            if r.cache_key == cache_key and r.status in ("succeeded", "cached"):
                from dataclasses import replace

                return replace(r, cached_from=r.cached_from or run_id)
        return None

    def step_started(self, step: str, attempt: int, at_ms: int) -> None:
        self._note()
        self.events.append(("started", step, str(attempt)))

    def step_finished(self, result: StepResult) -> None:
        self._note()
        self.events.append(("finished", result.step, result.status))
        self.results[(self.run_id, result.step)] = result

    def of(self, run_id: str) -> dict[str, StepResult]:
        return {s: r for (rid, s), r in self.results.items() if rid == run_id}


@pytest.fixture
def recorder() -> MemoryRecorder:
    return MemoryRecorder()


@pytest.fixture
def blobs(tmp_path: Path) -> LocalBlobStore:
    return LocalBlobStore(tmp_path / "artifacts")


@pytest.fixture
def runner() -> Iterator[LocalRunner]:
    with LocalRunner(max_workers=2) as r:
        yield r
