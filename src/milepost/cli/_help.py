"""Help text as people write it: ``TEXT``, ``INTEGER``, ``PATH``; flags without a value.

Typer (0.2x vendors Click) labels each value with its Python annotation (``<str>``,
``<int range>``, ``<bool>`` on flags) and wraps required arguments in braces in the
usage line (``{endpoint}``). :func:`polish` walks the built command tree once and gives
every parameter a metavar in Click's own vocabulary, derived from the callback's type
hints, so a new command gets it without doing anything:

- options: ``TEXT``, ``INTEGER``, ``FLOAT``, ``PATH``, ``DATETIME``, choices as
  ``[a|b]``; flags (and ``--help``) show no value;
- arguments: their name upper-cased (``ENDPOINT``, ``RUN_ID...``) in the usage line,
  required ones bare and optional ones in ``[...]``, with the value type beside them;
- descriptions: every paragraph of a docstring is reflowed to the terminal's width
  (Typer reflows only the first).

Only public Click parts (``metavar``, ``get_usage_pieces``, ``get_help_option``) and two
display hooks of Typer's classes are touched; unknown hooks are simply never called.
"""

from __future__ import annotations

import enum
import importlib
import inspect
import re
import sys
import types
import typing
from datetime import datetime
from pathlib import Path
from typing import Any

from milepost.cli._params import MAX_INT64

__all__ = ["polish"]

_SINGLE_NEWLINE = re.compile(r"(?<!\n)\n(?!\n)")
_NAMES: dict[Any, str] = {
    str: "TEXT",
    int: "INTEGER",
    float: "FLOAT",
    bool: "BOOLEAN",
    Path: "PATH",
    datetime: "DATETIME",
}


def _unwrap(annotation: Any) -> tuple[Any, bool]:
    """The value type behind ``X | None`` and ``list[X]``; True when it was a list."""
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _unwrap(args[0])
    if origin in (list, tuple, set, frozenset) and args:
        return _unwrap(args[0])[0], True
    if args and origin is not typing.Literal and len(args) == 1:  # Optional[X], X | None
        return _unwrap(args[0])
    return annotation, False


def type_name(annotation: Any) -> str:
    """``TEXT``, ``INTEGER``, ... or the choices as ``[a|b]`` for one annotation."""
    value, _ = _unwrap(annotation)
    if typing.get_origin(value) is typing.Literal:
        return "[" + "|".join(str(v) for v in typing.get_args(value)) + "]"
    if isinstance(value, type) and issubclass(value, enum.Enum):
        return "[" + "|".join(str(m.value) for m in value) + "]"
    for known, name in _NAMES.items():
        if isinstance(value, type) and isinstance(known, type) and issubclass(value, known):
            return name
    return str(getattr(value, "__name__", value)).upper()


def _argument_name(name: str, many: bool) -> str:
    name = name.upper().rstrip("_")
    if many:  # RUN_IDS... reads as one RUN_ID, repeated
        return (name[:-1] if name.endswith("S") else name) + "..."
    return name


def _argument_class(base: type) -> type:
    """Typer's argument class with the name in the usage line and the type beside it."""

    class Argument(base):  # type: ignore[misc]
        __slots__ = ()  # the same instance layout, so an instance can switch class
        _milepost_type = ""

        def display_type_rich(self, ctx: Any) -> str | None:
            return self._milepost_type or None

        def get_usage_pieces(self, ctx: Any) -> list[str]:
            name = self.metavar or ""
            return [name if self.required else f"[{name}]"]

        def _get_number_range_help_str(self) -> str | None:
            return _range(self)

    return Argument


def _option_class(base: type) -> type:
    """Typer's option class with ranges that leave out the int64 ceiling."""

    class Option(base):  # type: ignore[misc]
        __slots__ = ()

        def _get_number_range_help_str(self) -> str | None:
            return _range(self)

    return Option


def _command_class(base: type) -> type:
    """A command or group class whose ``--help`` is a flag: it takes no value."""

    class Command(base):  # type: ignore[misc]
        __slots__ = ()

        def get_help_option(self, ctx: Any) -> Any:
            option = super().get_help_option(ctx)
            if option is not None:
                option.metavar = ""
            return option

        def format_help(self, ctx: Any, formatter: Any) -> None:
            load_rich_help()
            super().format_help(ctx, formatter)

    return Command


