"""Roles and API tokens through the runtime's services, embedded and remote: the
proxies give the same records and refusals, and what they change is audited as the
token's user."""

from __future__ import annotations

from typing import Any

import pytest

from milepost.errors import InvalidInput, NotFound, Unauthenticated


def test_roles(runtime: Any, platform: dict[str, Any], unique: str) -> None:
    made = runtime.roles.grant(unique, "approver")
    assert [(g.actor, g.role, g.granted_by) for g in made] == [(unique, "approver", "alice")]
    assert runtime.roles.has(unique, "approver") and not runtime.roles.has(unique, "admin")
    assert unique in runtime.roles.holders("approver")
    assert runtime.roles.list() == platform["rt"].roles.list()
    with pytest.raises(InvalidInput):
        runtime.roles.grant(unique, "Not A Role")
    runtime.roles.revoke(unique, "approver")
    assert not runtime.roles.has(unique, "approver")
    event = platform["rt"].audit.list(object_type="role", object_id=f"{unique}:approver")[0]
    assert (event.action, event.actor) == ("role.revoke", "alice")


def test_tokens(runtime: Any, platform: dict[str, Any], unique: str) -> None:
    token, secret = runtime.tokens.create(unique, "viewer", user="carol", expires_in_days=1)
    assert (token.name, token.role, token.user, token.created_by) == (
        unique,
        "viewer",
        "carol",
        "alice",
    )
    assert runtime.tokens.get(unique) == platform["rt"].tokens.get(unique)
    assert token.token_id in [t.token_id for t in runtime.tokens.list()]
    who = runtime.tokens.authenticate(secret)
    assert (who.user, who.role, who.token_id) == ("carol", "viewer", token.token_id)
    revoked = runtime.tokens.revoke(unique, reason="done")
    assert revoked.revoked_at is not None and revoked.revoked_by == "alice"
    assert token.token_id not in [t.token_id for t in runtime.tokens.list()]
    assert token.token_id in [t.token_id for t in runtime.tokens.list(include_revoked=True)]
    with pytest.raises(Unauthenticated):
        runtime.tokens.authenticate(secret)
    with pytest.raises(NotFound):
        runtime.tokens.get(f"{unique}-missing")
    with pytest.raises(InvalidInput):
        runtime.tokens.create(f"{unique}-2", "wizard")
