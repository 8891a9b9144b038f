"""Importing a project's own modules, installed or not.

A project right after ``milepost init`` is not installed yet (no ``pip install -e .``):
while ``milepost check``, the sandbox and the consistency check import its modules, the
project's ``src/`` (when it exists) and its root go first on ``sys.path``, as pytest's
``pythonpath`` setting does. An installed project imports the same modules either way.
"""

from __future__ import annotations

import importlib
import os
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from milepost._refs import resolve_ref

if TYPE_CHECKING:
    from collections.abc import Iterator

    from milepost.project.config import Project

__all__ = ["import_ref", "on_path", "path_entries"]


def path_entries(project: Project) -> list[str]:
    """The directories that make the project's modules importable: ``src/`` (if it
    exists), then the root."""
    src = project.root / "src"
    return [str(p) for p in (src, project.root) if p.is_dir()]


@contextmanager
def on_path(project: Project, *, env: bool = False, forget: bool = False) -> Iterator[None]:
    """The project's directories first on ``sys.path`` for the block, then as before.

    Args:
        project: whose directories.
        env: also put them first on ``PYTHONPATH`` (child processes a pipeline run
            starts, such as its step workers, import the project's steps by name).
        forget: afterwards, drop the modules the block imported from the project from
            ``sys.modules``, so the next check imports the files as they are then (a
            check leaves the process as it found it).
    """
    entries = path_entries(project)
    before = set(sys.modules) if forget else set()
    sys.path[:0] = entries
    old_env = os.environ.get("PYTHONPATH")
    if env:
        os.environ["PYTHONPATH"] = os.pathsep.join([*entries, *filter(None, [old_env])])
    importlib.invalidate_caches()
    try:
        yield
    finally:
        for entry in entries:  # the ones inserted, not an equal entry that was there
            if entry in sys.path:
                sys.path.remove(entry)
        if forget:
            root = project.root.resolve()
            for name in set(sys.modules) - before:
                file = getattr(sys.modules[name], "__file__", None)
                if file and Path(file).resolve().is_relative_to(root):
                    del sys.modules[name]
        if env:
            if old_env is None:
                os.environ.pop("PYTHONPATH", None)
            else:
                os.environ["PYTHONPATH"] = old_env


def import_ref(ref: str, what: str) -> Any:
    """The object a ``module:attr`` reference names (``what`` names it in errors).

    Raises:
        InvalidInput: the module does not import (with the error) or has no such attribute.
    """
    return resolve_ref(
        ref,
        what,
        example="my_project.data:sample",
        hint="Check the name in milepost.toml's [project] table; run from the project "
        "(its src/ is searched), or `pip install -e .`.",
    )
