"""Steps: typed functions that record a node instead of running while a pipeline is traced.

:func:`step` validates its options and the function's annotations when it decorates.
Called normally a :class:`Step` *is* the function; while :meth:`Pipeline.build
<milepost.pipelines.dag.Pipeline.build>` traces a pipeline function (the context
variable ``_TRACE`` holds a :class:`_Trace`), a call binds its arguments, checks their
types against the producers' return annotations and returns a typed
:class:`~milepost.pipelines._handles.Handle`. ``step.map`` fans out one node per trial
(``name[i]``); a second call of the same step gets the id ``name#2``.

Steps pickle by reference (``module:qualname``) when importable, by value otherwise, so
worker processes get the same function either way.
"""

from __future__ import annotations

import contextvars
import functools
import hashlib
import importlib
import inspect
import itertools
import linecache
import sys
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, overload

from milepost.errors import InvalidInput
from milepost.pipelines import _types
from milepost.pipelines._handles import Const, Handle, ListOf, Ref, bind_value

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from milepost.pipelines._handles import Binding

__all__ = ["Node", "Step", "StepOptions", "grid", "step"]

_MAX_BACKOFF = 60.0


@dataclass(frozen=True)
class StepOptions:
    """A step's settings (see :func:`step`)."""

    cache: bool = True
    retries: int = 0
    retry_on: tuple[type[BaseException], ...] = ()
    backoff: float = 1.0
    timeout: float | None = None
    track: bool = False
    version: str | None = None

    def delay(self, attempt: int) -> float:
        """Seconds to wait before attempt ``attempt + 1`` (exponential, capped at 60)."""
        return float(min(self.backoff * 2 ** (attempt - 1), _MAX_BACKOFF))

    def public(self) -> dict[str, Any]:
        """The options as plain JSON data, for the record."""
        return {
            "cache": self.cache,
            "retries": self.retries,
            "retry_on": [f"{c.__module__}.{c.__qualname__}" for c in self.retry_on],
            "backoff": self.backoff,
            "timeout": self.timeout,
            "track": self.track,
            "version": self.version,
        }


def _check_options(name: str, opts: dict[str, Any]) -> StepOptions:
    what = f"step {name!r}"
    for key in ("cache", "track"):
        if not isinstance(opts[key], bool):
            raise InvalidInput(f"{what}: {key} must be True or False, got {opts[key]!r}.")
    retries = opts["retries"]
    if not isinstance(retries, int) or isinstance(retries, bool) or retries < 0:
        raise InvalidInput(f"{what}: retries must be an integer >= 0, got {retries!r}.")
    retry_on = opts["retry_on"]
    if isinstance(retry_on, type):
        retry_on = (retry_on,)
    if not isinstance(retry_on, (tuple, list)) or not all(
        isinstance(c, type) and issubclass(c, BaseException) for c in retry_on
    ):
        raise InvalidInput(
            f"{what}: retry_on takes exception classes, got {retry_on!r}.",
            hint="e.g. retry_on=(ConnectionError, TimeoutError): only these are retried.",
        )
    if retries and not retry_on:
        raise InvalidInput(
            f"{what}: retries={retries} without retry_on; only declared transient errors "
            "are retried.",
            hint="Name them, e.g. retry_on=(ConnectionError,).",
        )
    for key in ("backoff", "timeout"):
        value = opts[key]
        if value is None and key == "timeout":
            continue
        if (
            not isinstance(value, (int, float))
            or isinstance(value, bool)
            or value < 0
            or (key == "timeout" and value == 0)
        ):
            raise InvalidInput(
                f"{what}: {key} must be a positive number of seconds, got {value!r}."
            )
    version = opts["version"]
    if version is not None and not isinstance(version, str):
        raise InvalidInput(f"{what}: version must be a string, got {version!r}.")
    return StepOptions(
        cache=opts["cache"],
        retries=retries,
        retry_on=tuple(retry_on),
        backoff=float(opts["backoff"]),
        timeout=None if opts["timeout"] is None else float(opts["timeout"]),
        track=opts["track"],
        version=version,
    )


