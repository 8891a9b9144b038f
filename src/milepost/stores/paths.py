"""Checks for paths that come from users: nothing escapes the directory it belongs to."""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath

from milepost._validate import short_repr, unsafe_char
from milepost.errors import InvalidInput

__all__ = ["MAX_NAME_BYTES", "MAX_PATH", "safe_join", "safe_relpath"]

#: The longest relative path stored (the artifacts table's column).
MAX_PATH = 1024
#: The longest file or directory name most file systems take (NAME_MAX, in bytes).
MAX_NAME_BYTES = 255


def safe_relpath(path: str | os.PathLike[str], *, what: str = "artifact path") -> str:
    """Normalise a user-given relative path to ``a/b/c`` or refuse it.

    Refused: empty paths, absolute paths (``/x``, ``C:/x``, ``//host/x``), any ``..``
    segment, backslashes (a separator on Windows and in many object stores), control
    characters and lone surrogates, paths over :data:`MAX_PATH` characters and names
    (segments) over :data:`MAX_NAME_BYTES` bytes in UTF-8, which no download could write.

    Raises:
        InvalidInput: naming the path and the reason.
    """
    if not isinstance(path, (str, os.PathLike)):
        raise InvalidInput(
            f"The {what} must be a string, got {short_repr(path)} ({type(path).__name__})."
        )
    raw = os.fspath(path)
    if not isinstance(raw, str):
        raise InvalidInput(f"The {what} must be text, got {short_repr(raw)}.")
    reason = None
    if not raw or raw.strip() == "":
        reason = "it is empty"
    elif (bad := unsafe_char(raw)) is not None:
        reason = f"it contains {bad}"
    elif len(raw) > MAX_PATH:
        raw = short_repr(raw)
        reason = f"it is longer than {MAX_PATH} characters"
    elif "\\" in raw:
        reason = "it contains a backslash; use '/' between directories"
    elif raw.startswith("/") or (len(raw) > 1 and raw[1] == ":"):
        reason = "it is absolute; give a path relative to the run's artifact root"
    else:
        parts = [p for p in PurePosixPath(raw).parts if p not in ("", ".")]
        if ".." in parts:
            reason = "it contains '..', which could leave the artifact root"
        elif not parts:
            reason = "it names no file"
        elif any(len(p.encode()) > MAX_NAME_BYTES for p in parts):
            long = next(p for p in parts if len(p.encode()) > MAX_NAME_BYTES)
            reason = (
                f"its name {short_repr(long)} is {len(long.encode())} bytes long; file "
                f"systems take at most {MAX_NAME_BYTES}"
            )
        else:
            return "/".join(parts)
    raise InvalidInput(
        f"Refused {what} {raw!r}: {reason}.", hint="Use a relative path such as 'plots/roc.png'."
    )


def safe_join(root: Path, relpath: str, *, what: str = "artifact path") -> Path:
    """Join ``relpath`` under ``root`` and refuse a result outside it, links included."""
    rel = safe_relpath(relpath, what=what)
    real_root = root.resolve()
    target = (real_root / rel).resolve()
    if target != real_root and real_root not in target.parents:
        raise InvalidInput(
            f"Refused {what} {relpath!r}: it resolves to {target}, outside {real_root} "
            "(through a symbolic link).",
            hint="Remove the link or copy the file into place.",
        )
    return target
