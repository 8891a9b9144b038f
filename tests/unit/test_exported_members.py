from __future__ import annotations

import importlib

import pytest

PACKAGES = ["milepost", "milepost.tracking", "milepost.governance", "milepost.errors"]


@pytest.mark.parametrize("name", PACKAGES)
def test_all_is_sorted_and_complete(name: str) -> None:
    module = importlib.import_module(name)
    exported = list(module.__all__)
    assert exported == sorted(exported), f"{name}.__all__ is not sorted"
    public = {
        n for n, obj in vars(module).items()
        if not n.startswith("_")
        and getattr(obj, "__module__", name).startswith("milepost")
        and not isinstance(obj, type(importlib))
    }
    assert public - {"annotations"} <= set(exported) | {"ClassVar", "Any"}, (
        f"public names missing from {name}.__all__: {public - set(exported)}"
    )
    for n in exported:
        assert hasattr(module, n)
