"""The audit trail: written with the change, append-only, and tampering is named."""

from __future__ import annotations

import dataclasses
import json
import re
from typing import Any

import pandas as pd
import pytest
import sqlalchemy as sa

import milepost
from milepost import Client, Runtime
from milepost.errors import (
    AlreadyExists,
    BackendUnavailable,
    Conflict,
    GateFailed,
    InvalidInput,
)
from milepost.governance.audit import AuditProblem, VerifyReport
from milepost.stores.metadata import HEAD_REVISION
from tests.contract.conftest import FEATURES

GENESIS = "0" * 64


def _events(n: int, *, prefix: str = "e") -> None:
    c = Client()
    for i in range(n):
        c.create_experiment(f"{prefix}{i}")


def _untrigger(rt: Runtime) -> None:
    """What an attacker with database access would do first: drop every audit trigger."""
    with rt.db.write() as conn:
        if conn.dialect.name == "sqlite":
            names = conn.execute(
                sa.text(
                    "SELECT name FROM sqlite_master WHERE type = 'trigger' "
                    "AND tbl_name IN ('audit_events', 'audit_head')"
                )
            ).scalars()
            for name in list(names):
                conn.execute(sa.text(f"DROP TRIGGER {name}"))
        else:
            conn.execute(sa.text("ALTER TABLE audit_events DISABLE TRIGGER USER"))
            conn.execute(sa.text("ALTER TABLE audit_head DISABLE TRIGGER USER"))


def _retrigger(rt: Runtime) -> None:
    """...and what a careful one does last, so that the guards look untouched."""
    from milepost.stores import audit_guards

    with rt.db.write() as conn:
        if conn.dialect.name == "sqlite":
            for statement in audit_guards.install_statements("sqlite"):
                conn.execute(sa.text(statement))
        else:
            conn.execute(sa.text("ALTER TABLE audit_events ENABLE TRIGGER USER"))
            conn.execute(sa.text("ALTER TABLE audit_head ENABLE TRIGGER USER"))


def _chain(report: VerifyReport) -> list[tuple[str, int]]:
    """The chain's own findings (not the removed guards, nor state without its events)."""
    return [(p.kind, p.seq) for p in report.problems if p.kind not in ("unprotected", "state")]


def _state(report: VerifyReport) -> list[AuditProblem]:
    return [p for p in report.problems if p.kind == "state"]


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
    assert _chain(report) == [("edited", 2)]
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
    assert _chain(report) == [("deleted", 4)]
    assert "events 4..5" in report.problems[0].message


def test_reordered_events_are_named(runtime: Runtime) -> None:
    _events(5)
    _untrigger(runtime)
    with runtime.db.write() as conn:
        conn.execute(sa.text("UPDATE audit_events SET seq = 100 WHERE seq = 2"))
        conn.execute(sa.text("UPDATE audit_events SET seq = 2 WHERE seq = 3"))
        conn.execute(sa.text("UPDATE audit_events SET seq = 3 WHERE seq = 100"))
    report = Client().verify_audit()
    assert _chain(report) == [("reordered", 2), ("reordered", 3)]
    assert "written as event 3" in report.problems[0].message


def test_anchor_catches_a_fully_rewritten_chain(runtime: Runtime) -> None:
    _events(3)
    seq, digest = runtime.audit.head()
    anchor = f"{seq}:{digest}"
    assert Client().verify_audit(anchor=anchor).ok
    # rewrite history consistently: recompute every hash after editing event 1
    _untrigger(runtime)
    from milepost.stores.audit import GENESIS_HASH, iter_rows

    with runtime.db.write() as conn:
        rows = list(iter_rows(conn))
        prev = GENESIS_HASH
        for stored in rows:
            actor = "mallory" if stored.seq == 1 else stored.actor
            edited = dataclasses.replace(stored, actor=actor, prev_hash=prev)
            row = dataclasses.replace(edited, hash=edited.content_hash())
            prev = row.hash
            conn.execute(
                sa.text("UPDATE audit_events SET actor=:a, prev_hash=:p, hash=:h WHERE seq=:s"),
                {"a": row.actor, "p": row.prev_hash, "h": row.hash, "s": row.seq},
            )
        conn.execute(sa.text("UPDATE audit_head SET hash = :h"), {"h": prev})
    _retrigger(runtime)
    assert Client().verify_audit().ok  # undetectable without an anchor...
    report = Client().verify_audit(anchor=anchor)
    assert [p.kind for p in report.problems] == ["anchor"]  # ...caught with one
    with pytest.raises(InvalidInput, match="SEQ:HASH"):
        Client().verify_audit(anchor="nonsense")


