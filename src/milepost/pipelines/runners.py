"""Where steps run: in this process, a local process pool, or a Dask cluster.

The engine hands a runner one :class:`~milepost.pipelines._execute.Task` at a time and
waits on the returned :class:`concurrent.futures.Future` (never raising: failures are in
the :class:`~milepost.pipelines._execute.Attempt`). Tasks travel cloudpickled, so every
runner runs the same function in the same way.

Which process runs a step (:class:`LocalRunner`):

* a step that is the only one ready, with nothing else running and no timeout, runs in
  the calling process (no pickling, no process start: a chain of small steps stays
  cheap). So does every step when ``max_workers=1``. When this process's store settings
  differ from the run's, the step goes to the pool instead, so that nothing replaces the
  caller's own default store context;
* steps ready together run in parallel in a process pool of ``max_workers`` (default
  ``os.cpu_count()``) started with ``forkserver`` (never a plain ``fork`` of a process
  that may hold live threads and locks), created on first use and kept for the run;
* a step with a ``timeout`` runs in a process of its own, terminated (then killed) when
  the timeout passes: "step 'x' timed out after 5.0 s". The timeout counts from the
  call, once the process has started and imported the step (up to ``START_LIMIT``).

:class:`DaskRunner` submits every step to a ``distributed`` cluster: the one at
``address``, or a ``LocalCluster`` on 127.0.0.1 (processes, one thread each, its HTTP
server on a free loopback port) that it starts and closes itself. A timed-out step's
future is cancelled and the step failed; Dask cannot stop a call already running in a
worker thread, so the worker finishes it in the background (its outputs are ignored).
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import multiprocessing
import os
import threading
from concurrent.futures.process import BrokenProcessPool
from typing import TYPE_CHECKING, Any, Protocol

from milepost.errors import ConfigError, InvalidInput, did_you_mean
from milepost.pipelines._execute import Attempt, Task, context_matches, run_task, timed_out

if TYPE_CHECKING:
    from multiprocessing.connection import Connection

    from milepost.stores.blobs import BlobStore

__all__ = ["DaskRunner", "LocalRunner", "Runner", "make_runner"]

RUNNERS = ("local", "dask")


class Runner(Protocol):
    """Runs step attempts somewhere and reports each through a future."""

    name: str

    @property
    def workers(self) -> int:
        """How many steps may run at once."""
        ...

    def submit(self, task: Task, *, inline_ok: bool = False) -> cf.Future[Attempt]:
        """Start one attempt; ``inline_ok`` says nothing else is ready or running."""
        ...

    def cancel(self) -> None:
        """Drop submitted attempts that have not started."""
        ...

    def close(self) -> None:
        """Release what the runner started (processes, clusters)."""
        ...

    def __enter__(self) -> Any: ...

    def __exit__(self, *exc: object) -> None: ...


def _payload(task: Task) -> bytes:
    import cloudpickle

    data: bytes = cloudpickle.dumps(task)
    return data


#: Seconds a timed step's new process may take to start and import the step (not part of
#: the step's timeout, which counts from the call).
START_LIMIT = 120.0


def _child(payload: bytes, conn: Connection) -> None:
    import cloudpickle

    task = cloudpickle.loads(payload)  # made by this run's engine
    conn.send("started")  # the timeout counts from here, not from the process start
    conn.send(run_task(task, worker=True))
    conn.close()


def _now_ms() -> int:
    import time

    return int(time.time() * 1000)


class LocalRunner:
    """Steps in this process, a forkserver process pool, or a process per timed step."""

    name = "local"

    def __init__(self, *, max_workers: int | None = None, blobs: BlobStore | None = None) -> None:
        if max_workers is not None and (
            not isinstance(max_workers, int) or isinstance(max_workers, bool) or max_workers < 1
        ):
            raise InvalidInput(f"max_workers must be an integer >= 1, got {max_workers!r}.")
        self._max = max_workers or os.cpu_count() or 1
        self.blobs = blobs
        self._pool: cf.ProcessPoolExecutor | None = None
        self._children: dict[int, multiprocessing.process.BaseProcess] = {}
        self._lock = threading.Lock()
        self._closed = False
        self._ctx: Any = _process_context()

    @property
    def workers(self) -> int:
        return self._max

    def submit(self, task: Task, *, inline_ok: bool = False) -> cf.Future[Attempt]:
        if self._closed:
            raise InvalidInput("This runner is closed.", hint="Make a new one.")
        timeout = task.step.options.timeout
        if timeout is not None:
            return self._in_own_process(task, timeout)
        if (inline_ok or self._max == 1) and context_matches(task.settings):
            fut: cf.Future[Attempt] = cf.Future()
            fut.set_running_or_notify_cancel()
            fut.set_result(run_task(task, blobs=self.blobs))
            return fut
        from milepost.pipelines._execute import run_payload

        payload = _payload(task)
        try:
            return self._get_pool().submit(run_payload, payload)
        except BrokenProcessPool:  # a worker died earlier: the next steps get a new pool
            return self._get_pool(renew=True).submit(run_payload, payload)

    def _get_pool(self, *, renew: bool = False) -> cf.ProcessPoolExecutor:
        with self._lock:
            if renew and self._pool is not None:
                self._pool.shutdown(wait=False, cancel_futures=True)
                self._pool = None
            if self._pool is None:
                self._pool = cf.ProcessPoolExecutor(max_workers=self._max, mp_context=self._ctx)
            return self._pool

    def _in_own_process(self, task: Task, timeout: float) -> cf.Future[Attempt]:
        fut: cf.Future[Attempt] = cf.Future()
        fut.set_running_or_notify_cancel()
        started = _now_ms()
        receive, send = self._ctx.Pipe(duplex=False)
        proc = self._ctx.Process(target=_child, args=(_payload(task), send), daemon=True)
        proc.start()
        send.close()
        with self._lock:
            self._children[id(proc)] = proc

        def watch() -> None:
            try:
                if not receive.poll(START_LIMIT) or receive.recv() != "started":
                    fut.set_result(_died(task, started, proc))
                elif receive.poll(timeout):
                    fut.set_result(receive.recv())
                else:
                    fut.set_result(timed_out(task, timeout, started))
            except EOFError:
                fut.set_result(_died(task, started, proc))
            finally:
                receive.close()
                _stop(proc)
                with self._lock:
                    self._children.pop(id(proc), None)

        threading.Thread(target=watch, name=f"milepost-step-{task.step_id}", daemon=True).start()
        return fut

    def cancel(self) -> None:
        pool = self._pool
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)
            with self._lock:
                self._pool = None

    def close(self) -> None:
        self._closed = True
        with self._lock:
            pool, self._pool = self._pool, None
            children = list(self._children.values())
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
        for proc in children:
            _stop(proc)

    def __enter__(self) -> LocalRunner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


#: Modules the forkserver imports once, so that each worker it forks starts with them
#: (the tracking service alone takes most of a second to import).
PRELOAD = ["__main__", "milepost.pipelines._execute", "milepost.tracking._active"]


def _process_context() -> Any:
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(PRELOAD)  # no effect once this process's forkserver runs
    return ctx


def _stop(proc: multiprocessing.process.BaseProcess) -> None:
    if proc.is_alive():
        proc.terminate()
        proc.join(5)
        if proc.is_alive():
            proc.kill()
    proc.join(5)


def _died(task: Task, started: int, proc: multiprocessing.process.BaseProcess) -> Attempt:
    proc.join(5)
    return Attempt(
        step_id=task.step_id,
        attempt=task.attempt,
        ok=False,
        started_at=started,
        ended_at=_now_ms(),
        pid=proc.pid or 0,
        error=f"ProcessDied: step {task.step_id!r}'s process exited with code {proc.exitcode} "
        "before reporting",
    )


class DaskRunner:
    """Steps on a Dask ``distributed`` cluster (a given one, or a LocalCluster it owns)."""

    name = "dask"

    def __init__(self, *, address: str | None = None, max_workers: int | None = None) -> None:
        try:
            from distributed import Client, LocalCluster
        except ImportError as exc:
            raise ConfigError(
                f"The dask runner needs dask.distributed, which cannot be imported ({exc}).",
                hint="pip install 'milepost[dask]'",
            ) from exc
        self._cluster: Any = None
        if address is None:
            self._cluster = LocalCluster(  # type: ignore[no-untyped-call]
                host="127.0.0.1",
                n_workers=max_workers or 2,
                threads_per_worker=1,
                processes=True,
                # the scheduler's HTTP server (health, metrics) on a free loopback port:
                # None still binds :8787, which another cluster may hold
                dashboard_address=":0",
            )
            self.client: Any = Client(self._cluster)  # type: ignore[no-untyped-call]
        else:
            try:
                self.client = Client(address, timeout=10)  # type: ignore[no-untyped-call]
            except OSError as exc:
                raise ConfigError(
                    f"Cannot reach the Dask scheduler at {address}: {exc}.",
                    hint="Start it (dask scheduler) or check the address.",
                ) from exc
        self._futures: list[Any] = []
        self._lock = threading.Lock()

    @property
    def workers(self) -> int:
        info = self.client.scheduler_info()
        return sum(int(w.get("nthreads", 1)) for w in info.get("workers", {}).values()) or 1

    def submit(self, task: Task, *, inline_ok: bool = False) -> cf.Future[Attempt]:
        from milepost.pipelines._execute import run_payload

        fut: cf.Future[Attempt] = cf.Future()
        fut.set_running_or_notify_cancel()
        started = _now_ms()
        dask_future = self.client.submit(
            run_payload, _payload(task), pure=False, key=f"{task.step_id}-{os.urandom(6).hex()}"
        )
        with self._lock:
            self._futures.append(dask_future)
        timer: threading.Timer | None = None

        def done(f: Any) -> None:
            if timer is not None:
                timer.cancel()
            if fut.done():
                return
            try:
                result = f.result()
            except BaseException as exc:  # cancelled, or lost worker
                result = Attempt(
                    step_id=task.step_id,
                    attempt=task.attempt,
                    ok=False,
                    started_at=started,
                    ended_at=_now_ms(),
                    pid=0,
                    error=f"{type(exc).__name__}: {exc}",
                )
            _set(fut, result)

        timeout = task.step.options.timeout
        if timeout is not None:

            def expire() -> None:
                _set(fut, timed_out(task, timeout, started))
                dask_future.cancel()

            timer = threading.Timer(timeout, expire)
            timer.daemon = True
            timer.start()
        dask_future.add_done_callback(done)
        return fut

    def cancel(self) -> None:
        with self._lock:
            futures, self._futures = self._futures, []
        for f in futures:
            if not f.done():
                f.cancel()

    def close(self) -> None:
        self.cancel()
        self.client.close()
        if self._cluster is not None:
            self._cluster.close()

    def __enter__(self) -> DaskRunner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _set(fut: cf.Future[Attempt], result: Attempt) -> None:
    with contextlib.suppress(cf.InvalidStateError):  # the timeout answered first
        fut.set_result(result)


def make_runner(
    name: str = "local", *, address: str | None = None, max_workers: int | None = None
) -> Runner:
    """A runner by name: ``"local"`` or ``"dask"``.

    Args:
        name: which runner.
        address: the Dask scheduler (``tcp://host:8786``); None starts a LocalCluster.
        max_workers: parallel steps (local: pool size, default cpu count; dask: workers
            of the LocalCluster, default 2).

    Raises:
        InvalidInput: an unknown runner name, or an address for the local runner.
        ConfigError: dask is not installed, or its scheduler cannot be reached.
    """
    if name == "local":
        if address is not None:
            raise InvalidInput(
                f"The local runner takes no address (got {address!r}).",
                hint="Use --runner dask with --address.",
            )
        return LocalRunner(max_workers=max_workers)
    if name == "dask":
        return DaskRunner(address=address, max_workers=max_workers)
    raise InvalidInput(
        f"Unknown runner {name!r}." + did_you_mean(str(name), RUNNERS),
        hint=f"Runners: {', '.join(RUNNERS)}.",
    )
