"""Content-addressed blob storage: local files by default, S3-compatible by URI.

Blobs are named by the SHA-256 of their bytes, so the same content is stored once and a
key can never be a path a user chose. Backends only move bytes; what the bytes mean
(artifacts, dataset snapshots, model files) is decided above them.

Every read checks the bytes against their name: ``get_bytes`` and ``download`` verify
before returning (a download that fails leaves no file behind), ``open`` verifies when
the reader reaches the end, and engines that read a local path themselves (DuckDB,
pyarrow) call :func:`verify_file` first, which remembers a file it checked until its
size, modification time or inode change. An altered or truncated blob is an
:class:`~milepost.errors.IntegrityViolation`, never a parser error or wrong data.

Add a backend by implementing :class:`BlobStore` and naming it in ``_BACKENDS``.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import io
import os
import re
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Protocol, runtime_checkable

from milepost.errors import (
    BackendUnavailable,
    ConfigError,
    IntegrityViolation,
    InvalidInput,
    NotFound,
    mask_uri,
)

if TYPE_CHECKING:
    from collections.abc import Iterator

__all__ = [
    "BlobRef",
    "BlobStore",
    "LocalBlobStore",
    "VerifyingReader",
    "check_bytes",
    "hash_file",
    "open_blob_store",
    "verify_file",
    "writing_to",
]

_CHUNK = 1 << 20
_DIGEST = re.compile(r"^[0-9a-f]{64}$")
# Temporary files older than this in a store's tmp/ were left by an interrupted write.
_STALE_TMP_SECONDS = 6 * 3600


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
        """The blob's bytes, verified. Raises NotFound, IntegrityViolation."""
        ...

    def download(self, digest: str, dest: Path) -> None:
        """Write the blob to ``dest`` (atomically replaced), verified first; nothing is
        left at ``dest`` when verification fails. Raises NotFound, IntegrityViolation."""
        ...

    def open(self, digest: str) -> IO[bytes]:
        """A binary reader of the blob; reading to the end raises IntegrityViolation when
        the bytes do not match. Raises NotFound."""
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


def _mismatch(digest: str, where: str, size: int) -> IntegrityViolation:
    return IntegrityViolation(
        f"Blob {digest} in {where} does not match its SHA-256 ({size:,} bytes read): the "
        "stored bytes were altered or truncated.",
        hint="Restore the file from a backup, or register or log the data again.",
        details={"digest": digest},
    )


def check_bytes(data: bytes, digest: str, where: str) -> bytes:
    """``data`` when it hashes to ``digest``; IntegrityViolation otherwise."""
    if hashlib.sha256(data).hexdigest() != digest:
        raise _mismatch(digest, where, len(data))
    return data


_verified: dict[tuple[str, int, int, int, str], None] = {}
_verified_lock = threading.Lock()
_VERIFIED_MAX = 100_000


def verify_file(path: Path, digest: str) -> Path:
    """Check a local file against its digest before an engine reads it; returns ``path``.

    A file checked once in this process is not read again until its size, modification
    time or inode changes, so repeated reads of a large snapshot cost one ``stat``.

    Raises:
        NotFound: the file is missing.
        IntegrityViolation: its bytes do not hash to ``digest``.
    """
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise NotFound(
            f"Blob {digest} is missing ({path}).",
            hint="The artifact store lost a file; restore it from a backup.",
        ) from None
    key = (str(path), st.st_size, st.st_mtime_ns, st.st_ino, digest)
    if key in _verified:
        return path
    ref = hash_file(path)
    if ref.digest != digest:
        raise _mismatch(digest, str(path), ref.size)
    with _verified_lock:
        if len(_verified) >= _VERIFIED_MAX:
            _verified.clear()
        _verified[key] = None
    return path


