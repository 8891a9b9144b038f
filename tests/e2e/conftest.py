"""The e2e tests that take minutes are marked ``slow`` here (deselected locally, run in CI).

A list rather than decorators, so the test files stay as they are; measured with
``pytest tests/e2e --durations=40`` (each took over 10 s on a 2-core machine shared with
other work). Tests that call the CLI in-process (``cli_in_process``) mostly left it. A
name that no longer matches marks nothing: keep it current.
"""

from __future__ import annotations

from pathlib import Path

import pytest

HERE = Path(__file__).parent

SLOW = {
    "test_cli_deploy.py": {"test_endpoints_track_production_and_rollouts_move_the_registry"},
    "test_cli_features.py": {
        "test_feature_server_over_http",
        "test_an_edited_view_keeps_its_old_version_readable_and_says_what_to_run",
    },
    "test_readme.py": {"test_the_readme_runs_top_to_bottom"},
    "test_cli_model_trust.py": {"test_trust_list_add_remove_and_refusals"},
}


@pytest.hookimpl(tryfirst=True)  # before tests/conftest.py deselects what is slow
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        path = Path(item.path)
        if path.parent != HERE:
            continue
        if getattr(item, "originalname", item.name) in SLOW.get(path.name, ()):
            item.add_marker(pytest.mark.slow)
