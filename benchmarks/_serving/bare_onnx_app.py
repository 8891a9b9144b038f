"""The physical limit of Milepost's ONNX path: a raw ASGI callable running the same ONNX
session on NumPy arrays, with no validation and no logging.

Served by ``uvicorn bare_onnx_app:app`` (one worker) from Milepost's environment, so it
gets the same uvicorn, uvloop, httptools, onnxruntime and orjson as ``milepost serve``. The
model is the verified ONNX twin Milepost serves (``SERVING_BENCH_ONNX``: the file's bytes,
taken from the artifact store by the set-up), loaded with the same session options (one
intra-op thread, CPU provider). ``POST /predict`` takes ``{"rows": [{...}]}`` and answers
``{"predictions": [...], "probabilities": [[...]]}`` (the outputs Milepost answers too);
``GET /ready`` answers 200.

Per request it does the least a server can: parse the JSON (orjson), build one NumPy
column per session input with the dtype the session declares (no type, null or range
checks), run the session through its private native binding (the cheapest call there
is: ``InferenceSession.run`` checks the feed's names first, about 3 us here; Milepost
calls the public ``run``, as a private binding may change in any onnxruntime release, so
this peer is the stricter reference), serialise both outputs (orjson). A bad request is
a 400 with the exception's text.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import orjson

_options = ort.SessionOptions()
_options.intra_op_num_threads = 1
SESSION = ort.InferenceSession(
    Path(os.environ["SERVING_BENCH_ONNX"]).read_bytes(),
    _options,
    providers=["CPUExecutionProvider"],
)
_DTYPES = {
    "tensor(string)": object,
    "tensor(int64)": np.int64,
    "tensor(double)": np.float64,
    "tensor(float)": np.float32,
}
INPUTS = [(i.name, _DTYPES[i.type]) for i in SESSION.get_inputs()]
OUTPUTS = [o.name for o in SESSION.get_outputs()]
# the session's native binding (InferenceSession.run re-checks the feed on every call
# before making this same call); the public run if a release drops or renames it
_native = getattr(getattr(SESSION, "_sess", None), "run", None)
_RUN = _native if _native is not None else SESSION.run
_RUN_OPTIONS = ort.RunOptions()
_HEADERS = [(b"content-type", b"application/json")]


def predict(body: bytes) -> bytes:
    """One request's answer: columns -> session -> JSON."""
    rows = orjson.loads(body)["rows"]
    feed = {name: np.array([[row[name]] for row in rows], dtype=dtype) for name, dtype in INPUTS}
    labels, proba = _RUN(OUTPUTS, feed, _RUN_OPTIONS)
    return orjson.dumps(
        {"predictions": labels, "probabilities": proba}, option=orjson.OPT_SERIALIZE_NUMPY
    )


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
    if scope["path"] == "/predict":
        try:
            status, payload = 200, predict(body)
        except Exception as exc:  # a bad request, not a crash
            status, payload = 400, orjson.dumps({"error": str(exc)})
    elif scope["path"] == "/ready":
        status, payload = 200, b'{"ready": true}'
    headers = [*_HEADERS, (b"content-length", str(len(payload)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})
