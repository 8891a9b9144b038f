"""Saving and loading model files, securely by default.

- ``sklearn``: scikit-learn-compatible estimators and pipelines (LightGBM, XGBoost and
  other sklearn wrappers included) saved with skops. Loading never unpickles: skops
  rebuilds objects from an allow-list, and Milepost trusts only types from well-known
  numeric libraries (``TRUSTED_MODULES``) plus types named explicitly at log or load
  time. A file holding any other type is refused with the type named.
- ``onnx``: an ONNX model run with onnxruntime.
- ``python``: any object with ``predict``, saved with cloudpickle. Unpickling runs code,
  so it loads only with ``trusted=True`` (or the ``trust_pickle`` setting).
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np

from milepost.errors import ConfigError, InvalidInput, PermissionDenied

__all__ = ["TRUSTED_MODULES", "Flavor", "detect_flavor", "load", "save", "untrusted_types"]

Flavor = Literal["sklearn", "onnx", "python"]

MODEL_FILES: dict[str, str] = {
    "sklearn": "model.skops",
    "onnx": "model.onnx",
    "python": "model.pkl",
}

# Types from these top-level modules are accepted in skops files without being named.
TRUSTED_MODULES = (
    "builtins",
    "collections",
    "numpy",
    "scipy",
    "sklearn",
    "lightgbm",
    "xgboost",
    "catboost",
)


def detect_flavor(model: Any) -> Flavor:
    """The flavor a model object is saved with by default."""
    module = type(model).__module__.split(".")[0]
    if module == "onnx" and type(model).__name__ == "ModelProto":
        return "onnx"
    if module in ("sklearn", "lightgbm", "xgboost", "catboost") or (
        hasattr(model, "get_params") and hasattr(model, "fit") and hasattr(model, "predict")
    ):
        return "sklearn"
    if hasattr(model, "predict"):
        return "python"
    raise InvalidInput(
        f"Cannot log a {type(model).__name__}: it has no predict method.",
        hint="Log a scikit-learn-compatible estimator, an ONNX model, or an object with "
        "predict(DataFrame).",
    )


def _needs(module: str, extra: str) -> Any:
    import importlib

    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        raise ConfigError(
            f"This model flavor needs {module}.", hint=f"pip install 'milepost[{extra}]'"
        ) from exc


def untrusted_types(data: bytes) -> list[str]:
    """Types in a skops file that skops itself does not trust."""
    sio = _needs("skops.io", "models")
    types: list[str] = sio.get_untrusted_types(data=data)
    return types


def _outside_allow_list(types: list[str], extra: list[str]) -> list[str]:
    return [t for t in types if t.split(".")[0] not in TRUSTED_MODULES and t not in extra]


def save(model: Any, flavor: Flavor, *, trusted_types: list[str] | None = None) -> bytes:
    """The model's file bytes.

    Raises:
        InvalidInput: a skops file would hold a type outside the allow-list that
            ``trusted_types`` does not name (it could never be loaded safely).
    """
    if flavor == "sklearn":
        sio = _needs("skops.io", "models")
        try:
            data: bytes = sio.dumps(model)
        except (TypeError, ValueError, NotImplementedError) as exc:
            raise InvalidInput(
                f"skops cannot save this {type(model).__name__}: {exc}.",
                hint="Log it with flavor='python' (loaded only when trusted) or ONNX.",
            ) from exc
        foreign = _outside_allow_list(untrusted_types(data), trusted_types or [])
        if foreign:
            raise InvalidInput(
                f"The model contains type {foreign[0]!r}, which is not on the trusted list"
                + (f" (and {len(foreign) - 1} more)" if len(foreign) > 1 else "")
                + ".",
                hint=f"If you trust its code, pass trusted_types={foreign!r} to log_model.",
            )
        return data
    if flavor == "onnx":
        return bytes(model.SerializeToString())
    if flavor == "python":
        cloudpickle = _needs("cloudpickle", "models")
        out: bytes = cloudpickle.dumps(model)
        return out
    raise InvalidInput(f"Unknown flavor {flavor!r}; use sklearn, onnx or python.")


class OnnxPredictor:
    """Runs an ONNX model with onnxruntime on DataFrames or arrays."""

    def __init__(self, data: bytes) -> None:
        ort = _needs("onnxruntime", "onnx")
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        self.session = ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])
        self.inputs = self.session.get_inputs()
        self.outputs = [o.name for o in self.session.get_outputs()]

    def _feed(self, frame: Any) -> dict[str, Any]:
        import pandas as pd

        if not isinstance(frame, pd.DataFrame) or (
            len(self.inputs) == 1 and self.inputs[0].name not in frame.columns
        ):  # one matrix input (a model without a column transformer)
            dtype = np.float64 if "double" in self.inputs[0].type else np.float32
            return {self.inputs[0].name: np.asarray(frame, dtype=dtype)}
        feed = {}
        for inp in self.inputs:
            col = frame[inp.name].to_numpy()
            if "string" in inp.type:
                feed[inp.name] = col.astype(object).reshape(-1, 1)
            elif "int64" in inp.type:
                feed[inp.name] = col.astype(np.int64).reshape(-1, 1)
            elif "double" in inp.type:
                feed[inp.name] = col.astype(np.float64).reshape(-1, 1)
            else:
                feed[inp.name] = col.astype(np.float32).reshape(-1, 1)
        return feed

    def run_columns(self, columns: dict[str, list[Any]]) -> list[Any]:
        """All outputs for plain column lists (the serving fast path: no pandas)."""
        feed = {}
        if len(self.inputs) == 1 and self.inputs[0].name not in columns:
            dtype = np.float64 if "double" in self.inputs[0].type else np.float32
            feed[self.inputs[0].name] = np.array(list(columns.values()), dtype=dtype).T
        else:
            for inp in self.inputs:
                col = columns[inp.name]
                if "string" in inp.type:
                    feed[inp.name] = np.array(col, dtype=object).reshape(-1, 1)
                elif "int64" in inp.type:
                    feed[inp.name] = np.array(col, dtype=np.int64).reshape(-1, 1)
                elif "double" in inp.type:
                    feed[inp.name] = np.array(col, dtype=np.float64).reshape(-1, 1)
                else:
                    feed[inp.name] = np.array(col, dtype=np.float32).reshape(-1, 1)
        out: list[Any] = self.session.run(None, feed)
        return out

    def run(self, frame: Any) -> list[Any]:
        """All outputs for the input."""
        out: list[Any] = self.session.run(None, self._feed(frame))
        return out

    def predict(self, frame: Any) -> Any:
        """The first output (labels for classifiers, values for regressors)."""
        return np.asarray(self.run(frame)[0]).ravel()

    def predict_proba(self, frame: Any) -> Any:
        """Class probabilities (the second output of converted classifiers)."""
        outputs = self.run(frame)
        if len(outputs) < 2:
            raise InvalidInput("This ONNX model has no probability output.")
        probs = outputs[1]
        if isinstance(probs, list):  # zipmap output: list of {class: prob}
            keys = sorted(probs[0])
            return np.array([[row[k] for k in keys] for row in probs])
        return np.asarray(probs)


def load(
    flavor: Flavor,
    data: bytes,
    *,
    trusted: bool = False,
    trusted_types: list[str] | None = None,
) -> Any:
    """Rebuild a model object from its file bytes.

    Raises:
        PermissionDenied: a pickle without ``trusted=True``, or a skops file with a type
            outside the allow-list (named in the message).
    """
    if flavor == "sklearn":
        sio = _needs("skops.io", "models")
        types = untrusted_types(data)
        foreign = _outside_allow_list(types, trusted_types or [])
        if foreign:
            raise PermissionDenied(
                f"Refusing to load: the model file contains type {foreign[0]!r}, which is not "
                "trusted"
                + (f" (and {len(foreign) - 1} more: {foreign[1:4]})" if len(foreign) > 1 else "")
                + ".",
                hint=f"If you trust its code, pass trusted_types={foreign!r}, or set "
                "MILEPOST_TRUSTED_TYPES.",
            )
        return sio.loads(data, trusted=types)
    if flavor == "onnx":
        return OnnxPredictor(data)
    if flavor == "python":
        if not trusted:
            raise PermissionDenied(
                "Refusing to load a pickled model: unpickling runs arbitrary code from the file.",
                hint="Load it with trusted=True (or set MILEPOST_TRUST_PICKLE=true) only if you "
                "trust everyone who could have written it; prefer the sklearn (skops) or ONNX "
                "flavors.",
            )
        cloudpickle = _needs("cloudpickle", "models")
        return cloudpickle.loads(data)
    raise InvalidInput(f"Unknown flavor {flavor!r}.")
