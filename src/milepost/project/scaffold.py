"""``milepost init``: write a new project that passes its own checks from the start.

The files come from Jinja2 templates in ``milepost/project/templates`` (package data),
rendered with :class:`jinja2.StrictUndefined` so a template naming a missing value fails
here, not in the user's CI. One set of templates serves both kinds of project; a
:class:`Template` holds what differs (the target, the metric the policy gate scores,
its threshold).

The commands the generated CI runs are :data:`PR_COMMANDS` and :data:`MAIN_COMMANDS`:
the GitHub workflows and ``.gitlab-ci.yml`` are rendered from the same lists, so a
laptop, GitHub and GitLab run the same steps.
"""

from __future__ import annotations

import keyword
import re
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from milepost.errors import AlreadyExists, InvalidInput, did_you_mean

__all__ = [
    "MAIN_COMMANDS",
    "PR_COMMANDS",
    "TEMPLATES",
    "Template",
    "next_steps",
    "package_name",
    "scaffold",
]

#: Pull and merge requests: install, then every check a laptop runs too.
PR_COMMANDS: tuple[str, ...] = (
    'python -m pip install -e ".[dev]"',
    "milepost check project",
    "milepost check lint",
    "milepost check types",
    "milepost check tests unit",
    "milepost check tests integration",
    "milepost check consistency",
)

#: The main branch, against the team's server (MILEPOST_URL and MILEPOST_TOKEN set):
#: ``{package}`` and the endpoints are filled in per project.
MAIN_COMMANDS: tuple[str, ...] = (
    'python -m pip install -e ".[dev]"',
    "milepost check project",
    "milepost pipelines run {package}.pipeline:release",
    "milepost endpoints show {staging_endpoint}",
    "milepost endpoints show {endpoint}",
)


@dataclass(frozen=True)
class Template:
    """What one kind of project fills into the shared templates."""

    #: ``classification`` or ``regression``
    kind: str
    #: what the model predicts (a column of the labels dataset)
    target: str
    #: one line for the README and docstrings
    story: str
    #: the policy's metric gate: its primary metric and the bar for the first version
    metric: str
    threshold: float


TEMPLATES: dict[str, Template] = {
    "classification": Template(
        kind="classification",
        target="churned",
        story="which customers will cancel their subscription (churn)",
        metric="roc_auc",
        threshold=0.7,
    ),
    "regression": Template(
        kind="regression",
        target="next_month_spend",
        story="how much each customer will spend next month",
        metric="r2",
        threshold=0.8,
    ),
}

# (template, where it goes); ``{package}`` is the project's package
_FILES: tuple[tuple[str, str], ...] = (
    ("milepost.toml.j2", "milepost.toml"),
    ("pyproject.toml.j2", "pyproject.toml"),
    ("README.md.j2", "README.md"),
    ("policy.yaml.j2", "policy.yaml"),
    ("triggers.yaml.j2", "triggers.yaml"),
    ("pre-commit-config.yaml.j2", ".pre-commit-config.yaml"),
    ("gitignore.j2", ".gitignore"),
    ("github/pr.yml.j2", ".github/workflows/pr.yml"),
    ("github/main.yml.j2", ".github/workflows/main.yml"),
    ("gitlab-ci.yml.j2", ".gitlab-ci.yml"),
    ("package/__init__.py.j2", "src/{package}/__init__.py"),
    ("package/py.typed.j2", "src/{package}/py.typed"),
    ("package/data.py.j2", "src/{package}/data.py"),
    ("package/features.py.j2", "src/{package}/features.py"),
    ("package/train.py.j2", "src/{package}/train.py"),
    ("package/pipeline.py.j2", "src/{package}/pipeline.py"),
    ("tests/init.py.j2", "tests/__init__.py"),
    ("tests/init.py.j2", "tests/unit/__init__.py"),
    ("tests/init.py.j2", "tests/integration/__init__.py"),
    ("tests/unit/test_features.py.j2", "tests/unit/test_features.py"),
    ("tests/unit/test_train.py.j2", "tests/unit/test_train.py"),
    ("tests/integration/test_pipeline.py.j2", "tests/integration/test_pipeline.py"),
)

_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,39}")


