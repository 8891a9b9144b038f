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

from milepost.errors import ConfigError, InvalidInput, MilepostError, PermissionDenied
from milepost.models import _schema, trust

if TYPE_CHECKING:
    from collections.abc import Callable, Collection, Iterable

    import numpy as np

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


# The largest finite float32: ONNX tree ensembles compare inputs as float32, so a larger
# double becomes infinity there, where scikit-learn trees refuse it.
_FLOAT32_MAX = 3.4028234663852886e38  # float(np.finfo(np.float32).max)


class OnnxPredictor:
    """Runs an ONNX model with onnxruntime on DataFrames, arrays or plain columns.

    An ONNX *twin* of a native model answers only input it is trusted on: numbers that
    are finite and within float32 range, and no nulls. Measured with skl2onnx 1.20: a
    null reaches onnxruntime as NaN and a pipeline without an imputer answers NaN
    probabilities where scikit-learn refuses the row, and a tree ensemble answers for
    infinities and values beyond float32 where scikit-learn refuses them. Such input,
    and any input onnxruntime fails on, is answered by the native model (set
    :attr:`native`), so the twin answers exactly what the native model answers. Without
    a native model (a model logged as ONNX) the ONNX model is the model and answers all.
    """

    def __init__(self, data: bytes, *, native: Callable[[], Any] | None = None) -> None:
        ort = _needs("onnxruntime", "onnx")
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        self.session = ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])
        self.inputs = self.session.get_inputs()
        self.outputs = [o.name for o in self.session.get_outputs()]
        self.native = native  # returns the native model (loaded on first use)
        #: A classifier's classes in the order of its probability columns, when the
        #: graph names them (see :func:`onnx_classes`); None otherwise.
        self.classes = onnx_classes(data) if len(self.outputs) > 1 else None

    @staticmethod
    def _array(values: list[Any], kind: str) -> np.ndarray | None:
        """One input column as the tensor it is fed as, or None when the twin must not
        answer. Checked value by value in Python: cheaper than NumPy for a few rows."""
        import numpy as np

        try:
            if "string" in kind:
                if not all(isinstance(v, str) for v in values):  # None, NaN
                    return None
                return np.array(values, dtype=object)
            if "int64" in kind:
                if not all(
                    isinstance(v, (int, np.integer)) and v is not True and v is not False
                    for v in values
                ):
                    return None
                return np.array(values, dtype=np.int64)
            if not all(-_FLOAT32_MAX <= v <= _FLOAT32_MAX for v in values):  # NaN, inf, huge
                return None
            return np.array(values, dtype=np.float64 if "double" in kind else np.float32)
        except (TypeError, ValueError, OverflowError):  # None among numbers, text, huge ints
            return None

    def feed_columns(self, columns: dict[str, list[Any]]) -> dict[str, np.ndarray] | None:
        """The session's feed for plain column lists, or None when the twin is not
        trusted on some value (the serving fast path: no pandas)."""
        import numpy as np

        feed = {}
        if len(self.inputs) == 1 and self.inputs[0].name not in columns:
            kind = self.inputs[0].type
            parts = [self._array(list(values), kind) for values in columns.values()]
            if any(p is None for p in parts):
                return None
            feed[self.inputs[0].name] = np.stack(parts, axis=1)  # type: ignore[arg-type]
            return feed
        for inp in self.inputs:
            arr = self._array(columns[inp.name], inp.type)
            if arr is None:
                return None
            feed[inp.name] = arr.reshape(-1, 1)
        return feed

    def _feed(self, frame: Any) -> dict[str, np.ndarray] | None:
        import numpy as np
        import pandas as pd

        if not isinstance(frame, pd.DataFrame):  # an array: one matrix input
            frame = pd.DataFrame(np.asarray(frame))
        matrix = len(self.inputs) == 1 and self.inputs[0].name not in frame.columns
        names = list(frame.columns) if matrix else [inp.name for inp in self.inputs]
        return self.feed_columns(  # one input per column, or one matrix of all columns
            {
                str(name): [
                    None if v is pd.NA or v is pd.NaT else v for v in frame[name].astype(object)
                ]
                for name in names
            }
        )

    def _run(self, feed: dict[str, np.ndarray] | None, raw: Callable[[], Any]) -> list[Any] | None:
        """The twin's outputs, or None when the native model must answer instead."""
        if feed is None:
            if self.native is not None:
                return None
            feed = raw()  # an ONNX-flavor model: it is the model, whatever the values
        try:
            out: list[Any] = self.session.run(None, feed)
        except Exception:
            if self.native is None:
                raise
            return None  # the native model answers, or refuses in its own words
        return out

    def run_columns(self, columns: dict[str, list[Any]]) -> list[Any] | None:
        """All outputs for plain column lists, or None when the native model must answer
        (a value the twin is not trusted on, or onnxruntime failed on the input)."""
        import pandas as pd

        return self._run(self.feed_columns(columns), lambda: self._raw_feed(pd.DataFrame(columns)))

    def run(self, frame: Any) -> list[Any] | None:
        """All outputs for a DataFrame or array, or None when the native model must answer."""
        return self._run(self._feed(frame), lambda: self._raw_feed(frame))

    def _raw_feed(self, frame: Any) -> dict[str, np.ndarray]:
        import numpy as np
        import pandas as pd

        if not isinstance(frame, pd.DataFrame) or (
            len(self.inputs) == 1 and self.inputs[0].name not in frame.columns
        ):
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

    def predict(self, frame: Any) -> Any:
        """The first output (labels for classifiers, values for regressors)."""
        import numpy as np

        outputs = self.run(frame)
        if outputs is None:
            return np.asarray(self.native().predict(frame))  # type: ignore[misc]
        return np.asarray(outputs[0]).ravel()

    def predict_proba(self, frame: Any) -> Any:
        """Class probabilities (the second output of converted classifiers)."""
        import numpy as np

        outputs = self.run(frame)
        if outputs is None:
            return np.asarray(self.native().predict_proba(frame))  # type: ignore[misc]
        if len(outputs) < 2:
            raise InvalidInput("This ONNX model has no probability output.")
        return self.probabilities(outputs[1])

    @staticmethod
    def probabilities(output: Any) -> np.ndarray:
        """A classifier's probability output as a (rows, classes) array."""
        import numpy as np

        if isinstance(output, list):  # zipmap output: list of {class: prob}
            keys = sorted(output[0])
            return np.array([[row[k] for k in keys] for row in output])
        return np.asarray(output)


def onnx_classes(data: bytes) -> list[Any] | None:
    """The classes of an ONNX classifier, in probability-column order, or None.

    skl2onnx writes them as a ``classlabels_strings`` / ``classlabels_int64s`` attribute
    of the classifier operator (tree ensembles, SVMs) or as an initializer named
    ``classes`` (linear models); other graphs (and a missing ``onnx`` package) give None.
    """
    try:
        import onnx
        from onnx import numpy_helper
    except ImportError:
        return None
    try:
        model = onnx.load_from_string(data)
    except Exception:  # not parseable here: onnxruntime loaded it, but no classes known
        return None
    for node in model.graph.node:
        for attr in node.attribute:
            if attr.name == "classlabels_strings" and attr.strings:
                return [b.decode() for b in attr.strings]
            if attr.name in ("classlabels_int64s", "classlabels_ints") and attr.ints:
                return [int(v) for v in attr.ints]
    for init in model.graph.initializer:
        if init.name == "classes":
            values = numpy_helper.to_array(init).ravel().tolist()
            return [v.decode() if isinstance(v, bytes) else v for v in values]
    return None


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