def test_run_start_and_end_are_audited_with_actor(runtime: Runtime) -> None:
    with milepost.start_run(experiment="a") as run:
        pass
    events = Client().list_audit_events(object_id=run.run_id)
    assert [e.action for e in events] == ["run.end", "run.start"]
    assert all(e.actor == "tester" for e in events)
    assert events[0].before == {"status": "RUNNING"} and events[0].after["status"] == "FINISHED"


# -- the head: the database keeps it in step with the chain ------------------------------


def _forge(conn: sa.Connection, *, seq: int, prev_hash: str, **fields: Any) -> dict[str, Any]:
    """A correctly hashed event, as someone with database access would write it."""
    from milepost.stores.audit import event_hash

    row: dict[str, Any] = {
        "seq": seq,
        "event_id": f"forged{seq:026d}",
        "time": 1,
        "actor": "mallory",
        "action": "experiment.create",
        "object_type": "experiment",
        "object_id": "999",
        "before": None,
        "after": None,
        "reason": None,
        "prev_hash": prev_hash,
        **fields,
    }
    row["hash"] = event_hash(row)
    conn.execute(
        sa.text(
            "INSERT INTO audit_events (seq, event_id, time, actor, action, object_type, "
            "object_id, before, after, reason, prev_hash, hash) VALUES (:seq, :event_id, "
            ":time, :actor, :action, :object_type, :object_id, :before, :after, :reason, "
            ":prev_hash, :hash)"
        ),
        row,
    )
    return row


def test_a_direct_insert_moves_the_head_so_later_writes_still_work(runtime: Runtime) -> None:
    _events(2)
    seq, digest = runtime.audit.head()
    with runtime.db.write() as conn:
        forged = _forge(conn, seq=seq + 1, prev_hash=digest)
    assert runtime.audit.head() == (seq + 1, forged["hash"])
    _events(1, prefix="next")  # follows the inserted event instead of failing on its seq
    report = Client().verify_audit()
    assert report.ok and report.head_seq == seq + 2


def test_an_insert_that_does_not_follow_the_head_is_refused(runtime: Runtime) -> None:
    _events(2)
    seq, digest = runtime.audit.head()
    for seq_, prev in ((seq + 2, digest), (seq + 1, GENESIS), (seq, digest)):
        with pytest.raises(Conflict, match="audit"), runtime.db.write() as conn:
            _forge(conn, seq=seq_, prev_hash=prev)
    assert runtime.audit.head() == (seq, digest)
    assert Client().verify_audit().ok


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE audit_head SET seq = 0, hash = '" + GENESIS + "'",
        "UPDATE audit_head SET seq = seq + 1",
        "UPDATE audit_head SET hash = '" + "f" * 64 + "'",
        "UPDATE audit_head SET id = 2",
        "DELETE FROM audit_head",
        "INSERT INTO audit_head (id, seq, hash) VALUES (2, 0, '" + GENESIS + "')",
        "TRUNCATE audit_head",
        "TRUNCATE audit_events",
    ],
)
def test_the_head_cannot_be_reset_deleted_or_moved_by_hand(
    runtime: Runtime, statement: str
) -> None:
    _events(2)
    if statement.startswith("TRUNCATE") and runtime.db.dialect == "sqlite":
        statement = statement.replace("TRUNCATE", "DELETE FROM")
    with pytest.raises(Conflict, match="audit"), runtime.db.write() as conn:
        conn.execute(sa.text(statement))
    assert runtime.audit.head()[0] == 2
    assert Client().verify_audit().ok


def test_events_inserted_past_the_head_are_named_forged(runtime: Runtime) -> None:
    _events(2)
    seq, digest = runtime.audit.head()
    _untrigger(runtime)
    with runtime.db.write() as conn:
        first = _forge(conn, seq=seq + 1, prev_hash=digest)
        _forge(conn, seq=seq + 2, prev_hash=first["hash"])
    report = Client().verify_audit()
    assert _chain(report) == [("forged", seq + 1)]
    assert "events 3..4 were inserted past the head" in report.problems[0].message


