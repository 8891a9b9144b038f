"""Prediction-log segments as local files, wherever the replicas wrote them.

A segment is registered with where it is: a local path (no scheme; older rows, or an
artifact store that is a local directory) or a URL of the artifact store
(``s3://bucket/prefix/sha256/ab/cdef...``, written by a replica on any host). Readers
(:mod:`milepost.monitoring.predictions`, feedback) run DuckDB or pyarrow on local files,
so :func:`local_segments` gives them one per segment:

- a local path is used as it is; a missing one is skipped (as before);
- a remote one is downloaded with fsspec (streamed to disk, so memory stays bounded
  whatever the window), checked against the SHA-256 in its name, and kept in a cache
  of this process (at most ``CACHE_BYTES``, least recently used first out; segments
  never change once written, so a cached copy is never stale). A segment deleted from
  the store (retention) is skipped like a missing local file.

The fsspec options (e.g. the S3 endpoint of MinIO or moto) come from the source's
``storage_options`` attribute when it has one (the serving store does, from the
``s3_endpoint_url`` setting).
"""

from __future__ import annotations

import atexit
import collections
import contextlib
import hashlib
import os
import re
import shutil
import tempfile
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from milepost.errors import BackendUnavailable
from milepost.stores.blobs import hash_file

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

__all__ = ["CACHE_BYTES", "is_remote", "local_segments"]

CACHE_BYTES = 512 * 1024 * 1024  # downloaded segments kept per process
_DIGEST_TAIL = re.compile(r"sha256/([0-9a-f]{2})/([0-9a-f]{62})$")


def is_remote(path: str) -> bool:
    """Whether a registered segment location is a URL (``s3://...``), not a local path."""
    scheme, sep, _ = path.partition("://")
    return bool(sep) and scheme != "file" and len(scheme) > 1  # "C://" is a drive


def _local_path(path: str) -> Path:
    return Path(path.removeprefix("file://"))


class _Cache:
    """Downloaded segments of this process: a directory, sizes, pins (files in use)."""

    def __init__(self) -> None:
        self.pid = os.getpid()
        self.lock = threading.Lock()
        self.dir: Path | None = None
        self.files: collections.OrderedDict[str, int] = collections.OrderedDict()
        self.size = 0
        self.pins: collections.Counter[str] = collections.Counter()

    def directory(self) -> Path:
        if self.dir is None:
            self.dir = Path(tempfile.mkdtemp(prefix="milepost-segments-"))
            atexit.register(_remove, self.dir, self.pid)
        return self.dir

    def evict(self) -> None:
        """Drop least recently used, unpinned files until the cache fits (lock held)."""
        for uri in list(self.files):
            if self.size <= CACHE_BYTES:
                return
            if self.pins[uri]:
                continue
            self.size -= self.files.pop(uri)
            (self.directory() / _name(uri)).unlink(missing_ok=True)


def _remove(directory: Path, pid: int) -> None:
    """At exit: the cache of the process that made it (a fork child inherits the hook)."""
    if os.getpid() == pid:
        shutil.rmtree(directory, ignore_errors=True)


_cache = _Cache()


def _state() -> _Cache:
    global _cache
    if _cache.pid != os.getpid():  # a fork child: its own cache, never the parent's files
        _cache = _Cache()
    return _cache


def _name(uri: str) -> str:
    return hashlib.sha256(uri.encode()).hexdigest() + ".parquet"


def _filesystem(uri: str, storage_options: dict[str, Any]) -> Any:
    import fsspec

    scheme = uri.partition("://")[0]
    try:
        return fsspec.filesystem(scheme, **storage_options)
    except (ImportError, ValueError) as exc:
        raise BackendUnavailable(
            f"Cannot read prediction-log segments at {scheme}:// URLs: {exc}",
            hint="Install the package of that store (S3: pip install 'milepost[s3]').",
        ) from exc


def _download(uri: str, dest: Path, storage_options: dict[str, Any]) -> bool:
    """Copy one remote segment to ``dest``; False when the store no longer has it."""
    fs = _filesystem(uri, storage_options)
    tmp = dest.with_name(f".{dest.name}.{threading.get_ident()}.tmp")
    try:
        fs.get_file(uri, str(tmp))
    except FileNotFoundError:
        tmp.unlink(missing_ok=True)
        return False
    except Exception as exc:  # fsspec backends raise their own errors (botocore, ...)
        tmp.unlink(missing_ok=True)
        raise BackendUnavailable(
            f"Cannot read the prediction-log segment {uri}: {exc}",
            hint="Check that the artifact store is reachable (and MILEPOST_S3_ENDPOINT_URL).",
        ) from exc
    match = _DIGEST_TAIL.search(uri)
    if match is not None:  # content-addressed: the name is the checksum
        got = hash_file(tmp).digest
        if got != match.group(1) + match.group(2):
            tmp.unlink(missing_ok=True)
            raise BackendUnavailable(
                f"The prediction-log segment {uri} does not match its checksum "
                f"(got sha256 {got[:12]}...): it was altered or truncated in the store.",
                hint="Restore the object from a backup, or delete its row from "
                "prediction_segments to read the log without it.",
            )
    os.replace(tmp, dest)
    return True


@contextlib.contextmanager
def local_segments(
    paths: Sequence[str], *, storage_options: dict[str, Any] | None = None
) -> Iterator[list[Path]]:
    """Local files holding the segments at ``paths`` (in order; missing ones left out).

    Remote segments are downloaded (or taken from the cache) and stay in place until the
    ``with`` block ends.

    Raises:
        BackendUnavailable: a remote segment could not be read (store down, bad checksum).
    """
    out: list[Path] = []
    pinned: list[str] = []
    cache = _state()
    try:
        for path in paths:
            if not is_remote(path):
                local = _local_path(path)
                if local.exists():
                    out.append(local)
                continue
            with cache.lock:
                cached = path in cache.files
                if cached:
                    cache.files.move_to_end(path)
                cache.pins[path] += 1
                pinned.append(path)
                dest = cache.directory() / _name(path)
            if not cached:
                if not _download(path, dest, storage_options or {}):
                    continue
                with cache.lock:
                    if path not in cache.files:
                        cache.files[path] = dest.stat().st_size
                        cache.size += cache.files[path]
                    cache.evict()
            out.append(dest)
        yield out
    finally:
        with cache.lock:
            for path in pinned:
                cache.pins[path] -= 1
                if not cache.pins[path]:
                    del cache.pins[path]
            cache.evict()
