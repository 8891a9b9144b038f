"""What a step call returns while a pipeline is wired, and how its arguments are bound.

Inside a ``@pipeline`` function a step call runs nothing: it records a node and returns a
:class:`Handle`, a typed placeholder for the output. Handles can be passed to other steps
(and, for a ``tuple[A, B]`` return, unpacked or indexed into per-item handles), nothing
else: using one as a value (``if h:``, ``h + 1``, ``len(h)``) raises InvalidInput saying
that the logic belongs in a step, where the real value exists.

A step argument is bound to a :class:`Const` (a value known while wiring: a pipeline
parameter or a literal), a :class:`Ref` (an upstream step's output) or a :class:`ListOf`
(a list mixing both, for a step that takes ``list[T]``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from milepost.errors import InvalidInput
from milepost.pipelines import _types

__all__ = ["Binding", "Const", "Handle", "ListOf", "Ref", "bind_value"]


@dataclass(frozen=True)
class Const:
    """A value known while wiring (a pipeline parameter or a literal)."""

    value: Any


@dataclass(frozen=True)
class Ref:
    """An upstream step's output: ``output`` None for the whole return value, or the
    tuple item's name (``"0"``, ``"1"``)."""

    step: str
    output: str | None = None


@dataclass(frozen=True)
class ListOf:
    """A list whose items are bound one by one (handles and constants mixed)."""

    items: tuple[Binding, ...]


Binding = Const | Ref | ListOf


def _misuse(handle: Handle, what: str) -> InvalidInput:
    return InvalidInput(
        f"The output of step {handle._step!r} was used as a value ({what}) while the "
        "pipeline is being wired; outputs are placeholders then, the real values exist "
        "only when the step runs.",
        hint="Move this logic into a step that takes the output as a parameter.",
    )


class Handle:
    """A typed placeholder for a step's output while a pipeline is wired."""

    __slots__ = ("_ann", "_output", "_step", "_trace")

    def __init__(self, trace: object, step: str, ann: Any, output: str | None = None) -> None:
        self._trace = trace
        self._step = step
        self._ann = ann
        self._output = output

    @property
    def step_id(self) -> str:
        """The id of the step producing this output."""
        return self._step

    @property
    def annotation(self) -> Any:
        """The output's type annotation."""
        return self._ann

    def ref(self) -> Ref:
        return Ref(self._step, self._output)

    def _arity(self) -> int | None:
        return None if self._output is not None else _types.tuple_arity(self._ann)

    def __iter__(self) -> Any:
        n = self._arity()
        if n is None:
            raise _misuse(self, "iterated; only a step returning tuple[A, B] can be unpacked")
        return iter([self[i] for i in range(n)])

    def __getitem__(self, index: Any) -> Handle:
        n = self._arity()
        if n is None or not isinstance(index, int) or isinstance(index, bool):
            raise _misuse(self, f"indexed with {index!r}")
        if not -n <= index < n:
            raise InvalidInput(
                f"Step {self._step!r} returns a tuple of {n} items; index {index} is out of range.",
                hint=f"Use 0 to {n - 1}.",
            )
        index %= n
        return Handle(self._trace, self._step, _types.tuple_item(self._ann, index), str(index))

    def __bool__(self) -> bool:
        raise _misuse(self, "as a truth value")

    def __len__(self) -> int:
        raise _misuse(self, "len()")

    def __contains__(self, item: object) -> bool:
        raise _misuse(self, "'in'")

    def __float__(self) -> float:
        raise _misuse(self, "float()")

    def __int__(self) -> int:
        raise _misuse(self, "int()")

    def __index__(self) -> int:
        raise _misuse(self, "as an index")

    def __str__(self) -> str:
        raise _misuse(self, "str()")

    def __format__(self, spec: str) -> str:
        raise _misuse(self, "formatted into text")

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        raise _misuse(self, f"attribute .{name}")

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        raise _misuse(self, "called")

    def __repr__(self) -> str:
        item = "" if self._output is None else f"[{self._output}]"
        return f"<output of step {self._step!r}{item}: {_types.describe(self._ann)}>"

    __hash__ = object.__hash__


def _binary(symbol: str) -> Any:
    def method(self: Handle, other: Any) -> Any:
        raise _misuse(self, f"operator {symbol}")

    return method


for _name, _symbol in {
    "add": "+", "sub": "-", "mul": "*", "truediv": "/", "floordiv": "//", "mod": "%",
    "pow": "**", "and": "&", "or": "|", "xor": "^", "lt": "<", "le": "<=", "gt": ">",
    "ge": ">=", "matmul": "@", "lshift": "<<", "rshift": ">>", "eq": "==", "ne": "!=",
}.items():  # fmt: skip
    setattr(Handle, f"__{_name}__", _binary(_symbol))
    if _name not in ("lt", "le", "gt", "ge", "eq", "ne"):
        setattr(Handle, f"__r{_name}__", _binary(_symbol))


def _unary(what: str) -> Any:
    def method(self: Handle) -> Any:
        raise _misuse(self, what)

    return method


for _name in ("neg", "pos", "abs", "invert", "round", "trunc", "floor", "ceil"):
    setattr(Handle, f"__{_name}__", _unary(f"{_name}()"))


def bind_value(value: Any, trace: object) -> Binding:
    """The binding of one argument: a handle of this trace, a list holding handles, or a
    constant. A handle of another pipeline's trace is refused."""
    if isinstance(value, Handle):
        if value._trace is not trace:
            raise InvalidInput(
                f"The output of step {value._step!r} belongs to another pipeline's wiring.",
                hint="Pass outputs only between steps of the same pipeline function.",
            )
        return value.ref()
    if isinstance(value, (list, tuple)) and any(_holds_handle(v) for v in value):
        return ListOf(tuple(bind_value(v, trace) for v in value))
    if isinstance(value, dict) and any(_holds_handle(v) for v in value.values()):
        raise InvalidInput(
            "A dict holding step outputs cannot be passed to a step.",
            hint="Pass each output as its own parameter, or a list of outputs.",
        )
    return Const(value)


def _holds_handle(value: Any) -> bool:
    if isinstance(value, Handle):
        return True
    if isinstance(value, (list, tuple)):
        return any(_holds_handle(v) for v in value)
    if isinstance(value, dict):
        return any(_holds_handle(v) for v in value.values())
    return False
