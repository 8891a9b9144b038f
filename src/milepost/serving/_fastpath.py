"""The ONNX hot path: JSON rows checked against the signature straight into NumPy.

A :class:`FastFeed` is compiled once per loaded variant from its signature and its ONNX
twin's inputs. Per request it answers the session's feed when every row holds every
input with a value that both the signature accepts and the twin is trusted on (a JSON
int where the signature says integer, an int or a finite float within float32 range
where it says float, a string where it says string); otherwise it answers None and the
request takes the general path, which says exactly what is wrong (the missing column,
the null, the wrong type) or lets the native model answer. So a request that passes here
gets the answer the general path would give, with one Python pass over the values and
one array per input dtype instead of one per column.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from milepost.models.signature import Signature

__all__ = ["FastFeed"]

# The largest finite float32 (ONNX twins are not trusted beyond it; see OnnxPredictor).
_F32 = float(np.finfo(np.float32).max)
_I64 = (-(2**63), 2**63 - 1)

_NUMBER, _INTEGER, _STRING = 0, 1, 2
_DTYPES: dict[str, Any] = {
    "tensor(double)": np.float64,
    "tensor(float)": np.float32,
    "tensor(int64)": np.int64,
    "tensor(string)": object,
}


class FastFeed:
    """One variant's compiled feed: which check each input takes, and its array dtype.

    Build it with :meth:`compile`; None means the model does not fit the fast path (a
    single matrix input, inputs the signature does not name, a type such as boolean or
    datetime), and every request takes the general path.
    """

    def __init__(
        self,
        checks: list[tuple[str, int]],
        groups: list[tuple[Any, list[str]]],
    ) -> None:
        self._checks = checks  # (column, check kind)
        self._groups = groups  # (dtype, columns fed with it)

    @classmethod
    def compile(cls, signature: Signature | None, inputs: list[Any]) -> FastFeed | None:
        """The feed for a signature and an ONNX session's inputs (``session.get_inputs()``)."""
        if signature is None:
            return None
        specs = {c.name: c for c in signature.inputs}
        if len(specs) != len(inputs) or {i.name for i in inputs} != set(specs):
            return None
        checks: list[tuple[str, int]] = []
        groups: dict[Any, list[str]] = {}
        for inp in inputs:
            spec = specs[inp.name]
            dtype = _DTYPES.get(inp.type)
            if dtype is None:
                return None
            if dtype is object:
                kind = _STRING if spec.type == "string" else None
            elif dtype is np.int64:
                kind = _INTEGER if spec.type == "integer" else None
            else:  # a float tensor takes integer or float columns
                kind = {"integer": _INTEGER, "float": _NUMBER}.get(spec.type)
            if kind is None:
                return None
            checks.append((inp.name, kind))
            groups.setdefault(dtype, []).append(inp.name)
        return cls(checks, list(groups.items()))

    def feed(self, rows: list[dict[str, Any]]) -> dict[str, np.ndarray] | None:
        """The session's feed, or None when some value needs the general path."""
        for name, kind in self._checks:
            for row in rows:
                v: Any = row.get(name)
                t = type(v)
                if kind == _NUMBER:
                    if not ((t is float or t is int) and -_F32 <= v <= _F32):  # NaN fails
                        return None
                elif kind == _INTEGER:
                    if t is not int or not _I64[0] <= v <= _I64[1]:
                        return None
                elif t is not str:
                    return None
        n = len(rows)
        feed: dict[str, np.ndarray] = {}
        for dtype, names in self._groups:
            # one (columns, rows) array per dtype; each input is a contiguous row of it
            block = np.array([[row[name] for row in rows] for name in names], dtype=dtype)
            for i, name in enumerate(names):
                feed[name] = block[i].reshape(n, 1)
        return feed
