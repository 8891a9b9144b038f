"""The blob store contract, on local disk and on S3 (moto on 127.0.0.1)."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from milepost.errors import ConfigError, InvalidInput, NotFound
from milepost.stores.blobs import BlobStore, LocalBlobStore, open_blob_store


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
