"""The three background writers take their memory bound from the settings.

Each writer's behaviour at its bound (backpressure for metrics and pushes, dropping the
newest prediction-log rows) is tested with the writers themselves (unit/test_batcher.py,
contract/test_background_writers.py); here: the bound a user sets in ``milepost.toml`` or
``MILEPOST_*`` is the one each writer of a runtime uses.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from milepost import Runtime
from milepost.config import Settings, load_settings
from milepost.errors import ConfigError
from milepost.features.push import MAX_PENDING_ROWS
from milepost.server.replica import prediction_logger
from milepost.serving.logger import MAX_PENDING as LOG_MAX_PENDING
from milepost.tracking._writer import MAX_PENDING as METRIC_MAX_PENDING


def test_the_defaults_are_the_writers_own() -> None:
    s = Settings()
    assert s.metric_max_pending == METRIC_MAX_PENDING
    assert s.push_max_pending_rows == MAX_PENDING_ROWS
    assert s.prediction_log_max_pending == LOG_MAX_PENDING


def test_each_writer_of_a_runtime_uses_its_setting(tmp_path: Path) -> None:
    with Runtime.open(
        home=tmp_path / "home",
        metric_max_pending=7,
        push_max_pending_rows=11,
        prediction_log_max_pending=13,
    ) as rt:
        assert rt.tracking.writer._batcher.max_pending == 7
        assert rt.features.pushes._batcher.max_pending == 11
        logger = prediction_logger(rt, "churn")
        try:
            assert logger._batcher.max_pending == 13
        finally:
            logger.close()


def test_the_bounds_come_from_the_project_file_and_environment(tmp_path: Path) -> None:
    (tmp_path / "milepost.toml").write_text("push_max_pending_rows = 5000\n")
    resolved = load_settings(env={"MILEPOST_METRIC_MAX_PENDING": "64"}, cwd=tmp_path)
    assert resolved.settings.push_max_pending_rows == 5000
    assert resolved.settings.metric_max_pending == 64
    assert resolved.sources["prediction_log_max_pending"] == "default"


@pytest.mark.parametrize(
    "name", ["metric_max_pending", "push_max_pending_rows", "prediction_log_max_pending"]
)
def test_a_bound_below_one_is_refused_naming_the_setting(tmp_path: Path, name: str) -> None:
    with pytest.raises(ConfigError, match=name):
        load_settings(env={f"MILEPOST_{name.upper()}": "0"}, cwd=tmp_path)
