"""``milepost check project``: is the project well formed? Nothing runs, no store opens.

Each check is a row (name, target, ok, detail); a failure's detail says what is wrong
and what to do:

- ``project``: ``milepost.toml``'s ``[project]`` table parses and its names are valid
  (the model's, the endpoints');
- ``definitions``: the feature definitions (the ``feature_repo`` setting) load, with the
  counts of entities, feature views and on-demand views;
- ``policy``: the promotion policy file parses (:meth:`PromotionPolicy.from_yaml`), its
  gates and deploy section summarized; an automatic deploy names the project's endpoint;
- ``trigger``: one row per entry of the triggers file, validated as
  ``milepost triggers add`` validates it (the pipeline imports and takes the parameters,
  the cron parses, one cause) except what only a store knows (that the monitor, dataset
  or feature view exists);
- ``pipeline``, ``train``, ``sample_data``: the references import; the pipeline is a
  :class:`milepost.pipelines.Pipeline`, the others are callable (not called);
- ``tests``: the unit and integration test directories exist;
- ``server policy`` (remote mode only, ``MILEPOST_URL`` set): the server's policy of the
  model equals the policy file.

A policy or triggers file set to ``""`` in ``[project]`` (TOML has no null) is skipped,
not failed. The
project's ``src/`` and root are searched first while its modules are imported, so this
works before ``pip install -e .`` (see :mod:`milepost.project._imports`).

The triggers file is a YAML list; each entry has ``name``, ``pipeline``, optional
``params`` (a mapping) and exactly one cause: ``schedule`` (cron in UTC or ``every
10m``), ``on_drift`` or ``on_performance`` (a monitor), or ``on_data`` with
``min_rows``; optional ``enabled``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from milepost._records import record_dict
from milepost.errors import ConfigError, InvalidInput, MilepostError, NotFound
from milepost.project._imports import import_ref, on_path
from milepost.project.config import Project, load_project

if TYPE_CHECKING:
    from collections.abc import Callable

    from milepost.promotion.policy import PromotionPolicy

__all__ = ["Check", "ProjectReport", "check_project", "read_triggers"]

#: The keys of one entry of the triggers file (``define_trigger``'s arguments).
TRIGGER_KEYS = (
    "name",
    "pipeline",
    "params",
    "schedule",
    "on_drift",
    "on_performance",
    "on_data",
    "min_rows",
    "enabled",
)


@dataclass(frozen=True)
class Check:
    """One check: what was checked (``name``, ``target``), whether it passed, and what
    was found or, for a failure, what is wrong and what to do."""

    name: str
    target: str
    ok: bool
    detail: str

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return record_dict(self)


@dataclass(frozen=True)
class ProjectReport:
    """Every check of a project, in order."""

    root: str
    checks: list[Check] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when every check passed."""
        return all(c.ok for c in self.checks)

    @property
    def failures(self) -> list[Check]:
        """The checks that failed."""
        return [c for c in self.checks if not c.ok]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (with ``ok``)."""
        return {"root": self.root, "ok": self.ok, "checks": [c.to_dict() for c in self.checks]}

    def __repr__(self) -> str:
        bad = len(self.failures)
        verdict = "ok" if not bad else f"{bad} failed"
        return f"ProjectReport({self.root}: {len(self.checks)} checks, {verdict})"


def _problem(exc: BaseException) -> str:
    if isinstance(exc, MilepostError):
        return exc.message + (f" {exc.hint}" if exc.hint else "")
    return f"{type(exc).__name__}: {exc}"


class _Checks:
    """Collects checks; ``run`` turns a raised error into a failed check."""

    def __init__(self) -> None:
        self.items: list[Check] = []

    def run(self, name: str, target: str, fn: Callable[[], str]) -> bool:
        try:
            detail = fn()
        except Exception as exc:  # the user's code may raise anything while importing
            self.items.append(Check(name, target, False, _problem(exc)))
            return False
        self.items.append(Check(name, target, True, detail))
        return True


def check_project(project: Project | None = None, *, start: Path | None = None) -> ProjectReport:
    """Check a project without running anything (``milepost check project``).

    Args:
        project: the project (default: :func:`load_project` from ``start``); a
            ``milepost.toml`` that does not parse is a failed ``project`` check.
        start: where to look for ``milepost.toml`` when ``project`` is None.

    Returns:
        The report; ``report.ok`` is False when any check failed.
    """
    if project is None:
        try:
            project = load_project(start)
        except ConfigError as exc:
            where = str(start or Path.cwd())
            return ProjectReport(where, [Check("project", "milepost.toml", False, _problem(exc))])
    checks = _Checks()
    cfg = project.config
    checks.run("project", "milepost.toml", lambda: _names(project))
    with on_path(project, forget=True):
        checks.run("definitions", project.feature_repo, lambda: _definitions(project))
        policy = _policy_file(project, checks)
        _triggers(project, checks)
        checks.run("pipeline", cfg.pipeline, lambda: _pipeline(cfg.pipeline))
        checks.run("train", cfg.train, lambda: _callable(cfg.train, "train"))
        if cfg.sample_data is not None:
            checks.run(
                "sample_data", cfg.sample_data, lambda: _callable(cfg.sample_data, "sample_data")
            )
    tests = (("unit tests", cfg.unit_tests), ("integration tests", cfg.integration_tests))
    for what, relative in tests:
        checks.run("tests", relative, partial(_directory, project, relative, what))
    if project.settings.settings.url and policy is not None:
        checks.run(
            "server policy",
            f"{cfg.model} on {project.settings.settings.url}",
            lambda: _server_policy(project, policy),
        )
    return ProjectReport(str(project.root), checks.items)


def _names(project: Project) -> str:
    from milepost.models.uri import check_model_name
    from milepost.promotion.policy import DeployPolicy

    cfg = project.config
    check_model_name(cfg.model)
    for key in ("endpoint", "staging_endpoint"):
        value = getattr(cfg, key)
        if value is not None:
            try:
                DeployPolicy.parse({"endpoint": value})
            except InvalidInput as exc:
                raise InvalidInput(
                    f"[project] {key} {value!r} is not an endpoint name.",
                    hint="Use letters, digits, '_' and '-' (up to 128).",
                ) from exc
    return f"{cfg.name}: model {cfg.model}, target {cfg.target} in {cfg.labels}"


def _definitions(project: Project) -> str:
    from milepost.features.definitions import FeatureView
    from milepost.features.repo import load_definitions

    defs = load_definitions(project.feature_repo)
    views = [v.name for v in defs.views.values() if isinstance(v, FeatureView)]
    on_demand = [v.name for v in defs.views.values() if not isinstance(v, FeatureView)]

    def count(n: int, what: str) -> str:
        return f"{n} {what}{'' if n == 1 else 's'}"

    names = ", ".join([*views, *on_demand])
    return (
        f"{count(len(defs.entities), 'entity').replace('entitys', 'entities')}, "
        f"{count(len(views), 'feature view')}, {count(len(on_demand), 'on-demand view')}"
        f" ({names})"
    )


def _policy_file(project: Project, checks: _Checks) -> PromotionPolicy | None:
    path = project.path(project.config.policy or None)
    if path is None:
        return None
    from milepost.promotion.policy import PromotionPolicy

    parsed: list[PromotionPolicy] = []

    def parse() -> str:
        if not path.is_file():
            raise InvalidInput(
                f"Policy file {path} does not exist.",
                hint="Write it (see `milepost models policy --help`), or set "
                'policy = "" in [project] when the project sets no policy.',
            )
        policy = PromotionPolicy.from_yaml(path)
        parsed.append(policy)
        deploy = policy.deploy
        endpoint = project.config.endpoint
        if deploy.automatic and endpoint and deploy.endpoint not in (None, endpoint):
            raise InvalidInput(
                f"{path.name} deploys automatically to endpoint {deploy.endpoint!r}, but "
                f"[project] endpoint is {endpoint!r}.",
                hint="Name the same endpoint in both: the pipeline deploys the policy's, "
                "the CI shows the project's.",
            )
        return _describe_policy(policy)

    checks.run("policy", str(project.config.policy), parse)
    return parsed[0] if parsed else None


def _describe_policy(policy: PromotionPolicy) -> str:
    def gates(items: list[Any]) -> str:
        return ", ".join(g.name or g.kind for g in items) or "no gates"

    deploy = policy.deploy.describe() if policy.deploy.automatic else "not automatic"
    return (
        f"staging: {gates(policy.staging)}; production: {gates(policy.production)}; "
        f"deploy: {deploy}"
    )


def read_triggers(path: Path) -> list[dict[str, Any]]:
    """The entries of a triggers file (a YAML list of mappings; see the module docstring).

    Raises:
        InvalidInput: the file is missing, not YAML, not a list of mappings, or an entry
            has an unknown key (named, with the keys it may have).
    """
    import yaml

    from milepost.errors import did_you_mean

    if not path.is_file():
        raise InvalidInput(
            f"Triggers file {path} does not exist.",
            hint='Write it, or set triggers = "" in [project] when the project has none.',
        )
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"{path.name} is not valid YAML: {exc}") from exc
    if data is None:
        return []
    if not isinstance(data, list) or not all(isinstance(e, dict) for e in data):
        raise InvalidInput(
            f"{path.name} must be a list of triggers (mappings), got {type(data).__name__}.",
            hint="- {name: nightly, pipeline: pkg.pipeline:release, schedule: '0 3 * * *'}",
        )
    for i, entry in enumerate(data):
        unknown = [k for k in entry if k not in TRIGGER_KEYS]
        if unknown:
            raise InvalidInput(
                f"{path.name} entry {i + 1} ({entry.get('name', '?')}): unknown key "
                f"{unknown[0]!r}.{did_you_mean(str(unknown[0]), TRIGGER_KEYS)}",
                hint=f"A trigger's keys: {', '.join(TRIGGER_KEYS)}.",
            )
    return data


def _triggers(project: Project, checks: _Checks) -> None:
    path = project.path(project.config.triggers or None)
    if path is None:
        return
    entries: list[dict[str, Any]] = []

    def read() -> str:
        entries.extend(read_triggers(path))
        return f"{len(entries)} trigger{'' if len(entries) == 1 else 's'}"

    if not checks.run("triggers", str(project.config.triggers), read):
        return
    for i, entry in enumerate(entries):
        label = str(entry.get("name") or f"entry {i + 1}")
        checks.run("trigger", label, partial(_trigger, entry))


def _trigger(entry: dict[str, Any]) -> str:
    from milepost.pipelines._sources import check_pipeline_ref
    from milepost.pipelines._trigger_records import define_trigger

    args = dict(entry)
    name, pipeline = args.pop("name", None), args.pop("pipeline", None)
    if not isinstance(name, str) or not isinstance(pipeline, str):
        raise InvalidInput(
            "A trigger needs a name and a pipeline (module:attr).",
            hint="- {name: nightly, pipeline: pkg.pipeline:release, schedule: '0 3 * * *'}",
        )
    definition = define_trigger(name, pipeline, **args)
    ref = check_pipeline_ref(definition.pipeline, definition.params)
    params = " ".join(f"{k}={v}" for k, v in sorted(definition.params.items()))
    checked = (
        f" (monitor {definition.spec['monitor']} is checked when the trigger is added)"
        if "monitor" in definition.spec
        else f" ({definition.spec['name']} is checked when the trigger is added)"
        if definition.kind == "data_volume"
        else ""
    )
    return f"{ref}{' ' + params if params else ''} on {definition.description}{checked}"


def _pipeline(ref: str) -> str:
    from milepost.pipelines import Pipeline

    obj = import_ref(ref, "pipeline")
    if not isinstance(obj, Pipeline):
        raise InvalidInput(
            f"pipeline {ref!r} is a {type(obj).__name__}, not a milepost pipeline.",
            hint="Decorate the function with @milepost.pipelines.pipeline.",
        )
    params = ", ".join(obj.parameters) or "no parameters"
    return f"pipeline {obj.name} ({params})"


def _callable(ref: str | None, what: str) -> str:
    assert ref is not None
    obj = import_ref(ref, what)
    if not callable(obj):
        raise InvalidInput(
            f"{what} {ref!r} is a {type(obj).__name__}, not a function.",
            hint=f"Point {what} in [project] at a function (module:function).",
        )
    return f"{type(obj).__name__} {getattr(obj, '__qualname__', ref)}"


def _directory(project: Project, relative: str, what: str) -> str:
    path = project.root / relative
    if not path.is_dir():
        raise InvalidInput(
            f"The {what} directory {relative} does not exist.",
            hint=f"Create it, or point {what.split(maxsplit=1)[0]}_tests in [project] at yours.",
        )
    found = sum(1 for _ in path.rglob("test_*.py"))
    return f"{what}: {found} test file{'' if found == 1 else 's'}"


def _server_policy(project: Project, policy: PromotionPolicy) -> str:
    from milepost.client import RemoteRuntime

    model, url = project.config.model, project.settings.settings.url
    hint = (
        f"An approver runs `milepost models policy {model} --set {project.config.policy}` "
        "against the server."
    )
    remote = RemoteRuntime(project.settings)
    try:
        try:
            stored = remote.promotion.get_policy(model)
        except NotFound as exc:
            raise InvalidInput(
                f"The server at {url} has no model {model!r}, so no policy for it.", hint=hint
            ) from exc
    finally:
        remote.close()
    if stored.to_dict() != policy.to_dict():
        raise InvalidInput(
            f"The server's policy for {model!r} differs from {project.config.policy} "
            f"(server: {_describe_policy(stored)}).",
            hint=hint,
        )
    return f"the server's policy for {model} equals {project.config.policy}"
