"""The runtime, imported on first use so that ``milepost --help`` loads no service.

Command modules import only Typer, Rich, :mod:`milepost.errors` and these helpers at
module level; everything that pulls in the services, pandas, DuckDB or SQLAlchemy is
imported inside the command that needs it (``tests/e2e/test_cli_help.py`` checks).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from milepost._context import Runtime

__all__ = ["runtime"]


def runtime() -> Runtime:
    """The process's runtime (built on first use, like :func:`milepost.get_runtime`)."""
    from milepost._context import get_runtime

    return get_runtime()
