"""The engine: run a validated DAG through a runner, reporting to a Recorder.

:func:`execute` schedules topologically: every step whose inputs are known is, in order,

1. given its inputs' hashes (upstream outputs' sha256, constants' :func:`value_hash`)
   and its cache key: SHA-256 of the step's code (source, or code object bytes), its
   ``version`` option and the input hashes by parameter name (options that do not
   change results, like retries or timeout, are not part of it);
2. reused: a ``reuse`` result of the run being resumed with an equal key (always, even
   with caching off: a resume never repeats a step that succeeded with the same code and
   inputs), else, when caching is on for the run and the step,
   :meth:`Recorder.lookup_cache`. Reused outputs are verified against their hashes
   first; a step whose stored outputs are gone or altered is recomputed. The result is
   ``cached`` with ``cached_from`` naming the run that computed it;
3. otherwise submitted to the runner (a lone ready step may run in this process, see
   :mod:`.runners`).

A failed attempt whose exception is one of the step's ``retry_on`` classes is retried
after ``backoff * 2**(attempt-1)`` seconds (capped at 60), scheduled on the injected
``clock`` and waited with the injected ``sleep`` only when nothing else is running, so
other steps progress meanwhile and tests wait for nothing. Any other failure (or the last
retry's) fails the step: no new step is submitted, running ones finish, every step that
did not run is recorded ``skipped`` with the reason, and the outcome names the failed
step and its error. The engine never raises for a step's failure.

Recorder calls all come from the calling thread, in the order the
:class:`~milepost.pipelines.records.Recorder` contract states. ``on_event(step, status,
info)`` (``started``, ``retrying``, ``succeeded``, ``failed``, ``cached``, ``skipped``,
and ``cache_invalid`` when a reusable result's stored outputs fail their check and the
step runs instead) feeds live views; an exception it raises is ignored.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import dataclasses
import hashlib
import json
import time
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from milepost._actor import current_actor
from milepost.pipelines import _io
from milepost.pipelines._execute import Attempt, Stored, Task
from milepost.pipelines._handles import Const, ListOf, Ref
from milepost.pipelines.records import StepResult

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from milepost.config import ResolvedSettings
    from milepost.pipelines._execute import Arg
    from milepost.pipelines._handles import Binding
    from milepost.pipelines.dag import Dag, Node
    from milepost.pipelines.records import Recorder
    from milepost.pipelines.runners import Runner
    from milepost.stores.blobs import BlobStore

__all__ = ["EngineOutcome", "cache_key", "execute"]

_DONE = ("succeeded", "cached")


@dataclass(frozen=True)
class EngineOutcome:
    """How a run ended: ``failed_step`` and ``error`` name the first failure."""

    status: Literal["succeeded", "failed"]
    failed_step: str | None
    error: str | None
    results: dict[str, StepResult]

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "failed_step": self.failed_step,
            "error": self.error,
            "results": {k: v.to_dict() for k, v in self.results.items()},
        }


def cache_key(node: Node, inputs: Mapping[str, str]) -> str:
    """SHA-256 of a step's code, its ``version`` option and its input hashes."""
    doc = {
        "code": node.step.code_hash,
        "version": node.step.options.version,
        "inputs": dict(sorted(inputs.items())),
    }
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()


def _ms() -> int:
    return int(time.time() * 1000)


