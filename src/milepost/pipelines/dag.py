"""Pipelines and the validated DAG they build.

A pipeline is a function decorated with :func:`pipeline` that calls steps (see
:mod:`milepost.pipelines._steps`): :meth:`Pipeline.build` traces it with the run's
parameters and returns a :class:`Dag`, validated before anything runs: unknown and
missing parameters, missing step inputs, type mismatches between a producer's return
annotation and a consumer's parameter, and cycles (in :meth:`Pipeline.from_steps`, where
the graph comes from parameter names). Every error names the step and the parameter.

The pipeline function receives the real parameter values, so ordinary Python over
*parameters* (``if fast:``, a fan-out over a ``list[float]`` parameter) works while
wiring; only step *outputs* are placeholders. Values known while wiring are bound to the
steps as constants and hashed like any input.

Where steps run: functions are shipped to worker processes with cloudpickle (by
reference when importable, by value otherwise), so a pipeline defined in a notebook or a
function body runs on every runner. Only :func:`load_pipeline` (the CLI, triggers, a
resume from another process) needs an importable ``module:attr``, which
:attr:`Pipeline.ref` names; :attr:`Pipeline.importable` says whether it is one.
"""

from __future__ import annotations

import inspect
import sys
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, overload

from milepost._refs import resolve_ref
from milepost.errors import InvalidInput, MilepostError, did_you_mean
from milepost.pipelines import _types
from milepost.pipelines._handles import Const, Handle, Ref
from milepost.pipelines._steps import _TRACE, Node, Step, StepOptions, _scalars, _Trace, grid, step
from milepost.pipelines.records import PlannedStep

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

__all__ = [
    "Dag",
    "Handle",
    "Node",
    "Pipeline",
    "Step",
    "StepOptions",
    "grid",
    "load_pipeline",
    "pipeline",
    "step",
]


@dataclass
class Dag:
    """A validated pipeline graph: nodes in a deterministic topological order.

    Attributes:
        pipeline: the pipeline's name.
        nodes: step id -> node (how the step's parameters are bound), topologically.
        params: the pipeline parameters it was built with (defaults filled in).
    """

    pipeline: str
    nodes: dict[str, Node]
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def steps(self) -> list[PlannedStep]:
        """The plan as recorded (topological order)."""
        return [
            PlannedStep(
                step=n.id, func=n.step.ref, upstream=n.upstream, options=n.step.options.public()
            )
            for n in self.nodes.values()
        ]

    def downstream(self, step_id: str) -> list[str]:
        """Steps depending, directly or not, on ``step_id`` (topological order)."""
        out: list[str] = []
        hit = {step_id}
        for n in self.nodes.values():
            if any(u in hit for u in n.upstream):
                hit.add(n.id)
                out.append(n.id)
        return out