def test_removed_disabled_or_redefined_guards_are_reported(runtime: Runtime) -> None:
    _events(1)
    assert Client().verify_audit().ok
    with runtime.db.write() as conn:
        if conn.dialect.name == "sqlite":
            conn.execute(sa.text("DROP TRIGGER audit_head_forward_only"))
            conn.execute(sa.text("DROP TRIGGER audit_events_no_delete"))
            conn.execute(  # the same name, doing nothing
                sa.text(
                    "CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events "
                    "BEGIN SELECT 1; END"
                )
            )
        else:
            conn.execute(sa.text("DROP TRIGGER audit_head_forward_only ON audit_head"))
            conn.execute(
                sa.text("ALTER TABLE audit_events DISABLE TRIGGER audit_events_follow_head")
            )
            conn.execute(
                sa.text(
                    "CREATE OR REPLACE FUNCTION milepost_audit_append_only() RETURNS trigger "
                    "LANGUAGE plpgsql AS $$ BEGIN RETURN OLD; END $$"
                )
            )
    report = Client().verify_audit()
    assert not report.ok and {p.kind for p in report.problems} == {"unprotected"}
    text = " ".join(p.message for p in report.problems)
    assert "audit_head_forward_only" in text and "missing" in text
    if runtime.db.dialect == "sqlite":
        assert "audit_events_no_delete" in text and "redefined" in text
    else:
        assert "audit_events_follow_head" in text and "disabled" in text
        assert "milepost_audit_append_only" in text and "redefined" in text


def test_deleting_every_event_and_resetting_the_head_is_caught(
    registry: None, runtime: Runtime
) -> None:
    Client().promote("churn", 1, "Staging")
    anchor = "{}:{}".format(*runtime.audit.head())
    _untrigger(runtime)
    with runtime.db.write() as conn:
        conn.execute(sa.text("DELETE FROM audit_events"))
        conn.execute(sa.text(f"UPDATE audit_head SET seq = 0, hash = '{GENESIS}'"))
    _retrigger(runtime)
    report = Client().verify_audit()
    assert report.checked == 0 and not report.ok  # the current state has no history
    messages = [p.message for p in _state(report)]
    assert "model churn exists but no event created it." in messages
    assert "churn v1 is in Staging but no event registered it." in messages
    assert any(re.match(r"\d+ runs exist but only 0 run\.start events", m) for m in messages)
    # the anchor kept elsewhere says the same on its own
    anchored = Client().verify_audit(expect_head=anchor)
    seq = int(anchor.split(":")[0])
    assert ("anchor", seq) in [(p.kind, p.seq) for p in anchored.problems]
    assert any(f"the head moved backwards from {seq} to 0" in p.message for p in anchored.problems)


# -- anchoring the head outside the store ------------------------------------------------


def test_expect_head_accepts_seq_hash_or_hash_alone(runtime: Runtime) -> None:
    _events(3)
    seq, digest = runtime.audit.head()
    assert runtime.audit.head_anchor() == f"{seq}:{digest}"
    assert Client().audit_head() == f"{seq}:{digest}"
    for anchor in (f"{seq}:{digest}", digest, digest.upper()):
        assert Client().verify_audit(expect_head=anchor).ok
    _events(2, prefix="more")  # the head moving on is fine: the anchored event stays
    assert Client().verify_audit(expect_head=digest).ok
    assert runtime.audit.verify(anchor=f"{seq}:{digest}").ok  # the older name still works
    wrong = Client().verify_audit(expect_head=f"{seq}:{'a' * 64}")
    assert [p.kind for p in wrong.problems] == ["anchor"]
    unknown = Client().verify_audit(expect_head="b" * 64)
    assert [p.kind for p in unknown.problems] == ["anchor"]
    assert "no event has hash bbbbbbbbbbbb" in unknown.problems[0].message
    ahead = Client().verify_audit(expect_head=f"99:{digest}")
    assert "the head moved backwards from 99 to 5" in ahead.problems[0].message
    for bad in ("nonsense", "", "3:xyz", "x:" + digest, "-1:" + digest, "g" * 64, 42):
        with pytest.raises(InvalidInput, match="HASH"):
            Client().verify_audit(expect_head=bad)  # type: ignore[arg-type]
    with pytest.raises(InvalidInput, match="once"):
        Client().verify_audit(expect_head=digest, anchor=f"{seq}:{digest}")


# -- the current state against the chain ---------------------------------------------------


