from __future__ import annotations

from pathlib import Path

import pytest

import milepost
from milepost.config import Settings, load_settings
from milepost.errors import ConfigError, InvalidInput


def test_defaults_put_home_in_the_current_directory(tmp_path: Path) -> None:
    resolved = load_settings(env={}, cwd=tmp_path)
    assert resolved.settings.home == tmp_path / ".milepost"
    assert (
        resolved.settings.resolved_metadata_uri() == f"sqlite:///{tmp_path}/.milepost/milepost.db"
    )
    assert resolved.sources["home"] == "default"
    assert resolved.project_file is None


def test_environment_beats_project_file_beats_defaults(tmp_path: Path) -> None:
    (tmp_path / "milepost.toml").write_text(
        'home = "store"\nmetric_flush_interval = 2.5\nexperiment = "from-file"\n'
    )
    sub = tmp_path / "src" / "pkg"
    sub.mkdir(parents=True)
    resolved = load_settings(env={"MILEPOST_EXPERIMENT": "from-env"}, cwd=sub)
    s = resolved.settings
    assert resolved.project_file == tmp_path / "milepost.toml"
    assert s.experiment == "from-env" and resolved.sources["experiment"] == "env"
    assert s.metric_flush_interval == 2.5 and resolved.sources["metric_flush_interval"] == "file"
    # relative paths in the file are relative to the file, not to the current directory
    assert s.home == tmp_path / "store"
    assert s.heartbeat_interval == 30.0 and resolved.sources["heartbeat_interval"] == "default"


def test_env_path_is_relative_to_cwd(tmp_path: Path) -> None:
    resolved = load_settings(env={"MILEPOST_HOME": "h"}, cwd=tmp_path)
    assert resolved.settings.home == tmp_path / "h"


def test_unknown_key_in_project_file_suggests_the_right_one(tmp_path: Path) -> None:
    (tmp_path / "milepost.toml").write_text('metadata_url = "sqlite://"\n')
    with pytest.raises(ConfigError, match=r"unknown setting 'metadata_url'.*metadata_uri"):
        load_settings(env={}, cwd=tmp_path)


def test_bad_value_names_the_variable(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="MILEPOST_METRIC_BATCH_SIZE"):
        load_settings(env={"MILEPOST_METRIC_BATCH_SIZE": "lots"}, cwd=tmp_path)


def test_invalid_toml_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / "milepost.toml").write_text("home = \n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings(env={}, cwd=tmp_path)


def test_actor_prefers_the_setting(tmp_path: Path) -> None:
    assert load_settings(env={"MILEPOST_USER": "ada"}, cwd=tmp_path).settings.actor() == "ada"
    assert load_settings(env={}, cwd=tmp_path).settings.actor()


def test_to_env_gives_a_child_process_the_same_settings(tmp_path: Path) -> None:
    settings = Settings(
        home=Path("rel/home"),
        metadata_uri="postgresql+psycopg://127.0.0.1:5432/test",
        trust_pickle=True,
        metric_batch_size=7,
    )
    env = settings.to_env()
    assert env["MILEPOST_HOME"] == str(Path("rel/home").resolve())
    assert env["MILEPOST_TRUST_PICKLE"] == "true" and "MILEPOST_ONLINE_URI" not in env
    child = load_settings(env=env, cwd=tmp_path).settings
    assert child.model_dump() == settings.model_dump() | {"home": Path("rel/home").resolve()}


def test_the_serving_token_is_a_secret_that_reaches_child_processes(tmp_path: Path) -> None:
    settings = load_settings(env={"MILEPOST_SERVING_TOKEN": "t0ken-v4lue"}, cwd=tmp_path).settings
    assert settings.serving_token is not None
    assert settings.serving_token.get_secret_value() == "t0ken-v4lue"
    assert "t0ken-v4lue" not in repr(settings) and "t0ken-v4lue" not in str(settings.serving_token)
    env = settings.to_env()
    assert env["MILEPOST_SERVING_TOKEN"] == "t0ken-v4lue"
    assert load_settings(env=env, cwd=tmp_path).settings.serving_token == settings.serving_token


@pytest.mark.parametrize("user", ["eve\x1b[2J", "a\nb", "x\u202e", "bad\ud800", "u" * 257])
def test_the_user_follows_the_rule_of_names(tmp_path: Path, user: str) -> None:
    with pytest.raises(ConfigError, match="MILEPOST_USER"):
        load_settings(env={"MILEPOST_USER": user}, cwd=tmp_path)


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"metric_flush_interval": "often"}, "metric_flush_interval' from configure"),
        ({"metric_flush_intervall": 1}, "Did you mean 'metric_flush_interval'"),
        ({"user": 42}, "user' from configure"),
        ({"home": None}, "home' from configure"),
    ],
)
def test_configure_with_bad_overrides_is_a_config_error(
    tmp_path: Path, overrides: dict[str, object], reason: str
) -> None:
    with pytest.raises(ConfigError, match=reason):
        milepost.configure(cwd=tmp_path, **overrides)


def test_load_settings_checks_its_arguments(tmp_path: Path) -> None:
    for kwargs, reason in (
        ({"env": ["MILEPOST_HOME"]}, "env must be a mapping"),
        ({"env": {"MILEPOST_HOME": 3}}, "must be text"),
        ({"env": {}, "cwd": 3}, "cwd must be a path"),
    ):
        with pytest.raises(InvalidInput, match=reason):
            load_settings(**kwargs)  # type: ignore[arg-type]
    with pytest.raises(InvalidInput, match="is not a directory"):
        milepost.configure(cwd=tmp_path / "missing")


def test_every_setting_is_in_the_readme_settings_table() -> None:
    readme = (Path(__file__).parents[2] / "README.md").read_text(encoding="utf-8")
    table = readme.split("## Settings", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in table.splitlines() if line.startswith("| `")]
    named = {name for row in rows for name in row.split("|")[1].replace("`", " ").split()}
    assert set(Settings.model_fields) - named == set()
