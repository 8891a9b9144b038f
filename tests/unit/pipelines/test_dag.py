"""Steps, pipelines and DAG validation: every error names the step and the parameter."""

from __future__ import annotations

import sys
import types

import pandas as pd
import pytest

from milepost.errors import InvalidInput
from milepost.pipelines.dag import (
    Handle,
    Pipeline,
    Step,
    grid,
    load_pipeline,
    pipeline,
    step,
)
from tests.unit.pipelines import _steps as S


def test_a_step_outside_a_pipeline_is_the_plain_function() -> None:
    assert isinstance(S.total, Step)
    assert S.total(pd.DataFrame({"x": [1, 2]})) == 3
    assert S.split(2) == (4, "n=2")
    assert S.scale.map(df=pd.DataFrame({"x": [2]}), c=[1.0, 2.0]) == [2.0, 4.0]
    assert S.total.__name__ == "total" and S.total.__doc__ is None


def test_a_missing_hint_is_refused_at_decoration() -> None:
    with pytest.raises(InvalidInput, match="Missing type hint for parameter 'df' of step 'train'"):

        @step
        def train(df, c: float = 1.0) -> float:  # type: ignore[no-untyped-def]
            return c

    with pytest.raises(InvalidInput, match="Missing return type hint of step 'noret'"):

        @step
        def noret(x: int):  # type: ignore[no-untyped-def]
            return x


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"retries": -1}, "retries must be an integer >= 0, got -1"),
        ({"retries": 2}, "retries=2 without retry_on"),
        ({"retries": 1, "retry_on": ("x",)}, "retry_on takes exception classes"),
        ({"timeout": 0}, "timeout must be a positive number of seconds, got 0"),
        ({"backoff": -1.0}, "backoff must be a positive number"),
        ({"cache": "yes"}, "cache must be True or False"),
        ({"version": 2}, "version must be a string"),
        ({"name": "not a name"}, "A step name must be an identifier"),
    ],
)
def test_bad_step_options_are_refused(options, message) -> None:
    def f(x: int) -> int:
        return x

    with pytest.raises(InvalidInput, match=message):
        step(**options)(f)


def test_step_options_and_backoff() -> None:
    @step(retries=3, retry_on=ConnectionError, backoff=0.5, timeout=2, version="2")
    def fetch(url: str) -> str:
        return url

    assert fetch.options.retry_on == (ConnectionError,)
    assert [fetch.options.delay(a) for a in (1, 2, 3)] == [0.5, 1.0, 2.0]
    slow = step(backoff=40.0, name="slow")(S.pid.func)
    assert slow.options.delay(3) == 60.0  # capped
    assert fetch.options.public()["retry_on"] == ["builtins.ConnectionError"]


def test_build_gives_a_topological_plan() -> None:
    dag = S.fan.build({"rows": 5})
    assert [s.step for s in dag.steps] == ["load", "scale[0]", "scale[1]", "scale[2]", "best"]
    assert dag.steps[1].func == "tests.unit.pipelines._steps:scale"
    assert dag.steps[-1].upstream == ("scale[0]", "scale[1]", "scale[2]")
    assert dag.params == {"rows": 5, "cs": None}
    assert dag.nodes["scale[2]"].trial_params == {"c": 2.0}
    assert dag.downstream("load") == ["scale[0]", "scale[1]", "scale[2]", "best"]


def test_same_step_twice_gets_numbered_ids() -> None:
    @pipeline
    def twice(n: int = 1) -> None:
        a = S.after(n)
        S.after(a)

    assert [s.step for s in twice.build().steps] == ["after", "after#2"]


def test_unknown_and_missing_params() -> None:
    with pytest.raises(InvalidInput, match=r"no parameter 'row'\. Did you mean 'rows'\?"):
        S.simple.build({"row": 3})

    @pipeline
    def needs(n: int) -> None:
        S.after(n)

    with pytest.raises(InvalidInput, match="needs parameter 'n'"):
        needs.build({})
    with pytest.raises(InvalidInput, match="parameter 'n' expects int, got str"):
        needs.build({"n": "3"})


