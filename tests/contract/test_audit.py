"""The audit trail: written with the change, append-only, and tampering is named."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

import milepost
from milepost import Client
from milepost._context import Runtime
from milepost.errors import AlreadyExists, BackendUnavailable, Conflict, InvalidInput


def _events(n: int) -> None:
    c = Client()
    for i in range(n):
        c.create_experiment(f"e{i}")


def _untrigger(rt: Runtime) -> None:
    """What an attacker with database access would do first."""
    with rt.db.write() as conn:
        if conn.dialect.name == "sqlite":
            conn.execute(sa.text("DROP TRIGGER audit_events_no_update"))
            conn.execute(sa.text("DROP TRIGGER audit_events_no_delete"))
        else:
            conn.execute(sa.text("ALTER TABLE audit_events DISABLE TRIGGER USER"))


def test_intact_chain_verifies(runtime: Runtime) -> None:
    _events(5)
    report = Client().verify_audit()
    assert report.ok and report.checked == 5 and report.head_seq == 5


def test_the_table_refuses_updates_and_deletes(runtime: Runtime) -> None:
    _events(1)
    for statement in ("UPDATE audit_events SET actor = 'mallory'", "DELETE FROM audit_events"):
        with (
            pytest.raises((BackendUnavailable, Conflict), match="append-only"),
            runtime.db.write() as conn,
        ):
            conn.execute(sa.text(statement))
    assert Client().verify_audit().ok


def test_a_failed_change_writes_no_event(runtime: Runtime) -> None:
    _events(1)
    with pytest.raises(AlreadyExists):
        Client().create_experiment("e0")
    assert Client().verify_audit().checked == 1


def test_edited_event_is_named(runtime: Runtime) -> None:
    _events(4)
    _untrigger(runtime)
    with runtime.db.write() as conn:
        conn.execute(sa.text("UPDATE audit_events SET actor = 'mallory' WHERE seq = 2"))
    report = Client().verify_audit()
    assert [(p.kind, p.seq) for p in report.problems] == [("edited", 2)]
    assert "event 2" in report.problems[0].message


def test_deleted_event_is_named(runtime: Runtime) -> None:
    _events(5)
    _untrigger(runtime)
    with runtime.db.write() as conn:
        conn.execute(sa.text("DELETE FROM audit_events WHERE seq = 3"))
    report = Client().verify_audit()
    assert ("deleted", 3) in [(p.kind, p.seq) for p in report.problems]
    assert "event 3 deleted" in report.problems[0].message


def test_deleting_the_newest_events_is_detected(runtime: Runtime) -> None:
    _events(5)
    _untrigger(runtime)
    with runtime.db.write() as conn:
        conn.execute(sa.text("DELETE FROM audit_events WHERE seq >= 4"))
    report = Client().verify_audit()
    assert [(p.kind, p.seq) for p in report.problems] == [("deleted", 4)]
    assert "events 4..5" in report.problems[0].message


def test_reordered_events_are_named(runtime: Runtime) -> None:
    _events(5)
    _untrigger(runtime)
    with runtime.db.write() as conn:
        conn.execute(sa.text("UPDATE audit_events SET seq = 100 WHERE seq = 2"))
        conn.execute(sa.text("UPDATE audit_events SET seq = 2 WHERE seq = 3"))
        conn.execute(sa.text("UPDATE audit_events SET seq = 3 WHERE seq = 100"))
    report = Client().verify_audit()
    assert [(p.kind, p.seq) for p in report.problems] == [("reordered", 2), ("reordered", 3)]
    assert "written as event 3" in report.problems[0].message


def test_anchor_catches_a_fully_rewritten_chain(runtime: Runtime) -> None:
    _events(3)
    seq, digest = runtime.audit.head()
    anchor = f"{seq}:{digest}"
    assert Client().verify_audit(anchor=anchor).ok
    # rewrite history consistently: recompute every hash after editing event 1
    _untrigger(runtime)
    from milepost.stores.audit import GENESIS_HASH, event_hash, iter_rows

    with runtime.db.write() as conn:
        rows = list(iter_rows(conn))
        prev = GENESIS_HASH
        for row in rows:
            if row["seq"] == 1:
                row["actor"] = "mallory"
            row["prev_hash"] = prev
            row["hash"] = event_hash(row)
            prev = row["hash"]
            conn.execute(
                sa.text("UPDATE audit_events SET actor=:a, prev_hash=:p, hash=:h WHERE seq=:s"),
                {"a": row["actor"], "p": row["prev_hash"], "h": row["hash"], "s": row["seq"]},
            )
        conn.execute(sa.text("UPDATE audit_head SET hash = :h"), {"h": prev})
    assert Client().verify_audit().ok  # undetectable without an anchor...
    report = Client().verify_audit(anchor=anchor)
    assert [p.kind for p in report.problems] == ["anchor"]  # ...caught with one
    with pytest.raises(InvalidInput, match="SEQ:HASH"):
        Client().verify_audit(anchor="nonsense")


def test_run_start_and_end_are_audited_with_actor(runtime: Runtime) -> None:
    with milepost.start_run(experiment="a") as run:
        pass
    events = Client().audit_events(object_id=run.run_id)
    assert [e.action for e in events] == ["run.end", "run.start"]
    assert all(e.actor == "tester" for e in events)
    assert events[0].before == {"status": "RUNNING"} and events[0].after["status"] == "FINISHED"