class VerifyingReader(io.RawIOBase):
    """Reads a blob sequentially and checks its digest when the end is reached."""

    def __init__(self, raw: IO[bytes], digest: str, where: str) -> None:
        super().__init__()
        self._raw, self._digest, self._where = raw, digest, where
        self._hash = hashlib.sha256()
        self._size = 0
        self._checked = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        data = self._raw.read(len(view))
        n = len(data)
        view[:n] = data
        if n:
            self._hash.update(data)
            self._size += n
        elif not self._checked and len(view):
            self._checked = True
            if self._hash.hexdigest() != self._digest:
                raise _mismatch(self._digest, self._where, self._size)
        return n

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._raw.close()
        super().close()


@contextlib.contextmanager
def writing_to(dest: Path) -> Iterator[None]:
    """Say an error writing a local destination the caller chose as InvalidInput.

    A destination that is a file where a directory is needed, a name longer than the
    file system allows or a directory the process may not write to is the caller's to
    fix; the raw ``OSError`` never escapes.
    """
    try:
        yield
    except OSError as exc:
        where = exc.filename if isinstance(exc.filename, str) else str(dest)
        raise InvalidInput(
            f"Cannot write {dest}: {exc.strerror or exc} ({where}).",
            hint="Choose a destination directory you can write to; no file in the way "
            "of its sub-directories.",
        ) from exc


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
        self._sweep_tmp()

    def _sweep_tmp(self) -> None:
        """Remove temporary files an interrupted write left behind (hours old)."""
        cutoff = time.time() - _STALE_TMP_SECONDS
        with contextlib.suppress(OSError):
            for entry in os.scandir(self.root / "tmp"):
                with contextlib.suppress(OSError):
                    if entry.is_file(follow_symlinks=False) and entry.stat().st_mtime < cutoff:
                        os.unlink(entry.path)

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

    def _intact(self, path: Path, digest: str) -> bool:
        try:
            verify_file(path, digest)
        except (NotFound, IntegrityViolation):
            return False
        return True

    def put_bytes(self, data: bytes) -> BlobRef:
        ref = BlobRef(hashlib.sha256(data).hexdigest(), len(data))
        if self._intact(self._path(ref.digest), ref.digest):
            return ref
        with tempfile.NamedTemporaryFile(dir=self.root / "tmp", delete=False) as tmp:
            tmp.write(data)
        return self._commit(tmp.name, ref)

    def _commit(self, tmp_name: str, ref: BlobRef) -> BlobRef:
        final = self._path(ref.digest)
        if final.exists() and self._intact(final, ref.digest):
            os.unlink(tmp_name)
            return ref
        # a missing or damaged blob: storing the same content again repairs it
        final.parent.mkdir(parents=True, exist_ok=True)
        os.chmod(tmp_name, 0o444)
        os.replace(tmp_name, final)  # atomic: readers see all of the blob or none
        return ref

    def get_bytes(self, digest: str) -> bytes:
        with self._open_raw(digest) as fh:
            return check_bytes(fh.read(), digest, str(self._path(digest)))

    def download(self, digest: str, dest: Path) -> None:
        h = hashlib.sha256()
        size = 0
        tmp_name = None
        try:
            with self._open_raw(digest) as src, writing_to(dest):
                dest.parent.mkdir(parents=True, exist_ok=True)
                with tempfile.NamedTemporaryFile(dir=dest.parent, delete=False) as tmp:
                    tmp_name = tmp.name
                    while chunk := src.read(_CHUNK):
                        h.update(chunk)
                        size += len(chunk)
                        tmp.write(chunk)
                if h.hexdigest() != digest:
                    raise _mismatch(digest, str(self._path(digest)), size)
                os.replace(tmp_name, dest)
                tmp_name = None
        finally:
            if tmp_name is not None:  # nothing half-written is left beside the destination
                with contextlib.suppress(OSError):
                    os.unlink(tmp_name)

    def _open_raw(self, digest: str) -> IO[bytes]:
        path = self._path(digest)
        try:
            return path.open("rb")
        except FileNotFoundError:
            raise NotFound(
                f"Blob {digest} is missing from {self.root}.",
                hint="The artifact store lost a file; restore it from a backup.",
            ) from None

    def open(self, digest: str) -> IO[bytes]:
        reader = VerifyingReader(self._open_raw(digest), digest, str(self._path(digest)))
        return io.BufferedReader(reader, _CHUNK)

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