@pytest.fixture
def registry(runtime: Runtime, churn_models: dict[str, Any], churn_frame: pd.DataFrame) -> None:
    """churn v1 (weak) and v2 (good)."""
    for key in ("weak", "good"):
        with milepost.start_run(experiment="audit"):
            milepost.log_model(
                churn_models[key], "churn", input_example=churn_frame[FEATURES].head(3)
            )


def _version_id(conn: sa.Connection, version: int) -> int:
    return int(
        conn.execute(
            sa.text("SELECT version_id FROM model_versions WHERE version = :v"), {"v": version}
        ).scalar_one()
    )


def _as(runtime: Runtime, user: str) -> tuple[Runtime, Client]:
    rt = milepost.configure(home=runtime.settings.home, metadata_uri=runtime.db.uri, user=user)
    return rt, Client(rt)


def test_a_whole_audited_workflow_verifies(registry: None, runtime: Runtime) -> None:
    rt, c = _as(runtime, "tester")
    c.promote("churn", 1, "Production")
    c.set_alias("churn", "champion", 1)
    c.set_alias("churn", "challenger", 2)
    c.delete_alias("churn", "challenger")
    rt.serving.create("churn-ep", "churn", version=1)  # pinned: the registry moves freely
    rt.serving.canary("churn-ep", 2)
    rt.serving.rollback("churn-ep")
    rt.roles.grant("tester", "admin")
    rt.roles.grant("bob", "approver")
    rt.roles.grant("carol", "approver")
    rt.roles.revoke("carol", "approver")
    c.set_promotion_policy("churn", {"production": [{"kind": "approval"}]})
    rejected = c.promote("churn", 2, "Production")
    stale = c.promote("churn", 2, "Production")
    _, bob = _as(runtime, "bob")
    bob.reject(rejected.request_id)
    _, c = _as(runtime, "tester")
    c.set_promotion_policy("churn", None)
    c.archive_model_version("churn", 1)
    _, bob = _as(runtime, "bob")
    with pytest.raises(Conflict):
        bob.approve(stale.request_id)
    _, c = _as(runtime, "tester")
    c.set_promotion_policy("churn", {"production": [{"kind": "approval", "count": 2}]})
    done = c.promote("churn", 2, "Production")
    c.set_promotion_policy("churn", {"staging": [{"kind": "data_validation", "suite": "x"}]})
    with pytest.raises(GateFailed, match="refused"):
        c.promote("churn", 2, "Staging")
    rt, _ = _as(runtime, "tester")
    rt.roles.grant("carol", "approver")
    _, bob = _as(runtime, "bob")
    # the policy gained Staging's gate after the request was made: approving it would let
    # v2 past a gate it never ran, so the request goes stale (audited) and is promoted anew
    with pytest.raises(Conflict, match="is stale: the promotion policy now also requires"):
        bob.approve(done.request_id)
    _, c = _as(runtime, "tester")
    c.set_promotion_policy("churn", {"production": [{"kind": "approval", "count": 2}]})
    done = c.promote("churn", 2, "Production")
    _, bob = _as(runtime, "bob")
    assert bob.approve(done.request_id).status == "pending_approval"
    _, carol = _as(runtime, "carol")
    assert carol.approve(done.request_id).status == "completed"
    report = carol.verify_audit()
    assert report.ok, report.problems
    assert report.checked > 30


def test_a_direct_stage_change_is_named(registry: None, runtime: Runtime) -> None:
    Client().promote("churn", 1, "Staging")
    assert Client().verify_audit().ok
    with runtime.db.write() as conn:
        conn.execute(sa.text("UPDATE model_versions SET stage = 'Production' WHERE version = 1"))
    report = Client().verify_audit()
    assert [p.kind for p in report.problems] == ["state"]
    assert re.fullmatch(
        r"churn v1 is in Production but the audit trail last put it in Staging \(event \d+\)\.",
        report.problems[0].message,
    )


def test_a_direct_alias_change_is_named(registry: None, runtime: Runtime) -> None:
    Client().set_alias("churn", "champion", 1)
    with runtime.db.write() as conn:
        conn.execute(
            sa.text("UPDATE model_aliases SET version_id = :v WHERE alias = 'champion'"),
            {"v": _version_id(conn, 2)},
        )
        conn.execute(
            sa.text(
                "INSERT INTO model_aliases (model_id, alias, version_id, updated_by, updated_at) "
                "SELECT model_id, 'shadowy', version_id, 'mallory', 1 FROM model_versions "
                "WHERE version = 1"
            )
        )
    messages = sorted(p.message for p in _state(Client().verify_audit()))
    assert len(messages) == 2
    assert re.fullmatch(
        r"churn@champion points at v2 but the audit trail last pointed it at v1 \(event \d+\)\.",
        messages[0],
    )
    assert messages[1] == "churn@shadowy points at v1 but no event set it."


