"""``to_dict()`` and short reprs for the read-only records Milepost returns.

Every record (:class:`~milepost.tracking.Run`, :class:`~milepost.models.ModelVersion`,
:class:`~milepost.promotion.PromotionRequest`, ...) is a frozen dataclass whose
``to_dict()`` is derived from its fields by :func:`record_dict`, so a field added later
reaches JSON output (the CLI's ``--json``, the HTTP API) without anyone remembering to.
Its ``__repr__`` is one short line saying what it is (``Run(abc123def456 'hgb'
FINISHED, 3 metrics)``), built with :func:`short`; the fields are one ``to_dict()`` away.
"""

from __future__ import annotations

import dataclasses
import enum
import math
import types
import typing
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timedelta
from pathlib import PurePath
from typing import Any, TypeVar

__all__ = ["jsonable", "record_dict", "record_from_dict", "short"]

T = TypeVar("T")

#: Longest text a repr shows of one value (messages, reasons) before "…".
REPR_TEXT = 48


def jsonable(value: Any) -> Any:
    """``value`` as plain JSON data: records through their ``to_dict()``, enums as their
    value, NaN and infinities as strings (JSON has none), times as ISO text, containers
    recursively."""
    to_dict = getattr(value, "to_dict", None)
    if callable(to_dict) and not isinstance(value, type):
        return to_dict()
    if isinstance(value, enum.Enum):
        return jsonable(value.value)
    if isinstance(value, bool) or value is None or isinstance(value, (int, str)):
        return value
    if isinstance(value, float):
        return str(value) if math.isnan(value) or math.isinf(value) else value
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [jsonable(v) for v in value]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return record_dict(value)
    model_dump = getattr(value, "model_dump", None)  # pydantic models
    if callable(model_dump):
        return model_dump(mode="json")
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, PurePath):
        return str(value)
    return value


