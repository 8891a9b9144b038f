"""Transforms by their code: older view versions keep the code that computed them.

Each view version stores its transform's source text with its definition. When the
repository's file moves on (the transform is edited, renamed or deleted), reading an
older version offline needs that version's code again, so every transform this process
has seen (those of every :class:`~milepost.features.FeatureView` built here and every
function of every definitions module loaded here) is addressable by the fingerprint of
its code: :func:`find` returns the function whose code matches stored text, whatever it
is called now. A version whose code no loaded function matches gets a
:class:`StoredTransform` that says, when called, which version of which file defined it.

The fingerprint of code is taken over its syntax tree: the function's name, its
docstring, comments and formatting do not count; every statement does.

:func:`derived_features` reads stored code (without running it) to tell which features a
transform computes or may change; the others come from the source as they are, so they
stay readable when the code is gone.
"""

from __future__ import annotations

import ast
import hashlib
import inspect
import textwrap
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from milepost.errors import InvalidInput

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Sequence

    import pandas as pd

__all__ = [
    "StoredTransform",
    "code_fingerprint",
    "derived_features",
    "find",
    "remember",
    "source_of",
]

_lock = threading.Lock()
_pending: dict[int, Callable[..., Any]] = {}  # seen, not fingerprinted yet (by id)
_known: dict[str, Callable[..., Any]] = {}  # code fingerprint -> function
_seen: set[int] = set()


def source_of(fn: Callable[..., Any] | None) -> str | None:
    """A transform's source code as stored with a version (None: no transform).

    Raises:
        InvalidInput: the code cannot be read (defined in a notebook cell, a REPL...).
    """
    if fn is None:
        return None
    if isinstance(fn, StoredTransform):
        return fn.code
    try:
        return textwrap.dedent(inspect.getsource(fn)).strip()
    except (OSError, TypeError) as exc:
        raise InvalidInput(
            f"Cannot read the source code of transform {getattr(fn, '__name__', fn)!r}: {exc}.",
            hint="Define transforms as ordinary functions in a .py file.",
        ) from exc


def _function(code: str) -> ast.FunctionDef | ast.AsyncFunctionDef | None:
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return None
    if len(tree.body) == 1 and isinstance(tree.body[0], ast.FunctionDef | ast.AsyncFunctionDef):
        return tree.body[0]
    return None


def code_fingerprint(code: str) -> str:
    """SHA-256 of what the code does: its syntax tree without name, docstring or layout.

    Code that is not one function definition (a lambda inside a longer line) is
    fingerprinted by its text.
    """
    fn = _function(code)
    if fn is None:
        return hashlib.sha256(b"text\0" + code.strip().encode()).hexdigest()
    fn.name = "_"
    body = fn.body
    if (
        body
        and isinstance(body[0], ast.Expr)
        and isinstance(body[0].value, ast.Constant)
        and isinstance(body[0].value.value, str)
    ):
        fn.body = body[1:] or [ast.Pass()]
    return hashlib.sha256(b"def\0" + ast.dump(fn).encode()).hexdigest()


def remember(functions: Iterable[Any]) -> None:
    """Make functions findable by the fingerprint of their code (cheap: read on demand)."""
    with _lock:
        for fn in functions:
            if callable(fn) and not isinstance(fn, StoredTransform) and id(fn) not in _seen:
                _seen.add(id(fn))
                _pending[id(fn)] = fn


def find(code: str) -> Callable[..., Any] | None:
    """A function seen in this process whose code has the fingerprint of ``code``."""
    wanted = code_fingerprint(code)
    with _lock:
        if wanted not in _known and _pending:
            for fn in list(_pending.values()):
                try:
                    text = source_of(fn)
                except InvalidInput:
                    text = None
                if text is not None:
                    _known.setdefault(code_fingerprint(text), fn)
            _pending.clear()
        return _known.get(wanted)


# -- what a transform computes ------------------------------------------------------------------


