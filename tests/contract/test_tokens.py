"""API tokens: hashed, role-capped, expiring, revocable; on SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
import logging
import sqlite3
from pathlib import Path

import pytest
import sqlalchemy as sa

import milepost
from milepost import Runtime
from milepost._actor import acting_as
from milepost.errors import InvalidInput, NotFound, PermissionDenied, Unauthenticated
from milepost.governance.tokens import CachedAuthenticator, Principal, TokenService
from milepost.stores.schema import api_tokens


class Clock:
    """A clock the test moves (seconds since the epoch)."""

    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_the_secret_is_returned_once_and_only_its_hash_is_stored(runtime: Runtime) -> None:
    token, secret = runtime.tokens.create("ci", "member")
    assert secret.startswith(f"mp_{token.token_id}_")
    assert token.user == "tester" and token.role == "member" and token.state() == "active"
    with runtime.db.read() as conn:
        row = conn.execute(sa.select(api_tokens)).one()
    assert secret not in [str(v) for v in row]
    assert row.secret_hash == hashlib.sha256(secret.encode()).hexdigest()
    assert "secret" not in token.to_dict() and secret not in repr(token)
    principal = runtime.tokens.authenticate(secret)
    assert (principal.user, principal.role, principal.token_id) == (
        "tester",
        "member",
        token.token_id,
    )


def test_the_first_token_makes_its_creator_admin_and_then_only_admins_create(
    runtime: Runtime,
) -> None:
    runtime.tokens.create("boot", "viewer")
    assert runtime.roles.has("tester", "admin")
    with acting_as("eve"):
        with pytest.raises(PermissionDenied, match="admin role"):
            runtime.tokens.create("mine", "admin", user="eve")
        with pytest.raises(PermissionDenied, match="admin role"):
            runtime.tokens.revoke("boot")
    assert [t.name for t in runtime.tokens.list()] == ["boot"]


def test_an_approver_token_grants_its_user_the_role(runtime: Runtime) -> None:
    _, secret = runtime.tokens.create("bob-laptop", "approver", user="bob")
    assert runtime.roles.has("bob", "approver")
    assert runtime.tokens.authenticate(secret).role == "approver"
    events = [e.action for e in runtime.audit.list(object_type="token")]
    assert events == ["token.create"]


def test_a_role_revoked_from_the_user_downgrades_the_token(runtime: Runtime) -> None:
    runtime.tokens.create("admin", "admin")
    _, secret = runtime.tokens.create("bob", "approver", user="bob")
    runtime.roles.revoke("bob", "approver")
    principal = runtime.tokens.authenticate(secret)
    assert (principal.user, principal.role) == ("bob", "member")


def test_revoked_tokens_are_refused_and_hidden_unless_asked(runtime: Runtime) -> None:
    token, secret = runtime.tokens.create("ci", "member")
    revoked = runtime.tokens.revoke("ci", reason="leaked in a log")
    assert revoked.state() == "revoked" and revoked.revoked_by == "tester"
    with pytest.raises(Unauthenticated, match="is revoked") as info:
        runtime.tokens.authenticate(secret)
    assert secret not in str(info.value) and secret not in str(info.value.hint)
    assert runtime.tokens.list() == []
    assert [t.token_id for t in runtime.tokens.list(include_revoked=True)] == [token.token_id]
    assert runtime.tokens.revoke(token.token_id).revoked_at == revoked.revoked_at  # idempotent
    (event,) = runtime.audit.list(action="token.revoke")
    assert event.reason == "leaked in a log" and event.object_id == token.token_id


def test_expiry_follows_the_injected_clock(runtime: Runtime) -> None:
    clock = Clock()
    service = TokenService(runtime.db, "tester", runtime.roles, clock=clock)
    token, secret = service.create("short", "viewer", expires_in_days=1)
    assert token.expires_at == int(clock.now * 1000) + 86_400_000
    clock.now += 86_399
    assert service.authenticate(secret).role == "viewer"
    clock.now += 1
    with pytest.raises(Unauthenticated, match="is expired"):
        service.authenticate(secret)
    forever, secret2 = service.create("forever", "viewer", expires_in_days=None)
    assert forever.expires_at is None
    clock.now += 100 * 365 * 86_400
    assert service.authenticate(secret2).user == "tester"


@pytest.mark.parametrize(
    "secret",
    ["", "nope", "Bearer x", "mp_000000000000_" + "A" * 43, "mp_zz_" + "A" * 43, "mp_" + "é" * 60],
)
def test_malformed_and_unknown_secrets_are_unauthenticated(runtime: Runtime, secret: str) -> None:
    runtime.tokens.create("real", "member")
    with pytest.raises(Unauthenticated):
        runtime.tokens.authenticate(secret)


def test_a_right_id_with_a_wrong_secret_is_refused(runtime: Runtime) -> None:
    _, secret = runtime.tokens.create("real", "member")
    forged = secret[:-4] + ("AAAA" if not secret.endswith("AAAA") else "BBBB")
    with pytest.raises(Unauthenticated, match="Unknown API token"):
        runtime.tokens.authenticate(forged)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"role": "root"}, "role"),
        ({"expires_in_days": 0}, "between 0 and 3650"),
        ({"expires_in_days": 4000}, "between 0 and 3650"),
        ({"expires_in_days": "soon"}, "number of days"),
        ({"expires_in_days": True}, "number of days"),
        ({"user": "bad user\n"}, "User"),
        ({"project": ""}, "Project"),
    ],
)
def test_bad_arguments_are_invalid_input_and_create_nothing(
    runtime: Runtime, kwargs: dict[str, object], match: str
) -> None:
    with pytest.raises(InvalidInput, match=match):
        runtime.tokens.create("x", **kwargs)  # type: ignore[arg-type]
    assert runtime.tokens.list(include_revoked=True) == []


def test_get_by_name_or_id(runtime: Runtime) -> None:
    a, _ = runtime.tokens.create("ci", "member")
    assert runtime.tokens.get("ci") == a == runtime.tokens.get(a.token_id)
    b, _ = runtime.tokens.create("ci", "viewer")
    with pytest.raises(InvalidInput, match="2 tokens are named 'ci'") as info:
        runtime.tokens.get("ci")
    assert a.token_id in str(info.value.hint) and b.token_id in str(info.value.hint)
    with pytest.raises(NotFound, match="No token 'nope'"):
        runtime.tokens.get("nope")


def test_the_project_scope_is_part_of_the_principal(runtime: Runtime) -> None:
    _, secret = runtime.tokens.create("team-a", "member", project="team-a")
    assert runtime.tokens.authenticate(secret).project == "team-a"


def test_the_cached_authenticator_keeps_answers_for_its_ttl_and_a_bounded_number(
    runtime: Runtime,
) -> None:
    _, secret = runtime.tokens.create("ci", "member")
    clock = Clock(0.0)
    lookups: list[str] = []

    class Counting(TokenService):
        def authenticate(self, secret: str) -> Principal:
            lookups.append(secret)
            return super().authenticate(secret)

    counting = Counting(runtime.db, "tester", runtime.roles)
    cache = CachedAuthenticator(counting, ttl=5, max_entries=3, clock=clock)
    assert cache.cached(secret) is None
    assert cache.authenticate(secret).role == "member"
    assert cache.cached(secret) == cache.authenticate(secret)
    assert len(lookups) == 1
    unknown = "mp_000000000000_" + "A" * 43
    for _ in range(2):
        with pytest.raises(Unauthenticated, match="Unknown API token"):
            cache.authenticate(unknown)
    assert len(lookups) == 2  # the refusal is kept too
    runtime.tokens.revoke("ci")
    assert cache.authenticate(secret).role == "member"  # within the bound
    clock.now = 5.0
    with pytest.raises(Unauthenticated, match="revoked"):
        cache.authenticate(secret)
    # made-up tokens fill at most max_entries
    for i in range(10):
        with pytest.raises(Unauthenticated):
            cache.authenticate(f"mp_{i:012x}_" + "B" * 43)
    assert len(cache._answers) <= 3
    assert CachedAuthenticator.accepts(secret) and not CachedAuthenticator.accepts("Bearer x")
    uncached = CachedAuthenticator(counting, ttl=0)
    before = len(lookups)
    with pytest.raises(Unauthenticated):
        uncached.authenticate(secret)
    with pytest.raises(Unauthenticated):
        uncached.authenticate(secret)
    assert len(lookups) == before + 2 and uncached._answers == {}


def test_a_busy_database_does_not_refuse_a_valid_token(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Recording when a token was last used is bookkeeping: when the write cannot get the
    lock, the caller is still let in (and the log says what was skipped)."""
    rt = milepost.configure(home=tmp_path / "home", sqlite_busy_timeout=0.2, user="tester")
    _, secret = rt.tokens.create("ci", "member")
    holder = sqlite3.connect(tmp_path / "home" / "milepost.db", isolation_level=None)
    try:
        holder.execute("BEGIN IMMEDIATE")  # another writer holds the lock
        with caplog.at_level(logging.WARNING, logger="milepost.governance"):
            assert rt.tokens.authenticate(secret).role == "member"
        assert "Could not record the use of API token" in caplog.text
        assert secret not in caplog.text
    finally:
        holder.rollback()
        holder.close()
