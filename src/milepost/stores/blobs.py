"""Content-addressed blob storage: local files by default, S3-compatible by URI.

Blobs are named by the SHA-256 of their bytes, so the same content is stored once and a
key can never be a path a user chose. Backends only move bytes; what the bytes mean
(artifacts, dataset snapshots, model files) is decided above them.

Add a backend by implementing :class:`BlobStore` and naming it in ``_BACKENDS``.
"""

from __future__ import annotations

import hashlib
import importlib
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Protocol, runtime_checkable

from milepost.errors import BackendUnavailable, ConfigError, InvalidInput, NotFound, mask_uri

__all__ = ["BlobRef", "BlobStore", "LocalBlobStore", "hash_file", "open_blob_store"]

_CHUNK = 1 << 20
_DIGEST = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class BlobRef:
    """A stored blob: its SHA-256 hex digest and size in bytes."""

    digest: str
    size: int


@runtime_checkable
class BlobStore(Protocol):
    """Where bytes live. Every method takes or returns a SHA-256 hex digest."""

    uri: str

    def put_file(self, path: Path) -> BlobRef:
        """Store a file's bytes (streamed, not read into memory); idempotent."""
        ...

    def put_bytes(self, data: bytes) -> BlobRef:
        """Store bytes; idempotent."""
        ...

    def get_bytes(self, digest: str) -> bytes:
        """The blob's bytes. Raises NotFound."""
        ...

    def download(self, digest: str, dest: Path) -> None:
        """Write the blob to ``dest`` (atomically replaced). Raises NotFound."""
        ...

    def open(self, digest: str) -> IO[bytes]:
        """A binary file object reading the blob. Raises NotFound."""
        ...

    def exists(self, digest: str) -> bool:
        """Whether the blob is stored."""
        ...

    def location(self, digest: str) -> str:
        """A path or fsspec URL for engines that read the blob directly (DuckDB, pandas)."""
        ...


def check_digest(digest: str) -> str:
    """Refuse anything but a lowercase SHA-256 hex digest (keys are never user paths)."""
    if not isinstance(digest, str) or not _DIGEST.match(digest):
        raise InvalidInput(f"{digest!r} is not a SHA-256 blob digest.")
    return digest


def hash_file(path: Path) -> BlobRef:
    """SHA-256 and size of a file, read in 1 MiB chunks."""
    h = hashlib.sha256()
    size = 0
    with path.open("rb") as fh:
        while chunk := fh.read(_CHUNK):
            h.update(chunk)
            size += len(chunk)
    return BlobRef(h.hexdigest(), size)


def _relkey(digest: str) -> str:
    return f"sha256/{digest[:2]}/{digest[2:]}"


class LocalBlobStore:
    """Blobs as files under ``root/sha256/ab/cdef...``; written to a temp file and renamed."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).expanduser().absolute()
        self.uri = str(self.root)
        try:
            (self.root / "tmp").mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise BackendUnavailable(
                f"Cannot create the artifact directory {self.root}: {exc.strerror}.",
                hint="Check permissions or set MILEPOST_ARTIFACT_URI elsewhere.",
            ) from exc
        self._real_root = self.root.resolve()

    def _path(self, digest: str) -> Path:
        path = self.root / _relkey(check_digest(digest))
        real = path.resolve()
        if self._real_root not in real.parents:
            raise InvalidInput(
                f"Blob {digest} resolves to {real}, outside the store {self._real_root}; "
                "refusing to follow the link.",
                hint="Someone replaced a stored blob with a link; restore it from a backup.",
            )
        return path

    def put_file(self, path: Path) -> BlobRef:
        with tempfile.NamedTemporaryFile(dir=self.root / "tmp", delete=False) as tmp:
            h = hashlib.sha256()
            size = 0
            try:
                with Path(path).open("rb") as src:
                    while chunk := src.read(_CHUNK):
                        h.update(chunk)
                        tmp.write(chunk)
                        size += len(chunk)
            except OSError as exc:
                os.unlink(tmp.name)
                raise InvalidInput(f"Cannot read {path}: {exc.strerror}.") from exc
        return self._commit(tmp.name, BlobRef(h.hexdigest(), size))

    def put_bytes(self, data: bytes) -> BlobRef:
        ref = BlobRef(hashlib.sha256(data).hexdigest(), len(data))
        if self.exists(ref.digest):
            return ref
        with tempfile.NamedTemporaryFile(dir=self.root / "tmp", delete=False) as tmp:
            tmp.write(data)
        return self._commit(tmp.name, ref)

    def _commit(self, tmp_name: str, ref: BlobRef) -> BlobRef:
        final = self._path(ref.digest)
        if final.exists():
            os.unlink(tmp_name)
            return ref
        final.parent.mkdir(parents=True, exist_ok=True)
        os.chmod(tmp_name, 0o444)
        os.replace(tmp_name, final)  # atomic: readers see all of the blob or none
        return ref

    def get_bytes(self, digest: str) -> bytes:
        with self.open(digest) as fh:
            return fh.read()

    def download(self, digest: str, dest: Path) -> None:
        dest.parent.mkdir(parents=True, exist_ok=True)
        with (
            self.open(digest) as src,
            tempfile.NamedTemporaryFile(dir=dest.parent, delete=False) as tmp,
        ):
            shutil.copyfileobj(src, tmp, _CHUNK)
        os.replace(tmp.name, dest)

    def open(self, digest: str) -> IO[bytes]:
        path = self._path(digest)
        try:
            return path.open("rb")
        except FileNotFoundError:
            raise NotFound(
                f"Blob {digest} is missing from {self.root}.",
                hint="The artifact store lost a file; restore it from a backup.",
            ) from None

    def exists(self, digest: str) -> bool:
        return self._path(digest).is_file()

    def location(self, digest: str) -> str:
        return str(self._path(digest))

    def __repr__(self) -> str:
        return f"LocalBlobStore({str(self.root)!r})"


# Built-in backends by URI scheme, imported on use (the S3 one needs the `s3` extra).
_BACKENDS = {
    "s3": "milepost.stores.blobs_s3:S3BlobStore",
}


def open_blob_store(uri: str, **options: Any) -> BlobStore:
    """The blob store for ``uri``: a local directory, ``file://...`` or ``s3://bucket/prefix``.

    Raises:
        ConfigError: unknown scheme (the message lists the supported ones).
    """
    scheme, sep, rest = uri.partition("://")
    if not sep:
        return LocalBlobStore(uri)
    if scheme == "file":
        return LocalBlobStore(rest)
    target = _BACKENDS.get(scheme)
    if target is None:
        raise ConfigError(
            f"Artifact URI {mask_uri(uri)!r} has an unsupported scheme {scheme!r}.",
            hint="Supported: a local path, file://..., "
            + ", ".join(f"{s}://..." for s in _BACKENDS),
        )
    module_name, _, cls_name = target.partition(":")
    cls = getattr(importlib.import_module(module_name), cls_name)
    store: BlobStore = cls(uri, **options)
    return store