class _Run:
    """One execution's state (the engine's loop, split into small methods)."""

    def __init__(
        self,
        dag: Dag,
        *,
        run_id: str,
        runner: Runner,
        recorder: Recorder,
        blobs: BlobStore,
        settings: ResolvedSettings | None,
        cache: bool,
        reuse: Mapping[str, StepResult],
        resumed_from: str | None,
        on_event: Callable[[str, str, dict[str, Any]], None] | None,
        sleep: Callable[[float], None],
        clock: Callable[[], float],
    ) -> None:
        self.dag, self.run_id, self.runner, self.recorder = dag, run_id, runner, recorder
        self.blobs, self.settings, self.cache = blobs, settings, cache
        self.reuse, self.resumed_from = reuse, resumed_from
        self.on_event, self.sleep, self.clock = on_event, sleep, clock
        self.results: dict[str, StepResult] = {}
        self.waiting = list(dag.nodes)
        self.running: dict[cf.Future[Attempt], Task] = {}
        self.retries: dict[str, tuple[float, Task, Attempt]] = {}
        self.prepared: dict[str, tuple[dict[str, Arg], dict[str, str], str]] = {}
        self.first_start: dict[str, int] = {}
        self.submitted: dict[str, int] = {}
        self.failed: str | None = None

    # -- events ------------------------------------------------------------------------

    def emit(self, step: str, status: str, **info: Any) -> None:
        if self.on_event is not None:
            with contextlib.suppress(Exception):
                self.on_event(step, status, info)

    def finish(self, result: StepResult) -> None:
        self.results[result.step] = result
        self.recorder.step_finished(result)
        info: dict[str, Any] = {"attempts": result.attempts}
        if result.error:
            info["error"] = result.error
        if result.cached_from:
            info["cached_from"] = result.cached_from
        if result.duration_ms is not None:
            info["duration_ms"] = result.duration_ms
        self.emit(result.step, result.status, **info)

    # -- inputs ------------------------------------------------------------------------

    def _arg(self, binding: Binding) -> tuple[Arg, str]:
        if isinstance(binding, Const):
            return binding, _io.value_hash(binding.value)
        if isinstance(binding, ListOf):
            pairs = [self._arg(b) for b in binding.items]
            digest = hashlib.sha256(("list:" + ",".join(h for _, h in pairs)).encode())
            items = tuple(a for a, _ in pairs)
            return ListOf(items), digest.hexdigest()  # type: ignore[arg-type]
        assert isinstance(binding, Ref)
        outputs = self.results[binding.step].outputs
        if binding.output is None and self.dag.nodes[binding.step].step.arity is not None:
            refs = tuple(sorted(outputs, key=lambda o: int(o.name)))
            digest = hashlib.sha256(("tuple:" + ",".join(o.sha256 for o in refs)).encode())
            return Stored(refs, as_tuple=True), digest.hexdigest()
        name = binding.output or "return"
        ref = next(o for o in outputs if o.name == name)
        return Stored((ref,)), ref.sha256

    def prepare(self, step_id: str) -> tuple[dict[str, Arg], dict[str, str], str]:
        node = self.dag.nodes[step_id]
        args: dict[str, Arg] = {}
        inputs: dict[str, str] = {}
        for pname, binding in node.args.items():
            args[pname], inputs[pname] = self._arg(binding)
        found = self.prepared[step_id] = (args, inputs, cache_key(node, inputs))
        return found

    # -- cache -------------------------------------------------------------------------

    def _usable(self, result: StepResult | None, key: str) -> bool:
        if result is None or result.status not in _DONE or result.cache_key != key:
            return False
        for ref in result.outputs:
            problem = _io.verify(self.blobs, ref)
            if problem is not None:
                self.emit(result.step, "cache_invalid", error=problem)
                return False
        return True

    def reused(self, step_id: str, inputs: dict[str, str], key: str) -> StepResult | None:
        node = self.dag.nodes[step_id]
        hit = self.reuse.get(step_id)
        origin = None
        if self._usable(hit, key):  # resuming: a step that ran is never run again
            assert hit is not None
            origin = hit.cached_from or self.resumed_from
        else:
            if not (self.cache and node.step.options.cache):
                return None
            hit = self.recorder.lookup_cache(step_id, key)
            if not self._usable(hit, key):
                return None
            assert hit is not None
            origin = hit.cached_from
        now = _ms()
        return dataclasses.replace(
            hit,
            step=step_id,
            status="cached",
            attempts=0,
            started_at=now,
            ended_at=now,
            cache_key=key,
            inputs=inputs,
            error=None,
            traceback=None,
            cached_from=origin,
        )

    # -- scheduling --------------------------------------------------------------------

    def ready(self) -> list[str]:
        return [
            s
            for s in self.waiting
            if all(
                self.results.get(u) is not None and self.results[u].status in _DONE
                for u in self.dag.nodes[s].upstream
            )
        ]

    def submit(self, step_id: str, attempt: int, *, inline_ok: bool) -> None:
        args, _, _ = self.prepared[step_id]
        node = self.dag.nodes[step_id]
        task = Task(
            step_id=step_id,
            step=node.step,
            args=args,
            attempt=attempt,
            run_id=self.run_id,
            pipeline=self.dag.pipeline,
            settings=self.settings,
            trial_params=node.trial_params,
            blobs=self.blobs if self.settings is None else None,
            actor=current_actor(),
        )
        now = _ms()
        self.submitted.setdefault(step_id, now)
        self.recorder.step_started(step_id, attempt, now)
        self.emit(step_id, "started", attempt=attempt)
        self.running[self.runner.submit(task, inline_ok=inline_ok)] = task

    def launch_ready(self) -> None:
        while self.failed is None:
            to_run = []
            progressed = False
            for step_id in self.ready():
                self.waiting.remove(step_id)
                try:
                    _, inputs, key = self.prepare(step_id)
                except Exception as exc:  # an argument that cannot be encoded to hash
                    self.failed = self.failed or step_id
                    self.finish(
                        StepResult(
                            step=step_id,
                            status="failed",
                            error=f"{type(exc).__name__}: cannot hash an input of step "
                            f"{step_id!r}: {exc}",
                        )
                    )
                    return
                hit = self.reused(step_id, inputs, key)
                if hit is not None:
                    self.finish(hit)
                    progressed = True
                else:
                    to_run.append(step_id)
            alone = len(to_run) == 1 and not self.running and not self.retries
            for step_id in to_run:
                self.submit(step_id, 1, inline_ok=alone)
            if not progressed:
                return

    def completed(self, attempt: Attempt, task: Task) -> None:
        step_id = task.step_id
        # when its first attempt really began (in the worker), not when it was queued: a
        # fanned-out trial waiting for a free worker did not run while it waited (a
        # worker that died reported nothing: then from its submission)
        began = attempt.started_at if attempt.pid else self.submitted.get(step_id, 0)
        self.first_start.setdefault(step_id, began or attempt.started_at)
        opts = task.step.options
        retry = not attempt.ok and attempt.retryable and attempt.attempt <= opts.retries
        if retry and self.failed is None:
            delay = opts.delay(attempt.attempt)
            self.retries[step_id] = (
                self.clock() + delay,
                dataclasses.replace(task, attempt=attempt.attempt + 1),
                attempt,
            )
            self.emit(
                step_id, "retrying", attempt=attempt.attempt, delay=delay, error=attempt.error
            )
            return
        note = f" (not retried: step {self.failed!r} failed)" if retry else ""
        self.finish_attempt(attempt, task, note=note)

    def finish_attempt(self, attempt: Attempt, task: Task, *, note: str = "") -> None:
        step_id = task.step_id
        _, inputs, key = self.prepared[step_id]
        result = StepResult(
            step=step_id,
            status="succeeded" if attempt.ok else "failed",
            attempts=attempt.attempt,
            started_at=self.first_start.get(step_id, attempt.started_at),
            ended_at=attempt.ended_at,
            cache_key=key,
            inputs=inputs,
            outputs=attempt.outputs,
            logs_key=attempt.logs_key,
            error=attempt.error + note if attempt.error else None,
            traceback=attempt.traceback,
            links=attempt.links,
        )
        if not attempt.ok and self.failed is None:
            self.failed = step_id
        self.finish(result)

    def submit_due_retries(self) -> None:
        if self.failed is not None:
            return  # abandoned on the next wait, with their last error
        now = self.clock()
        for step_id, (due, task, _) in sorted(self.retries.items(), key=lambda kv: kv[1][0]):
            if due <= now:
                del self.retries[step_id]
                self._resubmit(task)

    def _resubmit(self, task: Task) -> None:
        if self.failed is not None:
            return
        self.submit(task.step_id, task.attempt, inline_ok=not self.running and not self.retries)

    def wait(self) -> bool:
        """Wait for progress; False when nothing is left to wait for."""
        if self.failed is not None and self.retries:
            self.abandon_retries()
        if not self.running and not self.retries:
            return False
        if not self.running:  # only retries pending: sleep until the first is due
            step_id, (due, task, _) = min(self.retries.items(), key=lambda kv: kv[1][0])
            delay = due - self.clock()
            if delay > 0:
                self.sleep(delay)
            del self.retries[step_id]
            self._resubmit(task)
            return True
        timeout = None
        if self.retries:
            timeout = max(0.0, min(r[0] for r in self.retries.values()) - self.clock())
        done, _ = cf.wait(list(self.running), timeout=timeout, return_when=cf.FIRST_COMPLETED)
        for fut in done:
            task = self.running.pop(fut)
            self.completed(_attempt(fut, task), task)
        self.submit_due_retries()
        return True

    def abandon_retries(self) -> None:
        """Another step failed: a step waiting for a retry fails with its last error."""
        for step_id in list(self.retries):
            _, task, last = self.retries.pop(step_id)
            self.finish_attempt(last, task, note=f" (not retried: step {self.failed!r} failed)")

    def skip_rest(self) -> None:
        root: dict[str, str] = {}
        for step_id, node in self.dag.nodes.items():
            if step_id in self.results:
                continue
            reason = None
            for u in node.upstream:
                r = self.results.get(u)
                if r is not None and r.status == "failed":
                    reason = f"upstream step {u!r} failed"
                    root[step_id] = u
                    break
                if u in root:
                    reason = f"upstream step {root[u]!r} failed"
                    root[step_id] = root[u]
                    break
            if reason is None:
                reason = f"not started: step {self.failed!r} failed"
            self.finish(StepResult(step=step_id, status="skipped", error=reason))

    def run(self) -> EngineOutcome:
        self.recorder.plan(self.dag.steps)
        try:
            self.launch_ready()
            while self.wait():
                self.launch_ready()
        except BaseException:
            self.runner.cancel()
            raise
        self.skip_rest()
        results = {s: self.results[s] for s in self.dag.nodes}
        if self.failed is None:
            return EngineOutcome("succeeded", None, None, results)
        return EngineOutcome("failed", self.failed, results[self.failed].error, results)


