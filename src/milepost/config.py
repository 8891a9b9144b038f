"""Settings: resolved once, passed down.

Precedence, highest first:

1. ``MILEPOST_*`` environment variables (``MILEPOST_METADATA_URI`` sets ``metadata_uri``);
2. ``milepost.toml`` in the project: the current directory or its nearest parent that has
   one (keys at the top level, same names as below; its ``[project]`` table is not
   settings but the project's description, read by :mod:`milepost.project`);
3. the defaults below.

Relative paths are resolved against the directory of the source that gave them: the
project directory for ``milepost.toml`` and for defaults (the current directory when
there is no project file), the current directory for environment variables.
"""

from __future__ import annotations

import getpass
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

from milepost._actor import current_actor
from milepost._validate import local_path, safe_chars, short_repr
from milepost.errors import ConfigError, InvalidInput, did_you_mean

__all__ = [
    "ENV_PREFIX",
    "PROJECT_FILE",
    "PROJECT_TABLE",
    "ResolvedSettings",
    "Settings",
    "build_settings",
    "load_settings",
]

ENV_PREFIX = "MILEPOST_"
PROJECT_FILE = "milepost.toml"
#: The table of ``milepost.toml`` describing the project (see :mod:`milepost.project`).
PROJECT_TABLE = "project"

Source = Literal["env", "file", "default", "code"]