def test_a_direct_traffic_change_is_named(registry: None, runtime: Runtime) -> None:
    Client().promote("churn", 1, "Production")
    runtime.serving.create("churn-ep", "churn")
    runtime.serving.canary("churn-ep", 2)
    assert Client().verify_audit().ok
    with runtime.db.write() as conn:
        spec = json.loads(
            conn.execute(
                sa.text("SELECT spec_json FROM endpoints WHERE name = 'churn-ep'")
            ).scalar_one()
        )
        for variant in spec["variants"]:
            if variant["role"] == "canary":
                variant["weight"] = 100.0
        conn.execute(
            sa.text("UPDATE endpoints SET spec_json = :s WHERE name = 'churn-ep'"),
            {"s": json.dumps(spec)},
        )
    report = Client().verify_audit()
    assert [p.kind for p in report.problems] == ["state"]
    assert re.fullmatch(
        r"endpoint churn-ep routes churn-v1 primary, churn-v2 canary 100% but the audit "
        r"trail last recorded churn-v1 primary, churn-v2 canary 5% \(event \d+\)\.",
        report.problems[0].message,
    )


def test_a_whole_workflow_on_a_tracking_endpoint_verifies(registry: None, runtime: Runtime) -> None:
    """Canaries that complete and roll back, rollbacks after completion, blue/green and
    rolling updates: every request, stage and route they change is in the trail."""
    from tests.contract.test_deployments import _log

    rt, c = _as(runtime, "tester")
    c.promote("churn", 1, "Production")
    svc = rt.serving
    svc.create("churn-ep", "churn")
    fast = milepost.serving.CanaryPolicy(steps=[100], min_seconds=0, min_requests=10)
    svc.canary("churn-ep", 2, policy=fast)
    _log(rt, "churn-ep", "churn-v2", 20)
    _log(rt, "churn-ep", "churn-v1", 20)
    assert svc.tick("churn-ep").action == "promote"
    svc.rollback("churn-ep", reason="second thoughts")  # v1 back in Production
    c.promote("churn", 2, "Staging")
    svc.blue_green("churn-ep", 2)
    svc.rollback("churn-ep")  # the preview: request rolled back, nothing else
    svc.rolling("churn-ep", 2)
    svc.complete_rolling("churn-ep")
    svc.finalize("churn-ep")
    assert {v.version: v.stage for v in c.list_model_versions("churn")} == {
        1: "Archived",
        2: "Production",
    }
    statuses = sorted(r.status for r in c.list_promotion_requests(status=None))
    assert statuses == ["completed", "completed", "completed", "rolled_back", "rolled_back"]
    report = c.verify_audit()
    assert report.ok, report.problems


def test_what_an_endpoint_tracks_and_serves_is_checked(registry: None, runtime: Runtime) -> None:
    Client().promote("churn", 1, "Production")
    runtime.serving.create("churn-ep", "churn")
    assert Client().verify_audit().ok
    # Production moved behind the endpoint's back
    with runtime.db.write() as conn:
        conn.execute(sa.text("UPDATE model_versions SET stage = 'Archived' WHERE version = 1"))
        conn.execute(sa.text("UPDATE model_versions SET stage = 'Production' WHERE version = 2"))
    messages = [p.message for p in _state(Client().verify_audit())]
    assert (
        "endpoint churn-ep tracks Production of churn and serves v1 as its primary, but the "
        "registry has v2 in Production." in messages
    )
    with runtime.db.write() as conn:
        conn.execute(sa.text("UPDATE model_versions SET stage = 'None' WHERE version = 2"))
        conn.execute(sa.text("UPDATE model_versions SET stage = 'Production' WHERE version = 1"))
    assert Client().verify_audit().ok
    # unbinding it by hand (the registry would then let Production move freely)
    with runtime.db.write() as conn:
        conn.execute(sa.text("UPDATE endpoints SET track_model = NULL, track_stage = NULL"))
    messages = [p.message for p in _state(Client().verify_audit())]
    assert len(messages) == 1
    assert re.fullmatch(
        r"endpoint churn-ep tracks nothing \(pinned\) but the audit trail last recorded "
        r"Production of churn \(event \d+\)\.",
        messages[0],
    )


