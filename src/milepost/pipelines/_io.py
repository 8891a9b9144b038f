"""Step outputs <-> the artifact store: encoding by type, content addressing, trust.

Each output is encoded by its type and stored in the content-addressed
:class:`~milepost.stores.blobs.BlobStore`:

============================================  ===========  ==========================
value                                         format       encoding
============================================  ===========  ==========================
None, bool, int, float, str, lists/dicts      ``json``     JSON, keys sorted
pandas DataFrame / Series                     ``parquet``  pyarrow (Series as 1 column)
numpy array (not object dtype)                ``numpy``    ``.npy``, allow_pickle=False
scikit-learn estimator                        ``skops``    skops
anything else (records, tuples, models ...)   ``pickle``   cloudpickle
============================================  ===========  ==========================

Trust model: the metadata store is the root of trust. A stored output is described by an
:class:`~milepost.pipelines.records.OutputRef` whose ``sha256`` the engine recorded in the
metadata store when the step ran; the blob's name *is* that hash. :func:`load` reads the
bytes through the blob store, which checks them against the hash before anything decodes
them, so only bytes this system wrote are ever unpickled (or rebuilt by skops with every
type it names trusted): a blob altered, truncated or planted in the artifact directory
raises :class:`~milepost.errors.IntegrityViolation` (a missing one
:class:`~milepost.errors.NotFound`) and is never decoded. The engine checks a cached
result's blobs the same way before reusing it and recomputes the step when they fail.
Whoever can write the metadata store can make a process unpickle bytes they also wrote
to the artifact store: the same trust the model registry gives model files.

Input hashes (what the cache key is made of) are the stored output's sha256 for upstream
values and :func:`value_hash` for constants and pipeline parameters: the SHA-256 of
canonical JSON when the value is plain data, of the encoded bytes otherwise.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from milepost.errors import IntegrityViolation, MilepostError
from milepost.pipelines.records import OutputRef

if TYPE_CHECKING:
    from milepost.stores.blobs import BlobStore

__all__ = ["decode", "encode", "load", "store", "summary", "value_hash", "verify"]

_JSON_SCALARS = (bool, int, float, str, type(None))


def _plain(value: Any, depth: int = 0) -> bool:
    if depth > 50:
        return False
    if type(value) in _JSON_SCALARS:
        return not (isinstance(value, float) and not math.isfinite(value))
    if type(value) is list:
        return all(_plain(v, depth + 1) for v in value)
    if type(value) is dict:
        return all(type(k) is str and _plain(v, depth + 1) for k, v in value.items())
    return False


def _canonical(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def _is(value: Any, module: str) -> bool:
    return module in sys.modules and type(value).__module__.split(".")[0] == module


def _is_estimator(value: Any) -> bool:
    if "sklearn" not in sys.modules:
        return False
    from sklearn.base import BaseEstimator

    return isinstance(value, BaseEstimator) and not isinstance(value, type)


def encode(value: Any) -> tuple[bytes, str]:
    """The stored bytes of ``value`` and their format name."""
    if _plain(value):
        return _canonical(value), "json"
    if "pandas" in sys.modules:
        import pandas as pd

        if isinstance(value, (pd.DataFrame, pd.Series)):
            try:
                frame = value.to_frame() if isinstance(value, pd.Series) else value
                buf = io.BytesIO()
                frame.to_parquet(buf, engine="pyarrow")
                fmt = "parquet-series" if isinstance(value, pd.Series) else "parquet"
                return buf.getvalue(), fmt
            except (ValueError, TypeError):
                pass  # non-string column names, mixed object columns: pickle keeps them
    if "numpy" in sys.modules:
        import numpy as np

        if type(value) is np.ndarray and value.dtype != object:
            buf = io.BytesIO()
            np.save(buf, value, allow_pickle=False)
            return buf.getvalue(), "numpy"
    if _is_estimator(value):
        import skops.io

        return skops.io.dumps(value), "skops"
    import cloudpickle

    return cloudpickle.dumps(value), "pickle"


def decode(data: bytes, fmt: str) -> Any:
    """Rebuild a value from bytes :func:`encode` made (already verified by the caller)."""
    if fmt == "json":
        return json.loads(data)
    if fmt in ("parquet", "parquet-series"):
        import pandas as pd

        frame = pd.read_parquet(io.BytesIO(data), engine="pyarrow")
        return frame.iloc[:, 0] if fmt == "parquet-series" else frame
    if fmt == "numpy":
        import numpy as np

        return np.load(io.BytesIO(data), allow_pickle=False)
    if fmt == "skops":
        import skops.io

        # The bytes matched the hash the metadata store recorded: this system wrote them.
        return skops.io.loads(data, trusted=skops.io.get_untrusted_types(data=data))
    if fmt == "pickle":
        import cloudpickle

        return cloudpickle.loads(data)
    raise IntegrityViolation(f"Unknown stored output format {fmt!r}.")


def summary(value: Any) -> str:
    """One short line describing a value for people ("DataFrame 4,000 x 12", "0.873")."""
    kind = type(value).__name__
    shape = getattr(value, "shape", None)
    if kind == "DataFrame" and shape is not None and len(shape) == 2:
        return f"DataFrame {shape[0]:,} x {shape[1]:,}"
    if kind == "Series" and shape is not None:
        return f"Series {shape[0]:,} ({getattr(value, 'name', None)!s:.30})"
    if kind == "ndarray" and shape is not None:
        return f"ndarray {tuple(shape)} {getattr(value, 'dtype', '')}"
    if isinstance(value, float):
        return f"{value:.6g}"
    if value is None or isinstance(value, (bool, int)):
        return repr(value)
    if isinstance(value, str):
        return repr(value) if len(value) <= 60 else f"str of {len(value):,} chars"
    if isinstance(value, (list, tuple, dict, set)):
        return f"{kind} of {len(value):,}"
    text = repr(value)
    return text if len(text) <= 80 else f"{kind}"


def store(blobs: BlobStore, name: str, value: Any) -> OutputRef:
    """Encode and store one output; returns its reference (key = sha256 of the bytes)."""
    data, fmt = encode(value)
    ref = blobs.put_bytes(data)
    return OutputRef(
        name=name,
        key=ref.digest,
        sha256=ref.digest,
        format=fmt,
        size=ref.size,
        summary=summary(value),
    )


def load(blobs: BlobStore, ref: OutputRef) -> Any:
    """The value of a stored output, its bytes verified against ``ref.sha256`` first.

    Raises:
        NotFound: the blob is gone.
        IntegrityViolation: its bytes do not match the recorded hash (never decoded).
    """
    if ref.key != ref.sha256:
        raise IntegrityViolation(
            f"Output {ref.name!r} names blob {ref.key} but records hash {ref.sha256}.",
            hint="The record was altered; re-run the step without the cache.",
        )
    return decode(blobs.get_bytes(ref.sha256), ref.format)


def verify(blobs: BlobStore, ref: OutputRef) -> str | None:
    """None when the stored output exists and matches its hash, else why not.

    A local store's file is checked with :func:`~milepost.stores.blobs.verify_file`
    (hashed once per process until the file changes); others are streamed.
    """
    from milepost.stores.blobs import LocalBlobStore, verify_file

    try:
        if isinstance(blobs, LocalBlobStore):
            verify_file(Path(blobs.location(ref.sha256)), ref.sha256)
        else:
            with blobs.open(ref.sha256) as fh:
                while fh.read(1 << 20):
                    pass
    except MilepostError as exc:  # missing, altered, or not a digest at all
        return f"{type(exc).__name__}: {exc}"
    return None


def value_hash(value: Any) -> str:
    """SHA-256 of a constant: canonical JSON for plain data, the encoded bytes otherwise."""
    if _plain(value):
        return hashlib.sha256(b"json:" + _canonical(value)).hexdigest()
    data, fmt = encode(value)
    return hashlib.sha256(fmt.encode() + b":" + data).hexdigest()