class Step:
    """A typed function usable as a pipeline step (made by :func:`step`)."""

    def __init__(self, func: Callable[..., Any], name: str, options: StepOptions) -> None:
        if not callable(func) or isinstance(func, Step) or hasattr(func, "build"):
            raise InvalidInput(f"@step decorates a function, got {func!r}.")
        self.func = func
        self.name = name
        self.options = options
        self.hints = _types.hints_of(func, f"step {name!r}")
        self.signature = inspect.signature(func)
        self.arity = _types.tuple_arity(self.hints["return"])
        functools.update_wrapper(self, func)

    @property
    def ref(self) -> str:
        """``module:qualname`` of the function."""
        return f"{self.func.__module__}:{self.func.__qualname__}"

    @functools.cached_property
    def code_hash(self) -> str:
        """SHA-256 of the function's source (its code object's bytes when there is none)."""
        return hashlib.sha256(_source_bytes(self.func)).hexdigest()

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        trace = _TRACE.get()
        if trace is None:
            return self.func(*args, **kwargs)
        return trace.add(self, args, kwargs)

    def map(self, **kwargs: Any) -> list[Handle]:
        """Fan out: one trial per item of the list-valued arguments (zipped; equal lengths).

        Scalar arguments go to every trial. Inside a pipeline each trial is a step
        ``name[i]`` run in parallel; outside one, the function is called per trial and
        the results returned as a list.
        """
        lists = {k: v for k, v in kwargs.items() if isinstance(v, list)}
        if not lists:
            raise InvalidInput(
                f"step {self.name!r}.map() got no list argument to fan out over.",
                hint="Pass at least one list, e.g. train.map(df=df, c=[0.1, 1.0]); "
                "grid(a=[..], b=[..]) builds every combination.",
            )
        lengths = {k: len(v) for k, v in lists.items()}
        if len(set(lengths.values())) > 1:
            raise InvalidInput(
                f"step {self.name!r}.map() needs lists of equal length, got "
                + ", ".join(f"{k}: {n}" for k, n in lengths.items())
                + ".",
                hint="Use grid(...) for every combination of several lists.",
            )
        n = next(iter(lengths.values()))
        if n == 0:
            raise InvalidInput(f"step {self.name!r}.map() got empty lists: nothing to run.")
        trials = [{k: (v[i] if k in lists else v) for k, v in kwargs.items()} for i in range(n)]
        trace = _TRACE.get()
        if trace is None:
            return [self.func(**t) for t in trials]
        return trace.add_map(self, trials)

    def __reduce__(self) -> Any:
        # Importable steps travel by reference; others by value (cloudpickle), and so do
        # a script's (``__main__`` is another module in a Dask worker).
        module, qualname = self.func.__module__, self.func.__qualname__
        if "<locals>" not in qualname and module != "__main__":
            found = _resolve(module, qualname)
            if found is self:
                return (_resolve, (module, qualname))
        return (Step, (self.func, self.name, self.options))

    def __repr__(self) -> str:
        return f"<step {self.name!r} ({self.ref})>"


def _resolve(module: str, qualname: str) -> Any:
    obj: Any = sys.modules.get(module) or importlib.import_module(module)
    for part in qualname.split("."):
        obj = getattr(obj, part, None)
        if obj is None:
            return None
    return obj


@overload
def step(func: Callable[..., Any], /) -> Step: ...
@overload
def step(
    *,
    cache: bool = True,
    retries: int = 0,
    retry_on: tuple[type[BaseException], ...] = (),
    backoff: float = 1.0,
    timeout: float | None = None,
    track: bool = False,
    name: str | None = None,
    version: str | None = None,
) -> Callable[[Callable[..., Any]], Step]: ...
def step(
    func: Callable[..., Any] | None = None,
    /,
    *,
    cache: bool = True,
    retries: int = 0,
    retry_on: tuple[type[BaseException], ...] = (),
    backoff: float = 1.0,
    timeout: float | None = None,
    track: bool = False,
    name: str | None = None,
    version: str | None = None,
) -> Step | Callable[[Callable[..., Any]], Step]:
    """Make a typed function a pipeline step (bare ``@step`` or ``@step(...)``).

    Args:
        func: the function (bare use).
        cache: reuse stored outputs of an earlier run with the same code and inputs.
        retries: extra attempts after a failure with one of ``retry_on``.
        retry_on: the exception classes that are transient (nothing else is retried).
        backoff: seconds before the first retry, doubling each time, capped at 60.
        timeout: seconds an attempt may take; the step's process is then stopped.
        track: run the step as a tracking run (experiment = pipeline name, run name =
            step id, scalar arguments logged as params).
        name: the step's name (default the function's).
        version: bump it to invalidate cached outputs when code the step calls changed.

    Raises:
        InvalidInput: a bad option, or a parameter or return without annotation.
    """

    def wrap(f: Callable[..., Any]) -> Step:
        step_name = name if name is not None else getattr(f, "__name__", None)
        if not isinstance(step_name, str) or not step_name.isidentifier():
            raise InvalidInput(
                f"A step name must be an identifier, got {step_name!r}.",
                hint="Letters, digits and underscores, not starting with a digit.",
            )
        opts = _check_options(
            step_name,
            {
                "cache": cache,
                "retries": retries,
                "retry_on": retry_on,
                "backoff": backoff,
                "timeout": timeout,
                "track": track,
                "version": version,
            },
        )
        return Step(f, step_name, opts)

    if func is not None:
        return wrap(func)
    return wrap


def grid(**lists: Sequence[Any]) -> dict[str, list[Any]]:
    """Every combination of the values, as ``step.map`` keyword lists (first key slowest).

    ``grid(c=[0.1, 1.0], depth=[3, 5])`` is ``{"c": [0.1, 0.1, 1.0, 1.0], "depth": [3, 5,
    3, 5]}``.
    """
    for key, values in lists.items():
        if not isinstance(values, (list, tuple)) or not values:
            raise InvalidInput(f"grid(): {key} must be a non-empty list, got {values!r}.")
    keys = list(lists)
    combos = list(itertools.product(*(lists[k] for k in keys)))
    return {k: [c[i] for c in combos] for i, k in enumerate(keys)}