def test_a_direct_flip_of_a_promotion_request_is_named(registry: None, runtime: Runtime) -> None:
    c = Client()
    c.set_promotion_policy("churn", {"production": [{"kind": "approval"}]})
    request = c.promote("churn", 2, "Production")
    assert request.status == "pending_approval" and c.verify_audit().ok
    with runtime.db.write() as conn:
        conn.execute(sa.text("UPDATE promotion_requests SET status = 'completed'"))
    report = c.verify_audit()
    assert [p.kind for p in report.problems] == ["state"]
    short = request.request_id[:12]
    assert re.fullmatch(
        rf"promotion request {short} \(churn v2 to Production\) is completed but the audit "
        r"trail last recorded pending_approval \(event \d+\)\.",
        report.problems[0].message,
    )
    # the gate and its approvals are checked too
    with runtime.db.write() as conn:
        conn.execute(sa.text("UPDATE promotion_requests SET status = 'pending_approval'"))
        details = json.loads(
            conn.execute(sa.text("SELECT details_json FROM gate_results")).scalar_one()
        )
        details["approvals"] = [{"actor": "mallory", "at": 1, "reason": None}]
        conn.execute(
            sa.text("UPDATE gate_results SET status = 'passed', details_json = :d"),
            {"d": json.dumps(details)},
        )
    messages = [p.message for p in _state(c.verify_audit())]
    assert len(messages) == 2
    assert "gates are [passed] but the audit trail last recorded [pending]" in messages[0]
    assert "approved by mallory but the audit trail records no approval" in messages[1]


def test_direct_role_changes_are_named(runtime: Runtime) -> None:
    runtime.roles.grant("tester", "admin")
    runtime.roles.grant("bob", "approver")
    with runtime.db.write() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO roles (actor, role, granted_by, granted_at) "
                "VALUES ('mallory', 'approver', 'tester', 1)"
            )
        )
        conn.execute(sa.text("DELETE FROM roles WHERE actor = 'bob'"))
    messages = sorted(p.message for p in _state(Client().verify_audit()))
    assert len(messages) == 2
    assert re.fullmatch(
        r"bob was granted approver \(event \d+\) but no longer holds it, and no event "
        r"revoked it\.",
        messages[0],
    )
    assert messages[1] == "mallory holds approver but no event granted it."


def test_objects_created_without_an_event_are_counted(runtime: Runtime) -> None:
    with milepost.start_run(experiment="a"):
        pass
    with runtime.db.write() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO experiments (name, lifecycle_stage, created_by, created_at, "
                "updated_at) VALUES ('sneaky', 'active', 'mallory', 1, 1)"
            )
        )
    messages = [p.message for p in _state(Client().verify_audit())]
    assert messages == [
        "2 experiments exist but only 1 experiment.create events are recorded: 1 was "
        "created without an event."
    ]


def _legacy_event(conn: sa.Connection, **fields: Any) -> None:
    """An event as revision 0005's code wrote it (the head moved by hand, as it did)."""
    seq, prev = conn.execute(sa.text("SELECT seq, hash FROM audit_head")).one()
    row = _forge(conn, seq=seq + 1, prev_hash=prev, **fields)
    conn.execute(
        sa.text("UPDATE audit_head SET seq = :s, hash = :h"), {"s": row["seq"], "h": row["hash"]}
    )


