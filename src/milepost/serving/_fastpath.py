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

import math
import operator
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from collections.abc import Callable

    from milepost.models.signature import Signature

__all__ = ["FastFeed"]

# The largest finite float32 (ONNX twins are not trusted beyond it; see OnnxPredictor).
_F32 = float(np.finfo(np.float32).max)
_I64 = (-(2**63), 2**63 - 1)

_NUMBER, _INTEGER, _STRING = 0, 1, 2
_INT_FLOAT = frozenset((int, float))
_INT = {int}
_STR = {str}
_DTYPES: dict[str, Any] = {
    "tensor(double)": np.float64,
    "tensor(float)": np.float32,
    "tensor(int64)": np.int64,
    "tensor(string)": object,
}


def _getter(names: list[str]) -> Callable[[dict[str, Any]], tuple[Any, ...]]:
    """``row -> (row[name] for name in names)`` in C (KeyError for a missing one)."""
    if len(names) == 1:
        name = names[0]
        return lambda row: (row[name],)
    return operator.itemgetter(*names)


class FastFeed:
    """One variant's compiled feed: which check each input takes, and its array dtype.

    Build it with :meth:`compile`; None means the model does not fit the fast path (a
    single matrix input, inputs the signature does not name, a type such as boolean or
    datetime), and every request takes the general path.
    """

    def __init__(self, kinds: dict[int, list[str]], groups: list[tuple[Any, list[str]]]) -> None:
        self._numbers = _getter(kinds[_NUMBER]) if kinds.get(_NUMBER) else None
        self._integers = _getter(kinds[_INTEGER]) if kinds.get(_INTEGER) else None
        self._strings = _getter(kinds[_STRING]) if kinds.get(_STRING) else None
        self._groups = [(dtype, names, _getter(names)) for dtype, names in groups]

    @classmethod
    def compile(cls, signature: Signature | None, inputs: list[Any]) -> FastFeed | None:
        """The feed for a signature and an ONNX session's inputs (``session.get_inputs()``)."""
        if signature is None:
            return None
        specs = {c.name: c for c in signature.inputs}
        if len(specs) != len(inputs) or {i.name for i in inputs} != set(specs):
            return None
        kinds: dict[int, list[str]] = {}
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
            kinds.setdefault(kind, []).append(inp.name)
            groups.setdefault(dtype, []).append(inp.name)
        return cls(kinds, list(groups.items()))

    def _fits(self, row: dict[str, Any]) -> bool:
        """Whether every value of the row may skip the general path (C-level checks)."""
        if self._numbers is not None:
            values = self._numbers(row)
            if not set(map(type, values)) <= _INT_FLOAT:  # None, bool, str...
                return False
            if not all(map(math.isfinite, values)) or max(map(abs, values)) > _F32:
                return False
        if self._integers is not None:
            values = self._integers(row)
            if set(map(type, values)) != _INT or min(values) < _I64[0] or max(values) > _I64[1]:
                return False
        return self._strings is None or set(map(type, self._strings(row))) == _STR

    def feed(self, rows: list[dict[str, Any]]) -> dict[str, np.ndarray] | None:
        """The session's feed, or None when some value needs the general path."""
        try:
            if not all(map(self._fits, rows)):
                return None
        except (KeyError, OverflowError):  # a missing column; an int too large for isfinite
            return None
        n = len(rows)
        feed: dict[str, np.ndarray] = {}
        for dtype, names, get in self._groups:
            # one (rows, columns) array per dtype, laid out as (columns, rows, 1): each
            # input is a contiguous (rows, 1) slice of it
            if n == 1:
                block = np.array(get(rows[0]), dtype=dtype).reshape(len(names), 1, 1)
            else:
                block = np.array([get(row) for row in rows], dtype=dtype).T.copy()
                block = block.reshape(len(names), n, 1)
            for i, name in enumerate(names):
                feed[name] = block[i]
        return feed
