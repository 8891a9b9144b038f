"""Roles: the first grant makes an admin, and the last admin cannot be removed."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

import milepost
from milepost import Runtime
from milepost.errors import Conflict, PermissionDenied


def _as(runtime: Runtime, user: str) -> Runtime:
    return milepost.configure(home=runtime.settings.home, metadata_uri=runtime.db.uri, user=user)


def _grants(runtime: Runtime) -> list[tuple[str, str]]:
    return [(g.actor, g.role) for g in runtime.roles.list()]


def test_the_first_grant_makes_its_granter_admin(runtime: Runtime) -> None:
    runtime.roles.grant("bob", "approver")  # "tester" grants first
    assert set(_grants(runtime)) == {("bob", "approver"), ("tester", "admin")}
    events = runtime.audit.list(action="role.grant")
    assert [(e.object_id, e.reason) for e in reversed(events)] == [
        ("tester:admin", "bootstrap: the first grant makes its granter admin"),
        ("bob:approver", None),
    ]
    # ...so nobody else can now grant themselves anything
    eve = _as(runtime, "eve")
    with pytest.raises(PermissionDenied, match="needs the admin role"):
        eve.roles.grant("eve", "admin")


def test_granting_yourself_admin_first_makes_one_admin(runtime: Runtime) -> None:
    runtime.roles.grant("tester", "admin")
    assert _grants(runtime) == [("tester", "admin")]
    assert len(runtime.audit.list(action="role.grant")) == 1


def test_the_last_admin_cannot_be_revoked(runtime: Runtime) -> None:
    runtime.roles.grant("tester", "admin")
    with pytest.raises(Conflict, match="last admin") as caught:
        runtime.roles.revoke("tester", "admin")
    assert "milepost roles grant USER admin" in str(caught.value)
    assert runtime.roles.holders("admin") == ["tester"]
    # with a second admin, either may go, but not both
    runtime.roles.grant("ana", "admin")
    runtime.roles.revoke("tester", "admin")
    ana = _as(runtime, "ana")
    with pytest.raises(Conflict, match="last admin"):
        ana.roles.revoke("ana", "admin")
    assert ana.roles.holders("admin") == ["ana"]
    # and the bootstrap never reopens: an outsider still needs an admin
    eve = _as(runtime, "eve")
    with pytest.raises(PermissionDenied, match="needs the admin role"):
        eve.roles.grant("eve", "admin")


def test_bootstrap_does_not_reopen_when_admins_vanish_from_the_table(runtime: Runtime) -> None:
    runtime.roles.grant("tester", "admin")
    with runtime.db.write() as conn:
        conn.execute(sa.text("DELETE FROM roles"))
    eve = _as(runtime, "eve")
    with pytest.raises(PermissionDenied, match="changed outside Milepost"):
        eve.roles.grant("eve", "admin")
    assert eve.roles.holders("admin") == []
