"""Blobs in an S3-compatible object store (AWS S3, MinIO, moto) through fsspec/s3fs.

Reads are verified against the digest like the local store's: an object someone altered
or truncated in the bucket is an IntegrityViolation, and a failed download leaves no file.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import tempfile
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from milepost.errors import BackendUnavailable, ConfigError, NotFound
from milepost.stores.blobs import (
    BlobRef,
    VerifyingReader,
    _mismatch,
    _relkey,
    check_bytes,
    check_digest,
    hash_file,
    writing_to,
)

if TYPE_CHECKING:
    from collections.abc import Iterator

__all__ = ["S3BlobStore"]


class S3BlobStore:
    """Blobs under ``s3://bucket/prefix/sha256/ab/cdef...``.

    Credentials come from the usual AWS sources (environment, profile, instance role);
    ``endpoint_url`` points at an S3-compatible server.
    """

    def __init__(self, uri: str, *, endpoint_url: str | None = None) -> None:
        try:
            import s3fs
        except ModuleNotFoundError as exc:
            raise ConfigError(
                "S3 artifact storage needs s3fs.", hint="pip install 'milepost[s3]'"
            ) from exc
        self.uri = uri.rstrip("/")
        self._base = self.uri.removeprefix("s3://")
        if not self._base:
            raise ConfigError(
                f"Artifact URI {uri!r} names no bucket.", hint="Use s3://bucket/prefix."
            )
        client_kwargs: dict[str, Any] = {}
        if endpoint_url:
            client_kwargs["endpoint_url"] = endpoint_url
        self.endpoint_url = endpoint_url
        self.fs = s3fs.S3FileSystem(client_kwargs=client_kwargs, skip_instance_cache=True)

    def storage_options(self) -> dict[str, Any]:
        """fsspec options for engines that read blobs themselves (pandas, pyarrow)."""
        return {"client_kwargs": {"endpoint_url": self.endpoint_url}} if self.endpoint_url else {}

    def _key(self, digest: str) -> str:
        return f"{self._base}/{_relkey(check_digest(digest))}"

    @contextlib.contextmanager
    def _errors(self, digest: str | None = None) -> Iterator[None]:
        try:
            yield
        except FileNotFoundError:
            raise NotFound(
                f"Blob {digest} is missing from {self.uri}.",
                hint="The object store lost a file; restore it from a backup.",
            ) from None
        except (OSError, PermissionError, ValueError) as exc:
            raise BackendUnavailable(
                f"The object store {self.uri} failed: {exc}.",
                hint="Check the bucket, credentials and MILEPOST_S3_ENDPOINT_URL.",
            ) from exc
        except Exception as exc:  # botocore raises its own hierarchy
            if type(exc).__module__.startswith(("botocore", "aiobotocore", "s3fs")):
                raise BackendUnavailable(
                    f"The object store {self.uri} failed: {exc}.",
                    hint="Check the bucket, credentials and MILEPOST_S3_ENDPOINT_URL.",
                ) from exc
            raise

    def put_file(self, path: Path) -> BlobRef:
        ref = hash_file(Path(path))
        with self._errors():
            if not self.fs.exists(self._key(ref.digest)):
                self.fs.put_file(str(path), self._key(ref.digest))
        return ref

    def put_bytes(self, data: bytes) -> BlobRef:
        ref = BlobRef(hashlib.sha256(data).hexdigest(), len(data))
        with self._errors():
            if not self.fs.exists(self._key(ref.digest)):
                self.fs.pipe_file(self._key(ref.digest), data)
        return ref

    def get_bytes(self, digest: str) -> bytes:
        with self._errors(digest):
            data: bytes = self.fs.cat_file(self._key(digest))
        return check_bytes(data, digest, self.location(digest))

    def download(self, digest: str, dest: Path) -> None:
        tmp = None
        try:
            with writing_to(dest):
                dest.parent.mkdir(parents=True, exist_ok=True)
                fd, tmp = tempfile.mkstemp(dir=dest.parent)
                os.close(fd)
            with self._errors(digest):
                self.fs.get_file(self._key(digest), tmp)
            got = hash_file(Path(tmp))
            if got.digest != digest:
                raise _mismatch(digest, self.location(digest), got.size)
            with writing_to(dest):
                os.replace(tmp, dest)
        finally:
            if tmp is not None and os.path.exists(tmp):
                os.unlink(tmp)

    def open(self, digest: str) -> IO[bytes]:
        with self._errors(digest):
            fh: IO[bytes] = self.fs.open(self._key(digest), "rb")
        return io.BufferedReader(VerifyingReader(fh, digest, self.location(digest)))

    def exists(self, digest: str) -> bool:
        with self._errors(digest):
            return bool(self.fs.exists(self._key(digest)))

    def location(self, digest: str) -> str:
        return f"s3://{self._key(digest)}"

    def __repr__(self) -> str:
        return f"S3BlobStore({self.uri!r})"
