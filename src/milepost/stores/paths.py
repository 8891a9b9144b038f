"""Checks for paths that come from users: nothing escapes the directory it belongs to."""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath

from milepost.errors import InvalidInput

__all__ = ["safe_join", "safe_relpath"]


def safe_relpath(path: str | os.PathLike[str], *, what: str = "artifact path") -> str:
    """Normalise a user-given relative path to ``a/b/c`` or refuse it.

    Refused: empty paths, absolute paths (``/x``, ``C:/x``, ``//host/x``), any ``..``
    segment, backslashes (a separator on Windows and in many object stores) and NUL bytes.

    Raises:
        InvalidInput: naming the path and the reason.
    """
    raw = os.fspath(path)
    reason = None
    if not raw or raw.strip() == "":
        reason = "it is empty"
    elif "\x00" in raw:
        reason = "it contains a NUL byte"
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
