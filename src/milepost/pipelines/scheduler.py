"""The scheduler: one active process that fires triggers and runs the periodic work.

``milepost scheduler`` ticks every few seconds. A tick:

1. takes or renews the **lease** (the ``scheduler_leases`` row ``"scheduler"``) by
   compare-and-set: ``UPDATE ... WHERE holder = me OR expires_at < now``, or an INSERT when
   the row is missing (losing that insert race is fine). A scheduler that is not the holder
   reports who is and until when, and does nothing else. Several schedulers may run for
   availability; when the holder dies, another takes over once the lease expires, i.e.
   within ``lease_seconds + interval``. A lease row works alike on SQLite and PostgreSQL
   and shows who is active (PostgreSQL advisory locks would bind to one connection).
   Expiry compares each scheduler's own clock with the stored times, so the hosts'
   clocks must agree to well within a lease (NTP does).
2. evaluates every enabled trigger (:meth:`TriggerService.evaluate`), writes each firing
   with its cursor in one transaction (UNIQUE(trigger, cause): a cause fires once even if
   two schedulers overlap when a lease changes hands), then launches it. A launch that
   fails is recorded ``launch_failed`` with the error and not retried for that cause.
3. runs the periodic work, each piece isolated (one failing is logged and reported, the
   others still run): firings left ``pending`` for two leases with no run registered (a
   scheduler died between writing and launching them) are marked ``launch_failed``;
   monitors due on their schedules run (``monitors.run_due``, which claims each slot
   itself); stale tracking runs and stale pipeline runs are reaped; and canaries whose
   controller is gone are advanced (:func:`milepost.pipelines._sources.orphan_canaries`).

Launchers: :class:`InlineLauncher` runs the pipeline in this process, synchronously (the
demo, tests); :class:`SubprocessLauncher` starts ``python -m milepost pipelines run REF
--param k=v ... --run-id ID --trigger FIRING`` detached, its output in
``<home>/logs/scheduler/<firing>.log``, so a long run does not block the scheduler.
While :meth:`Scheduler.serve` runs, a thread renews the held lease every interval, so a
long tick (an inline run, a slow monitor) keeps it; a tick also renews it before each
launch and piece of work and stops if it was lost. Should two ever overlap anyway (a
process frozen past its lease), UNIQUE(trigger, cause) still keeps each cause to one
firing, and monitor slots and canary steps are claimed by compare-and-set.
"""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from milepost._records import record_dict
from milepost.errors import InvalidInput, MilepostError
from milepost.stores import _sql
from milepost.stores.schema import scheduler_leases

if TYPE_CHECKING:
    import builtins
    from collections.abc import Callable, Sequence
    from pathlib import Path

    from milepost.config import Settings
    from milepost.pipelines.triggers import Firing, Launcher, Trigger, TriggerService
    from milepost.stores.metadata import MetadataStore

__all__ = [
    "LEASE_NAME",
    "InlineLauncher",
    "Lease",
    "Scheduler",
    "SubprocessLauncher",
    "TickReport",
    "read_lease",
    "release_lease",
    "renew_lease",
    "take_lease",
]

log = logging.getLogger("milepost.pipelines.scheduler")

#: The lease row every scheduler of a metadata store competes for.
LEASE_NAME = "scheduler"