def _strings(node: ast.AST) -> set[str] | None:
    """Column names in a subscript (``"x"``, ``["x", "y"]``, ``(rows, "x")``), or None."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return {node.value}
    if isinstance(node, ast.List):
        names = [_strings(item) for item in node.elts]
        if any(n is None or len(n) != 1 for n in names):
            return None
        return {name for n in names if n for name in n}
    if isinstance(node, ast.Tuple) and len(node.elts) == 2:  # df.loc[rows, columns]
        return _strings(node.elts[1])
    return None


def _keeps_values(expr: ast.expr | None, frame: str) -> bool:
    """Whether ``expr`` is the frame, a copy, a column selection or ``assign`` over it."""
    while True:
        if isinstance(expr, ast.Name):
            return expr.id == frame
        if isinstance(expr, ast.Subscript):
            expr = expr.value
        elif (
            isinstance(expr, ast.Call)
            and isinstance(expr.func, ast.Attribute)
            and expr.func.attr in ("copy", "assign")
        ):
            expr = expr.func.value
        else:
            return False


_HARMLESS_CALLS = {"len", "isinstance", "print", "float", "int", "str", "bool", "list", "range"}


class _Opaque(Exception):
    """The code does something whose effect on columns cannot be read from it."""


def _targets(node: ast.Assign | ast.AugAssign | ast.AnnAssign) -> list[ast.expr]:
    targets = node.targets if isinstance(node, ast.Assign) else [node.target]
    flat: list[ast.expr] = []
    for target in targets:
        flat += target.elts if isinstance(target, ast.Tuple | ast.List) else [target]
    return flat


def _assigned(node: ast.Assign | ast.AugAssign | ast.AnnAssign, frame: str) -> set[str]:
    """Columns an assignment sets (raises _Opaque when it cannot tell)."""
    names: set[str] = set()
    for target in _targets(node):
        if isinstance(target, ast.Subscript):
            found = _strings(target.slice)
            if found is None:
                raise _Opaque
            names |= found
        elif isinstance(target, ast.Attribute):
            names.add(target.attr)
        elif not isinstance(target, ast.Name) or (
            target.id == frame and not _keeps_values(node.value, frame)
        ):
            raise _Opaque
    return names


def _called(node: ast.Call, frame: str) -> set[str]:
    """Columns a call sets (raises _Opaque when it cannot tell)."""
    func = node.func
    if any(k.arg == "inplace" for k in node.keywords):
        raise _Opaque
    if any(isinstance(a, ast.Name) and a.id == frame for a in node.args) and not (
        isinstance(func, ast.Name) and func.id in _HARMLESS_CALLS
    ):
        raise _Opaque  # another function gets the frame and may change it
    if not isinstance(func, ast.Attribute):
        return set()
    if func.attr == "assign":
        if any(k.arg is None for k in node.keywords):
            raise _Opaque
        return {k.arg for k in node.keywords if k.arg is not None}
    if func.attr in ("update", "pop"):
        raise _Opaque
    if func.attr == "insert":
        found = _strings(node.args[1]) if len(node.args) > 1 else None
        if found is None:
            raise _Opaque
        return found
    return set()


def derived_features(code: str, features: Sequence[str]) -> set[str]:
    """The features a transform computes or may change, read from its code.

    Conservative: a feature counts as derived when the code assigns it (``df["x"] =``,
    ``df.loc[..., "x"] =``, ``assign(x=...)``, ``insert(..., "x", ...)``); every feature
    counts when the code does something whose effect on columns cannot be read from it
    (a computed column name, ``inplace=True``, handing the frame to another function,
    returning anything but the frame or a selection of it).
    """
    every = set(features)
    fn = _function(code)
    params = (fn.args.posonlyargs or fn.args.args) if fn is not None else []
    if fn is None or not params:
        return every
    frame = params[0].arg
    derived: set[str] = set()
    try:
        for node in ast.walk(fn):
            if isinstance(node, ast.Assign | ast.AugAssign | ast.AnnAssign):
                derived |= _assigned(node, frame)
            elif isinstance(node, ast.Call):
                derived |= _called(node, frame)
            elif (isinstance(node, ast.Return) and not _keeps_values(node.value, frame)) or (
                isinstance(node, ast.Delete | ast.Global | ast.Nonlocal)
            ):
                raise _Opaque
    except _Opaque:
        return every
    return derived & every


@dataclass
class Origin:
    """Where a version's definition came from when it was applied."""

    file: str | None = None
    line: int | None = None
    function: str | None = None
    definitions: str | None = None
    commit: str | None = None
    dirty: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def of(cls, data: dict[str, Any] | None) -> Origin:
        """From the stored JSON (None: applied before origins were recorded)."""
        data = dict(data or {})
        return cls(
            file=data.pop("file", None),
            line=data.pop("line", None),
            function=data.pop("function", None),
            definitions=data.pop("definitions", None),
            commit=data.pop("commit", None),
            dirty=bool(data.pop("dirty", False)),
            extra=data,
        )

    def describe(self) -> str:
        """``function ratio in features.py, line 12, at commit 1a2b3c4``."""
        if not self.file and not self.definitions:
            return "a definition applied before Milepost recorded where definitions come from"
        where = self.file or self.definitions or "?"
        text = f"function {self.function} in {where}" if self.function else where
        if self.line:
            text += f", line {self.line}"
        if self.commit:
            text += f", at git commit {self.commit[:12]}"
            if self.dirty:
                text += " (with uncommitted changes)"
        else:
            text += " (no git commit was recorded)"
        return text

    def how_to_load(self) -> str:
        """The steps that bring the code back into a process."""
        if self.commit and self.file and not self.dirty:
            return (
                f"Get that file back (`git show {self.commit[:12]}:{self.file} > old_features.py`) "
                "and load it with FeatureStore(..., history=['old_features.py']) or "
                "milepost.features.load_definitions('old_features.py')."
            )
        return (
            "Load a file that defines that function (under any name) with "
            "FeatureStore(..., history=['old_features.py']) or "
            "milepost.features.load_definitions('old_features.py'); the code is stored with "
            "the version (`milepost features list --json`, definition.transform)."
        )