def record_dict(
    record: Any,
    *,
    exclude: Iterable[str] = (),
    rename: Mapping[str, str] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """A dataclass record's fields as JSON-ready data, in field order.

    Private fields (``_loader``) are left out.

    Args:
        record: a dataclass instance.
        exclude: fields that stay internal (e.g. a database row id).
        rename: field name -> key, where the wire form has always used another name.
        extra: derived values to add (e.g. ``uri``), after the fields.
    """
    skip = set(exclude)
    names = rename or {}
    out = {
        names.get(f.name, f.name): jsonable(getattr(record, f.name))
        for f in dataclasses.fields(record)
        if f.name not in skip and not f.name.startswith("_")
    }
    for key, value in (extra or {}).items():
        out[key] = jsonable(value)
    return out


def short(text: Any, limit: int = REPR_TEXT) -> str:
    """``text`` on one line, cut to ``limit`` characters with "…"."""
    line = " ".join(str(text).split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


_SPECIAL_FLOATS = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf, "infinity": math.inf}


def record_from_dict(
    cls: type[T], data: Mapping[str, Any], *, rename: Mapping[str, str] | None = None
) -> T:
    """Rebuild a record from its ``to_dict()`` form (the remote client's answers).

    Nested records, enums, tuples, NaN and infinities written as strings, and ISO times
    come back as their types, read off the dataclass's annotations. Keys the record does
    not have (values ``to_dict`` derived) are ignored; ``rename`` undoes
    :func:`record_dict`'s (field -> key).
    """
    if not dataclasses.is_dataclass(cls):
        raise TypeError(f"{cls!r} is not a dataclass record")
    names = rename or {}
    kwargs: dict[str, Any] = {}
    for name, convert in _plan(cls):
        key = names.get(name, name)
        if key in data:
            kwargs[name] = convert(data[key])
    return cls(**kwargs)


_PLANS: dict[type, list[tuple[str, Callable[[Any], Any]]]] = {}
_CONVERTERS: dict[Any, Callable[[Any], Any]] = {}


def _plan(cls: type) -> list[tuple[str, Callable[[Any], Any]]]:
    """Each init field of ``cls`` with the function that converts its JSON value, worked
    out once per class (a remote search rebuilds hundreds of records per page)."""
    plan = _PLANS.get(cls)
    if plan is None:
        hints = _hints(cls)
        plan = [
            (f.name, _converter(hints.get(f.name, Any))) for f in dataclasses.fields(cls) if f.init
        ]
        _PLANS[cls] = plan
    return plan


def _converter(tp: Any) -> Callable[[Any], Any]:
    """``lambda value: _coerce(tp, value)``, with the common cases made direct."""
    try:
        found = _CONVERTERS.get(tp)
    except TypeError:  # an unhashable annotation
        return lambda value: _coerce(tp, value)
    if found is not None:
        return found
    convert: Callable[[Any], Any]
    if tp is Any:
        convert = _same
    elif tp in (str, int, bool):
        expected = tp

        def convert(value: Any) -> Any:
            if type(value) is expected or value is None:
                return value
            return _coerce(expected, value)
    elif typing.get_origin(tp) in (typing.Union, types.UnionType) and all(
        a in (str, int, bool, type(None)) for a in typing.get_args(tp)
    ):
        plain = tuple(a for a in typing.get_args(tp) if a is not type(None))

        def convert(value: Any) -> Any:
            if value is None or type(value) in plain:
                return value
            return _coerce(tp, value)
    elif typing.get_origin(tp) is dict and typing.get_args(tp) in ((str, float), (str, str)):
        item = _converter(typing.get_args(tp)[1])

        def convert(value: Any) -> Any:
            if not isinstance(value, Mapping):
                return _coerce(tp, value)
            return {k: item(v) for k, v in value.items()}
    elif tp is float:

        def convert(value: Any) -> Any:
            if type(value) is float or value is None:
                return value
            return _coerce(float, value)
    else:

        def convert(value: Any) -> Any:
            return _coerce(tp, value)

    _CONVERTERS[tp] = convert
    return convert


def _same(value: Any) -> Any:
    return value


#: Where the records' annotation-only names live: a record module imports the types of
#: nested records under ``TYPE_CHECKING`` only (``Signature`` in ModelVersion), so they
#: are looked up in the capability packages that export them.
_RECORD_PACKAGES = (
    "milepost.models",
    "milepost.promotion",
    "milepost.evaluation",
    "milepost.cards",
    "milepost.data",
    "milepost.tracking",
    "milepost.governance",
    "milepost.features",
    "milepost.serving",
    "milepost.pipelines",
    "milepost.monitoring",
)
_HINTS: dict[type, dict[str, Any]] = {}


def _hints(cls: type) -> dict[str, Any]:
    """``cls``'s field annotations as types, finding the names its module imports only
    for type checkers; a field whose annotation cannot be resolved (``pa.Table``) is Any:
    its value is taken as the JSON gives it."""
    cached = _HINTS.get(cls)
    if cached is not None:
        return cached
    import sys

    module = sys.modules.get(cls.__module__)
    namespace = dict(vars(module)) if module is not None else {}
    hints: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        hints[f.name] = _resolve(f.type, namespace)
    _HINTS[cls] = hints
    return hints


def _resolve(annotation: Any, namespace: dict[str, Any]) -> Any:
    if not isinstance(annotation, str):
        return annotation
    while True:
        try:
            return eval(annotation, namespace)  # noqa: S307 - our own dataclass annotations
        except NameError as exc:
            missing = exc.name
            if not missing or missing in namespace:
                return Any
            found = _exported(missing)
            if found is None:
                return Any
            namespace[missing] = found
        except Exception:
            return Any


def _exported(name: str) -> Any:
    """The type the standard library's typing modules or a capability package (imported
    on demand) export as ``name``, or None."""
    import collections.abc
    import datetime as dt
    import importlib
    import pathlib
    import sys

    for module in (collections.abc, typing, dt, pathlib):
        if hasattr(module, name):
            return getattr(module, name)
    for package in _RECORD_PACKAGES:
        loaded = sys.modules.get(package)
        if loaded is not None and isinstance(getattr(loaded, name, None), type):
            return getattr(loaded, name)
    for package in _RECORD_PACKAGES:
        try:
            value = getattr(importlib.import_module(package), name, None)
        except ImportError:  # pragma: no cover - an optional extra is missing
            continue
        if isinstance(value, type):
            return value
    return None


def _coerce(tp: Any, value: Any) -> Any:
    if tp is Any or value is None:
        return value
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        for option in [a for a in typing.get_args(tp) if a is not type(None)]:
            try:
                return _coerce(option, value)
            except (TypeError, ValueError, KeyError):
                continue
        return value
    if origin is typing.Literal:
        return value
    if origin is not None:
        return _coerce_generic(origin, typing.get_args(tp), value)
    if isinstance(tp, type):
        if dataclasses.is_dataclass(tp):
            if not isinstance(value, Mapping):
                raise TypeError("not a mapping")
            return record_from_dict(tp, value)
        if issubclass(tp, enum.Enum):
            return tp(value)
        return _coerce_scalar(tp, value)
    return value


def _coerce_generic(origin: Any, args: tuple[Any, ...], value: Any) -> Any:
    if isinstance(origin, type) and issubclass(origin, Mapping):
        if not isinstance(value, Mapping):
            raise TypeError("not a mapping")
        vt = args[1] if len(args) == 2 else Any
        return {k: _coerce(vt, v) for k, v in value.items()}
    if not (isinstance(origin, type) and issubclass(origin, Iterable)):
        return value
    if not isinstance(value, list | tuple):
        raise TypeError("not a sequence")
    if origin is tuple and args and (len(args) != 2 or args[1] is not Ellipsis):
        return tuple(_coerce(a, v) for a, v in zip(args, value, strict=False))
    items = [_coerce(args[0] if args else Any, v) for v in value]
    if origin is tuple:
        return tuple(items)
    if origin in (set, frozenset):
        return origin(items)
    return items


def _coerce_scalar(tp: type, value: Any) -> Any:
    if tp is float:
        if isinstance(value, str):
            special = _SPECIAL_FLOATS.get(value.lower())
            if special is None:
                raise ValueError("not a number")
            return special
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise TypeError("not a number")
        return float(value)
    expected = {int: int, str: str, bool: bool}.get(tp)
    if expected is not None:
        if not isinstance(value, expected) or (tp is int and isinstance(value, bool)):
            raise TypeError(f"not {tp.__name__}")
        return value
    if tp is datetime and isinstance(value, str):
        return datetime.fromisoformat(value)
    if tp is timedelta and isinstance(value, int | float):
        return timedelta(seconds=value)
    return value
