"""``milepost endpoints serve``: one socket, replica processes, rollouts and the controller.

The supervisor binds the socket once and keeps it; each replica is forked with the
socket inherited and serves on it, so replacing a replica never closes the port. The
supervisor's loop, a few times a second:

- restarts replicas that died (a SIGKILLed replica loses only its in-flight requests);
- follows the endpoint's replica count;
- performs a rolling update one replica at a time: start a new-generation replica, wait
  until it reports ready, then drain an old one; a new replica that fails to become
  ready aborts the rollout and restores the previous version;
- runs the canary controller (one supervisor per endpoint holds a lease for it).
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import shutil
import signal
import socket
import tempfile
import time
from dataclasses import dataclass, field
from typing import Any

from milepost.errors import MilepostError
from milepost.server.listen import listen

__all__ = ["Supervisor"]

log = logging.getLogger("milepost.serving")

READY_TIMEOUT = 60.0
DRAIN_TIMEOUT = 30.0


@dataclass
class _Child:
    pid: int
    generation: int
    ready: bool = False
    draining: bool = False
    started: float = field(default_factory=time.monotonic)


class Supervisor:
    """Runs an endpoint's replicas on one host."""

    def __init__(
        self,
        endpoint: str,
        *,
        host: str = "127.0.0.1",
        port: int = 8080,
        replicas: int | None = None,
        overrides: dict[str, Any] | None = None,
        controller_interval: float = 1.0,
    ) -> None:
        import milepost

        self.endpoint = endpoint
        self.host, self.port = host, port
        self.overrides = overrides or {}
        self.rt = milepost.configure(**self.overrides)
        self.rt.serving.require(endpoint)
        self.replicas_override = replicas
        self.controller_interval = controller_interval
        self.children: dict[int, _Child] = {}
        self.stopping = False
        self.holder = f"{socket.gethostname()}:{os.getpid()}"
        self.sock: socket.socket | None = None
        self._prometheus_dir = tempfile.mkdtemp(prefix=f"milepost-metrics-{endpoint}-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = self._prometheus_dir

    # -- processes --------------------------------------------------------------------

    def _spawn(self, generation: int) -> tuple[_Child, int]:
        assert self.sock is not None
        read_fd, write_fd = os.pipe()
        pid = os.fork()
        if pid == 0:  # the replica
            code = 1
            try:
                os.close(read_fd)
                signal.signal(signal.SIGTERM, signal.SIG_DFL)
                signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the supervisor
                from milepost.server.replica import run_replica

                code = run_replica(
                    self.sock,
                    self.endpoint,
                    generation=generation,
                    ready_fd=write_fd,
                    overrides=self.overrides,
                )
            except MilepostError as exc:  # a refusal (untrusted or missing model code): one line
                log.error("A replica of %r cannot start: %s", self.endpoint, exc)
            except BaseException:
                log.exception("Replica failed")
            finally:
                os._exit(code)
        os.close(write_fd)
        child = _Child(pid, generation)
        self.children[pid] = child
        return child, read_fd

    def _wait_ready(self, child: _Child, read_fd: int, timeout: float = READY_TIMEOUT) -> bool:
        try:
            ready, _, _ = select.select([read_fd], [], [], timeout)
            child.ready = bool(ready) and os.read(read_fd, 1) == b"1"
        finally:
            os.close(read_fd)
        return child.ready

    def _drain(self, child: _Child, *, wait: bool = True) -> None:
        child.draining = True
        with contextlib.suppress(ProcessLookupError):
            os.kill(child.pid, signal.SIGTERM)
        if not wait:
            return
        deadline = time.monotonic() + DRAIN_TIMEOUT
        while time.monotonic() < deadline:
            pid, _ = os.waitpid(child.pid, os.WNOHANG)
            if pid:
                self.children.pop(child.pid, None)
                return
            time.sleep(0.05)
        with contextlib.suppress(ProcessLookupError):
            os.kill(child.pid, signal.SIGKILL)
        os.waitpid(child.pid, 0)
        self.children.pop(child.pid, None)

    def _reap(self) -> list[_Child]:
        died = []
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if not pid:
                break
            child = self.children.pop(pid, None)
            if child is not None and not child.draining:
                died.append(child)
                log.warning("Replica %s exited (status %s); replacing it", pid, status)
        return died

    def _start(self, generation: int) -> bool:
        child, fd = self._spawn(generation)
        ok = self._wait_ready(child, fd)
        if not ok:
            self._drain(child)
        return ok

    # -- the loop -----------------------------------------------------------------------

    def serve(self, *, on_ready: Any = None) -> None:
        """Bind, start the replicas, supervise until SIGTERM or SIGINT, then drain.

        Raises:
            Conflict: the port is in use (nothing was started).
        """
        # a port in use is a one-line error here, before anything says it is serving
        self.sock = listen(self.host, self.port)
        # Accepted connections inherit it: a response is two writes (head, body), and
        # without it Nagle holds the body until the client's delayed ACK (~40 ms).
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.port = self.sock.getsockname()[1]
        signal.signal(signal.SIGTERM, self._stop)
        signal.signal(signal.SIGINT, self._stop)
        spec, _ = self.rt.serving.get(self.endpoint)
        generation = self._generation_for_new(spec)
        for _ in range(self.replicas_override or spec.replicas):
            if not self._start(generation):
                raise MilepostError(
                    f"A replica of {self.endpoint!r} did not become ready; see the log."
                )
        if on_ready is not None:
            on_ready(self)
        last_control = 0.0
        try:
            while not self.stopping:
                for _ in self._reap():
                    spec, _ = self.rt.serving.get(self.endpoint)
                    self._start(self._generation_for_new(spec))
                    self._event(
                        "replica.replaced", "a replica exited unexpectedly and was replaced"
                    )
                self._follow()
                if time.monotonic() - last_control >= self.controller_interval:
                    last_control = time.monotonic()
                    self._control()
                time.sleep(0.2)
        finally:
            for child in list(self.children.values()):
                self._drain(child, wait=False)
            for child in list(self.children.values()):
                self._drain(child)
            self.sock.close()
            shutil.rmtree(self._prometheus_dir, ignore_errors=True)

    def _stop(self, _sig: int, _frame: Any) -> None:
        self.stopping = True

    @staticmethod
    def _generation_for_new(spec: Any) -> int:
        return int(spec.generation)

    def _event(self, kind: str, reason: str) -> None:
        try:
            self.rt.serving.record(self.endpoint, kind, reason)
        except MilepostError as exc:
            log.warning("Could not record %s: %s", kind, exc)

    def _follow(self) -> None:
        """Replica count and rolling updates."""
        try:
            spec, _ = self.rt.serving.get(self.endpoint)
        except MilepostError as exc:
            log.warning("Cannot read %s: %s", self.endpoint, exc)
            return
        live = [c for c in self.children.values() if not c.draining]
        ro = spec.rollout
        if ro is not None and ro.kind == "rolling" and ro.status == "in_progress":
            old = [c for c in live if c.generation < ro.target_generation]
            if old:
                if self._start(ro.target_generation):
                    self._drain(old[0])
                    self._event(
                        "rolling.step",
                        f"replaced a generation-{old[0].generation} replica "
                        f"({len(old) - 1} to go on this host)",
                    )
                else:
                    self._abort_rolling(f"a replica with {ro.candidate} did not become ready")
                return
            if self._lease():
                with contextlib.suppress(MilepostError):
                    self.rt.serving.complete_rolling(self.endpoint)
            return
        want = self.replicas_override or spec.replicas
        if len(live) < want:
            self._start(spec.generation)
        elif len(live) > want:
            self._drain(live[-1])

    def _abort_rolling(self, reason: str) -> None:
        # the failed replica is gone already; the old ones never stopped serving
        try:
            self.rt.serving.fail_rolling(self.endpoint, reason)
        except MilepostError as exc:
            log.warning("Could not abort the rolling update: %s", exc)

    def _lease(self) -> bool:
        try:
            return self.rt.serving.store.take_lease(self.endpoint, self.holder, 10.0)
        except MilepostError:
            return False

    def _control(self) -> None:
        if not self._lease():
            return
        try:
            decision = self.rt.serving.tick(self.endpoint)
        except MilepostError as exc:
            log.warning("Canary controller step failed: %s", exc)
            return
        if decision.action not in ("none", "hold"):
            log.warning("Canary %s: %s", decision.action, decision.reason)
