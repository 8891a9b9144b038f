"""Saving and loading model files, securely by default.

- ``sklearn``: scikit-learn-compatible estimators and pipelines (LightGBM, XGBoost and
  other sklearn wrappers included) saved with skops. Loading never unpickles: skops
  rebuilds objects from an allow-list, and which types a file may hold beyond skops'
  defaults is the *loading* side's decision (:mod:`milepost.models.trust`): the
  built-in allow-list plus the types the loader names. A file holding any other type is
  refused with the types named.
- ``onnx``: an ONNX model run with onnxruntime.
- ``python``: any object with ``predict``, saved with cloudpickle. Unpickling runs code,
  so it loads only with ``trusted=True`` (or the ``trust_pickle`` setting).

A model whose code is not installed where it is loaded is a one-line
:class:`~milepost.errors.ConfigError` naming the missing module and what to install.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from milepost.errors import ConfigError, InvalidInput, MilepostError, PermissionDenied
from milepost.models import _schema, trust

if TYPE_CHECKING:
    from collections.abc import Callable, Collection, Iterable

__all__ = ["Flavor", "check", "detect_flavor", "load", "save"]

Flavor = Literal["sklearn", "onnx", "python"]

MODEL_FILES: dict[str, str] = {
    "sklearn": "model.skops",
    "onnx": "model.onnx",
    "python": "model.pkl",
}


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


def save(model: Any, flavor: Flavor, *, trusted_types: list[str] | None = None) -> bytes:
    """The model's file bytes.

    ``trusted_types`` are what the author declares the file holds beyond the built-in
    allow-list; they let the file be saved, and loading it still needs the loading side
    to trust them.

    Raises:
        InvalidInput: a skops file would hold a type outside the built-in allow-list that
            ``trusted_types`` does not name.
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
        foreign = list(trust.audit(data, trusted_types or []).refused)
        if foreign:
            raise InvalidInput(
                f"The model contains type {foreign[0]!r}, which is not on the built-in "
                "allow-list"
                + (f" (and {len(foreign) - 1} more)" if len(foreign) > 1 else "")
                + ".",
                hint=f"If you trust its code, pass trusted_types={foreign!r} to log_model; "
                "whoever loads the model must trust them too (load_model(trusted_types=...), "
                "MILEPOST_TRUSTED_TYPES, or `milepost models trust add`).",
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


def _decide(
    data: bytes, trusted_types: Iterable[str], what: str, declared: Collection[str]
) -> trust.Audit:
    """The full audit of a skops file; raises unless the loading side trusts every type."""
    result = trust.audit(data, trusted_types)
    untrusted = [t for t in result.refused if t not in result.missing]
    if untrusted:
        raise trust.untrusted_error(what, untrusted, declared)
    if result.missing:
        name, module = next(iter(result.missing.items()))
        raise trust.missing_module_error(what, module, name)
    return result


def _check_pickle(flavor: Flavor, trusted: bool, what: str) -> None:
    if flavor == "python" and not trusted:
        raise PermissionDenied(
            f"Refusing to load {what}: it is a pickled model, and unpickling runs arbitrary "
            "code from the file.",
            hint="Load it with trusted=True (or set MILEPOST_TRUST_PICKLE=true) only if you "
            "trust everyone who could have written it; prefer the sklearn (skops) or ONNX "
            "flavors.",
        )
    if flavor not in MODEL_FILES:
        raise InvalidInput(f"Unknown flavor {flavor!r}.")


def check(
    flavor: Flavor,
    data: bytes,
    *,
    trusted: bool = False,
    trusted_types: Iterable[str] = (),
    what: str = "the model",
    declared: Collection[str] = (),
) -> None:
    """Decide, without rebuilding anything, whether this process may load the file.

    Files whose every type a static table admits are decided from their schema alone
    (no import of skops or scikit-learn); the others get the full audit.

    Args:
        flavor: the file's flavor.
        data: the file's bytes.
        trusted: the loading side allows unpickling (python flavor).
        trusted_types: types the loading side trusts beyond the built-in allow-list.
        what: how messages name the model (``models:/churn/3``).
        declared: the types its author declared when logging (named in messages only).

    Raises:
        PermissionDenied: a pickle without ``trusted``, or a skops file holding types the
            loading side does not trust (all named, with the three ways to trust them).
        ConfigError: the file needs a library that is not installed here.
    """
    _check_pickle(flavor, trusted, what)
    named = list(trusted_types)
    if flavor == "sklearn" and not _schema.plainly_trusted(data, named):
        _decide(data, named, what, declared)


def _rebuild(build: Callable[[], Any], what: str, types: Iterable[str] = ()) -> Any:
    """Run a deserializer; a model whose code is missing here is a one-line ConfigError."""
    try:
        return build()
    except MilepostError:
        raise
    except ModuleNotFoundError as exc:
        module = exc.name or str(exc)
        owner = next((t for t in types if t.startswith(module + ".")), None)
        raise trust.missing_module_error(what, module, owner) from exc
    except (ImportError, AttributeError) as exc:
        raise ConfigError(
            f"{what} cannot be loaded here: {exc}. A class it was saved with is missing from "
            "the installed version of its library.",
            hint="Install the library versions the model was logged with (see its run's "
            "environment: milepost runs show RUN_ID).",
        ) from exc
    except Exception as exc:
        raise ConfigError(
            f"{what} could not be rebuilt here: {type(exc).__name__}: {exc}.",
            hint="Check that the installed library versions match the ones it was logged "
            "with (see its run's environment: milepost runs show RUN_ID).",
        ) from exc


def load(
    flavor: Flavor,
    data: bytes,
    *,
    trusted: bool = False,
    trusted_types: Iterable[str] = (),
    what: str = "the model",
    declared: Collection[str] = (),
) -> Any:
    """Rebuild a model object from its file bytes (after :func:`check`).

    Raises:
        PermissionDenied: a pickle without ``trusted=True``, or a skops file with types
            the loading side does not trust (named in the message).
        ConfigError: the model's code (a module or class) is not installed here.
        IntegrityViolation: a tree in the file points outside itself.
    """
    _check_pickle(flavor, trusted, what)
    if flavor == "sklearn":
        result = _decide(data, trusted_types, what, declared)
        sio = _needs("skops.io", "models")
        model = _rebuild(lambda: sio.loads(data, trusted=result.trusted), what, result.types)
        trust.check_contents(model, result.types, what)
        return model
    if flavor == "onnx":
        return OnnxPredictor(data)
    cloudpickle = _needs("cloudpickle", "models")
    return _rebuild(lambda: cloudpickle.loads(data), what)