def test_parse_params_converts_by_annotation() -> None:
    assert S.fan.parse_params({"rows": "7", "cs": "[0.1, 2]"}) == {"rows": 7, "cs": [0.1, 2]}
    assert S.fan.parse_params({"cs": "none"}) == {"rows": 10, "cs": None}
    with pytest.raises(InvalidInput, match="parameter 'rows' expects int, got 'many'"):
        S.fan.parse_params({"rows": "many"})
    with pytest.raises(InvalidInput, match="no parameter 'nope'"):
        S.fan.parse_params({"nope": "1"})


def test_type_mismatch_names_both_steps() -> None:
    @pipeline
    def wrong(rows: int = 3) -> None:
        n = S.total(S.load(rows))
        S.total(n)

    with pytest.raises(
        InvalidInput,
        match="step 'total' parameter 'df' expects DataFrame, but step 'total' returns int",
    ):
        wrong.build()


def test_int_feeds_float_and_a_constant_is_checked() -> None:
    @pipeline
    def ok(rows: int = 3) -> None:
        S.scale(S.load(rows), c=2)

    assert len(ok.build().nodes) == 2

    @pipeline
    def bad(rows: int = 3) -> None:
        S.scale(S.load(rows), c="big")

    with pytest.raises(InvalidInput, match="step 'scale' parameter 'c' expects float, got str"):
        bad.build()


def test_missing_and_unknown_step_arguments() -> None:
    @pipeline
    def missing() -> None:
        S.describe(S.split(1)[0])

    with pytest.raises(
        InvalidInput, match=r"Step 'describe' called with the wrong arguments.*label"
    ):
        missing.build()


def test_tuple_handles_unpack_and_index() -> None:
    seen: list[Handle] = []

    @pipeline
    def p() -> None:
        h = S.split(1)
        a, b = h
        seen.extend([h, a, b, h[-1]])
        S.describe(a, b)

    p.build()
    h, a, _b, last = seen
    assert repr(a) == "<output of step 'split'[0]: int>"
    assert repr(last) == "<output of step 'split'[1]: str>"
    with pytest.raises(InvalidInput, match="index 2 is out of range"):
        p_h = h
        _ = p_h[2]


@pytest.mark.parametrize(
    ("use", "what"),
    [
        (bool, "as a truth value"),
        (lambda h: h + 1, "operator +"),
        (lambda h: 1 + h, "operator +"),
        (len, "len()"),
        (lambda h: h > 0, "operator >"),
        (lambda h: h == 0, "operator =="),
        (lambda h: h.shape, "attribute .shape"),
        (list, "iterated"),
        (lambda h: f"{h}", "formatted"),
    ],
)
def test_using_a_handle_as_a_value_explains_why_not(use, what) -> None:
    @pipeline
    def p() -> None:
        use(S.load(3))

    with pytest.raises(InvalidInput, match=what) as info:
        p.build()
    assert "output of step 'load'" in str(info.value)
    assert "logic into a step" in str(info.value)


def test_map_needs_equal_lists_and_grid_is_cartesian() -> None:
    with pytest.raises(InvalidInput, match="equal length, got c: 2, other: 3"):
        S.scale.map(df=None, c=[1, 2], other=[1, 2, 3])
    with pytest.raises(InvalidInput, match="no list argument"):
        S.scale.map(df=None, c=1.0)
    assert grid(a=[1, 2], b=["x", "y", "z"]) == {
        "a": [1, 1, 1, 2, 2, 2],
        "b": ["x", "y", "z", "x", "y", "z"],
    }
    with pytest.raises(InvalidInput, match="grid\\(\\): a must be a non-empty list"):
        grid(a=[])


def test_from_steps_wires_by_parameter_names_and_names_a_cycle() -> None:
    @step
    def rows() -> int:
        return 3

    @step
    def doubled(rows: int, factor: int = 2) -> int:
        return rows * factor

    p = Pipeline.from_steps([doubled, rows], name="hamilton")
    assert list(p.parameters) == ["factor"]
    dag = p.build({"factor": 5})
    assert [s.step for s in dag.steps] == ["rows", "doubled"]
    assert dag.steps[1].upstream == ("rows",)

    @step
    def a(b: int) -> int:
        return b

    @step
    def b(a: int) -> int:
        return a

    with pytest.raises(InvalidInput, match="cycle: a -> b -> a"):
        Pipeline.from_steps([a, b], name="loop")


