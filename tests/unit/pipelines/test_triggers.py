"""Triggers on a real metadata store (SQLite, one test also PostgreSQL), with an injected
clock: what fires, and that each cause fires once."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import sqlalchemy as sa

import milepost
from milepost import Runtime
from milepost.errors import AlreadyExists, InvalidInput, NotFound
from milepost.monitoring.service import MonitorService
from milepost.pipelines._sources import RuntimeSources
from milepost.pipelines.dag import pipeline, step
from milepost.pipelines.scheduler import Scheduler
from milepost.pipelines.triggers import Cause, Firing, Trigger, TriggerService, latest_slot
from milepost.serving.monitor_sources import ServingMonitorSources
from milepost.stores.schema import pipeline_triggers
from tests.contract.test_monitors import HOUR_MS, _frame, _log, serve_churn

T0 = datetime(2026, 11, 30, 2, 30, tzinfo=UTC).timestamp()  # 02:30 UTC
MIN = 60.0


class Clock:
    """An injected clock: epoch seconds, moved by hand."""

    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def ms(self) -> int:
        return int(self.now * 1000)


@step
def count(rows: int) -> int:
    return rows


@step
def fit(n: int, c: float) -> float:
    return n * c


@pipeline
def churn(rows: int = 100, c: float = 1.0) -> None:
    """The pipelines these tests attach triggers to (importable: tests.unit...)."""
    fit(count(rows), c)


@pipeline
def nightly() -> None:
    count(1)


@step
def boom(n: int) -> int:
    raise ValueError(f"no good: {n}")


@pipeline
def broken(rows: int = 3) -> None:
    boom(count(rows))


CHURN = f"{__name__}:churn"
NIGHTLY = f"{__name__}:nightly"
BROKEN = f"{__name__}:broken"


class Recording:
    """A launcher that records what it was asked to start (and can refuse)."""

    def __init__(self) -> None:
        self.launched: list[tuple[str, str, str, dict[str, str]]] = []
        self.fail: str | None = None

    def launch(self, trigger: Trigger, firing: Firing, run_id: str) -> None:
        if self.fail:
            raise OSError(self.fail)
        self.launched.append((trigger.name, firing.cause, run_id, dict(trigger.params)))


@pytest.fixture
def rt(tmp_path: Path) -> Iterator[Runtime]:
    runtime = milepost.configure(
        home=tmp_path / "home", metadata_uri=f"sqlite:///{tmp_path / 'meta.db'}", user="tester"
    )
    yield runtime
    milepost.reset()


@pytest.fixture
def clock() -> Clock:
    return Clock()


def monitors_of(rt: Runtime, clock: Clock) -> MonitorService:
    return MonitorService(
        rt.db, "tester", ServingMonitorSources(rt.serving, rt.models), clock=clock
    )


def service(rt: Runtime, clock: Clock, launcher: Recording | None = None) -> TriggerService:
    launch = launcher or Recording()
    return TriggerService(
        rt.db,
        "tester",
        RuntimeSources(
            monitors=lambda: monitors_of(rt, clock),
            data=lambda: rt.data,
            features=lambda: rt.features,
        ),
        clock=clock,
        launcher=lambda kind: launch,
    )


def scheduler(
    triggers: TriggerService,
    launcher: Recording,
    clock: Clock,
    holder: str = "a",
    work: list[tuple[str, Callable[[int], list[str]]]] | None = None,
) -> Scheduler:
    return Scheduler(
        triggers, launcher=launcher, work=work or [], holder=holder, lease_seconds=15, clock=clock
    )


# -- schedules ------------------------------------------------------------------------------


def test_a_cron_slot_fires_once_across_ticks_and_restarts(rt: Runtime, clock: Clock) -> None:
    launcher = Recording()
    triggers = service(rt, clock, launcher)
    t = triggers.add("nightly", CHURN, params={"rows": 500}, schedule="0 3 * * *")
    assert t.kind == "schedule" and t.spec == {"cron": "0 3 * * *"} and t.params == {"rows": "500"}
    sched = scheduler(triggers, launcher, clock)
    assert sched.tick().firings == []  # 02:30: the 03:00 slot has not come; 02:30's 03:00
    clock.now += 29 * MIN  # 02:59
    assert sched.tick().firings == []
    clock.now += 1 * MIN  # 03:00 exactly
    report = sched.tick()
    assert [f.cause for f in report.firings] == ["slot:2026-11-30T03:00Z"]
    fired = report.firings[0]
    assert fired.status == "launched" and fired.reason.startswith("schedule 0 3 * * *: slot")
    assert launcher.launched == [("nightly", fired.cause, fired.run_id, {"rows": "500"})]
    for _ in range(3):
        clock.now += 10 * MIN
        assert sched.tick().firings == []
    # a restart: new objects on the same store see the slot fired already
    again = scheduler(service(rt, clock, launcher), launcher, clock, holder="a")
    assert again.tick().firings == []
    assert len(launcher.launched) == 1
    # the next day's slot fires once
    clock.now += 24 * 60 * MIN
    assert [f.cause for f in again.tick().firings] == ["slot:2026-12-01T03:00Z"]
    assert [f.cause for f in triggers.firings("nightly")] == [
        "slot:2026-12-01T03:00Z",
        "slot:2026-11-30T03:00Z",
    ]


def test_missed_slots_fire_once_for_the_latest(rt: Runtime, clock: Clock) -> None:
    launcher = Recording()
    triggers = service(rt, clock, launcher)
    triggers.add("hourly", NIGHTLY, schedule="0 * * * *")
    clock.now += 5 * 24 * 60 * MIN + 10 * MIN  # five days with no scheduler: 02:40
    report = scheduler(triggers, launcher, clock).tick()
    assert [f.cause for f in report.firings] == ["slot:2026-12-05T02:00Z"]
    assert len(launcher.launched) == 1
    assert latest_slot("0 * * * *", clock.ms()) == triggers.get("hourly").state["last_slot"]


def test_every_syntax_and_a_disabled_trigger(rt: Runtime, clock: Clock) -> None:
    launcher = Recording()
    triggers = service(rt, clock, launcher)
    triggers.add("ten", NIGHTLY, schedule="every 10m")
    sched = scheduler(triggers, launcher, clock)
    clock.now += 10 * MIN
    assert [f.cause for f in sched.tick().firings] == ["slot:2026-11-30T02:40Z"]
    assert not triggers.disable("ten").enabled
    clock.now += 30 * MIN
    assert sched.tick().firings == []
    # re-enabled: what passed while it was disabled does not fire it
    assert triggers.enable("ten").enabled
    assert sched.tick().firings == []
    clock.now += 10 * MIN
    assert len(sched.tick().firings) == 1
    actions = [e.action for e in rt.audit.list(object_type="trigger")]
    assert actions.count("trigger.disable") == 1 and actions.count("trigger.enable") == 1


def test_a_trigger_inserted_behind_the_services_back_fails_audit_verify(
    rt: Runtime, clock: Clock
) -> None:
    triggers = service(rt, clock)
    triggers.add("nightly", NIGHTLY, schedule="0 3 * * *")
    assert rt.audit.verify().ok
    row = {
        "name": "sneaky",
        "pipeline_ref": NIGHTLY,
        "params_json": "{}",
        "kind": "schedule",
        "spec_json": '{"cron": "* * * * *"}',
        "enabled": True,
        "state_json": "{}",
        "created_by": "mallory",
        "created_at": 1,
        "updated_at": 1,
    }
    with rt.db.write() as conn:
        conn.execute(sa.insert(pipeline_triggers), row)
    problems = [p.message for p in rt.audit.verify().problems]
    assert problems == [
        "2 triggers exist but only 1 trigger.create events are recorded: 1 was created "
        "without an event."
    ]


# -- alerts ---------------------------------------------------------------------------------


@pytest.fixture
def drifting(
    rt: Runtime, clock: Clock, churn_models: dict[str, Any], churn_frame: pd.DataFrame
) -> MonitorService:
    """``churn-ep`` serving churn v1, a drift monitor and a performance-only monitor on it,
    the reference hour logged; :func:`shift` logs a drifted hour after it."""
    serve_churn(rt, churn_models, churn_frame)
    monitors = monitors_of(rt, clock)
    monitors.create(
        "churn-health",
        endpoint="churn-ep",
        checks=["feature_drift", "prediction_drift"],
        window="1h",
        thresholds={"psi": 0.2},
    )
    monitors.create("churn-perf", endpoint="churn-ep", checks=["performance"])
    return monitors


def shift(rt: Runtime, clock: Clock, seed: int) -> None:
    """Log a reference hour and a drifted half hour ending at the clock."""
    now = clock.ms()
    _log(rt, _frame(400, seed=seed), start_ms=now - HOUR_MS - 30 * 60_000)
    _log(rt, _frame(400, seed=seed + 1, age_shift=12), start_ms=now - 30 * 60_000)


def test_a_drift_trigger_fires_once_per_new_alert(
    rt: Runtime, clock: Clock, drifting: MonitorService
) -> None:
    shift(rt, clock, seed=1)
    old = drifting.run("churn-health")  # alerts raised before the trigger exists
    assert old.alerts
    launcher = Recording()
    triggers = service(rt, clock, launcher)
    t = triggers.add("on-drift", CHURN, on_drift="churn-health")
    assert t.state == {"last_alert_id": max(a.alert_id for a in old.alerts)}
    sched = scheduler(triggers, launcher, clock)
    assert sched.tick().firings == []  # older alerts do not fire it

    clock.now += 2 * 60 * MIN
    shift(rt, clock, seed=5)
    raised = drifting.run("churn-health").alerts
    clock.now += 10 * MIN
    raised += drifting.run("churn-health").alerts
    assert len(raised) >= 3  # several alerts between two ticks: one firing, for the newest
    report = sched.tick()
    assert len(report.firings) == 1
    newest = max(a.alert_id for a in raised)
    fired = report.firings[0]
    assert fired.cause == f"alert:{newest}"
    assert fired.reason.startswith(f"monitor churn-health raised alert {newest}: ")
    others = sorted(a.alert_id for a in raised if a.alert_id != newest)
    assert f"(with alerts {', '.join(map(str, others))}, one firing for all)" in fired.reason
    assert sched.tick().firings == [] and len(launcher.launched) == 1


def test_alert_triggers_check_the_monitor_and_its_kind(
    rt: Runtime, clock: Clock, drifting: MonitorService
) -> None:
    triggers = service(rt, clock)
    with pytest.raises(NotFound, match=r"No monitor named 'churn-heath'.*churn-health"):
        triggers.add("x", CHURN, on_drift="churn-heath")
    with pytest.raises(InvalidInput, match="'churn-perf' has no drift check"):
        triggers.add("x", CHURN, on_drift="churn-perf")
    with pytest.raises(InvalidInput, match="'churn-health' has no performance check"):
        triggers.add("x", CHURN, on_performance="churn-health")
    perf = triggers.add("x", CHURN, on_performance="churn-perf")
    assert (
        perf.kind == "performance"
        and perf.description == "performance alerts of monitor churn-perf"
    )
    # a drift alert does not fire a performance trigger
    shift(rt, clock, seed=9)
    assert drifting.run("churn-health").alerts
    assert scheduler(triggers, Recording(), clock).tick().firings == []


# -- data volume ----------------------------------------------------------------------------


def _customers(n: int) -> pd.DataFrame:
    return pd.DataFrame({"id": range(n), "spend": [float(i % 17) for i in range(n)]})


def test_data_volume_fires_at_the_threshold_then_rebaselines(rt: Runtime, clock: Clock) -> None:
    rt.data.register("customers", _customers(100))
    launcher = Recording()
    triggers = service(rt, clock, launcher)
    t = triggers.add("fresh-data", CHURN, on_data="customers", min_rows=50)
    assert t.spec == {"source": "dataset", "name": "customers", "min_rows": 50}
    assert t.state == {"baseline_rows": 100, "baseline_token": "1"}
    assert t.description == "50 new rows in dataset customers"
    sched = scheduler(triggers, launcher, clock)
    assert sched.tick().firings == []
    rt.data.register("customers", _customers(149))  # 49 new: below
    assert sched.tick().firings == []
    rt.data.register("customers", _customers(150))  # 50 new: fires
    fired = sched.tick().firings
    assert [f.cause for f in fired] == ["rows:customers@3"]
    assert fired[0].reason == (
        "50 new rows in dataset customers (150 at 3, baseline 100) reached min_rows 50"
    )
    assert sched.tick().firings == []
    assert triggers.get("fresh-data").state == {"baseline_rows": 150, "baseline_token": "3"}
    rt.data.register("customers", _customers(199))  # 49 since the new baseline
    assert sched.tick().firings == []
    rt.data.register("customers", _customers(200))
    assert [f.cause for f in sched.tick().firings] == ["rows:customers@5"]
    assert len(launcher.launched) == 2


# -- manual firings, launch failures, isolation ----------------------------------------------


def test_manual_fire_and_a_failed_launch(rt: Runtime, clock: Clock) -> None:
    launcher = Recording()
    triggers = service(rt, clock, launcher)
    triggers.add("nightly", NIGHTLY, schedule="0 3 * * *")
    fired = triggers.fire("nightly", reason="new labels arrived")
    assert fired.cause.startswith("manual:") and fired.status == "launched"
    assert fired.reason == "fired by hand by tester: new labels arrived"
    assert launcher.launched[0][2] == fired.run_id
    assert triggers.get_firing(fired.firing_id) == fired
    audit = rt.audit.list(object_type="trigger", object_id="nightly")
    assert "trigger.fire" in [e.action for e in audit]

    launcher.fail = "no such interpreter"
    failed = triggers.fire("nightly")
    assert failed.status == "launch_failed" and failed.error == "OSError: no such interpreter"
    # a scheduled slot whose launch fails is recorded and not retried
    clock.now += 30 * MIN
    sched = scheduler(triggers, launcher, clock)
    first = sched.tick().firings
    assert [f.status for f in first] == ["launch_failed"]
    launcher.fail = None
    assert sched.tick().firings == []
    statuses = [f.status for f in triggers.firings("nightly")]
    assert sorted(statuses) == ["launch_failed", "launch_failed", "launched"]


def test_one_failing_piece_of_work_does_not_stop_the_rest(rt: Runtime, clock: Clock) -> None:
    def boom(now: int) -> list[str]:
        raise RuntimeError("the monitor store is on fire")

    ran: list[int] = []

    def fine(now: int) -> list[str]:
        ran.append(now)
        return [f"did it at {now}"]

    triggers = service(rt, clock)
    report = scheduler(triggers, Recording(), clock, work=[("boom", boom), ("fine", fine)]).tick()
    assert report.active and ran == [clock.ms()]
    assert report.work == {"fine": [f"did it at {clock.ms()}"]}
    assert report.errors == ["boom: RuntimeError: the monitor store is on fire"]
    assert "error: boom: RuntimeError: the monitor store is on fire" in report.lines()


# -- the lease ------------------------------------------------------------------------------


def test_only_the_lease_holder_works_and_another_takes_over_after_expiry(
    rt: Runtime, clock: Clock
) -> None:
    launcher = Recording()
    triggers = service(rt, clock, launcher)
    triggers.add("ten", NIGHTLY, schedule="every 10m")
    worked: list[str] = []
    a = scheduler(triggers, launcher, clock, "a", work=[("w", lambda n: worked.append("a") or [])])
    b = scheduler(triggers, launcher, clock, "b", work=[("w", lambda n: worked.append("b") or [])])
    assert a.tick().active
    standby = b.tick()
    assert not standby.active and standby.lease.holder == "a"
    assert standby.lines() == ["standby: scheduler a holds the lease until 2026-11-30 02:30:15 UTC"]
    clock.now += 10 * MIN - 1  # a keeps renewing; b keeps waiting
    a.tick()
    clock.now += 1
    assert len(a.tick().firings) == 1 and not b.tick().active
    assert worked == ["a", "a", "a"]
    clock.now += 16  # a is gone: its lease expires, b takes over
    report = b.tick()
    assert report.active and report.lease.holder == "b"
    assert report.lease.acquired_at == clock.ms()
    assert not a.tick().active  # a, back, stands by
    assert len(launcher.launched) == 1


def test_serve_ticks_until_stopped_and_releases_the_lease(rt: Runtime) -> None:
    triggers = service(rt, Clock())
    sched = Scheduler(triggers, launcher=Recording(), holder="s", lease_seconds=3)
    with pytest.raises(InvalidInput, match="at most a third of the lease"):
        sched.serve(interval=1.5)
    stop = threading.Event()
    ticks: list[bool] = []

    def on_tick(report: Any) -> None:
        ticks.append(report.active)
        if len(ticks) == 2:
            stop.set()

    sched.serve(interval=0.05, stop=stop, on_tick=on_tick)
    assert ticks == [True, True]
    from milepost.pipelines.scheduler import read_lease

    lease = read_lease(rt.db)
    assert lease is not None and lease.holder == "s" and lease.expires_at == 0


# -- bad input ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "match", "kwargs"),
    [
        (InvalidInput, "Cannot import module 'nope' of pipeline 'nope:flow'",
         {"pipeline": "nope:flow"}),
        (InvalidInput, "has no attribute 'churm'.*Did you mean 'churn'",
         {"pipeline": f"{__name__}:churm"}),
        (InvalidInput, "is a step, not a pipeline", {"pipeline": f"{__name__}:count"}),
        (InvalidInput, "'package.module:attr'", {"pipeline": "no-colon"}),
        (InvalidInput, "has no parameter 'rowz'", {"params": {"rowz": "1"}}),
        (InvalidInput, "parameter 'rows' expects", {"params": {"rows": "many"}}),
        (InvalidInput, "not an identifier", {"params": {"1x": "1"}}),
        (InvalidInput, "has no text form", {"params": {"rows": object()}}),
        (InvalidInput, r"expects int, got .\[1, 2\].", {"params": {"rows": [1, 2]}}),
        (InvalidInput, "not a five-field cron", {"schedule": "0 3 * *"}),
        (InvalidInput, "not a five-field cron", {"schedule": "61 * * * *"}),
        (InvalidInput, "exactly one cause; got none", {"schedule": None}),
        (InvalidInput, "got schedule, on_data", {"on_data": "customers", "min_rows": 1}),
        (InvalidInput, "min_rows goes with on_data", {"min_rows": 5}),
        (NotFound, r"No dataset or feature view named 'custmers'.*'customers'",
         {"schedule": None, "on_data": "custmers", "min_rows": 1}),
        (InvalidInput, "needs min_rows", {"schedule": None, "on_data": "customers"}),
        (InvalidInput, "min_rows must be",
         {"schedule": None, "on_data": "customers", "min_rows": 0}),
        (NotFound, "No monitor named 'ghost'", {"schedule": None, "on_drift": "ghost"}),
        (InvalidInput, "invalid", {"name": "bad name!"}),
    ],
)  # fmt: skip
def test_bad_input_is_refused_at_add(
    rt: Runtime, clock: Clock, error: type[Exception], match: str, kwargs: dict[str, Any]
) -> None:
    rt.data.register("customers", _customers(10))
    triggers = service(rt, clock)
    args: dict[str, Any] = {"name": "t", "pipeline": CHURN, "schedule": "0 3 * * *"}
    args.update(kwargs)
    with pytest.raises(error, match=match):
        triggers.add(args.pop("name"), args.pop("pipeline"), **args)
    assert triggers.list() == []  # nothing written


def test_names_are_unique_and_remove_deletes_firings(rt: Runtime, clock: Clock) -> None:
    triggers = service(rt, clock)
    triggers.add("nightly", NIGHTLY, schedule="0 3 * * *")
    with pytest.raises(AlreadyExists, match="exists already"):
        triggers.add("nightly", NIGHTLY, schedule="0 4 * * *")
    triggers.fire("nightly")
    triggers.remove("nightly", reason="replaced")
    assert triggers.list() == [] and triggers.firings() == []
    with pytest.raises(NotFound, match="No trigger named 'nightly'"):
        triggers.get("nightly")
    actions = [e.action for e in rt.audit.list(object_type="trigger")]
    assert "trigger.create" in actions and "trigger.delete" in actions


# -- races ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def test_two_evaluators_racing_one_cause_fire_once(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    uri = (
        request.getfixturevalue("postgres_schema")
        if backend == "postgres"
        else f"sqlite:///{tmp_path / 'race.db'}"
    )
    rt = milepost.configure(home=tmp_path / "home", metadata_uri=uri, user="tester")
    triggers = service(rt, Clock())
    trigger = triggers.add("nightly", NIGHTLY, schedule="0 3 * * *")

    def race(attempt: Callable[[], Firing | None]) -> list[Firing | None]:
        barrier = threading.Barrier(2)
        won: list[Firing | None] = []

        def run() -> None:
            barrier.wait()
            won.append(attempt())

        threads = [threading.Thread(target=run) for _ in range(2)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        return won

    # two schedulers evaluating the same trigger state: the cursor's compare-and-set
    cause = Cause("slot:2026-11-30T03:00Z", "the slot came", {"last_slot": 1})
    won = race(lambda: triggers.record(trigger, cause))
    assert len(won) == 2 and sum(f is not None for f in won) == 1
    # the same cause written twice at once, cursor aside: UNIQUE(trigger, cause) decides
    for n in range(3):

        def insert(n: int = n) -> Firing | None:
            with rt.db.write() as conn:
                return triggers._insert_firing(conn, trigger, f"alert:{n}", "raced")

        won = race(insert)
        assert len(won) == 2 and sum(f is not None for f in won) == 1
    causes = sorted(f.cause for f in triggers.firings("nightly"))
    assert causes == ["alert:0", "alert:1", "alert:2", "slot:2026-11-30T03:00Z"]


def test_a_tick_that_outlasts_its_lease_stops_when_another_took_over(
    rt: Runtime, clock: Clock
) -> None:
    triggers = service(rt, clock)
    ran: list[str] = []
    b = scheduler(triggers, Recording(), clock, "b")

    def slow(now: int) -> list[str]:
        clock.now += 20  # longer than the 15 s lease, and b ticks meanwhile
        assert b.tick().active
        ran.append("slow")
        return []

    a = scheduler(
        triggers, Recording(), clock, "a", work=[("slow", slow), ("next", lambda n: ["ran"])]
    )
    report = a.tick()
    assert ran == ["slow"] and "next" not in report.work
    assert report.errors == ["lost the lease during the tick: stopped; the new holder carries on"]


def test_a_performance_trigger_fires_on_an_accuracy_alert(
    rt: Runtime, clock: Clock, drifting: MonitorService
) -> None:
    """Labels sent later: accuracy 0.75 under a 0.9 threshold raises the alert that fires."""
    drifting.update("churn-perf", thresholds={"accuracy": 0.9})
    launcher = Recording()
    triggers = service(rt, clock, launcher)
    triggers.add("on-accuracy", CHURN, on_performance="churn-perf")
    sched = scheduler(triggers, launcher, clock)
    frame = _frame(40, seed=8)
    preds = [int(a > 45) for a in frame["age"]]
    ids = _log(rt, frame, start_ms=clock.ms() - 60_000, predictions=preds)
    for i, rid in enumerate(ids[:20]):  # 15 right, 5 wrong
        rt.serving.store.add_feedback("churn-ep", rid, [preds[i] if i < 15 else 1 - preds[i]])
    [alert] = drifting.run("churn-perf").alerts
    assert alert.metric == "accuracy"
    [fired] = sched.tick().firings
    assert fired.cause == f"alert:{alert.alert_id}"
    assert fired.reason.startswith(
        f"monitor churn-perf raised alert {alert.alert_id}: performance accuracy=0.75 < 0.9"
    )
    assert sched.tick().firings == []
