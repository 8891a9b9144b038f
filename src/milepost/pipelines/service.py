"""Run pipelines and keep their records: :class:`PipelineService` (``rt.pipelines``).

``run`` resolves a pipeline (a :class:`~milepost.pipelines.Pipeline` or its
``module:attr`` ref), checks its parameters and builds its DAG, so a bad parameter, a
cycle or a type mismatch is an :class:`~milepost.errors.InvalidInput` before anything is
written. Then it inserts the run (``running``, this process's host and pid), hands the
engine (:func:`milepost.pipelines.engine.execute`) a :class:`StoreRecorder`, and ends the
run with the engine's outcome. A failed step is a ``failed`` run, not an exception.

**Recording cost.** Each engine event is one short write transaction and nothing is read
back (the benchmark target is 20 ms per recorded no-op step, all included). The heartbeat
is moved by a daemon thread every ``heartbeat_interval`` seconds, not per event, so a long
step keeps its run alive and a short one pays nothing for it.

**Resume.** ``resume(run_id)`` starts a new run (``resumed_from`` set) of a failed run's
ref with the same parameters, handing the engine the old run's succeeded and cached step
results to reuse as they are: the failed step and everything downstream of it run again.

**Stale runs.** A run whose process died stays ``running`` until :meth:`reap_stale` (the
scheduler calls it) ends it ``failed`` with "runner process gone": on this host when its
process (pid and start time) no longer exists, from another host when its heartbeat is
older than ``stale_run_timeout``, as for tracking runs. Runs this process is running are
never stale. Reads never write.

**Audit.** Starting and ending a run append ``pipeline_run.start`` / ``pipeline_run.end``
events (see :mod:`milepost.pipelines.store`), like tracking's ``run.start`` / ``run.end``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import re
import threading
import time
import uuid
from typing import TYPE_CHECKING, Any

from milepost import _validate as check
from milepost._actor import ActorAttribute
from milepost.errors import AlreadyExists, Conflict, InvalidInput, NotFound
from milepost.pipelines._recording import Heartbeat, StoreRecorder, code_version, now_ms
from milepost.pipelines.store import SqlPipelineStore
from milepost.tracking.environment import process_alive, process_info

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from milepost.config import ResolvedSettings
    from milepost.pipelines.dag import Pipeline
    from milepost.pipelines.models import PipelineRun, PipelineSummary
    from milepost.pipelines.records import OutputRef, StepResult
    from milepost.stores.blobs import BlobStore
    from milepost.stores.metadata import MetadataStore

__all__ = ["PipelineService", "StoreRecorder"]

RUNNERS = ("local", "dask")
STATUSES = ("running", "succeeded", "failed")
_RUN_ID = re.compile(r"[0-9a-f]{32}")
_PREFIX = re.compile(r"[0-9a-f]{6,31}")
#: What a reaped run's error starts with.
GONE = "runner process gone"


class PipelineService:
    """Run, resume, read and reap pipeline runs.

    Args:
        db: the metadata store.
        blobs: the artifact store (step outputs and logs).
        resolved: the resolved settings (handed to worker processes so steps write to the
            same stores; ``heartbeat_interval`` and ``stale_run_timeout`` are read here).
        clock: epoch seconds now (tests inject one).
    """

    actor = ActorAttribute()

    def __init__(
        self,
        db: MetadataStore,
        blobs: BlobStore,
        resolved: ResolvedSettings,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.db = db
        self.blobs = blobs
        self.resolved = resolved
        self.settings = resolved.settings
        self.actor = resolved.settings.actor()
        self.store = SqlPipelineStore(db)
        self.clock = clock
        self._live: set[str] = set()  # runs this process is running right now
        self._lock = threading.Lock()

    # -- running ------------------------------------------------------------------------

    def run(
        self,
        pipeline: Pipeline | str,
        params: Mapping[str, Any] | None = None,
        *,
        runner: str = "local",
        address: str | None = None,
        max_workers: int | None = None,
        cache: bool = True,
        run_id: str | None = None,
        trigger: str | None = None,
        on_event: Callable[[str, str, dict[str, Any]], None] | None = None,
    ) -> PipelineRun:
        """Run a pipeline to the end and return its record.

        Args:
            pipeline: a :class:`~milepost.pipelines.Pipeline` or its ``module:attr`` ref.
            params: parameter values. When every value is a string (as typed after
                ``--param k=v``), each is converted by its parameter's annotation.
            runner: ``local`` (a process pool on this machine) or ``dask``.
            address: the Dask scheduler (``tcp://host:8786``); default a local cluster.
            max_workers: worker processes of the local runner (default: one per core).
            cache: False runs every step even when an earlier run computed the same.
            run_id: the run's id (32 hex characters), e.g. one the scheduler reserved.
            trigger: the trigger firing that launched the run.
            on_event: called as ``on_event(step, status, info)`` on each engine event.

        Returns:
            The run, ``succeeded`` or ``failed`` (a failed step does not raise).

        Raises:
            InvalidInput: the pipeline cannot be loaded, a parameter is unknown, missing or
                of the wrong type, the DAG is invalid, a bad runner or option.
            AlreadyExists: ``run_id`` is taken.
        """
        pipe = self._pipeline(pipeline)
        values = self._params(pipe, params)
        dag = pipe.build(values)
        return self._execute(
            pipe,
            dag,
            values,
            runner=runner,
            address=address,
            max_workers=max_workers,
            cache=check.boolean(cache, "cache"),
            run_id=self._new_run_id(run_id),
            trigger=None
            if trigger is None
            else check.name(trigger, "Trigger firing id", max_length=64),
            on_event=on_event,
            resumed_from=None,
            reuse={},
        )

    def resume(
        self,
        run_id: str,
        *,
        runner: str | None = None,
        address: str | None = None,
        max_workers: int | None = None,
        on_event: Callable[[str, str, dict[str, Any]], None] | None = None,
    ) -> PipelineRun:
        """Run a failed run again as a new run, reusing its succeeded and cached steps.

        The new run has the old one's ref and parameters and ``resumed_from`` set; the
        failed step and everything downstream of it run again. The ref is loaded anew, so
        a fixed step function is what runs.

        Args:
            run_id: the failed run.
            runner: default the old run's runner.
            address, max_workers, on_event: as for :meth:`run`.

        Raises:
            NotFound: no such run.
            Conflict: the run did not fail (it is running or succeeded).
        """
        old = self.get_run(run_id)
        if old.status != "failed":
            raise Conflict(
                f"Pipeline run {old.run_id} is {old.status}; only a failed run can be resumed.",
                hint=f"Run the pipeline again with `milepost pipelines run {old.ref}` instead."
                if old.status == "succeeded"
                else "Wait for it to end, or reap it if its process died (`milepost scheduler "
                "--once`).",
            )
        pipe = self._pipeline(old.ref)
        values = _restored(pipe, old.params)
        dag = pipe.build(values)
        # cached_from names the run that computed each output, as for a cache hit
        reuse = {
            s.step: dataclasses.replace(s.result(), cached_from=s.cached_from or old.run_id)
            for s in old.steps
            if s.status in ("succeeded", "cached")
        }
        return self._execute(
            pipe,
            dag,
            values,
            runner=old.runner if runner is None else runner,
            address=address,
            max_workers=max_workers,
            cache=True,
            run_id=uuid.uuid4().hex,
            trigger=None,
            on_event=on_event,
            resumed_from=old.run_id,
            reuse=reuse,
        )

    def _execute(
        self,
        pipe: Pipeline,
        dag: Any,
        values: dict[str, Any],
        *,
        runner: str,
        address: str | None,
        max_workers: int | None,
        cache: bool,
        run_id: str,
        trigger: str | None,
        on_event: Callable[[str, str, dict[str, Any]], None] | None,
        resumed_from: str | None,
        reuse: dict[str, StepResult],
    ) -> PipelineRun:
        from milepost.pipelines.engine import execute
        from milepost.pipelines.runners import make_runner

        kind = check.choice(runner, "Runner", RUNNERS)
        if address is not None and kind != "dask":
            raise InvalidInput(
                f"An address ({address!r}) is for the dask runner, not {kind!r}.",
                hint="Add --runner dask, or leave the address out.",
            )
        if max_workers is not None:
            max_workers = check.integer(max_workers, "max_workers", minimum=1, maximum=1024)
        made = make_runner(kind, address=address, max_workers=max_workers)
        proc = process_info()
        start = now_ms(self.clock)
        try:
            self.store.create_run(
                {
                    "run_id": run_id,
                    "pipeline": pipe.name,
                    "ref": pipe.ref,
                    "params_json": json.dumps(values, sort_keys=True, default=str),
                    "status": "running",
                    "runner": kind,
                    "started_at": start,
                    "heartbeat_at": start,
                    "host": proc.host,
                    "pid": proc.pid,
                    "pid_started": proc.started,
                    "code_version_json": json.dumps(code_version(pipe.ref), sort_keys=True),
                    "resumed_from": resumed_from,
                    "trigger": trigger,
                    "actor": self.actor,
                },
                actor=self.actor,
            )
        except BaseException:
            _close(made)
            raise
        with self._lock:
            self._live.add(run_id)
        beat = Heartbeat(self.store, run_id, self.settings.heartbeat_interval, self.clock)
        try:
            outcome = execute(
                dag,
                values,
                run_id=run_id,
                runner=made,
                recorder=StoreRecorder(self.store, run_id, self.blobs, cache=cache),
                blobs=self.blobs,
                settings=self.resolved,
                cache=cache,
                reuse=reuse,
                resumed_from=resumed_from,
                on_event=on_event,
            )
        except BaseException as exc:  # the runner itself broke (or ^C): say so, then raise
            beat.stop()
            with contextlib.suppress(Exception):  # the original error is what matters
                self._end(run_id, "failed", None, f"runner failed: {type(exc).__name__}: {exc}")
            raise
        finally:
            beat.stop()
            with self._lock:
                self._live.discard(run_id)
            _close(made)
        self._end(run_id, outcome.status, outcome.failed_step, outcome.error)
        return self.get_run(run_id)

    def _end(self, run_id: str, status: str, failed_step: str | None, error: str | None) -> None:
        self.store.end_run(
            run_id,
            status=status,
            ended_at=now_ms(self.clock),
            failed_step=failed_step,
            error=error,
            actor=self.actor,
        )

    def _pipeline(self, pipeline: Pipeline | str) -> Pipeline:
        from milepost.pipelines.dag import Pipeline, load_pipeline

        if isinstance(pipeline, str):
            return load_pipeline(pipeline)
        if isinstance(pipeline, Pipeline):
            return pipeline
        raise InvalidInput(
            f"A pipeline is a Pipeline or its 'module:attr' ref, got {type(pipeline).__name__}.",
            hint="Decorate the function with @milepost.pipeline, or pass 'package.module:name'.",
        )

    @staticmethod
    def _params(pipe: Pipeline, params: Mapping[str, Any] | None) -> dict[str, Any]:
        """The values to run with: strings parsed by annotation (all-string input), then
        the defaults of parameters not given."""
        given = dict(check.mapping(params, "params")) if params is not None else {}
        for key in given:
            if not isinstance(key, str):
                raise InvalidInput(f"Parameter names are strings, got {key!r}.")
        if given and all(isinstance(v, str) for v in given.values()):
            given = dict(pipe.parse_params(given))
        out = {}
        for name, param in pipe.parameters.items():
            if name in given:
                out[name] = given.pop(name)
            elif param.default is not param.empty:
                out[name] = param.default
        out.update(given)  # unknown names: build() says which
        return out

    def _new_run_id(self, run_id: str | None) -> str:
        if run_id is None:
            return uuid.uuid4().hex
        if not isinstance(run_id, str) or not _RUN_ID.fullmatch(run_id):
            raise InvalidInput(
                f"A pipeline run id is 32 lowercase hex characters, got {run_id!r}.",
                hint="Leave it out to get a new one (uuid.uuid4().hex makes one).",
            )
        if self.store.get_run(run_id) is not None:
            raise AlreadyExists(
                f"Pipeline run {run_id} exists already.",
                hint="Use a new run id, or leave it out.",
            )
        return run_id

    # -- reading ------------------------------------------------------------------------

    def get_run(self, run_id: str) -> PipelineRun:
        """A run with its steps (in plan order) and their links.

        Args:
            run_id: the run's id, or a unique prefix of it (at least 6 characters, as
                the CLI prints them).

        Raises:
            NotFound: no such run.
            InvalidInput: the prefix matches several runs.
        """
        check.run_id(run_id, "pipeline run id")
        full = self._full_id(run_id)
        run = self.store.get_run(full) if full is not None else None
        if run is None:
            raise NotFound(
                f"Pipeline run {run_id!r} does not exist.",
                hint="Find run ids with `milepost pipelines runs`.",
            )
        return dataclasses.replace(run, _loader=self._load)

    def _full_id(self, run_id: str) -> str | None:
        if _RUN_ID.fullmatch(run_id):
            return run_id
        if not _PREFIX.fullmatch(run_id):
            return None
        found = self.store.run_ids_starting(run_id)
        if len(found) > 1:
            raise InvalidInput(
                f"Pipeline run id prefix {run_id!r} matches several runs ({', '.join(found)}...).",
                hint="Give more characters of the id.",
            )
        return found[0] if found else None

    def list_runs(
        self, pipeline: str | None = None, *, status: str | None = None, limit: int = 50
    ) -> list[PipelineRun]:
        """Runs newest first, optionally of one pipeline (by name) and one status."""
        if pipeline is not None:
            check.name(pipeline, "Pipeline name")
        if status is not None:
            check.choice(status, "Status", STATUSES)
        limit = check.integer(limit, "limit", minimum=1, maximum=10_000)
        runs = self.store.list_runs(pipeline=pipeline, status=status, limit=limit)
        return [dataclasses.replace(r, _loader=self._load) for r in runs]

    def list_pipelines(self) -> list[PipelineSummary]:
        """Every pipeline that has been run: name, ref, run count, the latest run."""
        return self.store.list_pipelines()

    def outputs(self, run_id: str, step: str) -> Any:
        """A step's output value(s) (see :meth:`PipelineRun.outputs`)."""
        return self.get_run(run_id).outputs(step)

    def logs(self, run_id: str, step: str) -> str:
        """What a step printed and logged (stdout, stderr, log records); "" when none was
        captured (a skipped step).

        Raises:
            NotFound: no such run or step.
        """
        found = self.get_run(run_id).step(step)
        if found.logs_key is None:
            return ""
        return self.blobs.get_bytes(found.logs_key).decode("utf-8", errors="replace")

    def producers(self, kind: str, ref: str) -> list[tuple[str, str, str]]:
        """``(run_id, step, role)`` of every pipeline step linked to a lineage node
        (``producers("model_version", "churn/4")``), oldest first."""
        check.name(kind, "Link kind")
        check.name(ref, "Link ref", max_length=512)
        return [(r, s, link.role) for r, s, link in self.store.links_to(kind, ref)]

    def _load(self, ref: OutputRef) -> Any:
        from milepost.pipelines import _io

        return _io.load(self.blobs, ref)

    # -- reaping ------------------------------------------------------------------------

    def reap_stale(self, now: int | None = None) -> list[PipelineRun]:
        """End ``failed`` the RUNNING runs whose process is gone (see the module docstring).

        Args:
            now: epoch ms to judge heartbeats by (default the clock).

        Returns:
            The runs this call ended (a run another reaper or its own end got to first is
            not among them).
        """
        at = now_ms(self.clock) if now is None else check.integer(now, "now", minimum=0)
        me = process_info()
        timeout_ms = self.settings.stale_run_timeout * 1000
        reaped = []
        with self._lock:
            live = set(self._live)
        for owner in self.store.running_owners():
            if owner.run_id in live:
                continue
            why = None
            if owner.host == me.host and owner.pid is not None:
                if not process_alive(owner.pid, owner.pid_started):
                    why = f"process {owner.pid} on {me.host} ended without ending the run"
            else:  # another host, or no pid recorded: only the heartbeat can tell
                beat = owner.heartbeat_at if owner.heartbeat_at is not None else owner.started_at
                if at - beat > timeout_ms:
                    why = f"no heartbeat from {owner.host} for {(at - beat) / 1000:.0f} s"
            if why is None:
                continue
            if self.store.end_run(
                owner.run_id,
                status="failed",
                ended_at=at,
                failed_step=None,
                error=f"{GONE}: {why}",
                actor=self.actor,
                reason="stale pipeline run detected",
            ):
                reaped.append(self.get_run(owner.run_id))
        return reaped


def _close(runner: Any) -> None:
    close = getattr(runner, "close", None)
    if callable(close):
        close()


def _restored(pipe: Pipeline, stored: Mapping[str, Any]) -> dict[str, Any]:
    """A run's parameters as read back from JSON, converted again where JSON changed
    their type (a ``Path`` stored as text, a tuple as a list): what was given is what a
    resumed run gets."""
    from milepost.pipelines import _types

    out = dict(stored)
    for name, value in stored.items():
        param = pipe.parameters.get(name)
        if param is None or param.annotation is param.empty:
            continue
        if not _types.fits(value, param.annotation):
            text = value if isinstance(value, str) else json.dumps(value)
            what = f"pipeline {pipe.name!r} parameter {name!r} (stored)"
            out[name] = _types.parse_text(text, param.annotation, what)
    return out
