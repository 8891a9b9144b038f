"""Remote mode: the Python API and the CLI over HTTP to a ``milepost server``.

With ``MILEPOST_URL`` set (and ``MILEPOST_TOKEN``), :func:`milepost.get_runtime` returns
a :class:`RemoteRuntime`: its ``tracking``, ``models``, ``promotion``, ... have the same
methods as the embedded services and return the same records, made by calls to
``/api/v1``. ``milepost.Client``, the module-level functions (``milepost.start_run``,
``log_metric``) and the CLI use it unchanged.
"""

from __future__ import annotations

from milepost.client._runtime import RemoteRuntime
from milepost.client._transport import Transport

__all__ = ["RemoteRuntime", "Transport"]