# Rich modules that Typer's help module imports but that our help never uses: Markdown
# renders only with rich_markup_mode="markdown" (ours is "rich") and Traceback only for
# pretty exceptions (disabled). Together with markdown_it and pygments they are ~40% of
# the time `milepost --help` takes.
_UNUSED_BY_HELP = {"rich.markdown": ("Markdown",), "rich.traceback": ("Traceback",)}


def _stand_in(module: str, name: str) -> type:
    """A class that imports ``module`` and becomes its ``name`` when used."""

    def real() -> Any:
        return getattr(importlib.import_module(module), name)

    class Meta(type):
        def __getattr__(cls, attr: str) -> Any:  # Traceback.from_exception(...)
            return getattr(real(), attr)

    class StandIn(metaclass=Meta):
        def __new__(cls, *args: Any, **kwargs: Any) -> Any:
            return real()(*args, **kwargs)

    StandIn.__name__ = StandIn.__qualname__ = name
    return StandIn


def load_rich_help() -> None:
    """Import Typer's help module without the Rich modules it never uses for us.

    While it is imported, each unused module is a stand-in whose classes import the real
    module when used; the stand-ins leave ``sys.modules`` at once, so any later import
    of ``rich.markdown`` gets the real module.
    """
    if "typer.rich_utils" in sys.modules:
        return
    stand_ins: dict[str, types.ModuleType] = {}
    for module, names in _UNUSED_BY_HELP.items():
        if module in sys.modules:
            continue
        stub = stand_ins[module] = types.ModuleType(module)
        for name in names:
            setattr(stub, name, _stand_in(module, name))
    sys.modules.update(stand_ins)
    try:
        importlib.import_module("typer.rich_utils")
    finally:
        for module, stub in stand_ins.items():
            if sys.modules.get(module) is stub:
                del sys.modules[module]


def _range(param: Any) -> str | None:
    """``1<=x<=256``, ``x>=1`` (no one needs to read 9223372036854775807), or None."""
    low, high = getattr(param, "min", None), getattr(param, "max", None)
    if high == MAX_INT64:
        high = None
    if low is None and high is None:
        return None
    if low is None:
        return f"x<={high}"
    if high is None:
        return f"x>={low}"
    return f"{low}<=x<={high}"


_SUBCLASSES: dict[tuple[type, Any], type] = {}


def _mix(obj: Any, factory: Any) -> None:
    """Switch ``obj`` to ``factory(type(obj))``, a subclass made once per class."""
    base = type(obj)
    if getattr(base, "_milepost_polished", False):
        return
    key = (base, factory)
    if key not in _SUBCLASSES:
        cls = factory(base)
        cls.__name__ = cls.__qualname__ = base.__name__
        cls._milepost_polished = True
        _SUBCLASSES[key] = cls
    obj.__class__ = _SUBCLASSES[key]


def _is_flag(param: Any) -> bool:
    return bool(getattr(param, "is_flag", False) or getattr(param, "count", False))


def polish(command: Any) -> Any:
    """Set every parameter's metavar in ``command``'s tree (in place); returns it."""
    _mix(command, _command_class)
    help_text = getattr(command, "help", None)
    if help_text and "\b" not in help_text:  # reflow every paragraph, not only the first
        command.help = _SINGLE_NEWLINE.sub(" ", inspect.cleandoc(help_text))
    callback = getattr(command, "callback", None)
    hints: dict[str, Any] = {}
    if callback is not None:
        try:
            hints = typing.get_type_hints(callback)
        except (NameError, TypeError):  # pragma: no cover - a callback we cannot introspect
            hints = {}
    for param in getattr(command, "params", []):
        annotation = hints.get(param.name or "", str)
        chosen = param.metavar  # one the command set itself (e.g. HASH) is kept
        if getattr(param, "param_type_name", "") == "argument":
            many = param.nargs != 1
            param.metavar = chosen or _argument_name(param.name or "value", many)
            param._milepost_type = type_name(annotation)
            _mix(param, _argument_class)
        else:
            param.metavar = "" if _is_flag(param) else chosen or type_name(annotation)
            _mix(param, _option_class)
    for sub in getattr(command, "commands", {}).values():
        polish(sub)
    return command