def test_pipeline_ref_and_eager_call() -> None:
    assert S.simple.ref == "tests.unit.pipelines._steps:simple"
    assert S.simple.importable
    assert S.simple.name == "simple"
    assert S.simple(rows=3) is None  # steps run as plain functions


def test_load_pipeline_errors(monkeypatch) -> None:
    assert load_pipeline("tests.unit.pipelines._steps:fan") is S.fan
    with pytest.raises(InvalidInput, match=r"is 'package\.module:attr'"):
        load_pipeline("nocolon")
    with pytest.raises(InvalidInput, match=r"Cannot import module 'no_such_mod_xyz'.*No module"):
        load_pipeline("no_such_mod_xyz:p")
    with pytest.raises(InvalidInput, match=r"no attribute 'simpel'\. Did you mean 'simple'\?"):
        load_pipeline("tests.unit.pipelines._steps:simpel")
    with pytest.raises(InvalidInput, match="is a step, not a pipeline"):
        load_pipeline("tests.unit.pipelines._steps:load")
    broken = types.ModuleType("broken_pipeline_mod")
    monkeypatch.setitem(sys.modules, "broken_pipeline_mod", broken)
    broken.p = 3  # type: ignore[attr-defined]
    with pytest.raises(InvalidInput, match="is int, not a pipeline"):
        load_pipeline("broken_pipeline_mod:p")


def test_a_pipeline_calling_no_step_is_refused() -> None:
    @pipeline(name="empty")
    def nothing() -> None:
        pass

    with pytest.raises(InvalidInput, match="Pipeline 'empty' calls no step"):
        nothing.build()


def test_load_pipeline_finds_a_module_in_the_current_directory(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", str(tmp_path))])
    (tmp_path / "flows_here_xyz.py").write_text(
        "from milepost.pipelines.dag import pipeline, step\n\n"
        "@step\ndef one() -> int:\n    return 1\n\n"
        "@pipeline(name='here')\ndef p() -> None:\n    one()\n"
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.delitem(sys.modules, "flows_here_xyz", raising=False)
    try:
        found = load_pipeline("flows_here_xyz:p")
        assert found.name == "here"
        assert found.ref == "flows_here_xyz:p"
        assert found.build().steps[0].func == "flows_here_xyz:one"
    finally:
        sys.modules.pop("flows_here_xyz", None)


def test_a_local_pipeline_is_not_importable_but_builds() -> None:
    @pipeline
    def local(flag: bool = False, where: str = "x") -> None:
        S.after(1 if flag else 2)

    assert not local.importable
    assert "<locals>" in local.ref
    assert local.parse_params({"flag": "yes"}) == {"flag": True, "where": "x"}
    with pytest.raises(InvalidInput, match="parameter 'flag' expects bool, got 'maybe'"):
        local.parse_params({"flag": "maybe"})
    # ordinary Python over parameters works while wiring
    assert local.build({"flag": True}).nodes["after"].args["x"].value == 1  # type: ignore[union-attr]


def test_handles_of_another_pipeline_and_dicts_of_handles_are_refused() -> None:
    kept: list[Handle] = []

    @pipeline
    def first() -> None:
        kept.append(S.load(2))

    first.build()

    @pipeline
    def second() -> None:
        S.total(kept[0])

    with pytest.raises(InvalidInput, match="belongs to another pipeline's wiring"):
        second.build()

    @pipeline
    def dicts() -> None:
        S.best({"a": S.scale(S.load(2))})  # type: ignore[arg-type]

    with pytest.raises(InvalidInput, match="A dict holding step outputs"):
        dicts.build()


def test_a_step_output_list_checks_each_item() -> None:
    @pipeline
    def mixed() -> None:
        df = S.load(2)
        S.best([S.scale(df), S.split(1)[1]])

    with pytest.raises(
        InvalidInput,
        match="step 'best' parameter 'scores' expects float, but step 'split' returns str",
    ):
        mixed.build()