@dataclass
class Node:
    """One step call in a DAG: its id, the step and how each parameter is bound."""

    id: str
    step: Step
    args: dict[str, Binding]
    trial_params: dict[str, Any] = field(default_factory=dict)

    @property
    def upstream(self) -> tuple[str, ...]:
        seen: dict[str, None] = {}
        for binding in self.args.values():
            for ref in _refs(binding):
                seen[ref.step] = None
        return tuple(seen)


def _refs(binding: Binding) -> list[Ref]:
    if isinstance(binding, Ref):
        return [binding]
    if isinstance(binding, ListOf):
        return [r for item in binding.items for r in _refs(item)]
    return []


_TRACE: contextvars.ContextVar[_Trace | None] = contextvars.ContextVar(
    "milepost_pipeline_trace", default=None
)


class _Trace:
    """The nodes recorded while a pipeline function runs."""

    def __init__(self) -> None:
        self.nodes: dict[str, Node] = {}
        self.calls: dict[str, int] = {}

    def _new_id(self, step_: Step) -> str:
        n = self.calls[step_.name] = self.calls.get(step_.name, 0) + 1
        return step_.name if n == 1 else f"{step_.name}#{n}"

    def _bind(
        self, step_: Step, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> dict[str, Binding]:
        try:
            bound = step_.signature.bind(*args, **kwargs)
        except TypeError as exc:
            raise InvalidInput(
                f"Step {step_.name!r} called with the wrong arguments: {exc}.",
                hint=f"Its signature is {step_.name}{step_.signature}.",
            ) from None
        bound.apply_defaults()
        out: dict[str, Binding] = {}
        for pname, value in bound.arguments.items():
            binding = bind_value(value, self)
            self._check(step_, pname, binding, step_.hints[pname])
            out[pname] = binding
        return out

    def _check(self, step_: Step, pname: str, binding: Binding, expected: Any) -> None:
        if isinstance(binding, Ref):
            produced = self.annotation(binding)
            if not _types.compatible(produced, expected):
                raise InvalidInput(
                    f"step {step_.name!r} parameter {pname!r} expects "
                    f"{_types.describe(expected)}, but step {binding.step!r} returns "
                    f"{_types.describe(produced)}.",
                    hint="Fix one of the annotations, or convert the value in a step.",
                )
        elif isinstance(binding, ListOf):
            item_ann = _types.list_item(expected)
            if not _types.compatible(list, expected):
                raise InvalidInput(
                    f"step {step_.name!r} parameter {pname!r} expects "
                    f"{_types.describe(expected)}, but gets a list of step outputs.",
                    hint="Annotate it list[T] to take several outputs.",
                )
            for item in binding.items:
                self._check(step_, pname, item, item_ann)
        elif not _types.fits(binding.value, expected):
            raise InvalidInput(
                f"step {step_.name!r} parameter {pname!r} expects "
                f"{_types.describe(expected)}, got {type(binding.value).__name__} "
                f"{binding.value!r:.60}.",
                hint="Pass a value of the annotated type.",
            )

    def annotation(self, ref: Ref) -> Any:
        ann = self.nodes[ref.step].step.hints["return"]
        return ann if ref.output is None else _types.tuple_item(ann, int(ref.output))

    def add(self, step_: Step, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Handle:
        args_ = self._bind(step_, args, kwargs)
        node = Node(self._new_id(step_), step_, args_, _scalars(args_))
        self.nodes[node.id] = node
        return Handle(self, node.id, step_.hints["return"])

    def add_map(self, step_: Step, trials: list[dict[str, Any]]) -> list[Handle]:
        base = self._new_id(step_)
        handles = []
        for i, kwargs in enumerate(trials):
            args_ = self._bind(step_, (), kwargs)
            node = Node(f"{base}[{i}]", step_, args_, _scalars(args_))
            self.nodes[node.id] = node
            handles.append(Handle(self, node.id, step_.hints["return"]))
        return handles


def _scalars(args: dict[str, Binding]) -> dict[str, Any]:
    return {
        k: b.value
        for k, b in args.items()
        if isinstance(b, Const)
        and (b.value is None or isinstance(b.value, (bool, int, float, str)))
    }


def _source_bytes(func: Any) -> bytes:
    """The function's source text, read from its file by line number.

    ``inspect.getsource`` first finds the function's module by scanning ``sys.modules``
    (``inspect.getmodule``): ~60 ms on a first call in a process that imported Milepost,
    the bulk of a short pipeline run. The code object already names the file and the
    first line (decorators included), which is all ``inspect.getblock`` needs.
    """
    code = getattr(inspect.unwrap(func), "__code__", None)
    if code is None:
        return repr(func).encode()
    lines = linecache.getlines(code.co_filename)
    if lines and 0 < code.co_firstlineno <= len(lines):
        try:
            return "".join(inspect.getblock(lines[code.co_firstlineno - 1 :])).encode()
        except (IndentationError, SyntaxError, IndexError):  # unusual layouts: bytes below
            pass
    return bytes(code.co_code) + repr(code.co_consts).encode()