class Settings(BaseModel):
    """Everything Milepost can be told. Build it with :func:`load_settings`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    home: Path = Field(
        default=Path(".milepost"),
        description="Where embedded stores live (metadata database, artifacts).",
    )
    metadata_uri: str | None = Field(
        default=None,
        description="SQLAlchemy URI of the metadata store; default sqlite:///<home>/milepost.db. "
        "PostgreSQL: postgresql+psycopg://user@host:5432/db.",
    )
    artifact_uri: str | None = Field(
        default=None,
        description="Where artifacts go: a local directory (default <home>/artifacts) "
        "or s3://bucket/prefix.",
    )
    experiment: str = Field(
        default="Default", description="Experiment of runs started without naming one."
    )
    online_uri: str | None = Field(
        default=None,
        description="Online feature store: sqlite:///<home>/online.db (default) or "
        "redis://host:6379/0.",
    )
    offline_uri: str | None = Field(
        default=None,
        description="Offline feature store root (pushed rows, Parquet): <home>/offline (default) "
        "or s3://bucket/prefix.",
    )
    feature_repo: str = Field(
        default="features.py", description="The Python file (or module) with feature definitions."
    )
    s3_endpoint_url: str | None = Field(
        default=None, description="Endpoint of an S3-compatible server (MinIO, moto, ...)."
    )
    user: str | None = Field(
        default=None, description="The actor recorded on runs and audit events; default OS user."
    )
    url: str | None = Field(
        default=None,
        description="A `milepost server` to use instead of the local stores (remote mode): "
        "the Python API and the CLI then make the same calls over HTTP, e.g. "
        "http://milepost.internal:8080.",
    )
    token: SecretStr | None = Field(
        default=None,
        description="API token for `url` (`milepost tokens create`); sent as "
        "`Authorization: Bearer <token>`.",
    )
    metric_flush_interval: float = Field(
        default=0.5, gt=0, description="Seconds between background metric flushes."
    )
    metric_batch_size: int = Field(
        default=20_000, gt=0, description="Buffered metric values that trigger an early flush."
    )
    heartbeat_interval: float = Field(
        default=30.0, gt=0, description="Seconds between heartbeats of a live run."
    )
    stale_run_timeout: float = Field(
        default=600.0,
        gt=0,
        description="A RUNNING run from another host with no heartbeat for this long is KILLED.",
    )
    trust_pickle: bool = Field(
        default=False,
        description="Load pickled (python-flavor) models without trusted=True. Unpickling runs "
        "code from the file: enable only if you trust everyone who can write models.",
    )
    trusted_types: str = Field(
        default="",
        description="Comma-separated types this process trusts in skops model files beyond "
        "the built-in allow-list (e.g. mypkg.MyTransformer). Loading trusts only this, the "
        "load call's trusted_types and the approver-set list; never what a model's author "
        "declared.",
    )
    feature_server_timeout: float = Field(
        default=3.0,
        gt=0,
        description="Seconds the feature server waits for an online store call before it "
        "answers 504 (the call runs off the event loop, so other requests keep being answered).",
    )
    sqlite_busy_timeout: float = Field(
        default=60.0, gt=0, description="Seconds a SQLite writer waits for the lock."
    )
    serving_token: SecretStr | None = Field(
        default=None,
        description="Shared secret of the model server (`milepost endpoints serve`): when set, "
        "feedback and pinning a variant that takes no traffic need the header "
        "`Authorization: Bearer <token>`. Use a long random value.",
    )
    serving_auth: bool = Field(
        default=False,
        description="The model server (`milepost endpoints serve`) takes feedback only with "
        "a credential: an API token with the member role or more (`milepost tokens create`), "
        "or serving_token. Pinning a variant that takes no traffic always needs one.",
    )
    feature_server_auth: bool = Field(
        default=False,
        description="The feature server (`milepost features serve`) answers online reads "
        "only with an API token (viewer role or more); /health stays open.",
    )
    auth_cache_seconds: float = Field(
        default=5.0,
        ge=0,
        le=300,
        allow_inf_nan=False,
        description="Seconds the model and feature servers reuse a checked API token's "
        "answer, so a revoked or expired token, or a role taken away, stops working within "
        "this bound (the platform server checks every request); 0 checks every request.",
    )
    server_max_upload_mb: int = Field(
        default=1024,
        gt=0,
        description="Largest artifact upload `milepost server` accepts, in MiB; a larger "
        "one is answered 413 and nothing of it is stored.",
    )
    http_header_timeout: float = Field(
        default=10.0,
        gt=0,
        description="Seconds a client of `milepost endpoints serve` or `milepost features "
        "serve` has to send a request's headers (from connecting, or from the request's "
        "first byte).",
    )
    http_body_timeout: float = Field(
        default=30.0,
        gt=0,
        description="Seconds a client has to send a request's body once its headers arrived.",
    )
    http_max_connections: int = Field(
        default=1000,
        gt=0,
        description="Open connections per server process (each replica, each feature server "
        "worker); requests on connections beyond it are answered 503.",
    )
    db_connect_timeout: float = Field(
        default=10.0,
        gt=0,
        allow_inf_nan=False,
        description="Seconds to wait for a PostgreSQL metadata database to accept a "
        "connection (whole seconds, at least 2: libpq's granularity).",
    )
    db_statement_timeout: float = Field(
        default=60.0,
        ge=0,
        allow_inf_nan=False,
        description="Seconds one statement on a PostgreSQL metadata database may run, lock "
        "waits included, before it is cancelled; 0 turns the limit off. Migrations are exempt.",
    )
    metric_flush_timeout: float = Field(
        default=10.0,
        ge=0,
        allow_inf_nan=False,
        description="Seconds flush(), run end and interpreter exit keep retrying an "
        "unavailable metadata database before raising (the values stay queued and the "
        "background writer keeps retrying).",
    )
    metric_max_pending: int = Field(
        default=500_000,
        gt=0,
        description="Metric values held in memory (queued plus being written). At the bound "
        "log_metric blocks until the writer makes room, and after metric_flush_timeout "
        "raises BackendUnavailable (that value was not logged): backpressure, never a "
        "silent loss. About 180 bytes a value.",
    )
    push_max_pending_rows: int = Field(
        default=1_000_000,
        gt=0,
        description="Pushed feature rows held in memory on their way to the offline store. "
        "At the bound push() blocks up to 10 s for room, then raises BackendUnavailable "
        "(the rows reached the online store, not the offline one; push them again).",
    )
    prediction_log_max_pending: int = Field(
        default=100_000,
        gt=0,
        description="Prediction-log rows a model server replica holds in memory. At the "
        "bound new rows are dropped and counted (milepost_prediction_log_dropped_total on "
        "/metrics): a request is never slowed by its log.",
    )
    prediction_log_retention_days: float | None = Field(
        default=None,
        gt=0,
        allow_inf_nan=False,
        description="Days a prediction-log segment is kept after its newest row (then "
        "`milepost endpoints prune-logs` and the scheduler delete it with the feedback of "
        "its requests); unset keeps logs forever. Segments with decision records follow "
        "decision_retention_days instead.",
    )
    decision_retention_days: float | None = Field(
        default=None,
        gt=0,
        allow_inf_nan=False,
        description="Days a consequential endpoint's decision records (its prediction-log "
        "segments with explanations) are kept after their newest row; unset keeps them "
        "forever.",
    )

    @field_validator("user")
    @classmethod
    def _user_is_a_name(cls, value: str | None) -> str | None:
        """The actor is recorded everywhere: it follows the rule of every name."""
        if value is not None:
            safe_chars(value)
            if len(value) > 256:
                raise ValueError("it is longer than 256 characters")
        return value

    def resolved_metadata_uri(self) -> str:
        """The metadata URI, defaulting to a SQLite file in ``home``."""
        if self.metadata_uri:
            return self.metadata_uri
        return f"sqlite:///{(self.home / 'milepost.db').as_posix()}"

    def resolved_artifact_uri(self) -> str:
        """The artifact root, defaulting to ``<home>/artifacts``."""
        if self.artifact_uri:
            return self.artifact_uri
        return str(self.home / "artifacts")

    def resolved_online_uri(self) -> str:
        """The online store URI, defaulting to a SQLite file in ``home``."""
        return self.online_uri or f"sqlite:///{(self.home / 'online.db').as_posix()}"

    def resolved_offline_uri(self) -> str:
        """The offline store root, defaulting to ``<home>/offline``."""
        return self.offline_uri or str(self.home / "offline")

    def to_env(self) -> dict[str, str]:
        """These settings as ``MILEPOST_*`` variables: a child process started with them
        (``milepost endpoints serve``, a pipeline worker) sees the same stores."""
        out = {}
        for key, value in self.model_dump().items():
            if value is None:
                continue
            plain = value.get_secret_value() if isinstance(value, SecretStr) else value
            text = str(plain).lower() if isinstance(plain, bool) else str(plain)
            if key in _PATH_FIELDS:
                text = str(Path(value).resolve())
            out[ENV_PREFIX + key.upper()] = text
        return out

    def trusted_type_list(self) -> list[str]:
        """``trusted_types`` as a list."""
        return [t.strip() for t in self.trusted_types.split(",") if t.strip()]

    def actor(self) -> str:
        """Who is acting: the identity of the server request being answered
        (:func:`milepost._actor.acting_as`), else ``user``, else the operating-system user."""
        acting = current_actor()
        if acting is not None:
            return acting
        if self.user:
            return self.user
        try:
            return getpass.getuser()
        except (KeyError, OSError):  # no passwd entry, e.g. in some containers
            return f"uid-{os.getuid()}"


_PATH_FIELDS = {"home"}


@dataclass(frozen=True)
class ResolvedSettings:
    """Settings plus where each value came from (shown by ``milepost info``)."""

    settings: Settings
    sources: dict[str, Source] = field(default_factory=dict)
    project_file: Path | None = None


def find_project_file(start: Path) -> Path | None:
    """The nearest ``milepost.toml`` in ``start`` or a parent directory."""
    for directory in (start, *start.parents):
        candidate = directory / PROJECT_FILE
        if candidate.is_file():
            return candidate
    return None


def _read_project_file(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            data = tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(
            f"{path} is not valid TOML: {exc}.", hint="Fix the file or remove it."
        ) from exc
    except OSError as exc:
        raise ConfigError(f"Cannot read {path}: {exc.strerror}.") from exc
    # The [project] table describes the project to `milepost check` and `milepost init`'s
    # tooling (milepost.project); it holds no settings.
    if isinstance(data.get(PROJECT_TABLE), dict):
        data = {k: v for k, v in data.items() if k != PROJECT_TABLE}
    known = set(Settings.model_fields)
    for key in data:
        if key not in known:
            raise ConfigError(
                f"{path}: unknown setting {key!r}.{did_you_mean(key, known)}",
                hint="Known settings: " + ", ".join(sorted(known)) + ".",
            )
    return data


def load_settings(
    env: Mapping[str, str] | None = None, cwd: Path | None = None
) -> ResolvedSettings:
    """Resolve settings from the environment, the project file and defaults.

    Args:
        env: the environment to read (default ``os.environ``).
        cwd: where to start looking for ``milepost.toml`` (default the current directory).

    Raises:
        ConfigError: a value has the wrong type or an unknown key is in the project file.
    """
    if env is not None and not isinstance(env, Mapping):
        raise InvalidInput(
            f"env must be a mapping of variable names to text, got {short_repr(env)}."
        )
    env = os.environ if env is None else env
    cwd = Path.cwd() if cwd is None else local_path(cwd, "cwd")
    project_file = find_project_file(cwd)
    base_dir = project_file.parent if project_file else cwd

    values: dict[str, Any] = {}
    sources: dict[str, Source] = {}
    if project_file:
        for key, value in _read_project_file(project_file).items():
            values[key] = base_dir / value if key in _PATH_FIELDS else value
            sources[key] = "file"
    for key in Settings.model_fields:
        raw = env.get(ENV_PREFIX + key.upper())
        if raw is not None and not isinstance(raw, str):
            raise InvalidInput(
                f"env[{ENV_PREFIX + key.upper()!r}] must be text, got {short_repr(raw)}."
            )
        if raw is not None and raw != "":
            values[key] = cwd / raw if key in _PATH_FIELDS else raw
            sources[key] = "env"
    if "home" not in values:
        values["home"] = base_dir / ".milepost"
    for key in Settings.model_fields:
        sources.setdefault(key, "default")

    return build_settings(values, sources, project_file)


def build_settings(
    values: dict[str, Any], sources: dict[str, Source], project_file: Path | None
) -> ResolvedSettings:
    """Settings from resolved values; a wrong one is a ConfigError naming where it came from.

    Raises:
        ConfigError: a value has the wrong type, is out of range or the key is unknown.
    """
    try:
        settings = Settings(**values)
    except ValidationError as exc:
        first = exc.errors()[0]
        key = str(first["loc"][0]) if first["loc"] else "?"
        origin = {
            "env": f"environment variable {ENV_PREFIX}{key.upper()}",
            "file": f"{project_file}",
            "default": "defaults",
            "code": "configure()",
        }[sources.get(key, "default")]
        known = "" if key in Settings.model_fields else did_you_mean(key, Settings.model_fields)
        raise ConfigError(
            f"Setting {key!r} from {origin} is invalid: {first['msg']} "
            f"(got {short_repr(first.get('input'))}).{known}",
            hint="Fix the value or unset it to use the default.",
        ) from exc
    return ResolvedSettings(settings=settings, sources=sources, project_file=project_file)