def test_an_upgraded_database_with_older_promotion_events_verifies(metadata_uri: str) -> None:
    from milepost.stores.metadata import MetadataStore

    old = MetadataStore(metadata_uri, auto_migrate=False)
    old.upgrade("0005")
    with old.write() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO registered_models (name, created_by, created_at, updated_at) "
                "VALUES ('churn', 'ada', 1, 1)"
            )
        )
        conn.execute(
            sa.text(
                "INSERT INTO model_versions (model_id, version, flavor, stage, files_json, "
                "metrics_json, datasets_json, feature_refs_json, trusted_types_json, author, "
                "created_at, stage_changed_at) SELECT model_id, 1, 'sklearn', 'None', '[]', "
                "'{}', '[]', '[]', '[]', 'ada', 1, 1 FROM registered_models"
            )
        )
        conn.execute(
            sa.text(
                "INSERT INTO promotion_requests (request_id, model_id, version_id, "
                "target_stage, status, requested_by, created_at) SELECT :r, model_id, "
                "version_id, 'Production', 'pending_approval', 'ada', 1 FROM model_versions"
            ),
            {"r": "a" * 32},
        )
        conn.execute(
            sa.text(
                "INSERT INTO gate_results (request_id, position, name, kind, status, message, "
                "details_json, evaluated_by, at) VALUES (:r, 0, 'approval', 'approval', "
                "'pending', '', :d, 'ada', 1)"
            ),
            {"r": "a" * 32, "d": json.dumps({"spec": {}, "approvals": []})},
        )
        _legacy_event(conn, action="model.create", object_type="model", object_id="churn")
        _legacy_event(
            conn,
            action="model_version.register",
            object_type="model_version",
            object_id="churn/1",
        )
        _legacy_event(  # 0005 did not say which request, nor its status
            conn,
            action="promotion.requested",
            object_type="model_version",
            object_id="churn/1",
            after=json.dumps({"target_stage": "Production", "gates": []}),
        )
    old.dispose()
    rt = milepost.configure(metadata_uri=metadata_uri, user="tester")
    assert rt.db.current_revision() == HEAD_REVISION
    baseline = rt.audit.list(action="audit.baseline")
    assert [e.after for e in baseline] == [
        {
            "promotion_requests": {
                "a" * 32: {"status": "pending_approval", "gates": ["pending"], "approvers": []}
            }
        }
    ]
    report = Client().verify_audit()
    assert report.ok, report.problems
    with rt.db.write() as conn:
        conn.execute(sa.text("UPDATE promotion_requests SET status = 'completed'"))
    assert [p.message.split(" (event")[0] for p in _state(Client().verify_audit())] == [
        "promotion request aaaaaaaaaaaa (churn v1 to Production) is completed but the audit "
        "trail last recorded pending_approval"
    ]


def test_a_baseline_appended_later_is_named_forged(registry: None, runtime: Runtime) -> None:
    c = Client()
    c.set_promotion_policy("churn", {"production": [{"kind": "approval"}]})
    request = c.promote("churn", 2, "Production")
    seq, digest = runtime.audit.head()
    with runtime.db.write() as conn:
        conn.execute(sa.text("UPDATE promotion_requests SET status = 'completed'"))
        _forge(
            conn,
            seq=seq + 1,
            prev_hash=digest,
            actor="milepost",
            action="audit.baseline",
            object_type="audit",
            object_id="promotion_requests",
            after=json.dumps({"promotion_requests": {request.request_id: {"status": "completed"}}}),
        )
    problems = _state(c.verify_audit())  # refused, so the flip still shows
    assert [p.seq for p in problems] == [seq + 1, seq]
    assert "this one was forged" in problems[0].message
    assert "is completed but the audit trail last recorded pending_approval" in (
        problems[1].message
    )


def test_verify_sees_one_consistent_snapshot_while_others_write(
    registry: None, runtime: Runtime
) -> None:
    import threading

    c = Client()
    c.set_alias("churn", "champion", 1)
    stop = threading.Event()
    errors: list[BaseException] = []

    def flip() -> None:
        try:
            i = 0
            while not stop.is_set():
                c.set_alias("churn", "champion", 1 + i % 2)
                i += 1
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    writer = threading.Thread(target=flip)
    writer.start()
    try:
        reports = [c.verify_audit() for _ in range(30)]
    finally:
        stop.set()
        writer.join()
    assert not errors
    assert [p for r in reports for p in r.problems] == []
    assert len({r.head_seq for r in reports}) > 1  # the writer did move on meanwhile


def test_rows_deleted_behind_the_trail_are_named(registry: None, runtime: Runtime) -> None:
    Client().set_alias("churn", "champion", 1)
    with runtime.db.write() as conn:
        conn.execute(sa.text("DELETE FROM model_aliases"))
        v2 = _version_id(conn, 2)
        conn.execute(sa.text("DELETE FROM model_version_tags WHERE version_id = :v"), {"v": v2})
        conn.execute(sa.text("DELETE FROM model_versions WHERE version_id = :v"), {"v": v2})
    messages = sorted(p.message for p in _state(Client().verify_audit()))
    assert [re.sub(r"event \d+", "event N", m) for m in messages] == [
        "churn v2 is missing from the registry, but the audit trail last put it in None (event N).",
        "churn@champion was set to v1 (event N) but is missing.",
    ]
