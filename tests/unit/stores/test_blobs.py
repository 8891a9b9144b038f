"""The blob store contract, on local disk and on S3 (moto on 127.0.0.1)."""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from milepost.errors import ConfigError, IntegrityViolation, InvalidInput, NotFound
from milepost.stores.blobs import BlobStore, LocalBlobStore, open_blob_store, verify_file


@pytest.fixture(params=["local", pytest.param("s3", marks=pytest.mark.s3)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[BlobStore]:
    if request.param == "local":
        yield LocalBlobStore(tmp_path / "blobs")
    else:
        server: dict[str, Any] = request.getfixturevalue("s3_server")
        prefix = f"s3://{server['bucket']}/{tmp_path.name}"
        yield open_blob_store(prefix, endpoint_url=server["endpoint_url"])


def test_put_and_get_round_trip(store: BlobStore, tmp_path: Path) -> None:
    data = os.urandom(3 * 1024 * 1024 + 17)
    src = tmp_path / "big.bin"
    src.write_bytes(data)
    ref = store.put_file(src)
    assert ref.digest == hashlib.sha256(data).hexdigest() and ref.size == len(data)
    assert store.exists(ref.digest)
    assert store.get_bytes(ref.digest) == data
    dest = tmp_path / "out" / "copy.bin"
    store.download(ref.digest, dest)
    assert dest.read_bytes() == data
    with store.open(ref.digest) as fh:
        assert fh.read(10) == data[:10]


def test_same_content_is_stored_once(store: BlobStore) -> None:
    a = store.put_bytes(b"hello")
    b = store.put_bytes(b"hello")
    assert a == b


def test_missing_blob_is_not_found(store: BlobStore) -> None:
    with pytest.raises(NotFound):
        store.get_bytes("0" * 64)
    assert not store.exists("1" * 64)


@pytest.mark.parametrize("key", ["../../etc/passwd", "ABC", "0" * 63, "/abs"])
def test_keys_must_be_digests(store: BlobStore, key: str) -> None:
    with pytest.raises(InvalidInput, match="not a SHA-256"):
        store.get_bytes(key)


def test_local_refuses_a_blob_replaced_by_a_link_out(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path / "blobs")
    ref = store.put_bytes(b"data")
    path = Path(store.location(ref.digest))
    secret = tmp_path / "secret.txt"
    secret.write_text("top secret")
    path.unlink()
    os.symlink(secret, path)
    with pytest.raises(InvalidInput, match="outside the store"):
        store.get_bytes(ref.digest)


def test_unknown_scheme_lists_supported() -> None:
    with pytest.raises(ConfigError, match="s3://"):
        open_blob_store("gcs://bucket/x")


def _overwrite(store: BlobStore, digest: str, data: bytes) -> None:
    """Replace a stored blob's bytes behind the store's back (as an attacker or a bad disk)."""
    if isinstance(store, LocalBlobStore):
        path = Path(store.location(digest))
        path.chmod(0o644)
        path.write_bytes(data)
    else:
        store.fs.pipe_file(store.location(digest), data)  # type: ignore[attr-defined]


@pytest.mark.parametrize("how", ["a flipped byte", "truncated", "other content"])
def test_every_read_verifies_the_digest(store: BlobStore, tmp_path: Path, how: str) -> None:
    data = os.urandom(2 * 1024 * 1024 + 5)
    ref = store.put_bytes(data)
    assert store.get_bytes(ref.digest) == data
    bad = {
        "a flipped byte": data[:100] + bytes([data[100] ^ 1]) + data[101:],
        "truncated": data[: len(data) // 3],
        "other content": os.urandom(len(data)),
    }[how]
    _overwrite(store, ref.digest, bad)
    with pytest.raises(IntegrityViolation, match="does not match its SHA-256"):
        store.get_bytes(ref.digest)
    dest = tmp_path / "out" / "copy.bin"
    dest.parent.mkdir()
    with pytest.raises(IntegrityViolation, match="altered or truncated"):
        store.download(ref.digest, dest)
    assert list(dest.parent.iterdir()) == []  # no partial or temporary file is left
    with store.open(ref.digest) as fh:
        assert len(fh.read(10)) == 10  # reading part of a blob is allowed ...
        with pytest.raises(IntegrityViolation):
            fh.read()  # ... reaching its end checks it


def test_a_damaged_local_blob_is_repaired_by_storing_it_again(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path / "blobs")
    ref = store.put_bytes(b"payload" * 1000)
    _overwrite(store, ref.digest, b"garbage")
    with pytest.raises(IntegrityViolation):
        store.get_bytes(ref.digest)
    assert store.put_bytes(b"payload" * 1000) == ref
    assert store.get_bytes(ref.digest) == b"payload" * 1000
    _overwrite(store, ref.digest, b"garbage")
    src = tmp_path / "src.bin"
    src.write_bytes(b"payload" * 1000)
    assert store.put_file(src) == ref
    assert store.get_bytes(ref.digest) == b"payload" * 1000


def test_verify_file_checks_again_when_the_file_changes(tmp_path: Path) -> None:
    path = tmp_path / "f.bin"
    path.write_bytes(b"a" * 100)
    digest = hashlib.sha256(b"a" * 100).hexdigest()
    assert verify_file(path, digest) == path
    assert verify_file(path, digest) == path  # remembered
    path.write_bytes(b"a" * 99 + b"b")
    with pytest.raises(IntegrityViolation):
        verify_file(path, digest)
    with pytest.raises(NotFound):
        verify_file(tmp_path / "gone.bin", digest)


def test_stale_temporary_files_of_interrupted_writes_are_removed(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path / "blobs")
    stale, fresh = store.root / "tmp" / "tmpold", store.root / "tmp" / "tmpnew"
    stale.write_bytes(b"half a blob")
    fresh.write_bytes(b"being written")
    old = time.time() - 7 * 3600
    os.utime(stale, (old, old))
    LocalBlobStore(tmp_path / "blobs")  # the next process to open the store
    assert not stale.exists() and fresh.exists()


def test_a_download_that_cannot_be_written_leaves_nothing(store: BlobStore, tmp_path: Path) -> None:
    ref = store.put_bytes(b"content")
    out = tmp_path / "out"
    out.mkdir()
    (out / "file").write_text("mine")
    for dest in (out / "file" / "below.txt", out / ("n" * 300), out / "file" / "a" / "b"):
        with pytest.raises(InvalidInput, match="Cannot write"):
            store.download(ref.digest, dest)
    assert sorted(p.name for p in out.iterdir()) == ["file"]  # no temporary file beside it
    assert (out / "file").read_text() == "mine"
