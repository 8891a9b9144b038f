"""The floor: a raw ASGI callable, no framework, ``pipeline.predict`` on a DataFrame.

Served by ``uvicorn bare_app:app`` (one worker) from Milepost's environment, so it gets
the same uvicorn, uvloop and httptools as ``milepost serve``. The pipeline is the pickle
named by ``SERVING_BENCH_PIPELINE``. ``POST /predict`` takes ``{"rows": [{...}]}`` and
answers ``{"predictions": [...]}``; ``GET /ready`` answers 200. ``POST /constant`` answers
a constant without parsing or predicting: the floor of this machine's HTTP round trip.
"""

from __future__ import annotations

import json
import os
import pickle
from typing import Any

import pandas as pd

with open(os.environ["SERVING_BENCH_PIPELINE"], "rb") as fh:
    PIPELINE = pickle.load(fh)  # noqa: S301 - our own file

_HEADERS = [(b"content-type", b"application/json")]


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """ASGI 3: predict, ready, or 404."""
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    body, more = b"", True
    while more:
        message = await receive()
        body += message.get("body", b"")
        more = message.get("more_body", False)
    status, payload = 404, b'{"error": "not found"}'
    if scope["method"] == "POST" and scope["path"] == "/predict":
        try:
            rows = json.loads(body)["rows"]
            predictions = PIPELINE.predict(pd.DataFrame(rows)).tolist()
            status, payload = 200, json.dumps({"predictions": predictions}).encode()
        except Exception as exc:  # a bad request, not a crash
            status, payload = 400, json.dumps({"error": str(exc)}).encode()
    elif scope["path"] == "/constant":
        status, payload = 200, b'{"predictions": [0]}'
    elif scope["path"] == "/ready":
        status, payload = 200, b'{"ready": true}'
    await send({"type": "http.response.start", "status": status, "headers": _HEADERS})
    await send({"type": "http.response.body", "body": payload})
