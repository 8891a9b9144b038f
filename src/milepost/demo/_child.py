"""What the demo's child servers (the platform server, the model server) start with."""

from __future__ import annotations

import os
import socket

import milepost

__all__ = ["child_env", "free_port"]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def child_env() -> dict[str, str]:
    """This process's environment for a child that must see this process's stores: its
    resolved settings replace any ``MILEPOST_*`` variable the caller had set."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MILEPOST_")}
    return env | milepost.get_runtime().settings.to_env()