def default_holder() -> str:
    """``host:pid:uuid``: unique per scheduler object, readable by people."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def _fmt(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


# -- the lease ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Lease:
    """Who holds a lease and until when (epoch ms)."""

    name: str
    holder: str
    acquired_at: int
    renewed_at: int
    expires_at: int

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return record_dict(self)


def read_lease(db: MetadataStore, name: str = LEASE_NAME) -> Lease | None:
    """The lease row, or None when nobody ever took it."""
    with db.read() as conn:
        row = (
            conn.execute(sa.select(scheduler_leases).where(scheduler_leases.c.name == name))
            .mappings()
            .first()
        )
    return None if row is None else Lease(**dict(row))


def take_lease(
    db: MetadataStore, holder: str, seconds: float, now_ms: int, name: str = LEASE_NAME
) -> Lease:
    """Take or renew the lease by compare-and-set; returns the lease as it stands after
    (held when ``lease.holder == holder``)."""
    until = now_ms + int(seconds * 1000)
    t = scheduler_leases
    with db.write() as conn:
        moved = conn.execute(
            sa.update(t)
            .where(t.c.name == name, sa.or_(t.c.holder == holder, t.c.expires_at < now_ms))
            .values(
                holder=holder,
                acquired_at=sa.case((t.c.holder == holder, t.c.acquired_at), else_=now_ms),
                renewed_at=now_ms,
                expires_at=until,
            )
        ).rowcount
        if moved == 0:
            conn.execute(
                _sql.insert_for(conn, t)
                .values(
                    name=name,
                    holder=holder,
                    acquired_at=now_ms,
                    renewed_at=now_ms,
                    expires_at=until,
                )
                .on_conflict_do_nothing(index_elements=["name"])
            )
        row = conn.execute(sa.select(t).where(t.c.name == name)).mappings().one()
    return Lease(**dict(row))


def renew_lease(
    db: MetadataStore, holder: str, seconds: float, now_ms: int, name: str = LEASE_NAME
) -> bool:
    """Extend the lease if ``holder`` holds it and it has not lapsed; True when it did (a
    lapsed lease is taken again only by :func:`take_lease`, at the start of a tick)."""
    t = scheduler_leases
    with db.write() as conn:
        return (
            conn.execute(
                sa.update(t)
                .where(t.c.name == name, t.c.holder == holder, t.c.expires_at >= now_ms)
                .values(renewed_at=now_ms, expires_at=now_ms + int(seconds * 1000))
            ).rowcount
            == 1
        )


def release_lease(db: MetadataStore, holder: str, name: str = LEASE_NAME) -> bool:
    """Give the lease up (expire it now) if ``holder`` holds it; True when it did."""
    t = scheduler_leases
    with db.write() as conn:
        return (
            conn.execute(
                sa.update(t).where(t.c.name == name, t.c.holder == holder).values(expires_at=0)
            ).rowcount
            == 1
        )


# -- launchers ------------------------------------------------------------------------------


class InlineLauncher:
    """Runs the pipeline in this process and returns when it ends.

    Args:
        run: ``rt.pipelines.run`` (pipeline, params, run_id=, trigger=).
        load: ``milepost.pipelines.load_pipeline`` (ref -> Pipeline).
    """

    def __init__(self, run: Callable[..., Any], load: Callable[[str], Any]) -> None:
        self.run = run
        self.load = load

    def launch(self, trigger: Trigger, firing: Firing, run_id: str) -> None:
        pipe = self.load(trigger.pipeline)
        params = pipe.parse_params(dict(trigger.params))
        self.run(pipe, params, run_id=run_id, trigger=firing.firing_id)


class SubprocessLauncher:
    """Starts ``milepost pipelines run`` detached, with this runtime's store settings.

    Args:
        settings: the settings the child gets (as ``MILEPOST_*`` variables).
        python: the interpreter (this one by default).
        log_dir: where each firing's log goes (``<home>/logs/scheduler``).
    """

    def __init__(
        self,
        settings: Settings,
        *,
        python: str = sys.executable,
        log_dir: Path | None = None,
    ) -> None:
        self.settings = settings
        self.python = python
        self.log_dir = log_dir or settings.home / "logs" / "scheduler"
        self.children: list[subprocess.Popen[bytes]] = []

    def command(self, trigger: Trigger, firing: Firing, run_id: str) -> list[str]:
        """The command line a firing runs."""
        args = [self.python, "-m", "milepost", "pipelines", "run", trigger.pipeline]
        for key, value in sorted(trigger.params.items()):
            args += ["--param", f"{key}={value}"]
        return [*args, "--run-id", run_id, "--trigger", firing.firing_id]

    def launch(self, trigger: Trigger, firing: Firing, run_id: str) -> None:
        self.children = [c for c in self.children if c.returncode is None]
        self.log_dir.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, **self.settings.to_env()}
        with open(self.log_dir / f"{firing.firing_id}.log", "ab") as out:
            child = subprocess.Popen(
                self.command(trigger, firing, run_id),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,  # a Ctrl-C to the scheduler does not stop the run
            )
        self.children.append(child)
        # a waiter reaps the child when it ends (no zombie while the scheduler lives on)
        threading.Thread(target=child.wait, name=f"milepost-run-{run_id[:8]}", daemon=True).start()


# -- the scheduler --------------------------------------------------------------------------


@dataclass(frozen=True)
class TickReport:
    """What one tick did.

    Attributes:
        at: the tick's time (epoch ms).
        holder: this scheduler.
        active: whether it held the lease (False: it did nothing else).
        lease: the lease after the attempt (who holds it, until when).
        firings: the firings this tick made, after their launch.
        work: periodic work name -> one line per thing it did (monitor runs, reaped runs,
            canary decisions).
        errors: one line per piece of work or trigger that failed (the rest still ran).
    """

    at: int
    holder: str
    active: bool
    lease: Lease
    firings: list[Firing] = field(default_factory=list)
    work: dict[str, list[str]] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)

    def lines(self) -> builtins.list[str]:
        """One line per action, for people (``milepost scheduler`` prints them)."""
        if not self.active:
            return [
                f"standby: scheduler {self.lease.holder} holds the lease until "
                f"{_fmt(self.lease.expires_at)}"
            ]
        out = [
            f"fired {f.trigger} ({f.cause}): {f.reason} -> run {f.run_id} {f.status}"
            + (f": {f.error}" if f.error else "")
            for f in self.firings
        ]
        for name, done in self.work.items():
            out += [f"{name}: {line}" for line in done]
        return out + [f"error: {e}" for e in self.errors]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return record_dict(self)


#: A piece of periodic work: now (epoch ms) -> one line per thing it did.
Work = tuple[str, "Callable[[int], builtins.list[str]]"]


class Scheduler:
    """Ticks: the lease, the triggers, the periodic work (see the module docstring).

    Args:
        triggers: the trigger service.
        launcher: how firings start their pipeline.
        work: named periodic work, run in order after the triggers.
        holder: this scheduler's name in the lease (default ``host:pid:uuid``).
        lease_seconds: how long a taken lease lasts without renewal.
        clock: epoch seconds now (tests inject one).
    """

    def __init__(
        self,
        triggers: TriggerService,
        *,
        launcher: Launcher,
        work: Sequence[Work] = (),
        holder: str | None = None,
        lease_seconds: float = 15.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if (
            isinstance(lease_seconds, bool)
            or not isinstance(lease_seconds, (int, float))
            or not 0.1 <= lease_seconds <= 3600
        ):
            raise InvalidInput(
                "lease_seconds must be a number of seconds from 0.1 to 3600, got "
                f"{lease_seconds!r}.",
                hint="The default is 15 s: another scheduler takes over within that (plus an "
                "interval) when this one dies.",
            )
        self.triggers = triggers
        self.db = triggers.db
        self.launcher = launcher
        # firings a dead scheduler wrote but never launched are closed first
        self.work: list[Work] = [("firings", self._expire_pending), *work]
        self.holder = holder or default_holder()
        self.lease_seconds = float(lease_seconds)
        self.clock = clock

    def tick(self, now: int | None = None) -> TickReport:
        """One pass (``now``: epoch ms, default the clock).

        The lease is renewed before each launch and each piece of work; if it was lost
        meanwhile (this tick outlasted it and another scheduler took over), the tick stops
        there and says so in ``errors``.
        """
        now_ms = int(self.clock() * 1000) if now is None else int(now)
        lease = take_lease(self.db, self.holder, self.lease_seconds, now_ms)
        if lease.holder != self.holder:
            return TickReport(now_ms, self.holder, False, lease)
        firings: list[Firing] = []
        errors: list[str] = []
        done: dict[str, list[str]] = {}
        report = TickReport(now_ms, self.holder, True, lease, firings, done, errors)
        for trigger in self.triggers.list():
            if not trigger.enabled:
                continue
            try:
                cause = self.triggers.evaluate(trigger, now_ms)
                firing = None if cause is None else self.triggers.record(trigger, cause)
                if firing is not None:
                    if not self._renewed(now, errors):
                        return report
                    firings.append(self.triggers.launch(trigger, firing, self.launcher))
            except Exception as exc:  # one broken trigger must not stop the others
                log.exception("trigger %s failed to evaluate", trigger.name)
                errors.append(f"trigger {trigger.name}: {_describe(exc)}")
        for name, job in self.work:
            if not self._renewed(now, errors):
                return report
            try:
                lines = job(now_ms)
            except Exception as exc:  # each piece of work is isolated
                log.exception("scheduler work %s failed", name)
                errors.append(f"{name}: {_describe(exc)}")
                continue
            if lines:
                done[name] = lines
        return report

    def _expire_pending(self, now_ms: int) -> builtins.list[str]:
        expired = self.triggers.expire_pending(now_ms, int(2 * self.lease_seconds * 1000))
        return [
            f"firing {f.firing_id} of {f.trigger} ({f.cause}) marked launch_failed: {f.error}"
            for f in expired
        ]

    def _renewed(self, now: int | None, errors: list[str]) -> bool:
        at = int(self.clock() * 1000) if now is None else int(now)
        if renew_lease(self.db, self.holder, self.lease_seconds, at):
            return True
        errors.append("lost the lease during the tick: stopped; the new holder carries on")
        return False

    def serve(
        self,
        interval: float = 5.0,
        stop: threading.Event | None = None,
        *,
        on_tick: Callable[[TickReport], None] | None = None,
    ) -> None:
        """Tick every ``interval`` seconds until ``stop`` is set; release the lease on the
        way out. ``interval`` must be at most a third of the lease, so the holder renews it
        twice before it could expire."""
        if (
            isinstance(interval, bool)
            or not isinstance(interval, (int, float))
            or not 0 < interval <= self.lease_seconds / 3
        ):
            raise InvalidInput(
                f"The interval {interval!r} s must be above 0 and at most a third of the "
                f"lease ({self.lease_seconds:g} s), so the holder renews it in time.",
                hint=f"Use --interval {self.lease_seconds / 3:g} or less, or a longer --lease.",
            )
        stop = stop or threading.Event()
        renewer = threading.Thread(
            target=self._keep_renewing, args=(interval, stop), name="milepost-lease", daemon=True
        )
        renewer.start()
        try:
            while not stop.is_set():
                try:
                    report = self.tick()
                except MilepostError as exc:  # the store is down: try again next interval
                    log.warning("scheduler tick failed: %s", exc)
                else:
                    if on_tick is not None:
                        on_tick(report)
                stop.wait(interval)
        finally:
            stop.set()
            renewer.join()
            try:
                release_lease(self.db, self.holder)
            except MilepostError as exc:
                log.warning("could not release the scheduler lease: %s", exc)

    def _keep_renewing(self, interval: float, stop: threading.Event) -> None:
        """Renew a held lease every interval, also while a tick runs long (an inline
        pipeline run, a slow monitor): the holder stays the holder while it lives."""
        while not stop.wait(interval):
            try:
                renew_lease(self.db, self.holder, self.lease_seconds, int(self.clock() * 1000))
            except MilepostError as exc:
                log.warning("could not renew the scheduler lease: %s", exc)


def _describe(exc: BaseException) -> str:
    return exc.message if isinstance(exc, MilepostError) else f"{type(exc).__name__}: {exc}"
