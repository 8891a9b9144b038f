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
        n
        for n, obj in vars(module).items()
        if not n.startswith("_")
        and str(getattr(obj, "__module__", "")).startswith("milepost")
        and not isinstance(obj, type(importlib))
    }
    missing = public - set(exported)
    assert not missing, f"public names missing from {name}.__all__: {missing}"
    for n in exported:
        assert hasattr(module, n)
