"""``import milepost`` stays cheap: the heavy stack loads on first use (PEP 562)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

HEAVY = ("pandas", "duckdb", "sqlalchemy", "pyarrow")


def _modules_after(code: str) -> set[str]:
    script = f"import json, sys\n{code}\nprint(json.dumps(sorted(sys.modules)))"
    out = subprocess.run(
        [sys.executable, "-c", script], check=True, capture_output=True, text=True
    ).stdout
    return set(json.loads(out.splitlines()[-1]))


def test_import_milepost_loads_no_services_or_heavy_libraries() -> None:
    loaded = _modules_after("import milepost")
    assert not [m for m in HEAVY if m in loaded]
    ours = sorted(m for m in loaded if m.startswith("milepost"))
    assert ours == ["milepost"], ours


def test_first_use_loads_what_the_name_needs() -> None:
    # The check above must be able to fail: touching a name does load the stack.
    loaded = _modules_after("import milepost\nmilepost.start_run")
    assert "milepost._fluent_api" in loaded
    assert "milepost._context" in loaded
    assert "sqlalchemy" in loaded


def test_lazy_names_are_listed_and_resolve() -> None:
    import milepost

    assert set(milepost.__all__) <= set(dir(milepost))
    # __all__ stays a literal (mypy and ruff read re-exports from it); the lazy table
    # must name exactly the same things, so neither can grow without the other
    assert set(milepost._LAZY) | {"__version__"} == set(milepost.__all__)
    for name in milepost.__all__:
        assert getattr(milepost, name) is not None
    assert milepost.data.register is not None


def test_unknown_attribute_is_an_attribute_error() -> None:
    import milepost

    with pytest.raises(AttributeError, match="no_such_name"):
        milepost.no_such_name  # type: ignore[attr-defined]  # noqa: B018