class Pipeline:
    """A named, parametrised DAG of steps (made by :func:`pipeline` or :meth:`from_steps`)."""

    def __init__(
        self,
        name: str,
        *,
        func: Callable[..., Any] | None = None,
        steps: Sequence[Step] | None = None,
        module: str,
        qualname: str,
    ) -> None:
        if not isinstance(name, str) or not name or len(name) > 200:
            raise InvalidInput(f"A pipeline name must be a non-empty string, got {name!r}.")
        self.name = name
        self.func = func
        self._steps = list(steps or [])
        self._module = module
        self._qualname = qualname
        if func is not None:
            hints = _types.hints_of(func, f"pipeline {name!r}", need_return=False)
            sig = inspect.signature(func)
            self.parameters: dict[str, inspect.Parameter] = {
                k: p.replace(annotation=hints[k]) for k, p in sig.parameters.items()
            }
            self.__doc__ = func.__doc__
        else:
            self.parameters = _step_graph_params(self._steps)

    # -- identity ----------------------------------------------------------------------

    @property
    def ref(self) -> str:
        """``module:attr`` naming this pipeline (what :func:`load_pipeline` takes)."""
        mod = sys.modules.get(self._module)
        if mod is not None:
            for attr, value in vars(mod).items():
                if value is self:
                    return f"{self._module}:{attr}"
        return f"{self._module}:{self._qualname}"

    @property
    def importable(self) -> bool:
        """Whether :attr:`ref` loads this very pipeline in another process."""
        module, _, attr = self.ref.partition(":")
        mod = sys.modules.get(module)
        return "<" not in attr and mod is not None and getattr(mod, attr, None) is self

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Run the pipeline function eagerly: steps are plain calls, nothing is recorded."""
        if self.func is None:
            raise InvalidInput(
                f"Pipeline {self.name!r} was built from steps and has no function to call.",
                hint="Run it with milepost.run_pipeline(...).",
            )
        return self.func(*args, **kwargs)

    def __repr__(self) -> str:
        return f"<pipeline {self.name!r} ({self.ref})>"

    # -- parameters ----------------------------------------------------------------------

    def parse_params(self, raw: Mapping[str, str]) -> dict[str, Any]:
        """Command-line ``k=v`` strings converted by annotation, defaults filled in.

        Raises:
            InvalidInput: an unknown or missing name, or a value that does not parse.
        """
        self._unknown(raw)
        out = {
            k: _types.parse_text(
                str(v), self.parameters[k].annotation, f"pipeline {self.name!r} parameter {k!r}"
            )
            for k, v in raw.items()
        }
        return self.complete(out)

    def _unknown(self, given: Mapping[str, Any]) -> None:
        unknown = [k for k in given if k not in self.parameters]
        if unknown:
            names = ", ".join(repr(k) for k in unknown)
            raise InvalidInput(
                f"Pipeline {self.name!r} has no parameter {names}."
                + did_you_mean(unknown[0], self.parameters),
                hint=f"Its parameters: {', '.join(self.parameters) or 'none'}.",
            )

    def complete(self, params: Mapping[str, Any] | None) -> dict[str, Any]:
        """``params`` checked against the signature, with defaults filled in.

        Raises:
            InvalidInput: an unknown or missing parameter, or a value of the wrong type.
        """
        given = dict(params or {})
        self._unknown(given)
        missing = [k for k, p in self.parameters.items() if p.default is p.empty and k not in given]
        if missing:
            raise InvalidInput(
                f"Pipeline {self.name!r} needs parameter {', '.join(map(repr, missing))}.",
                hint="Pass it: --param " + " --param ".join(f"{k}=..." for k in missing) + ".",
            )
        out = {}
        for k, p in self.parameters.items():
            value = given.get(k, p.default)
            if k in given and not _types.fits(value, p.annotation):
                raise InvalidInput(
                    f"Pipeline {self.name!r} parameter {k!r} expects "
                    f"{_types.describe(p.annotation)}, got {type(value).__name__} {value!r:.60}.",
                )
            out[k] = value
        return out

    # -- the DAG ---------------------------------------------------------------------------

    def build(self, params: Mapping[str, Any] | None = None) -> Dag:
        """Trace the pipeline with ``params`` and return the validated DAG.

        Raises:
            InvalidInput: bad parameters, a missing input, a type mismatch, a cycle, or a
                pipeline that calls no step; the message names the step and parameter.
        """
        values = self.complete(params)
        if self.func is None:
            return Dag(self.name, _graph_nodes(self._steps, values), values)
        trace = _Trace()
        token = _TRACE.set(trace)
        try:
            self.func(**values)
        except MilepostError:
            raise
        except Exception as exc:
            raise InvalidInput(
                f"Pipeline {self.name!r} raised {type(exc).__name__} while its steps were "
                f"wired: {exc}.",
                hint="The pipeline function only wires steps; compute values inside steps.",
            ) from exc
        finally:
            _TRACE.reset(token)
        if not trace.nodes:
            raise InvalidInput(
                f"Pipeline {self.name!r} calls no step.",
                hint="Decorate the functions it calls with @step.",
            )
        return Dag(self.name, trace.nodes, values)

    @classmethod
    def from_steps(cls, steps: Sequence[Step], *, name: str) -> Pipeline:
        """A pipeline whose edges come from parameter names (Hamilton style).

        A step parameter named like another step takes that step's output; any other
        parameter becomes a pipeline parameter (its default kept).

        Raises:
            InvalidInput: something not a step, a duplicate name, or a cycle
                (``"a -> b -> a"``).
        """
        for s in steps:
            if not isinstance(s, Step):
                raise InvalidInput(
                    f"Pipeline.from_steps takes @step functions, got {s!r}.",
                    hint="Decorate each function with @step.",
                )
        names = [s.name for s in steps]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise InvalidInput(f"Pipeline {name!r} lists step {dupes[0]!r} twice.")
        _topo(steps)  # refuse a cycle now
        module = sys._getframe(1).f_globals.get("__name__", "__main__")
        return cls(name, steps=steps, module=module, qualname=name)


def _step_graph_params(steps: Sequence[Step]) -> dict[str, inspect.Parameter]:
    names = {s.name for s in steps}
    out: dict[str, inspect.Parameter] = {}
    for s in steps:
        for pname, p in s.signature.parameters.items():
            if pname not in names and pname not in out:
                out[pname] = inspect.Parameter(
                    pname, p.KEYWORD_ONLY, default=p.default, annotation=s.hints[pname]
                )
    return out


def _topo(steps: Sequence[Step]) -> list[Step]:
    by_name = {s.name: s for s in steps}
    order: list[Step] = []
    state: dict[str, int] = {}  # 1 visiting, 2 done
    path: list[str] = []

    def visit(s: Step) -> None:
        if state.get(s.name) == 2:
            return
        if state.get(s.name) == 1:
            cycle = [*path[path.index(s.name) :], s.name]
            raise InvalidInput(
                f"The steps form a cycle: {' -> '.join(cycle)}.",
                hint="A step parameter named like a step takes that step's output; rename "
                "one parameter to break the cycle.",
            )
        state[s.name] = 1
        path.append(s.name)
        for pname in s.signature.parameters:
            if pname in by_name:
                visit(by_name[pname])
        path.pop()
        state[s.name] = 2
        order.append(s)

    for s in steps:
        visit(s)
    return order


def _graph_nodes(steps: Sequence[Step], values: dict[str, Any]) -> dict[str, Node]:
    trace = _Trace()
    names = {s.name for s in steps}
    for s in _topo(steps):
        args: dict[str, Any] = {}
        for pname, p in s.signature.parameters.items():
            if pname in names:
                args[pname] = Handle(trace, pname, s_hints_return(steps, pname))
            elif pname in values:
                args[pname] = values[pname]
            elif p.default is not p.empty:
                args[pname] = p.default
        trace.add(s, (), args)
    return trace.nodes


def s_hints_return(steps: Sequence[Step], name: str) -> Any:
    return next(s.hints["return"] for s in steps if s.name == name)


@overload
def pipeline(func: Callable[..., Any], /) -> Pipeline: ...
@overload
def pipeline(*, name: str | None = None) -> Callable[[Callable[..., Any]], Pipeline]: ...
def pipeline(
    func: Callable[..., Any] | None = None, /, *, name: str | None = None
) -> Pipeline | Callable[[Callable[..., Any]], Pipeline]:
    """Make a function that calls steps a :class:`Pipeline` (bare or ``@pipeline(name=)``).

    Its parameters (annotated, like a step's) are the pipeline's parameters.
    """

    def wrap(f: Callable[..., Any]) -> Pipeline:
        if isinstance(f, (Step, Pipeline)) or not callable(f):
            raise InvalidInput(f"@pipeline decorates a plain function, got {f!r}.")
        return Pipeline(name or f.__name__, func=f, module=f.__module__, qualname=f.__qualname__)

    if func is not None:
        return wrap(func)
    return wrap


def load_pipeline(ref: str) -> Pipeline:
    """The pipeline named ``"package.module:attr"``.

    The current directory is searched too when the module is not found on ``sys.path``
    (``milepost pipelines run flows:churn`` from the project directory).

    Raises:
        InvalidInput: a malformed reference, a module that cannot be imported (with the
            ImportError), a missing attribute, or something that is not a pipeline.
    """
    obj = resolve_ref(
        ref,
        "pipeline",
        example="milepost.demo.pipelines:churn",
        hint="Check the name, run from the project directory, or install the package.",
        kind=Pipeline,
        kind_label="Pipelines",
        search_cwd=True,
    )
    if not isinstance(obj, Pipeline):
        kind = "a step" if isinstance(obj, Step) else type(obj).__name__
        raise InvalidInput(
            f"{ref} is {kind}, not a pipeline.",
            hint="Point at a function decorated with @pipeline.",
        )
    return obj


# imported names re-exported from here (the public module of steps and pipelines)
_ = (Const, Ref, _scalars, grid, StepOptions)
