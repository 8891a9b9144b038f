"""A temporary embedded Milepost holding a project's sample data, features and policy.

::

    from milepost.project import sandbox

    with sandbox() as project:              # the project of the nearest milepost.toml
        run = milepost.run_pipeline(project.config.pipeline)
        assert run.status == "succeeded"

Inside the block the process's runtime is a fresh embedded Milepost (a temporary home
unless ``home`` is given; never a server, whatever ``MILEPOST_URL`` says), so
``milepost.run_pipeline``, ``milepost.data``, ``FeatureStore`` and ``milepost.Client()``
all use it, and so do the processes a pipeline run starts (step workers get the run's
settings with each task; child processes started with the environment get the sandbox's
``MILEPOST_*`` settings and the project on ``PYTHONPATH``). On entry:

1. each DataFrame ``sample_data()`` returns is registered as a dataset of its name;
2. the feature definitions are applied and materialized into the online store, up to
   the later of now and just after the newest time in the sample data (so the sample's
   rows are online whatever its fixed "now" is);
3. the policy file is set on the project's model (created, with no version yet).

On exit, even on error, the previous runtime, stores, ``sys.path`` and environment come
back, the project's modules imported inside are forgotten (the next sandbox imports the
files as they are then) and a temporary home is removed. One sandbox at a time per
process (they nest; they are not thread-safe): it switches process-wide state, as
``milepost.configure`` does.
The project's ``src/`` and root are first on ``sys.path`` inside, so it works before
``pip install -e .``.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from milepost.config import ENV_PREFIX, ResolvedSettings, Settings, build_settings
from milepost.errors import InvalidInput
from milepost.project._imports import import_ref, on_path
from milepost.project.config import Project, load_project

if TYPE_CHECKING:
    from collections.abc import Iterator

    import pandas as pd

    from milepost._context import Runtime
    from milepost.config import Source

__all__ = ["load_sample", "sample_end", "sandbox"]

#: Settings a sandbox resets, so the project's own stores (or server) are never touched.
_RESET = (
    "url",
    "token",
    "metadata_uri",
    "artifact_uri",
    "online_uri",
    "offline_uri",
    "s3_endpoint_url",
)


@contextmanager
def sandbox(project: Project | None = None, *, home: str | Path | None = None) -> Iterator[Project]:
    """The process switched to a fresh embedded Milepost loaded with the project.

    Args:
        project: the project (default: the one of the nearest ``milepost.toml``).
        home: where the sandbox's stores live (default: a temporary directory, removed
            on exit; a given one is kept, to look at afterwards).

    Yields:
        The project with the sandbox's settings (``project.settings.settings.home``).

    Raises:
        InvalidInput: ``sample_data`` is not set, fails, or does not return
            ``{dataset name: DataFrame}``; the definitions do not load.
    """
    from milepost._context import Runtime
    from milepost.stores.context import StoreContext, swap_process_stores

    project = project or load_project()
    temporary = home is None
    where = Path(tempfile.mkdtemp(prefix="milepost-sandbox-")) if home is None else Path(home)
    resolved = _settings(project, where)
    inside = replace(project, settings=resolved)
    ctx = StoreContext(resolved)
    previous = swap_process_stores(ctx, None)
    saved_env = _switch_env(resolved.settings)
    try:
        with on_path(project, env=True, forget=True):
            _load(inside, Runtime(context=ctx))
            yield inside
    finally:
        swap_process_stores(*previous)
        os.environ.clear()
        os.environ.update(saved_env)
        try:
            ctx.close()
        finally:
            if temporary:
                shutil.rmtree(where, ignore_errors=True)


def _settings(project: Project, home: Path) -> ResolvedSettings:
    base = project.settings
    values = base.settings.model_dump() | dict.fromkeys(_RESET) | {"home": home.resolve()}
    sources: dict[str, Source] = dict(base.sources)
    sources.update(dict.fromkeys((*_RESET, "home"), "code"))
    return build_settings(values, sources, base.project_file)


def _switch_env(settings: Settings) -> dict[str, str]:
    """The sandbox's settings in the environment (for child processes); returns the old
    environment."""
    saved = dict(os.environ)
    for key in Settings.model_fields:
        os.environ.pop(ENV_PREFIX + key.upper(), None)
    os.environ.update(settings.to_env())
    return saved


def load_sample(project: Project) -> dict[str, pd.DataFrame]:
    """Call the project's ``sample_data`` function: ``{dataset name: DataFrame}``.

    Raises:
        InvalidInput: no ``sample_data`` in ``[project]``, the function fails, or it
            returns something else.
    """
    import pandas as pd

    ref = project.config.sample_data
    if ref is None:
        raise InvalidInput(
            "[project] has no sample_data: there is nothing to load into a sandbox.",
            hint="Point sample_data at a function returning {dataset name: DataFrame} "
            '(e.g. sample_data = "my_project.data:sample").',
        )
    fn = import_ref(ref, "sample_data")
    try:
        frames = fn()
    except Exception as exc:
        raise InvalidInput(f"sample_data {ref!r} failed: {type(exc).__name__}: {exc}") from exc
    if not isinstance(frames, dict) or not all(
        isinstance(k, str) and isinstance(v, pd.DataFrame) for k, v in frames.items()
    ):
        raise InvalidInput(
            f"sample_data {ref!r} returned {type(frames).__name__}, not "
            "{dataset name: DataFrame}.",
            hint='Return e.g. {"my_project.customers": df, "my_project.labels": labels}.',
        )
    return frames


def sample_end(frames: dict[str, pd.DataFrame]) -> datetime | None:
    """Just after the newest time in the sample (None: it holds no times).

    A sample generated around a fixed "now" is current at this moment: the consistency
    check reads both paths then, and the sandbox materializes at least up to it.
    """
    import pandas as pd

    end: datetime | None = None
    for frame in frames.values():
        for column in frame.columns:
            values = frame[column]
            if pd.api.types.is_datetime64_any_dtype(values) and values.notna().any():
                newest = pd.Timestamp(values.max())
                newest = newest.tz_localize("UTC") if newest.tzinfo is None else newest
                moment = newest.to_pydatetime() + timedelta(seconds=1)
                end = moment if end is None else max(end, moment)
    return end


def _load(project: Project, rt: Runtime) -> None:
    frames = load_sample(project)
    for name, frame in frames.items():
        rt.data.register(name, frame, description="sample data (milepost.project.sandbox)")
    store = rt.feature_store(project.feature_repo)
    store.apply()
    now = datetime.now(UTC)
    store.materialize(None, max(now, sample_end(frames) or now))
    _set_policy(project, rt)


def _set_policy(project: Project, rt: Runtime) -> Any:
    path = project.path(project.config.policy or None)
    if path is None:
        return None
    # on a model with no version yet this creates it, as `milepost models policy` does
    return rt.promotion.set_policy(project.config.model, path)
