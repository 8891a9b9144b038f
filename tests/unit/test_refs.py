"""``package.module:attr`` references: one way to import them, one wording when they fail."""

from __future__ import annotations

import sys
import types
from pathlib import Path
from typing import Any

import pytest

from milepost._refs import resolve_ref
from milepost.errors import InvalidInput

ARGS: dict[str, Any] = {"example": "pkg.mod:thing", "hint": "Install it."}


class Marker:
    pass


def test_a_reference_names_an_attribute_path(monkeypatch: pytest.MonkeyPatch) -> None:
    module = types.ModuleType("refs_demo_mod")
    module.ns = types.SimpleNamespace(inner=Marker())  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "refs_demo_mod", module)
    assert resolve_ref("refs_demo_mod:ns.inner", "thing", **ARGS) is module.ns.inner


@pytest.mark.parametrize("ref", ["nocolon", "a:b:c", ":x", "x:", 3])
def test_a_malformed_reference_shows_the_form_and_an_example(ref: object) -> None:
    with pytest.raises(InvalidInput) as info:
        resolve_ref(ref, "train", **ARGS)  # type: ignore[arg-type]
    assert f"A train reference is 'package.module:attr', got {ref!r}." == info.value.message
    assert info.value.hint == "For example pkg.mod:thing."


def test_an_unimportable_module_gives_its_own_error_and_the_hint(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    with pytest.raises(InvalidInput, match="Cannot import module 'no_such_mod_q' of train"):
        resolve_ref("no_such_mod_q:fit", "train", **ARGS)
    (tmp_path / "refs_broken_mod.py").write_text("raise RuntimeError('boom at import')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(InvalidInput) as info:
        resolve_ref("refs_broken_mod:fit", "train", **ARGS)
    assert "RuntimeError: boom at import" in info.value.message
    assert info.value.hint == "Install it."


def test_a_missing_attribute_suggests_a_close_name_of_the_kind_wanted(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    module = types.ModuleType("refs_kind_mod")
    module.churn = Marker()  # type: ignore[attr-defined]
    module.churm_rate = 0.3  # type: ignore[attr-defined]  # close, but not a Marker
    monkeypatch.setitem(sys.modules, "refs_kind_mod", module)
    with pytest.raises(InvalidInput) as info:
        resolve_ref("refs_kind_mod:churm", "pipeline", kind=Marker, kind_label="Markers", **ARGS)
    assert info.value.message == (
        "Module 'refs_kind_mod' of pipeline 'refs_kind_mod:churm' has no attribute 'churm'. "
        "Did you mean 'churn'?"
    )
    assert info.value.hint == "Markers in it: churn."
    with pytest.raises(InvalidInput) as info:
        resolve_ref("refs_kind_mod:churn.nope", "thing", **ARGS)
    assert "has no attribute 'nope'" in info.value.message
    # through an object without a __dict__ (an int) it is still an InvalidInput
    with pytest.raises(InvalidInput, match="has no attribute 'nope'"):
        resolve_ref("refs_kind_mod:churm_rate.nope", "thing", **ARGS)


def test_the_current_directory_is_searched_only_when_asked(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / "refs_local_flows.py").write_text("flow = 42\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", str(tmp_path))])
    with pytest.raises(InvalidInput, match="Cannot import module 'refs_local_flows'"):
        resolve_ref("refs_local_flows:flow", "pipeline", **ARGS)
    assert resolve_ref("refs_local_flows:flow", "pipeline", search_cwd=True, **ARGS) == 42
    sys.modules.pop("refs_local_flows", None)
