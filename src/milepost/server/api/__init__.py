"""The platform server's REST API (``milepost server``): ``/api/v1/...``.

:func:`create_app` builds the FastAPI app over one :class:`~milepost.Runtime`: every
route parses, calls the same service the CLI calls and renders the record's
``to_dict()``. The OpenAPI schema is at ``/api/v1/openapi.json``.
"""

from __future__ import annotations

from milepost.server.api.app import create_app

__all__ = ["create_app"]
