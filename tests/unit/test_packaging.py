"""What ``pyproject.toml`` asks pip for exists: no "does not provide the extra" warnings."""

from __future__ import annotations

import importlib.metadata as md
import subprocess
import sys
import zipfile
from pathlib import Path

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


@pytest.mark.slow  # builds a wheel (a few seconds)
def test_the_wheel_ships_every_template(tmp_path: Path) -> None:
    """Jinja2 templates are package data: the report and validation pages need them."""
    root = Path(__file__).resolve().parents[2]
    templates = sorted(  # every file under a templates/ directory, at any depth
        p.relative_to(root / "src").as_posix()
        for p in (root / "src").rglob("*")
        if p.is_file() and "templates" in p.relative_to(root / "src").parts
    )
    assert "milepost/monitoring/templates/report.html.j2" in templates
    assert "milepost/project/templates/github/pr.yml.j2" in templates  # `milepost init`'s
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path), str(root)],
        check=True,
        capture_output=True,
    )
    (wheel,) = tmp_path.glob("milepost-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    missing = [t for t in templates if t not in names]
    assert not missing, f"{wheel.name} lacks {missing}"
