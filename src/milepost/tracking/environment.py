"""What a run ran with: Python, platform, packages, git state and the owning process.

Everything here is read once per process and cached: listing installed packages takes
tens of milliseconds and git a few more, which would dominate run creation otherwise.
The git state is therefore the one at the first run of the process.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import json
import os
import platform
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import psutil

if TYPE_CHECKING:
    from collections.abc import Iterable

__all__ = [
    "EnvironmentInfo",
    "GitInfo",
    "ProcessInfo",
    "RunOrigin",
    "capture_environment",
    "environment_of",
    "git_info",
    "process_info",
    "source_name",
]


@dataclass(frozen=True)
class EnvironmentInfo:
    """The interpreter, platform and installed packages."""

    python_version: str
    platform: str
    packages: tuple[str, ...]
    packages_hash: str
    env_hash: str


@dataclass(frozen=True)
class GitInfo:
    """The caller's repository: commit and whether tracked files have changes."""

    root: str
    commit: str
    dirty: bool


@dataclass(frozen=True)
class ProcessInfo:
    """Identifies this process across pid reuse: host, pid and its start time."""

    host: str
    pid: int
    started: float


@functools.cache
def capture_environment() -> EnvironmentInfo:
    """This interpreter's environment (cached for the life of the process)."""
    packages: set[str] = set()
    for dist in importlib.metadata.distributions():
        name = dist.name
        if name:
            packages.add(f"{name.lower().replace('_', '-')}=={dist.version}")
    return environment_of(platform.python_version(), platform.platform(), packages)


def environment_of(python_version: str, plat: str, packages: Iterable[str]) -> EnvironmentInfo:
    """An environment from its parts, with its hashes computed here (never taken on trust:
    the platform server rebuilds a remote client's environment this way)."""
    ordered = tuple(sorted(set(packages)))
    packages_hash = hashlib.sha256("\n".join(ordered).encode()).hexdigest()
    env_hash = hashlib.sha256(
        json.dumps([python_version, plat, packages_hash]).encode()
    ).hexdigest()
    return EnvironmentInfo(python_version, plat, ordered, packages_hash, env_hash)


def _caller_dir() -> Path:
    script = sys.argv[0] if sys.argv else ""
    if script and script not in ("-c", "-m") and Path(script).is_file():
        return Path(script).resolve().parent
    return Path.cwd()


@functools.cache
def _git_info_for(directory: str) -> GitInfo | None:
    def git(*args: str) -> str | None:
        try:
            out = subprocess.run(
                ["git", "-C", directory, *args],
                capture_output=True,
                text=True,
                timeout=5,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired):
            return None
        return out.stdout.strip() if out.returncode == 0 else None

    root = git("rev-parse", "--show-toplevel")
    commit = git("rev-parse", "HEAD")
    if not root or not commit:
        return None
    status = git("status", "--porcelain", "--untracked-files=no")
    return GitInfo(root=root, commit=commit, dirty=bool(status))


def git_info(directory: Path | None = None) -> GitInfo | None:
    """The git state of the caller's repository (the script's or the current directory)."""
    return _git_info_for(str(directory or _caller_dir()))


@functools.cache
def _process_info(pid: int) -> ProcessInfo:
    return ProcessInfo(socket.gethostname(), pid, psutil.Process(pid).create_time())


def process_info() -> ProcessInfo:
    """This process (recomputed after a fork)."""
    return _process_info(os.getpid())


def process_alive(pid: int, started: float | None) -> bool:
    """Whether the process ``pid`` that started at ``started`` is still running here."""
    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return False
        return started is None or abs(proc.create_time() - started) < 1.0
    except psutil.NoSuchProcess:
        return False
    except psutil.AccessDenied:  # exists, owned by someone else
        return True


def source_name() -> str:
    """What started this process: the script's path or ``<interactive>``."""
    script = sys.argv[0] if sys.argv else ""
    return script if script else "<interactive>"


@dataclass(frozen=True)
class RunOrigin:
    """Where a run is started from: the starting process's environment, git state,
    identity and script.

    ``local`` is True for this process (:meth:`here`): its tracking service then owns the
    run (heartbeats, never reaped while it lives). The platform server starts runs for
    remote clients with their origin (``local=False``): the client owns them and sends
    their heartbeats.
    """

    env: EnvironmentInfo
    git: GitInfo | None
    process: ProcessInfo
    source: str
    local: bool = True

    @classmethod
    def here(cls) -> RunOrigin:
        """This process."""
        return cls(capture_environment(), git_info(), process_info(), source_name())