def package_name(name: str) -> str:
    """The importable package of project ``name`` (``churn-project`` -> ``churn_project``).

    Raises:
        InvalidInput: the name is not letters, digits, ``-`` and ``_`` starting with a
            letter, or its package would be a Python keyword, a standard-library module
            or ``milepost`` itself.
    """
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise InvalidInput(
            f"Project name {name!r} is not usable: it names the package, the model and "
            "the endpoints, so it takes letters, digits, '-' and '_', starts with a letter "
            "and has at most 40 characters.",
            hint="Pass one with --name, e.g. --name churn-project.",
        )
    package = name.replace("-", "_")
    taken = (
        "a Python keyword"
        if keyword.iskeyword(package)
        else "a standard-library module"
        if package in sys.stdlib_module_names
        else "Milepost itself"
        if package == "milepost"
        else None
    )
    if taken:
        raise InvalidInput(
            f"Project name {name!r} gives the package {package!r}, which is {taken}; "
            "importing it would not find your code.",
            hint=f"Pass another name with --name, e.g. --name {package}-project.",
        )
    return package


def _context(name: str, package: str, template: Template) -> dict[str, Any]:
    model = name
    values: dict[str, Any] = {
        "name": name,
        "package": package,
        "template": template.kind,
        "model": model,
        "endpoint": model,
        "staging_endpoint": f"{model}-staging",
        "classification": template.kind == "classification",
        **{k: v for k, v in asdict(template).items() if k != "kind"},
    }
    values["pr_commands"] = list(PR_COMMANDS)
    values["main_commands"] = [c.format(**values) for c in MAIN_COMMANDS]
    return values


def _render(context: dict[str, Any]) -> dict[Path, str]:
    """Every file's relative path and text."""
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("milepost.project", "templates"),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,  # noqa: S701 (source code and YAML, never HTML)
    )
    out: dict[Path, str] = {}
    for source, target in _FILES:
        out[Path(target.format(package=context["package"]))] = env.get_template(source).render(
            **context
        )
    return out


def scaffold(
    directory: str | Path,
    *,
    template: str = "classification",
    name: str | None = None,
    force: bool = False,
) -> list[Path]:
    """Write a new project into ``directory`` (created if missing).

    The project has feature definitions, a training function, a release pipeline built
    from :mod:`milepost.retraining`'s steps, a promotion policy, triggers, generated
    sample data, unit and integration tests, ruff/mypy/pytest settings, a README, CI
    workflows (GitHub Actions and GitLab CI) and a pre-commit configuration.

    Args:
        directory: where the project goes.
        template: ``classification`` (churn) or ``regression`` (next month's spend).
        name: the project's name (default: the directory's name); the package is the
            name with ``-`` as ``_``; the model and the endpoint take the name.
        force: overwrite files that exist; without it nothing is written when any
            file the project needs is there already.

    Returns:
        The files written, in a stable order.

    Raises:
        InvalidInput: an unknown template, a name that cannot be a package, or a
            directory that is a file.
        AlreadyExists: files exist and ``force`` is off (all of them are listed).
    """
    if template not in TEMPLATES:
        raise InvalidInput(
            f"Unknown template {template!r}.{did_you_mean(str(template), TEMPLATES)}",
            hint="Templates: " + ", ".join(TEMPLATES) + ".",
        )
    root = Path(directory)
    if root.exists() and not root.is_dir():
        raise InvalidInput(
            f"{root} is a file, not a directory.", hint="Name a new or existing directory."
        )
    name = root.resolve().name if name is None else name
    package = package_name(name)
    files = _render(_context(name, package, TEMPLATES[template]))
    existing = [p for p in files if (root / p).exists()]
    if existing and not force:
        shown = ", ".join(str(p) for p in existing[:12])
        more = f" and {len(existing) - 12} more" if len(existing) > 12 else ""
        raise AlreadyExists(
            f"{len(existing)} file(s) of the new project exist in {root}: {shown}{more}; "
            "nothing was written.",
            hint="--force overwrites them (or pick an empty directory).",
        )
    written = []
    for relative, text in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


def next_steps(directory: str | Path) -> list[str]:
    """The commands to run after ``milepost init``: what the pull-request CI runs."""
    root = Path(directory)
    here = root.resolve() == Path.cwd().resolve()
    return ([] if here else [f"cd {root}"]) + list(PR_COMMANDS)
