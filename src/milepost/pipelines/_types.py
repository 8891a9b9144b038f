"""Type annotations of steps and pipelines: reading them, comparing them, parsing text.

Steps are plain typed functions. Their hints are read with :func:`typing.get_type_hints`
(so ``from __future__ import annotations`` works); a hint that cannot be resolved (a name
imported only under ``TYPE_CHECKING``) is kept as its text and treated as compatible with
anything, since the DAG check must never refuse a correct pipeline.

Compatibility is deliberately coarse, like Hamilton's: ``Any``/``object`` and type
variables match everything, unions match when some member does, generics compare their
origins only (``list[int]`` feeds ``list[str]``), and ``int`` feeds ``float``.
"""

from __future__ import annotations

import inspect
import json
import types
import typing
from pathlib import Path
from typing import Any

from milepost.errors import InvalidInput

__all__ = [
    "compatible",
    "describe",
    "fits",
    "hints_of",
    "parse_text",
    "tuple_arity",
]

_EMPTY = inspect.Parameter.empty


def hints_of(func: Any, what: str, *, need_return: bool = True) -> dict[str, Any]:
    """Parameter name (and ``"return"``) -> annotation, refusing a missing hint.

    Args:
        func: the function.
        what: how the message names it (``"step 'train'"``).
        need_return: require a return annotation too.
    """
    sig = inspect.signature(func)
    try:
        resolved = typing.get_type_hints(func)
    except Exception:  # an unresolvable forward reference: take them one by one
        resolved = {}
    out: dict[str, Any] = {}
    for name, param in sig.parameters.items():
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            raise InvalidInput(
                f"{what} takes *{name}; steps and pipelines take named parameters only.",
                hint="List each input as its own typed parameter.",
            )
        if param.annotation is _EMPTY:
            raise InvalidInput(
                f"Missing type hint for parameter {name!r} of {what}; add one, e.g. "
                f"{name}: pd.DataFrame.",
                hint="Every parameter and the return of a step need annotations: the DAG "
                "is checked with them before anything runs.",
            )
        out[name] = resolved.get(name, param.annotation)
    if need_return:
        if sig.return_annotation is _EMPTY:
            raise InvalidInput(
                f"Missing return type hint of {what}; add one, e.g. -> float (or -> None).",
                hint="The return annotation types the step's output handle.",
            )
        out["return"] = resolved.get("return", sig.return_annotation)
    return out


def _is_any(ann: Any) -> bool:
    return (
        ann is Any
        or ann is object
        or isinstance(ann, (str, typing.TypeVar))
        or ann is _EMPTY
        or ann is inspect.Parameter.empty
    )


def _members(ann: Any) -> tuple[Any, ...] | None:
    origin = typing.get_origin(ann)
    if origin is typing.Union or origin is types.UnionType:
        return typing.get_args(ann)
    return None


def _origin(ann: Any) -> Any:
    if ann is None:
        return type(None)
    origin = typing.get_origin(ann)
    if origin is typing.Annotated:
        return _origin(typing.get_args(ann)[0])
    if origin is typing.Literal:
        args = typing.get_args(ann)
        return type(args[0]) if args else object
    return origin if origin is not None else ann


def compatible(produced: Any, expected: Any) -> bool:
    """Whether a value annotated ``produced`` may feed a parameter annotated ``expected``."""
    if _is_any(produced) or _is_any(expected):
        return True
    members = _members(expected)
    if members is not None:
        return any(compatible(produced, m) for m in members)
    members = _members(produced)
    if members is not None:
        return all(compatible(m, expected) for m in members)
    p, e = _origin(produced), _origin(expected)
    if not isinstance(p, type) or not isinstance(e, type):
        return True
    if issubclass(p, e):
        return True
    return p is int and e is float


def tuple_arity(ann: Any) -> int | None:
    """``n`` for a fixed-length ``tuple[A, B, ...]`` return, else None."""
    if typing.get_origin(ann) is not tuple:
        return None
    args = typing.get_args(ann)
    if not args or (len(args) == 2 and args[1] is Ellipsis) or args == ((),):
        return None
    return len(args)


def tuple_item(ann: Any, index: int) -> Any:
    """The annotation of item ``index`` of a fixed-length tuple annotation."""
    return typing.get_args(ann)[index]


def list_item(ann: Any) -> Any:
    """``T`` of ``list[T]``/``Sequence[T]`` (``Any`` when not a parametrised sequence)."""
    args = typing.get_args(ann)
    origin = typing.get_origin(ann)
    if origin in (list, tuple) or (
        isinstance(origin, type) and origin.__name__ in ("Sequence", "Iterable", "Collection")
    ):
        return args[0] if args else Any
    return Any


def fits(value: Any, ann: Any) -> bool:
    """Whether a constant fits an annotation (checked on the origin only, leniently)."""
    if _is_any(ann):
        return True
    members = _members(ann)
    if members is not None:
        return any(fits(value, m) for m in members)
    origin = _origin(ann)
    if not isinstance(origin, type):
        return True
    if isinstance(value, origin):
        return not (origin is int and isinstance(value, bool) and ann is not bool)
    return origin is float and isinstance(value, int) and not isinstance(value, bool)


def describe(ann: Any) -> str:
    """A short readable name of an annotation (``DataFrame``, ``list[int]``, ``int | None``)."""
    if isinstance(ann, str):
        return ann
    if ann is None or ann is type(None):
        return "None"
    if isinstance(ann, type) and not typing.get_args(ann):
        return ann.__name__
    text = repr(ann).replace("typing.", "")
    for prefix in ("pandas.core.frame.", "pandas.core.series.", "numpy."):
        text = text.replace(prefix, "")
    return text


_TRUE = {"true", "yes", "1", "on"}
_FALSE = {"false", "no", "0", "off"}


def parse_text(text: str, ann: Any, what: str) -> Any:
    """Convert a command-line string to the annotated type (``--param rows=100``).

    ``bool`` takes true/false/yes/no/1/0; numbers as Python reads them; lists, dicts and
    tuples as JSON; ``X | None`` takes ``none``/``null``; ``str`` and unknown types keep
    the text.
    """
    members = _members(ann)
    if members is not None:
        if type(None) in members and text.strip().lower() in ("none", "null"):
            return None
        errors = []
        for member in members:
            if member is type(None):
                continue
            try:
                return parse_text(text, member, what)
            except InvalidInput as exc:
                errors.append(exc)
        raise errors[0] if errors else InvalidInput(f"{what}: cannot parse {text!r}.")
    try:
        return _parse_one(text, _origin(ann))
    except (ValueError, json.JSONDecodeError) as exc:
        raise InvalidInput(
            f"{what} expects {describe(ann)}, got {text!r} ({exc}).",
            hint="Write numbers as 3 or 0.5, booleans as true/false, lists as JSON: [1, 2].",
        ) from None


def _parse_one(text: str, origin: Any) -> Any:
    if origin is bool:
        low = text.strip().lower()
        if low in _TRUE:
            return True
        if low in _FALSE:
            return False
        raise ValueError("expected true or false")
    if origin is int:
        return int(text)
    if origin is float:
        return float(text)
    if origin in (list, dict, tuple):
        value = json.loads(text)
        if origin is tuple and isinstance(value, list):
            value = tuple(value)
        if not isinstance(value, origin):
            raise ValueError(f"expected a JSON {origin.__name__}")
        return value
    if origin is Path:
        return Path(text)
    return text
