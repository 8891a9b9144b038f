"""Where a run's artifacts come from and go to, shared by the embedded service and its
remote twin.

Both modes check the same paths with the same words before any byte moves: which files a
directory logs (links that leave it refused), the artifact path a file or bytes take, and
where each downloaded file lands (nothing in the way). Only moving the bytes differs: the
service reads and writes its blob store, the remote client streams over HTTP.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from milepost import _validate as check
from milepost.errors import InvalidInput, NotFound
from milepost.stores.blobs import writing_to
from milepost.stores.paths import safe_join, safe_relpath

if TYPE_CHECKING:
    from collections.abc import Callable

    from milepost.tracking.models import ArtifactInfo

__all__ = [
    "artifact_files",
    "bytes_target",
    "download_all",
    "download_target",
    "file_target",
    "list_prefix",
]


def file_target(local_path: str | os.PathLike[str], artifact_path: str | None) -> tuple[Path, str]:
    """The file ``log_artifact`` stores, and its artifact path ``artifact_path/<name>``."""
    path = check.local_path(
        local_path, "Artifact", kind="file", hint="Use log_artifacts for a directory."
    )
    if artifact_path is not None:
        check.text(artifact_path, "artifact_path")
    target = path.name if not artifact_path else f"{artifact_path}/{path.name}"
    return path, safe_relpath(target)


def bytes_target(data: Any, artifact_file: str) -> str:
    """The artifact path ``log_bytes`` stores ``data`` (which must be bytes) at."""
    rel = safe_relpath(artifact_file)
    if not isinstance(data, bytes):
        raise InvalidInput(f"Artifact {rel!r}: expected bytes, got {type(data).__name__}.")
    return rel


def list_prefix(path: Any) -> str:
    """The artifact path ``list_artifacts`` lists under ("" for all)."""
    return "" if path is None or (isinstance(path, str) and not path) else safe_relpath(path)


def artifact_files(
    local_dir: str | os.PathLike[str], artifact_path: str | None
) -> list[tuple[Path, str]]:
    """The files of a directory tree to log, each with its artifact path.

    Links that leave the tree, and links to directories, are refused before anything is
    stored (``log_artifacts``, embedded and remote).
    """
    root = check.local_path(
        local_dir, "Artifact directory", kind="dir", hint="Use log_artifact for a file."
    )
    if artifact_path is not None:
        check.text(artifact_path, "artifact_path")
    real_root = root.resolve()
    files: list[tuple[Path, str]] = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        for name in [*filenames, *dirnames]:
            full = Path(dirpath) / name
            if full.is_symlink():
                real = full.resolve()
                if real_root not in real.parents:
                    raise InvalidInput(
                        f"Refused {full}: it is a link to {real}, outside {real_root}.",
                        hint="Copy the target into the directory or remove the link.",
                    )
                if real.is_dir():
                    raise InvalidInput(
                        f"Refused {full}: links to directories are not followed.",
                        hint="Replace the link with the directory itself.",
                    )
        for name in filenames:
            full = Path(dirpath) / name
            rel = full.relative_to(root).as_posix()
            target = rel if not artifact_path else f"{artifact_path}/{rel}"
            files.append((full, safe_relpath(target)))
    return files


def download_target(root: Path, relpath: str) -> Path:
    """Where an artifact is downloaded to, refused when something is in the way."""
    target = safe_join(root, relpath)
    real_root = root.resolve()
    if target.is_dir():
        raise InvalidInput(
            f"Cannot download artifact {relpath!r}: {target} is a directory.",
            hint="Download into an empty directory.",
        )
    for parent in target.parents:
        if parent.exists() and not parent.is_dir():
            raise InvalidInput(
                f"Cannot download artifact {relpath!r}: {parent} is a file, not a directory.",
                hint="Download into an empty directory.",
            )
        if parent == real_root:
            break
    return target


def download_all(
    run_id: str,
    path: str,
    dst: str | os.PathLike[str],
    *,
    listed: Callable[[], list[ArtifactInfo]],
    fetch: Callable[[ArtifactInfo, Path], None],
) -> Path:
    """``download_artifacts``: every destination checked, then each file fetched.

    ``dst`` must be a directory (created when missing), and no file may stand where a
    directory is needed, nor a directory where a file goes; ``listed()`` gives the
    artifacts under ``path``, and ``fetch(item, target)`` writes one.

    Raises:
        InvalidInput: ``dst`` or a path under it cannot take the artifacts.
        NotFound: the run has no artifacts under ``path``.
    """
    dest_root = check.local_path(dst, "Download destination", kind="new_dir")
    items = listed()
    if not items:
        raise NotFound(f"Run {run_id} has no artifacts under {path or '/'!r}.")
    with writing_to(dest_root):
        targets = [(item, download_target(dest_root, item.path)) for item in items]
        dest_root.mkdir(parents=True, exist_ok=True)
    for item, target in targets:
        fetch(item, target)
    return dest_root / safe_relpath(path) if path else dest_root
