"""How the service records a run while the engine executes it: the recorder the engine
reports to, the heartbeat that keeps the run alive, and the code version it records.

:class:`StoreRecorder` turns each engine event into one short write (no reads but the
cache lookup): the recording cost is on the path of every step. :class:`Heartbeat`
moves the run's ``heartbeat_at`` from a daemon thread, so long steps keep their run
alive without each event paying for it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from milepost.tracking.environment import git_info

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from milepost.pipelines.records import PlannedStep, StepResult
    from milepost.pipelines.store import SqlPipelineStore
    from milepost.stores.blobs import BlobStore

__all__ = ["Heartbeat", "StoreRecorder", "code_version", "now_ms"]


def now_ms(clock: Callable[[], float]) -> int:
    return int(clock() * 1000)


class StoreRecorder:
    """The engine's :class:`~milepost.pipelines.Recorder` on the metadata store: one
    write per event, no reads but the cache lookup.

    Args:
        store: where to write.
        run_id: the pipeline run being recorded.
        blobs: the artifact store (a cache hit's outputs must still be in it).
        cache: False turns cache lookups off (every step runs).
    """

    def __init__(
        self, store: SqlPipelineStore, run_id: str, blobs: BlobStore, *, cache: bool = True
    ) -> None:
        self.store = store
        self.run_id = run_id
        self.blobs = blobs
        self.cache = cache

    def plan(self, steps: Sequence[PlannedStep]) -> None:
        self.store.plan(self.run_id, steps)

    def lookup_cache(self, step: str, cache_key: str) -> StepResult | None:
        if not self.cache:
            return None
        found = self.store.lookup_cache(cache_key, self.blobs.exists)
        return None if found is None else dataclasses.replace(found, step=step)

    def step_started(self, step: str, attempt: int, at_ms: int) -> None:
        self.store.step_started(self.run_id, step, attempt, at_ms)

    def step_finished(self, result: StepResult) -> None:
        self.store.step_finished(self.run_id, result)


class Heartbeat:
    """Moves a run's heartbeat every ``interval`` seconds until stopped."""

    def __init__(self, store: SqlPipelineStore, run_id: str, interval: float, clock: Any) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._beat,
            args=(store, run_id, interval, clock),
            name=f"milepost-pipeline-heartbeat-{run_id[:8]}",
            daemon=True,
        )
        self._thread.start()

    def _beat(self, store: SqlPipelineStore, run_id: str, interval: float, clock: Any) -> None:
        while not self._stop.wait(interval):
            try:
                if not store.heartbeat(run_id, now_ms(clock)):
                    return  # ended (or reaped) meanwhile
            except Exception:  # noqa: S112 - a missed beat is retried at the next one
                continue

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


def code_version(ref: str) -> dict[str, Any]:
    """The code a run ran: ``commit`` and ``dirty`` of the git checkout holding the
    pipeline's module (None outside one) and ``source_sha256`` of its source file."""
    module = sys.modules.get(ref.partition(":")[0])
    source = getattr(module, "__file__", None)
    out: dict[str, Any] = {"commit": None, "dirty": None, "source_sha256": None}
    if source and Path(source).is_file():
        path = Path(source)
        out["source_sha256"] = hashlib.sha256(path.read_bytes()).hexdigest()
        git = git_info(path.resolve().parent)
        if git is not None:
            out["commit"], out["dirty"] = git.commit, git.dirty
    return out
