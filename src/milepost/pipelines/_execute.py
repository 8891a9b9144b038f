"""One attempt of one step, in whatever process runs it.

:func:`run_task` takes a :class:`Task` (picklable: the step travels by reference when
importable, by value with cloudpickle otherwise; arguments are constants or
:class:`Stored` output references) and returns an :class:`Attempt`. In order it

1. opens the stores the run writes to: the process's default context when it is on the
   run's metadata and artifact URIs, otherwise a context built from the run's settings
   made the default (so ``milepost.log_metric`` inside the step writes there too);
2. loads the inputs, each verified against its recorded hash (see :mod:`._io`);
3. captures what the step's thread prints (stdout and stderr) and logs while the
   function runs, stored as one text blob (threads the step starts itself are not
   captured; other threads of this process keep writing to the terminal);
4. tags every tracking run started during the step (``milepost.pipeline_run``,
   ``milepost.pipeline_step``) and, for ``track=True``, runs the step as a tracking run
   (experiment = pipeline name, run name = step id, scalar arguments as params; FAILED
   when the step raises);
5. stores the outputs (one per item of a ``tuple[A, B]`` return) and builds lineage
   links from the runs started and the records returned (model versions, dataset
   versions, runs, promotion requests).

The step acts as the task's ``actor`` when it has one (the caller of a ``milepost
server`` request that started the run, see :mod:`milepost._actor`), in a worker process
as inline: what it records and changes is theirs, and needs no more than their role.

An exception from the step is an unsuccessful attempt, never raised: the engine decides
about retries. Only the step's own exceptions of its ``retry_on`` classes are retryable.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import sys
import threading
import time
import traceback
import typing
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from milepost._actor import acting_as
from milepost.pipelines import _io
from milepost.pipelines._handles import Const, ListOf
from milepost.pipelines.records import Link, LinkKind, OutputRef

if TYPE_CHECKING:
    from milepost.config import ResolvedSettings
    from milepost.pipelines._steps import Step
    from milepost.stores.blobs import BlobStore
    from milepost.stores.context import StoreContext

__all__ = ["Attempt", "Stored", "Task", "run_payload", "run_task", "timed_out"]

#: Tags set on every tracking run started while a step runs.
TAG_RUN = "milepost.pipeline_run"
TAG_STEP = "milepost.pipeline_step"


@dataclass(frozen=True)
class Stored:
    """An upstream output to load: one ref, or every item of a tuple return."""

    refs: tuple[OutputRef, ...]
    as_tuple: bool = False


Arg = Const | Stored | ListOf


@dataclass(frozen=True)
class Task:
    """Everything a process needs to run one attempt of one step."""

    step_id: str
    step: Step
    args: dict[str, Arg]
    attempt: int
    run_id: str
    pipeline: str
    settings: ResolvedSettings | None = None
    trial_params: dict[str, Any] = field(default_factory=dict)
    blobs: BlobStore | None = None  # when no settings: the store to use (picklable)
    # who started the run when it is not the process's user (a server's caller): the
    # step acts as them in whatever process runs it, as it would inline
    actor: str | None = None


@dataclass(frozen=True)
class Attempt:
    """How one attempt ended."""

    step_id: str
    attempt: int
    ok: bool
    started_at: int
    ended_at: int
    pid: int
    outputs: tuple[OutputRef, ...] = ()
    logs_key: str | None = None
    links: tuple[Link, ...] = ()
    error: str | None = None
    traceback: str | None = None
    retryable: bool = False


def _ms() -> int:
    return int(time.time() * 1000)


def _same_stores(ctx: StoreContext, settings: ResolvedSettings) -> bool:
    a, b = ctx.settings, settings.settings
    return (
        a.resolved_metadata_uri() == b.resolved_metadata_uri()
        and a.resolved_artifact_uri() == b.resolved_artifact_uri()
    )


def context_matches(settings: ResolvedSettings | None) -> bool:
    """Whether this process's default context is on the run's stores."""
    if settings is None:
        return True
    from milepost.stores.context import default_context

    return _same_stores(default_context(), settings)


def _uris(settings: ResolvedSettings) -> tuple[str, str]:
    s = settings.settings
    return s.resolved_metadata_uri(), s.resolved_artifact_uri()


_worker_lock = threading.Lock()
_worker_stores: list[tuple[str, str]] = []  # the stores this worker process was set up on


def _context(settings: ResolvedSettings | None, *, worker: bool) -> StoreContext:
    """The store context a step uses, made the process's default.

    In this process (``worker=False``) the runner only runs a step here when the default
    context is already on the run's stores. A worker process (pool, Dask, a timed step's
    own process) builds a context from the run's settings once, without first opening
    whatever its own environment would configure.
    """
    from milepost.stores.context import StoreContext, default_context, replace_default_context

    if settings is None:
        return default_context()
    if not worker:
        ctx = default_context()
        if _same_stores(ctx, settings):
            return ctx
    with _worker_lock:
        if worker and _worker_stores == [_uris(settings)]:
            return default_context()
        new = StoreContext(settings)
        replace_default_context(new)
        _worker_stores[:] = [_uris(settings)]
        return new


def _load(arg: Arg, blobs: BlobStore) -> Any:
    if isinstance(arg, Const):
        return arg.value
    if isinstance(arg, ListOf):
        return [_load(item, blobs) for item in arg.items]  # type: ignore[arg-type]
    values = [_io.load(blobs, ref) for ref in arg.refs]
    return tuple(values) if arg.as_tuple else values[0]


class _Capture(logging.Handler):
    """Log records of one thread (the step's), formatted into its buffer."""

    def __init__(self, out: io.StringIO, thread: int) -> None:
        super().__init__(logging.DEBUG)
        self.out = out
        self.thread = thread
        self.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        if record.thread == self.thread:
            with contextlib.suppress(Exception):
                self.out.write(self.format(record) + "\n")


class _Router(io.TextIOBase):
    """Stands in for ``sys.stdout``/``sys.stderr`` while steps run: text written by a
    thread running a step goes to that step's buffer, anything else to the stream it
    replaced (a live progress view refreshing from another thread keeps its terminal)."""

    def __init__(self, original: Any) -> None:
        super().__init__()
        self.original = original

    def write(self, text: str) -> int:
        out = _routes.get(threading.get_ident())
        if out is not None:
            return out.write(text)
        return int(self.original.write(text) or 0)

    def flush(self) -> None:
        if threading.get_ident() not in _routes:
            self.original.flush()

    def isatty(self) -> bool:
        return threading.get_ident() not in _routes and bool(self.original.isatty())

    def __getattr__(self, name: str) -> Any:  # encoding, fileno, rich_proxied_file, ...
        return getattr(self.original, name)


_routes: dict[int, io.StringIO] = {}
_routes_lock = threading.Lock()
_installed: list[_Router] = []  # [stdout router, stderr router] while any step runs here


@contextlib.contextmanager
def _captured(out: io.StringIO) -> Any:
    """Capture this thread's prints and log records into ``out`` while the step runs.

    When the root logger has no handler of its own (a worker process, a plain script)
    its level is lowered to INFO meanwhile, so ``log.info`` in a step is kept; a process
    that configured logging keeps its levels.
    """
    thread = threading.get_ident()
    handler = _Capture(out, thread)
    root = logging.getLogger()
    level = root.level
    lower = not root.handlers and level > logging.INFO
    with _routes_lock:
        if not _routes:
            _installed[:] = [_Router(sys.stdout), _Router(sys.stderr)]
            sys.stdout, sys.stderr = _installed
        _routes[thread] = out
    root.addHandler(handler)
    if lower:
        root.setLevel(logging.INFO)
    try:
        yield
    finally:
        root.removeHandler(handler)
        if lower:
            root.setLevel(level)
        with _routes_lock:
            _routes.pop(thread, None)
            if not _routes and _installed:
                out_router, err_router = _installed
                if sys.stdout is out_router:
                    sys.stdout = out_router.original
                if sys.stderr is err_router:
                    sys.stderr = err_router.original
                _installed.clear()


@contextlib.contextmanager
def _isolated_stack() -> Any:
    """This thread's run stack, emptied for the step (a step never runs inside the
    caller's active run) and restored afterwards."""
    from milepost.tracking import _active

    stack = _active.run_stack()
    saved = stack[:]
    stack.clear()
    try:
        yield stack
    finally:
        stack[:] = saved


class _StepRun:
    """What the tracking stack holds for a tracked step (like ``milepost.ActiveRun``)."""

    def __init__(self, run_id: str, experiment_id: int, name: str) -> None:
        self.run_id, self.experiment_id, self.name = run_id, experiment_id, name
        self._ended = False


_RECORD_LINKS = {
    "milepost.models.models.ModelVersion": ("model_version", "{0.name}/{0.version}"),
    "milepost.data.models.DatasetVersion": ("dataset_version", "{0.name}@{0.version}"),
    "milepost.tracking.models.Run": ("run", "{0.run_id}"),
    "milepost.promotion.models.PromotionRequest": ("promotion_request", "{0.request_id}"),
}


def record_links(value: Any, depth: int = 0) -> list[Link]:
    """Links to the records in a returned value (looked at two container levels deep).

    Milepost's own records link by type (a ModelVersion, a DatasetVersion, a Run, a
    PromotionRequest). Any other value may say what it links to with a
    ``lineage_links()`` method returning ``(kind, ref)`` or ``(kind, ref, role)`` tuples
    (the retraining template's decision records do), so a result that names a dataset
    version by its ref still becomes a lineage edge.
    """
    kind = _RECORD_LINKS.get(f"{type(value).__module__}.{type(value).__qualname__}")
    if kind is not None:
        return [Link(kind[0], kind[1].format(value))]  # type: ignore[arg-type]
    declared = getattr(value, "lineage_links", None)
    if callable(declared) and not isinstance(value, type):
        return [_declared_link(item) for item in declared()]
    if depth < 2 and isinstance(value, (list, tuple)):
        return [link for v in value for link in record_links(v, depth + 1)]
    if depth < 2 and isinstance(value, dict):
        return [link for v in value.values() for link in record_links(v, depth + 1)]
    return []


_LINK_KINDS = frozenset(typing.get_args(LinkKind))  # one list: the records' Literal


def _declared_link(item: Any) -> Link:
    """One ``(kind, ref[, role])`` of a ``lineage_links()``, checked."""
    if not isinstance(item, tuple) or len(item) not in (2, 3):
        raise TypeError(f"lineage_links() must give (kind, ref[, role]) tuples, got {item!r}")
    kind, ref, role = (*item, "output") if len(item) == 2 else item
    if kind not in _LINK_KINDS or role not in ("input", "output") or not isinstance(ref, str):
        raise TypeError(
            f"lineage_links() gave {item!r}: kind must be one of {sorted(_LINK_KINDS)}, ref a "
            "string, role 'input' or 'output'"
        )
    return Link(kind, ref, role)


def _outputs(task: Task, value: Any, blobs: BlobStore) -> tuple[OutputRef, ...]:
    n = task.step.arity
    if n is None:
        return (_io.store(blobs, "return", value),)
    if not isinstance(value, tuple) or len(value) != n:
        got = f"a tuple of {len(value)}" if isinstance(value, tuple) else type(value).__name__
        raise TypeError(f"step {task.step_id!r} is annotated to return a tuple of {n}, got {got}")
    return tuple(_io.store(blobs, str(i), v) for i, v in enumerate(value))


def run_task(task: Task, *, blobs: BlobStore | None = None, worker: bool = False) -> Attempt:
    """Run one attempt of a step here; every failure is reported in the Attempt.

    Args:
        task: the step, its arguments and the run's settings.
        blobs: the artifact store to use (the engine's own, when run in its process).
        worker: this is a worker process (see :func:`_context`).
    """
    from milepost.tracking import _active

    started = _ms()
    # The store context is opened only when needed: with settings (the run's stores), or
    # for a tracked step; a run without settings sends its blob store in the task.
    needed = task.settings is not None or task.step.options.track
    ctx = _context(task.settings, worker=worker) if needed else None
    store = blobs or task.blobs or (ctx or _context(None, worker=worker)).blobs
    out = io.StringIO()
    links: list[Link] = []
    outputs: tuple[OutputRef, ...] = ()
    error = tb = None
    retryable = False
    tags = {TAG_RUN: task.run_id, TAG_STEP: task.step_id}
    acting = acting_as(task.actor) if task.actor else contextlib.nullcontext()
    with acting, _isolated_stack() as stack, _active.step_scope(tags) as scope:
        try:
            args = {k: _load(a, store) for k, a in task.args.items()}
        except Exception as exc:
            error, tb = f"{type(exc).__name__}: {exc}", traceback.format_exc()
        else:
            tracked = None
            finished = False
            try:
                with _captured(out):
                    tracked = (
                        _start_tracking(task, ctx) if ctx and task.step.options.track else None
                    )
                    value = task.step.func(**args)
                outputs = _outputs(task, value, store)
                links.extend(record_links(value))
                finished = True
            except (Exception, SystemExit) as exc:  # sys.exit() in a step fails the step
                error, tb = f"{type(exc).__name__}: {exc}", traceback.format_exc()
                retryable = isinstance(exc, task.step.options.retry_on)
                finished = True
            finally:  # KeyboardInterrupt passes through, its run ended KILLED
                if tracked is not None and not tracked._ended:
                    tracked._ended = True
                    if tracked in stack:
                        stack.remove(tracked)
                    status = "KILLED" if not finished else "FAILED" if error else "FINISHED"
                    _active.tracking_service(ctx).end_run(  # type: ignore[arg-type]
                        tracked.run_id, status, error=tb
                    )
        links[:0] = [Link("run", run_id) for run_id in scope.started]
        links[:] = dict.fromkeys(links)  # once each, in order
    logs_key = None
    text = out.getvalue()
    if text:
        with contextlib.suppress(Exception):
            logs_key = store.put_bytes(text.encode("utf-8", "replace")).digest
    return Attempt(
        step_id=task.step_id,
        attempt=task.attempt,
        ok=error is None,
        started_at=started,
        ended_at=_ms(),
        pid=os.getpid(),
        outputs=outputs if error is None else (),
        logs_key=logs_key,
        links=tuple(dict.fromkeys(links)),
        error=error,
        traceback=tb,
        retryable=retryable,
    )


def _start_tracking(task: Task, ctx: StoreContext) -> _StepRun:
    from milepost.tracking import _active

    tracking = _active.tracking_service(ctx)
    run = tracking.start_run(experiment=task.pipeline, run_name=task.step_id)
    if task.trial_params:
        tracking.log_params(run.run_id, task.trial_params)
    handle = _StepRun(run.run_id, run.experiment_id, run.name)
    _active.run_stack().append(handle)
    return handle


def run_payload(payload: bytes) -> Attempt:
    """:func:`run_task` on a cloudpickled :class:`Task` (what pool and Dask workers run)."""
    import cloudpickle

    task = cloudpickle.loads(payload)
    return run_task(task, worker=True)


def timed_out(task: Task, seconds: float, started: int) -> Attempt:
    """The attempt of a step stopped at its timeout."""
    return Attempt(
        step_id=task.step_id,
        attempt=task.attempt,
        ok=False,
        started_at=started,
        ended_at=_ms(),
        pid=0,
        error=f"TimeoutError: step {task.step_id!r} timed out after {seconds:.1f} s",
        retryable=issubclass(TimeoutError, task.step.options.retry_on)
        if task.step.options.retry_on
        else False,
    )
