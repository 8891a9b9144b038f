"""Sending a model to the server: ``log_model`` in remote mode.

The model is saved here with its flavor's writer (skops for scikit-learn, ONNX as is),
its signature inferred here from the input example as embedded mode infers it, and the
training data written as Parquet; one streamed request carries them, framed as
:mod:`milepost.server.api.routes._model_upload` reads them (an 8-byte header length, a
JSON header, the model file, the training data). The server rebuilds the model with its
loaders' trust and registers it as the caller.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from milepost import _validate as check
from milepost.errors import InvalidInput, PermissionDenied
from milepost.models.uri import check_model_name

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping

    from milepost.client.registry import RemoteModels
    from milepost.models.signature import Signature

__all__ = ["MODEL_UPLOAD_MEDIA_TYPE", "upload_model"]

MODEL_UPLOAD_MEDIA_TYPE = "application/vnd.milepost.model-upload"
_CHUNK = 1 << 20


def upload_model(
    models: RemoteModels,
    run_id: str,
    model: Any,
    *,
    name: str,
    input_example: Any = None,
    training_data: Any = None,
    signature: Signature | None = None,
    flavor: str | None = None,
    onnx: bool = False,
    onnx_tolerance: float = 1e-4,
    trusted_types: list[str] | None = None,
    feature_refs: list[str] | None = None,
    description: str | None = None,
    tags: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Save, frame and send the model; the server's answer (a ModelVersion's dict)."""
    from milepost.models import flavors
    from milepost.models.signature import check_signature, example_and_signature

    check_model_name(name)
    check.run_id(run_id)
    check_signature(signature)
    if flavor is not None:
        check.choice(flavor, "flavor", flavors.MODEL_FILES)
    check.boolean(onnx, "onnx")
    description = check.optional_text(description, "Model description")
    chosen = flavor or flavors.detect_flavor(model)
    if chosen == "python":
        raise PermissionDenied(
            "A pickled (python-flavor) model cannot be logged through the server: the "
            "server never unpickles an upload.",
            hint="Log a scikit-learn model (saved with skops) or ONNX, or log it where the "
            "stores are reachable (without MILEPOST_URL).",
        )
    declared = check.string_list(trusted_types or [], "trusted_types")
    server_trust = [t.type_name for t in models.list_trusted_types()]
    data = flavors.save(
        model,
        chosen,  # type: ignore[arg-type]
        trusted_types=[*declared, *models.runtime.settings.trusted_type_list(), *server_trust],
    )
    example, signature = example_and_signature(model, chosen, input_example, signature)
    header: dict[str, Any] = {
        "run_id": run_id,
        "flavor": chosen,
        "model_bytes": len(data),
        "input_example": None
        if example is None
        else json.loads(example.to_json(orient="records", date_format="iso")),
        "signature": signature.to_dict() if signature is not None else None,
        "onnx": onnx,
        "onnx_tolerance": onnx_tolerance,
        "trusted_types": declared,
        "feature_refs": feature_refs,
        "description": description,
        "tags": None if tags is None else dict(tags),
    }
    with tempfile.TemporaryDirectory(prefix="milepost-model-") as tmp:
        training = _training_file(training_data, Path(tmp) / "training.parquet")
        header["training_bytes"] = training.stat().st_size if training else 0
        raw = json.dumps(header, allow_nan=False).encode()
        total = 8 + len(raw) + len(data) + header["training_bytes"]
        answer: dict[str, Any] = models.http.request(
            "POST",
            f"/models/{name}/versions",
            content=_frames(raw, data, training),
            headers={"Content-Type": MODEL_UPLOAD_MEDIA_TYPE, "Content-Length": str(total)},
        )
    return answer


def _training_file(training_data: Any, dest: Path) -> Path | None:
    """The training data as one Parquet file (None: none given)."""
    if training_data is None:
        return None
    import pandas as pd

    if not isinstance(training_data, pd.DataFrame) or training_data.empty:
        raise InvalidInput(
            "training_data must be a DataFrame with rows (the data the model was trained on).",
            hint="Pass the training features, e.g. training_data=X_train.",
        )
    training_data.to_parquet(dest, index=False)
    return dest


def _frames(header: bytes, model: bytes, training: Path | None) -> Iterator[bytes]:
    yield len(header).to_bytes(8, "big")
    yield header
    yield model
    if training is not None:
        with training.open("rb") as f:
            while chunk := f.read(_CHUNK):
                yield chunk