def _attempt(fut: cf.Future[Attempt], task: Task) -> Attempt:
    """The attempt a future reports; a runner's own failure becomes a failed attempt."""
    try:
        return fut.result()
    except BaseException as exc:
        hint = ""
        if isinstance(exc, BrokenProcessPool):
            hint = (
                " (a worker process died: killed, out of memory, os._exit in a step, or a "
                'script without an `if __name__ == "__main__":` guard, which worker '
                "processes need since they import the main module)"
            )
        now = _ms()
        return Attempt(
            step_id=task.step_id,
            attempt=task.attempt,
            ok=False,
            started_at=now,
            ended_at=now,
            pid=0,
            error=f"{type(exc).__name__}: {exc}{hint}",
        )


def execute(
    dag: Dag,
    params: Mapping[str, Any] | None = None,
    *,
    run_id: str,
    runner: Runner,
    recorder: Recorder,
    blobs: BlobStore,
    settings: ResolvedSettings | None = None,
    cache: bool = True,
    reuse: Mapping[str, StepResult] | None = None,
    resumed_from: str | None = None,
    on_event: Callable[[str, str, dict[str, Any]], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.time,
) -> EngineOutcome:
    """Run every step of ``dag`` and report each through ``recorder``.

    Args:
        dag: the validated DAG (``Pipeline.build(params)``).
        params: the pipeline parameters (already bound into ``dag``; kept for symmetry
            with the service, unused beyond that).
        run_id: the pipeline run id (tags of runs started in steps, ``cached_from``).
        runner: where steps run (:func:`~milepost.pipelines.runners.make_runner`); the
            caller closes it.
        recorder: where progress is reported (the service's store writer).
        blobs: the artifact store outputs are written to and read from.
        settings: the store settings worker processes open (``ctx.resolved``); None
            sends ``blobs`` itself to workers and leaves tracking on their defaults.
        cache: reuse earlier outputs (also off for a step with ``cache=False``).
        reuse: a resumed run's results by step id, reused when their cache key matches.
        resumed_from: the run those results came from (``cached_from`` of reused steps
            that were computed there).
        on_event: ``(step, status, info)`` callback for live views.
        sleep, clock: injected for tests (retry backoff waits).

    Returns:
        The outcome; a failed step makes it ``failed``, it never raises for one.
    """
    del params
    return _Run(
        dag,
        run_id=run_id,
        runner=runner,
        recorder=recorder,
        blobs=blobs,
        settings=settings,
        cache=cache,
        reuse=reuse or {},
        resumed_from=resumed_from,
        on_event=on_event,
        sleep=sleep,
        clock=clock,
    ).run()
