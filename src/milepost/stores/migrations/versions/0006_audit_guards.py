"""Audit head guards, and a baseline of promotion requests for the state cross-check.

The database now keeps ``audit_head`` in step with the chain (triggers on both audit
tables; see ``milepost.stores.audit_guards``). ``audit verify`` replays the chain into
the expected state of stages, aliases, endpoints, roles and promotion requests; events
written before this revision do not name the promotion request they belong to, so when
requests exist already one ``audit.baseline`` event records their state as it is now.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import json
import time
import uuid

import sqlalchemy as sa
from alembic import op

from milepost.stores import audit_guards
from milepost.stores.audit import event_hash

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def _baseline(conn: sa.Connection) -> None:
    requests = conn.execute(
        sa.text("SELECT request_id, status FROM promotion_requests ORDER BY request_id")
    ).all()
    if not requests:
        return
    gates: dict[str, list[tuple[str, str, str]]] = {}
    for request_id, kind, status, details in conn.execute(
        sa.text(
            "SELECT request_id, kind, status, details_json FROM gate_results "
            "ORDER BY request_id, position"
        )
    ):
        gates.setdefault(request_id, []).append((kind, status, details))
    state = {}
    for request_id, status in requests:
        rows = gates.get(request_id, [])
        approvers = [
            a.get("actor")
            for kind, _, details in rows
            if kind == "approval"
            for a in json.loads(details or "{}").get("approvals", [])
        ]
        state[request_id] = {
            "status": status,
            "gates": [s for _, s, _ in rows],
            "approvers": approvers,
        }
    head_seq, head_hash = conn.execute(
        sa.text("SELECT seq, hash FROM audit_head WHERE id = 1")
    ).one()
    row = {
        "seq": int(head_seq) + 1,
        "event_id": uuid.uuid4().hex,
        "time": int(time.time() * 1000),
        "actor": "milepost",
        "action": "audit.baseline",
        "object_type": "audit",
        "object_id": "promotion_requests",
        "before": None,
        "after": json.dumps({"promotion_requests": state}, sort_keys=True, separators=(",", ":")),
        "reason": "schema revision 0006: the state of promotion requests when the audit "
        "trail began to record it",
        "prev_hash": head_hash,
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
    conn.execute(
        sa.text("UPDATE audit_head SET seq = :seq, hash = :hash WHERE id = 1"),
        {"seq": row["seq"], "hash": row["hash"]},
    )


def upgrade() -> None:
    conn = op.get_bind()
    _baseline(conn)  # before the guards: it moves the head itself
    for statement in audit_guards.install_statements(
        conn.dialect.name, skip=audit_guards.REVISION_0001
    ):
        op.execute(statement)


def downgrade() -> None:
    for statement in audit_guards.uninstall_statements(
        op.get_bind().dialect.name, skip=audit_guards.REVISION_0001
    ):
        op.execute(statement)
