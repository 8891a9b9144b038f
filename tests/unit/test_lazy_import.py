"""``import milepost`` stays cheap: the heavy stack loads on first use (PEP 562)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

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


# What a command that only touches tracking (``milepost runs list``) must not load.
NOT_FOR_TRACKING = (
    "milepost.serving",
    "milepost.models",
    "milepost.evaluation",
    "milepost.promotion",
    "milepost.features",
    "milepost.data",
    "fastapi",
    "sklearn",
    "onnx",
    "onnxruntime",
    "pandas",
)


def _runtime_modules(attr: str, home: str) -> set[str]:
    return _modules_after(
        f"import milepost\nwith milepost.Runtime.open(home={home!r}) as rt:\n    rt.{attr}.actor\n"
    )


def test_runtime_builds_only_the_services_used(tmp_path: Path) -> None:
    loaded = _runtime_modules("tracking", str(tmp_path / "a"))
    assert "milepost.tracking.service" in loaded
    assert not [m for m in NOT_FOR_TRACKING if m in loaded]
    # and the check can fail: serving builds what it depends on, with their imports
    loaded = _runtime_modules("serving", str(tmp_path / "b"))
    for needed in ("milepost.serving.service", "milepost.models", "milepost.promotion"):
        assert needed in loaded
    assert "pandas" in loaded


def test_runtimes_on_one_context_share_services_built_on_demand(tmp_path: Path) -> None:
    from milepost._context import Runtime
    from milepost.data.api import data_service

    with Runtime.open(home=tmp_path) as rt:
        other = Runtime(context=rt.context)
        # a service built through one runtime is the one the other gets, and a
        # service's dependencies are the runtime's own
        assert other.serving is rt.serving
        assert rt.serving.models is rt.models is other.models
        assert rt.models.tracking is rt.tracking
        assert rt.promotion.evaluation is other.evaluation
        assert data_service(rt.context) is rt.data
