"""Where a demo run lives, and how to reach it afterwards.

Each ``milepost demo`` starts from an empty home (by default a new directory under
``./.milepost-demo/``), so every run tells the same story and never mixes with an
earlier one; its closing lines say how to point ``milepost`` at that home and, when the
command is not on ``PATH`` (``make demo`` runs ``.venv/bin/milepost``), how to put it
there.
"""

from __future__ import annotations

import os
import shlex
import shutil
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import milepost
from milepost.config import ENV_PREFIX, load_settings
from milepost.errors import InvalidInput

if TYPE_CHECKING:
    from milepost._context import Runtime

__all__ = ["DEMO_ROOT", "STORE_SETTINGS", "fresh_home", "path_hint", "point_at", "use_home"]

#: Where demo homes go, relative to the current directory.
DEMO_ROOT = Path(".milepost-demo")
#: Settings that would move a store away from the demo's home.
STORE_SETTINGS = ("metadata_uri", "artifact_uri", "online_uri", "offline_uri")


def fresh_home(root: Path | None = None) -> Path:
    """Create ``root/<UTC time>`` (``-2``, ``-3``, ... when a run started the same second).

    Args:
        root: the parent directory (default ``./.milepost-demo``).
    """
    root = root if root is not None else Path.cwd() / DEMO_ROOT
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    for n in range(1, 1000):
        home = root / (stamp if n == 1 else f"{stamp}-{n}")
        try:
            home.mkdir(parents=True)
        except FileExistsError:
            continue
        return home
    raise InvalidInput(f"Could not create a new demo home under {root}.")  # pragma: no cover


def use_home(home: Path) -> Runtime:
    """Configure Milepost on ``home`` with every store inside it (whatever the environment
    or ``milepost.toml`` say about stores), creating it; refuse a home that is not empty.

    Raises:
        InvalidInput: ``home`` is a file, or a directory with something in it.
    """
    if home.exists() and (not home.is_dir() or any(home.iterdir())):
        raise InvalidInput(
            f"{home} is not an empty directory: the demo starts from an empty home so that "
            "every run tells the same story.",
            hint="Name a new directory with --home, or leave --home out: each run then gets "
            f"its own directory under ./{DEMO_ROOT}/.",
        )
    home.mkdir(parents=True, exist_ok=True)
    return milepost.configure(home=home.resolve(), **dict.fromkeys(STORE_SETTINGS))


def point_at(home: Path) -> list[str]:
    """Shell lines that make the next ``milepost`` commands read ``home``'s stores.

    ``MILEPOST_HOME`` is enough unless a store setting comes from the environment or a
    ``milepost.toml`` (they outrank the home's defaults): those are unset or set too.
    """
    lines = [f"export {ENV_PREFIX}HOME={shlex.quote(str(home.resolve()))}"]
    resolved = load_settings()
    for key in STORE_SETTINGS:
        source = resolved.sources.get(key)
        if source == "env":
            lines.append(f"unset {ENV_PREFIX}{key.upper()}")
        elif source == "file":  # the project file outranks defaults: override it
            value = getattr(milepost.get_runtime().settings, f"resolved_{key}")()
            lines.append(f"export {ENV_PREFIX}{key.upper()}={shlex.quote(value)}")
    return lines


def path_hint() -> str | None:
    """How to run ``milepost`` when it is not on ``PATH`` (None when it is)."""
    bin_dir = Path(sys.executable).parent
    script = bin_dir / "milepost"
    found = shutil.which("milepost")
    if found and Path(found).resolve() == script.resolve():
        return None
    activate = bin_dir / "activate"
    if activate.is_file():
        return (
            f"milepost is not on your PATH: run `source {_short(activate)}` first, "
            f"or type {_short(script)} instead of milepost"
        )
    return f"milepost is not on your PATH: type {_short(script)} instead of milepost"


def _short(path: Path) -> str:
    """``path`` relative to the current directory when it is inside it."""
    try:
        return os.path.relpath(path, Path.cwd()) if path.is_relative_to(Path.cwd()) else str(path)
    except ValueError:  # pragma: no cover - another drive on Windows
        return str(path)
