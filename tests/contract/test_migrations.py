"""Schema migrations: they build exactly the declared schema, once, on every backend."""

from __future__ import annotations

import multiprocessing as mp
from pathlib import Path

import pytest
import sqlalchemy as sa

from milepost.errors import ConfigError
from milepost.stores.metadata import HEAD_REVISION, MetadataStore
from milepost.stores.schema import metadata


def test_migrations_match_the_declared_schema(metadata_uri: str) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    store = MetadataStore(metadata_uri)
    with store.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    store.dispose()
    assert diff == [], f"schema drift between migrations and stores/schema.py: {diff}"


def test_revision_is_head_and_upgrade_is_idempotent(metadata_uri: str) -> None:
    store = MetadataStore(metadata_uri)
    assert store.current_revision() == store.head_revision()
    assert store._stored_revision() == store.head_revision() == HEAD_REVISION
    store.upgrade()
    assert store.current_revision() == store.head_revision()
    store.dispose()


def test_a_newer_schema_is_refused(metadata_uri: str) -> None:
    store = MetadataStore(metadata_uri)
    with store.write() as conn:
        conn.execute(sa.text("UPDATE alembic_version SET version_num = '9999'"))
    store.dispose()
    with pytest.raises(ConfigError, match="newer Milepost"):
        MetadataStore(metadata_uri)


def _open(uri: str) -> str | None:
    store = MetadataStore(uri)
    rev = store.current_revision()
    store.dispose()
    return rev


def test_processes_starting_at_once_migrate_once(metadata_uri: str) -> None:
    ctx = mp.get_context("spawn")
    with ctx.Pool(4) as pool:
        revisions = pool.map(_open, [metadata_uri] * 4)
    assert len(set(revisions)) == 1 and revisions[0] is not None


def test_unsupported_scheme(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not supported"):
        MetadataStore("mysql://x@y/z")
    with pytest.raises(ConfigError, match="not a database URI"):
        MetadataStore("nonsense")


def test_an_older_database_is_upgraded_in_place_keeping_its_data(metadata_uri: str) -> None:
    old = MetadataStore(metadata_uri, auto_migrate=False)
    old.upgrade("0001")
    with old.write() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO experiments (name, lifecycle_stage, created_by, created_at, "
                "updated_at) VALUES ('kept', 'active', 'me', 1, 1)"
            )
        )
    assert old.current_revision() == "0001"
    old.dispose()
    store = MetadataStore(metadata_uri)
    assert store.current_revision() == store.head_revision() != "0001"
    with store.read() as conn:
        assert conn.execute(sa.text("SELECT name FROM experiments")).scalar() == "kept"
        assert conn.execute(sa.text("SELECT count(*) FROM dataset_versions")).scalar() == 0
    store.dispose()
