"""Two real `milepost scheduler` processes on one store (SQLite and PostgreSQL): exactly one
is active; SIGKILL it and the other takes over within the lease plus an interval; a
schedule slot is launched exactly once across both."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

import milepost
from milepost import Runtime
from milepost.pipelines.scheduler import Lease, read_lease
from milepost.stores.schema import pipeline_triggers
from tests._wait import wait_until
from tests.unit.pipelines.test_triggers import NIGHTLY, Recording, service

LEASE = 2.0
INTERVAL = 0.5
SRC = str(Path(milepost.__file__).resolve().parents[1])
ROOT = str(Path(__file__).resolve().parents[2])  # the launched runs import tests.unit...


class Scheduler:
    """`python -m milepost scheduler` with a short lease, its output in a file."""

    def __init__(self, rt: Runtime, log: Path) -> None:
        env = {**os.environ, **rt.settings.to_env(), "PYTHONPATH": os.pathsep.join([SRC, ROOT])}
        self.log = log
        with open(log, "wb") as out:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "milepost",
                    "scheduler",
                    "--interval",
                    str(INTERVAL),
                    "--lease",
                    str(LEASE),
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
            )

    def holds(self, lease: Lease | None) -> bool:
        return lease is not None and f":{self.proc.pid}:" in lease.holder

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


@pytest.fixture
def rt(metadata_uri: str, tmp_path: Path) -> Iterator[Runtime]:
    runtime = milepost.configure(home=tmp_path / "home", metadata_uri=metadata_uri, user="tester")
    yield runtime
    milepost.reset()


def test_one_scheduler_is_active_and_another_takes_over_when_it_is_killed(
    rt: Runtime, tmp_path: Path
) -> None:
    # a schedule trigger whose current minute's slot is due (its cursor set a slot back)
    triggers = service(rt, rt.triggers.clock, Recording())
    trigger = triggers.add("every-minute", NIGHTLY, schedule="* * * * *")
    behind = {"last_slot": trigger.state["last_slot"] - 60_000}
    with rt.db.write() as conn:
        conn.execute(
            sa.update(pipeline_triggers)
            .where(pipeline_triggers.c.name == "every-minute")
            .values(state_json=json.dumps(behind))
        )
    # both start together: whichever wins the lease is active, the other stands by
    first = Scheduler(rt, tmp_path / "first.log")
    second = Scheduler(rt, tmp_path / "second.log")
    try:
        held = wait_until(lambda: read_lease(rt.db), what="a scheduler to take the lease",
                          detail=lambda: first.output() + second.output())  # fmt: skip
        a, b = (first, second) if first.holds(held) else (second, first)
        assert a.holds(held), held
        wait_until(lambda: "standby: scheduler" in b.output(), what="B to stand by",
                   detail=b.output)  # fmt: skip
        assert a.holds(read_lease(rt.db))
        wait_until(lambda: triggers.firings("every-minute"), what="A to fire the due slot",
                   detail=a.output)  # fmt: skip
        wait_until(lambda: "fired every-minute (slot:" in a.output(), what="A to say so",
                   detail=a.output)  # fmt: skip
        assert "fired" not in b.output()

        a.proc.send_signal(signal.SIGKILL)
        a.proc.wait(10)
        killed = time.monotonic()
        # B takes over once A's lease lapses: within the lease plus one interval, plus
        # slack for a loaded machine (the measured time is printed on failure)
        wait_until(lambda: b.holds(read_lease(rt.db)), what="B to take over",
                   timeout=LEASE + INTERVAL + 5.0, detail=b.output)  # fmt: skip
        took = time.monotonic() - killed
        assert took <= LEASE + INTERVAL + 5.0, took
        print(f"takeover after SIGKILL: {took:.2f} s")
        lease = read_lease(rt.db)
        assert lease is not None and b.holds(lease) and lease.acquired_at >= lease.renewed_at - 1000

        # B goes on ticking; every cause was fired, and launched, exactly once
        renewed = lease.renewed_at if lease else 0
        wait_until(
            lambda: (read_lease(rt.db) or lease).renewed_at > renewed,  # type: ignore[union-attr]
            what="B to renew the lease",
        )
        firings = triggers.firings("every-minute")
        assert firings and max(Counter(f.cause for f in firings).values()) == 1
        logs = sorted(p.stem for p in (rt.settings.home / "logs" / "scheduler").glob("*.log"))
        assert logs == sorted(f.firing_id for f in firings)  # one launch per firing

        # SIGTERM: B stops cleanly and gives the lease up at once (its exit status is
        # checked below: the interpreter's shutdown overlaps the wait for the runs)
        b.proc.send_signal(signal.SIGTERM)
        wait_until(lambda: "lease released" in b.output(), what="B to release the lease",
                   detail=b.output)  # fmt: skip
        final = read_lease(rt.db)
        assert final is not None and b.holds(final) and final.expires_at == 0

        # the launched runs are real pipeline runs that record their firing
        def runs_ended() -> bool:
            return all(
                f.status in ("succeeded", "failed") for f in rt.triggers.firings("every-minute")
            )

        wait_until(runs_ended, what="the launched runs to end", timeout=120)
        for f in rt.triggers.firings("every-minute"):
            run = rt.pipelines.get_run(f.run_id)
            assert run.status == "succeeded" and run.trigger == f.firing_id
        assert b.proc.wait(30) == 0, b.output()
    finally:
        first.stop()
        second.stop()
