"""Receiving a model upload (``POST /api/v1/models/{name}/versions``).

The body is framed so that one streamed request carries everything ``log_model`` takes:

    8 bytes   the length H of the JSON header (big-endian)
    H bytes   the header: run_id, flavor, model_bytes, training_bytes and the options
    M bytes   the model file as the flavor saves it (``model_bytes``)
    T bytes   the training data as one Parquet file (``training_bytes``; 0: none)

The model file and the training data are spooled to disk chunk by chunk (never whole in
memory) and refused with 413 past ``server_max_upload_mb``. The model is then rebuilt
with the server's loaders' trust: the built-in allow-list, the ``trusted_types`` setting
and the approver-set list; what the author declares is recorded, not trusted. A pickle
(``python`` flavor) is never loaded from an upload.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from starlette.concurrency import run_in_threadpool

from milepost.errors import InvalidInput, PermissionDenied
from milepost.server.api.routes._upload import checked_limit, spool_dir, too_large
from milepost.server.api.routes.data import TOO_LARGE
from milepost.server.api.routes.tracking import scope_run

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from fastapi import Request

__all__ = ["MAX_HEADER_BYTES", "receive_model"]

#: The largest JSON header (the input example and signature travel in it).
MAX_HEADER_BYTES = 1 << 20
_OPTIONS = frozenset(
    {
        "input_example",
        "signature",
        "onnx",
        "onnx_tolerance",
        "trusted_types",
        "feature_refs",
        "description",
        "tags",
    }
)


class _Body:
    """The request body as exact reads over its chunks."""

    def __init__(self, stream: AsyncIterator[bytes], limit: int) -> None:
        self.stream = stream
        self.buffer = b""
        self.seen = 0
        self.limit = limit

    async def _more(self) -> bool:
        async for chunk in self.stream:
            self.seen += len(chunk)
            if self.seen > self.limit:
                raise too_large(self.limit, TOO_LARGE)
            if chunk:
                self.buffer += chunk
                return True
        return False

    async def read(self, n: int, what: str) -> bytes:
        while len(self.buffer) < n:
            if not await self._more():
                raise _truncated(what)
        out, self.buffer = self.buffer[:n], self.buffer[n:]
        return out

    async def copy(self, n: int, path: Path, what: str) -> None:
        with path.open("wb") as out:
            left = n
            while left:
                if not self.buffer and not await self._more():
                    raise _truncated(what)
                part, self.buffer = self.buffer[:left], self.buffer[left:]
                await run_in_threadpool(out.write, part)
                left -= len(part)

    async def end(self) -> None:
        if self.buffer or await self._more():
            raise InvalidInput(
                "The model upload has bytes after its declared parts.",
                hint="model_bytes and training_bytes in the header must add up to the body.",
            )


def _truncated(what: str) -> InvalidInput:
    return InvalidInput(
        f"The model upload ended inside its {what}.",
        hint="Send the body as the milepost client frames it (see the route's description).",
    )


def _header(raw: bytes) -> dict[str, Any]:
    try:
        header = json.loads(raw)
    except (UnicodeDecodeError, ValueError) as exc:
        raise InvalidInput(f"The model upload's header is not JSON: {exc}.") from exc
    if not isinstance(header, dict):
        raise InvalidInput("The model upload's header is a JSON object.")
    unknown = set(header) - _OPTIONS - {"run_id", "flavor", "model_bytes", "training_bytes"}
    if unknown:
        raise InvalidInput(f"Unknown fields in the model upload's header: {sorted(unknown)}.")
    for key in ("model_bytes", "training_bytes"):
        value = header.get(key, 0)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise InvalidInput(f"{key} in the model upload's header is a byte count.")
    if not header.get("model_bytes"):
        raise InvalidInput("The model upload holds no model file (model_bytes is 0).")
    if header.get("flavor") == "python":
        raise PermissionDenied(
            "A pickled (python-flavor) model cannot be logged through the server: the "
            "server never unpickles an upload.",
            hint="Log a scikit-learn model (saved with skops) or ONNX, or log it where the "
            "stores are reachable (without MILEPOST_URL).",
        )
    if header.get("flavor") not in ("sklearn", "onnx"):
        raise InvalidInput(
            f"Unknown model flavor {header.get('flavor')!r} in the upload; use sklearn or onnx."
        )
    return header


async def receive_model(request: Request, name: str) -> dict[str, Any]:
    """Read the framed body, then log the model (see the module docstring)."""
    from milepost.models.uri import check_model_name

    check_model_name(name)
    body = _Body(request.stream(), checked_limit(request, TOO_LARGE))
    size = int.from_bytes(await body.read(8, "header length"), "big")
    if size > MAX_HEADER_BYTES:
        raise InvalidInput(
            f"The model upload's header is {size:,} bytes; at most {MAX_HEADER_BYTES:,}.",
            hint="Send a smaller input example (log_model keeps 5 rows).",
        )
    header = _header(await body.read(size, "header"))
    if isinstance(header.get("run_id"), str):  # a project-scoped token logs its runs only
        await run_in_threadpool(scope_run, request, header["run_id"])
    spool = spool_dir(request)
    with tempfile.TemporaryDirectory(dir=spool, prefix="model-") as tmp:
        model_path = Path(tmp) / "model"
        await body.copy(header["model_bytes"], model_path, "model file")
        training_path = None
        if header.get("training_bytes"):
            training_path = Path(tmp) / "training.parquet"
            await body.copy(header["training_bytes"], training_path, "training data")
        await body.end()
        version = await run_in_threadpool(
            _log, request.app.state.rt, name, header, model_path, training_path
        )
    result: dict[str, Any] = version.to_dict()
    return result


def _log(
    rt: Any, name: str, header: dict[str, Any], model_path: Path, training: Path | None
) -> Any:
    """Rebuild the model with the server's trust and log it as embedded mode does."""
    from milepost.models import flavors
    from milepost.models.signature import Signature

    flavor = header["flavor"]
    data = model_path.read_bytes()
    options = {k: header[k] for k in _OPTIONS if header.get(k) is not None}
    declared = options.get("trusted_types") or []
    if flavor == "onnx":
        model = _onnx_model(data)
    else:
        trusted = rt.models._loader_trust(())
        model = flavors.load(
            flavor,
            data,
            trusted_types=trusted,
            what=f"the uploaded model {name!r}",
            declared=declared if isinstance(declared, list) else [],
        )
    if "input_example" in options:
        options["input_example"] = _example(options["input_example"])
    if "signature" in options:
        if not isinstance(options["signature"], dict):
            raise InvalidInput("signature in the model upload's header is an object.")
        try:
            options["signature"] = Signature.from_dict(options["signature"])
        except (TypeError, ValueError) as exc:
            raise InvalidInput(f"The upload's signature is malformed: {exc}.") from exc
    if training is not None:
        options["training_data"] = _training(training)
    return rt.models.log_model(header.get("run_id"), model, name=name, flavor=flavor, **options)


def _onnx_model(data: bytes) -> Any:
    import onnx

    try:
        return onnx.load_model_from_string(data)
    except Exception as exc:  # protobuf's DecodeError and friends
        raise InvalidInput(f"The uploaded file is not an ONNX model: {exc}.") from exc


def _example(records: Any) -> Any:
    import pandas as pd

    if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
        raise InvalidInput("input_example in the model upload's header is a list of rows.")
    return pd.DataFrame.from_records(records)


def _training(path: Path) -> Any:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        return pq.read_table(path).to_pandas()
    except (OSError, pa.ArrowInvalid) as exc:
        raise InvalidInput(f"The upload's training data is not a Parquet file: {exc}.") from exc
