"""What ``pyproject.toml`` asks pip for exists: no "does not provide the extra" warnings."""

from __future__ import annotations

import importlib.metadata as md

import pytest
from packaging.requirements import Requirement


def _requirements() -> list[Requirement]:
    return [Requirement(r) for r in md.distribution("milepost").requires or []]


@pytest.mark.parametrize(
    "req", [r for r in _requirements() if r.extras and r.name != "milepost"], ids=str
)
def test_every_requested_extra_is_provided(req: Requirement) -> None:
    try:
        dist = md.distribution(req.name)
    except md.PackageNotFoundError:  # an optional extra that is not installed here
        return
    provided = {e.lower() for e in dist.metadata.get_all("Provides-Extra") or []}
    missing = {e.lower() for e in req.extras} - provided
    assert not missing, f"{req.name} {dist.version} has no extra(s) {sorted(missing)}: {req}"
