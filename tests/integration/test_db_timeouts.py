"""A hung metadata database gives a clear error within the configured timeout, never a hang.

Timing asserts are generous on purpose: each test asserts that the call *ends*, with the
right error, well below a large bound (and far below the hang it replaces).
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

import milepost
from milepost import Client
from milepost.config import load_settings
from milepost.errors import BackendUnavailable, ConfigError
from milepost.stores.metadata import MetadataStore


@pytest.fixture
def silent_server() -> Iterator[tuple[str, int]]:
    """A TCP listener on 127.0.0.1 that accepts connections and never answers."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(64)
    accepted: list[socket.socket] = []

    def accept() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            accepted.append(conn)

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield server.getsockname()
    finally:
        server.close()
        for conn in accepted:
            conn.close()
        thread.join(timeout=5)


def test_timeout_settings_have_sane_defaults_and_are_checked() -> None:
    settings = load_settings(env={}).settings
    assert settings.db_connect_timeout == 10.0 and settings.db_statement_timeout == 60.0
    env = {"MILEPOST_DB_CONNECT_TIMEOUT": "3", "MILEPOST_DB_STATEMENT_TIMEOUT": "0"}
    settings = load_settings(env=env).settings
    assert settings.db_connect_timeout == 3.0 and settings.db_statement_timeout == 0.0
    for key, value in [
        ("MILEPOST_DB_CONNECT_TIMEOUT", "0"),
        ("MILEPOST_DB_CONNECT_TIMEOUT", "nan"),
        ("MILEPOST_DB_STATEMENT_TIMEOUT", "-1"),
        ("MILEPOST_DB_STATEMENT_TIMEOUT", "inf"),
    ]:
        with pytest.raises(ConfigError, match=key):
            load_settings(env={key: value})


@pytest.mark.timeout(90)
def test_connecting_to_a_server_that_never_answers_fails_within_the_timeout(
    silent_server: tuple[str, int], tmp_path: Path
) -> None:
    host, port = silent_server
    uri = f"postgresql+psycopg://milepost:secret@{host}:{port}/db"
    started = time.monotonic()
    with pytest.raises(BackendUnavailable) as info:
        milepost.configure(home=tmp_path / "home", metadata_uri=uri, db_connect_timeout=2)
    elapsed = time.monotonic() - started
    message = str(info.value)
    assert f"{host}:{port}" in message and "db_connect_timeout" in message, message
    assert "within 2 s" in message and "secret" not in message, message
    assert elapsed < 30, elapsed  # libpq's floor is 2 s; the old code waited forever
    started = time.monotonic()
    with pytest.raises(BackendUnavailable, match="db_connect_timeout"):
        MetadataStore(uri, connect_timeout=2)
    assert time.monotonic() - started < 30


@pytest.mark.postgres
@pytest.mark.timeout(90)
def test_a_statement_blocked_by_a_lock_fails_within_the_statement_timeout(
    postgres_schema: str, tmp_path: Path
) -> None:
    milepost.configure(
        home=tmp_path / "home",
        metadata_uri=postgres_schema,
        db_statement_timeout=1,
        metric_flush_timeout=0,
    )
    with milepost.start_run(experiment="locks") as run:
        milepost.log_metric("m", 1.0)
    locker = sa.create_engine(postgres_schema, poolclass=sa.pool.NullPool)
    try:
        with locker.connect() as conn:
            conn.execute(sa.text("LOCK TABLE runs IN ACCESS EXCLUSIVE MODE"))
            for call in (
                lambda: Client().get_run(run.run_id),  # a read
                lambda: milepost.start_run(experiment="locks"),  # a write
            ):
                started = time.monotonic()
                with pytest.raises(BackendUnavailable) as info:
                    call()
                elapsed = time.monotonic() - started
                message = str(info.value)
                assert "within 1 s" in message and "db_statement_timeout" in message, message
                assert elapsed < 30, elapsed
            conn.rollback()
    finally:
        locker.dispose()
    assert Client().get_run(run.run_id).metrics == {"m": 1.0}  # the lock is gone: all is well


@pytest.mark.postgres
@pytest.mark.timeout(90)
def test_statement_timeout_zero_turns_it_off_and_migrations_are_exempt(
    postgres_schema: str,
) -> None:
    store = MetadataStore(postgres_schema, statement_timeout=0)
    with store.read() as conn:
        assert conn.execute(sa.text("SHOW statement_timeout")).scalar() == "0"
    store.dispose()
    store = MetadataStore(postgres_schema, statement_timeout=2.5)
    with store.read() as conn:
        assert conn.execute(sa.text("SHOW statement_timeout")).scalar() == "2500ms"
    with store.write() as conn:
        store._no_statement_timeout(conn)
        assert conn.execute(sa.text("SHOW statement_timeout")).scalar() == "0"
    with store.read() as conn:  # SET LOCAL ended with its transaction
        assert conn.execute(sa.text("SHOW statement_timeout")).scalar() == "2500ms"
    store.dispose()


def test_a_process_that_holds_every_pooled_connection_gets_a_clear_error(tmp_path: Path) -> None:
    store = MetadataStore(f"sqlite:///{tmp_path / 'meta.db'}", pool_timeout=0.5)
    held = [store.engine.connect() for _ in range(24)]  # pool_size 8 + max_overflow 16
    try:
        started = time.monotonic()
        with pytest.raises(BackendUnavailable, match=r"came free within 0\.5 s"), store.read():
            pass
        assert time.monotonic() - started < 30
    finally:
        for conn in held:
            conn.close()
        store.dispose()