@dataclass
class StoredTransform:
    """A registered version's transform: its stored code, run by whichever loaded function
    has that code; when none has, calling it says which file defined it."""

    code: str
    version: str  # view:vN
    features: tuple[str, ...]
    origin: Origin = field(default_factory=Origin)

    @property
    def function(self) -> Callable[..., Any] | None:
        """The loaded function with this code, or None."""
        return find(self.code)

    @property
    def derived(self) -> set[str]:
        """The features this transform computes or may change."""
        return derived_features(self.code, self.features)

    def missing(self, wanted: Sequence[str] | None = None) -> InvalidInput:
        """The error for reading features of this version without its code."""
        derived = self.derived
        asked = [f for f in (wanted or self.features) if f in derived] or sorted(derived)
        readable = [f for f in self.features if f not in derived]
        feats = ", ".join(repr(f) for f in asked)
        text = (
            f"{self.version}: feature{'s' if len(asked) > 1 else ''} {feats} "
            f"{'are' if len(asked) > 1 else 'is'} computed by a transform whose code is not "
            f"loaded in this process ({self.origin.describe()}), and no rows it computed "
            "earlier are stored for the current source data. "
        )
        text += (
            f"Readable without it: {', '.join(readable)}."
            if readable
            else "Every feature of the version needs it."
        )
        return InvalidInput(text, hint=self.origin.how_to_load())

    def __call__(self, frame: pd.DataFrame) -> pd.DataFrame:
        fn = self.function
        if fn is None:
            raise self.missing()
        out: pd.DataFrame = fn(frame)
        return out
