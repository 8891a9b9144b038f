from __future__ import annotations

import importlib

import pytest

PACKAGES = [
    "milepost",
    "milepost.cards",
    "milepost.data",
    "milepost.deployments",
    "milepost.errors",
    "milepost.evaluation",
    "milepost.features",
    "milepost.governance",
    "milepost.models",
    "milepost.monitoring",
    "milepost.pipelines",
    "milepost.promotion",
    "milepost.serving",
    "milepost.tracking",
]


@pytest.mark.parametrize("name", PACKAGES)
def test_all_is_sorted_and_complete(name: str) -> None:
    module = importlib.import_module(name)
    exported = list(module.__all__)

    # ruff's RUF022 order: CONSTANTS, then Classes, then functions, each alphabetical
    def order(n: str) -> tuple[int, str]:
        return (0 if n.isupper() else 1 if n[0].isupper() else 2, n)

    assert exported == sorted(exported, key=order), f"{name}.__all__ is not sorted"
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
