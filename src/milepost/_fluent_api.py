"""The MLflow-like module-level API: ``milepost.start_run()``, ``milepost.log_metric()``...

The active run is per thread, as in MLflow; nested runs need ``nested=True``. A run left
open when the interpreter exits is ended FINISHED after its metrics are flushed.
"""

from __future__ import annotations

import atexit
import io
import json
import traceback
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, cast

from milepost import _validate as check
from milepost._context import get_runtime
from milepost.errors import Conflict, InvalidInput
from milepost.tracking._active import run_stack
from milepost.tracking.models import ArtifactInfo, Run, RunStatus

if TYPE_CHECKING:
    import os
    from types import TracebackType

    from milepost.data.models import DatasetInput
    from milepost.evaluation.fairness import FairnessResult
    from milepost.evaluation.service import EvaluationResult
    from milepost.models.models import ModelVersion
    from milepost.models.service import LoadedModel
    from milepost.models.signature import Signature

__all__ = [
    "ActiveRun",
    "active_run",
    "audit_fairness",
    "end_run",
    "evaluate",
    "flush",
    "load_model",
    "log_artifact",
    "log_artifacts",
    "log_dict",
    "log_figure",
    "log_input",
    "log_metric",
    "log_metrics",
    "log_model",
    "log_param",
    "log_params",
    "log_text",
    "set_tag",
    "set_tags",
    "start_run",
]


def _stack() -> list[ActiveRun]:
    # The stack lives in tracking so capability code can read the active run id.
    return cast("list[ActiveRun]", run_stack())


class ActiveRun:
    """A started run; use it as a context manager to end it with the right status."""

    def __init__(self, run: Run) -> None:
        if not isinstance(run, Run):
            raise InvalidInput(
                f"ActiveRun wraps a Run, got {check.short_repr(run)} ({type(run).__name__}).",
                hint="Start runs with milepost.start_run(); it returns the ActiveRun.",
            )
        self.run_id = run.run_id
        self.experiment_id = run.experiment_id
        self.name = run.name
        self._ended = False

    @property
    def info(self) -> Run:
        """The run as stored now (params, latest metrics and tags included)."""
        return get_runtime().tracking.get_run(self.run_id)

    def __enter__(self) -> ActiveRun:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is None:
            _end(self, RunStatus.FINISHED, None)
        elif isinstance(exc, KeyboardInterrupt):
            _end(self, RunStatus.KILLED, "KeyboardInterrupt")
        else:
            text = "".join(traceback.format_exception(exc_type, exc, tb))
            _end(self, RunStatus.FAILED, text[-8000:])

    def __repr__(self) -> str:
        return f"<ActiveRun {self.name} ({self.run_id})>"


def _end(active: ActiveRun, status: RunStatus, error: str | None) -> None:
    if active._ended:
        return
    stack = _stack()
    # End children left open first, so a parent never ends before its nested runs.
    while stack and stack[-1] is not active:
        child = stack[-1]
        _end(child, status, error)
    if stack and stack[-1] is active:
        stack.pop()
    active._ended = True
    get_runtime().tracking.end_run(active.run_id, status, error=error)


def start_run(
    *,
    experiment: str | int | None = None,
    run_name: str | None = None,
    tags: dict[str, Any] | None = None,
    nested: bool = False,
) -> ActiveRun:
    """Start a run and make it the active one.

    Args:
        experiment: name (created when missing) or id; default the ``experiment`` setting.
        run_name: a readable name; default a generated one like ``brisk-otter-417``.
        tags: initial tags.
        nested: start a child of the active run.

    Raises:
        Conflict: a run is active and ``nested`` is False.
    """
    check.boolean(nested, "nested")
    stack = _stack()
    parent = stack[-1] if stack else None
    if parent is not None and not nested:
        raise Conflict(
            f"Run {parent.name} ({parent.run_id}) is already active.",
            hint="End it first, or pass nested=True to start a child run.",
        )
    tracking = get_runtime().tracking
    if parent is not None and experiment is None:
        experiment = parent.experiment_id
    run = tracking.start_run(
        experiment=experiment,
        run_name=run_name,
        tags=tags,
        parent_run_id=parent.run_id if parent else None,
    )
    active = ActiveRun(run)
    stack.append(active)
    return active


def end_run(status: RunStatus | str = RunStatus.FINISHED) -> None:
    """End the active run (no-op when none is active)."""
    try:
        target = RunStatus(str(status).upper())
    except ValueError:
        raise InvalidInput(
            f"Unknown run status {check.short_repr(status)}: use FINISHED, FAILED or KILLED."
        ) from None
    stack = _stack()
    if stack:
        _end(stack[-1], target, None)


def active_run() -> ActiveRun | None:
    """The active run of this thread, if any."""
    stack = _stack()
    return stack[-1] if stack else None


def _require_run() -> str:
    stack = _stack()
    if not stack:
        raise InvalidInput(
            "No active run.",
            hint="Start one first: `with milepost.start_run(): ...`.",
        )
    return stack[-1].run_id


def log_param(key: str, value: Any) -> None:
    """Log one immutable param of the active run."""
    get_runtime().tracking.log_params(_require_run(), {check.string(key, "A param name"): value})


def log_params(params: dict[str, Any]) -> None:
    """Log several params at once (all or none)."""
    get_runtime().tracking.log_params(_require_run(), params)


def log_metric(
    key: str, value: float, step: int | None = None, timestamp: int | None = None
) -> None:
    """Queue a metric value for the active run (written in the background)."""
    get_runtime().tracking.log_metric(_require_run(), key, value, step=step, timestamp=timestamp)


def log_metrics(
    metrics: dict[str, float], step: int | None = None, timestamp: int | None = None
) -> None:
    """Queue several metric values at one step."""
    get_runtime().tracking.log_metrics(_require_run(), metrics, step=step, timestamp=timestamp)


def set_tag(key: str, value: Any) -> None:
    """Set a tag on the active run."""
    get_runtime().tracking.set_tags(_require_run(), {check.string(key, "A tag name"): value})


def set_tags(tags: dict[str, Any]) -> None:
    """Set several tags on the active run."""
    get_runtime().tracking.set_tags(_require_run(), tags)


def log_artifact(
    local_path: str | os.PathLike[str], artifact_path: str | None = None
) -> ArtifactInfo:
    """Store a file with the active run, under ``artifact_path`` if given."""
    return get_runtime().tracking.log_artifact(_require_run(), local_path, artifact_path)


def log_artifacts(
    local_dir: str | os.PathLike[str], artifact_path: str | None = None
) -> list[ArtifactInfo]:
    """Store a directory tree with the active run."""
    return get_runtime().tracking.log_artifacts(_require_run(), local_dir, artifact_path)


def log_text(text: str, artifact_file: str) -> ArtifactInfo:
    """Store text (UTF-8) as an artifact file."""
    if not isinstance(text, str):
        raise InvalidInput(
            f"log_text takes text (str), got {check.short_repr(text)} ({type(text).__name__}).",
            hint="Store bytes with log_artifact, or decode them first.",
        )
    try:
        data = text.encode()
    except UnicodeEncodeError as exc:
        raise InvalidInput(
            f"The text cannot be written as UTF-8: {exc.reason} at position {exc.start}.",
            hint="Remove the lone surrogate; it usually comes from decoding bytes with "
            "errors='surrogateescape'.",
        ) from None
    return get_runtime().tracking.log_bytes(_require_run(), data, artifact_file)


def log_dict(dictionary: dict[str, Any], artifact_file: str) -> ArtifactInfo:
    """Store a dict as JSON, or YAML when the file name ends in .yaml/.yml."""
    suffix = Path(check.text(artifact_file, "artifact_file")).suffix.lower()
    try:
        if suffix in (".yaml", ".yml"):
            try:
                import yaml
            except ModuleNotFoundError as exc:
                raise InvalidInput(
                    "Writing YAML needs PyYAML.", hint="pip install pyyaml, or use a .json name."
                ) from exc
            try:
                text = yaml.safe_dump(dictionary, sort_keys=False)
            except yaml.YAMLError as exc:
                raise ValueError(str(exc)) from exc
        else:
            text = json.dumps(dictionary, indent=2, default=str)
    except (TypeError, ValueError, RecursionError) as exc:
        raise InvalidInput(
            f"log_dict cannot serialize {check.short_repr(dictionary)}: {exc}",
            hint="Give plain data: dicts with string keys, lists, strings and numbers.",
        ) from None
    return log_text(text, artifact_file)


def log_figure(figure: Any, artifact_file: str) -> ArtifactInfo:
    """Store a matplotlib figure; the format follows the file name (png, svg, pdf...)."""
    if not hasattr(figure, "savefig"):
        raise InvalidInput(
            f"log_figure needs a matplotlib Figure, got {type(figure).__name__}.",
            hint="Pass plt.gcf() or the figure returned by plt.subplots().",
        )
    fmt = Path(check.text(artifact_file, "artifact_file")).suffix.lstrip(".").lower() or "png"
    run_id = _require_run()
    buffer = io.BytesIO()
    try:
        figure.savefig(buffer, format=fmt)
    except ValueError as exc:  # matplotlib: "Format 'xyz' is not supported"
        raise InvalidInput(
            f"Cannot save the figure as {artifact_file!r}: {exc}",
            hint="Name the file .png, .svg or .pdf.",
        ) from None
    return get_runtime().tracking.log_bytes(run_id, buffer.getvalue(), artifact_file)


def log_input(dataset: Any, role: str = "train") -> DatasetInput:
    """Record that the active run used a dataset version (``DatasetVersion`` or ``name@N``)."""
    return get_runtime().data.log_input(_require_run(), dataset, role=role)


def log_model(
    model: Any,
    name: str,
    *,
    input_example: Any = None,
    training_data: Any = None,
    signature: Signature | None = None,
    flavor: Literal["sklearn", "onnx", "python"] | None = None,
    onnx: bool = False,
    trusted_types: list[str] | None = None,
    description: str | None = None,
    tags: dict[str, Any] | None = None,
) -> ModelVersion:
    """Save a model with the active run and register it as the next version of ``name``.

    Args:
        model: a scikit-learn-compatible estimator or pipeline (saved with skops), an ONNX
            model, or any object with ``predict`` (cloudpickle; loads only when trusted).
        name: the registered model.
        input_example: a few input rows; the signature is inferred from them.
        training_data: the DataFrame the model was trained on; its reference profile
            (quantiles, bins, category counts; not the rows) is stored with the version
            for drift monitoring. The input example is never profiled (too few rows).
        signature: an explicit signature instead.
        onnx: also convert to ONNX, kept only when it matches on the input example.
        trusted_types: types beyond the built-in allow-list the skops file holds (your
            own transformers). This declares them so the model can be saved; it trusts
            nothing: whoever loads the model decides (``load_model(trusted_types=...)``,
            ``MILEPOST_TRUSTED_TYPES`` or ``milepost models trust add``).
    """
    run_id = _require_run()
    return get_runtime().models.log_model(
        run_id,
        model,
        name=name,
        input_example=input_example,
        training_data=training_data,
        signature=signature,
        flavor=flavor,
        onnx=onnx,
        trusted_types=trusted_types,
        description=description,
        tags=tags,
    )


def load_model(
    uri: str,
    *,
    trusted: bool = False,
    trusted_types: list[str] | None = None,
    extra_columns: Literal["error", "ignore"] = "error",
    prefer_onnx: bool = False,
) -> LoadedModel:
    """Load ``models:/NAME/VERSION``, ``models:/NAME/Production`` or ``models:/NAME@alias``.

    ``predict`` on the result enforces the signature. Pickled models load only with
    ``trusted=True``; skops files only when every type they hold is on the built-in
    allow-list or trusted by the loading side: ``trusted_types`` here, the
    ``MILEPOST_TRUSTED_TYPES`` setting or the approver-set list (``milepost models trust``).
    What the model's author declared when logging is never trusted.
    """
    return get_runtime().models.load(
        uri,
        trusted=trusted,
        trusted_types=trusted_types,
        extra_columns=extra_columns,
        prefer_onnx=prefer_onnx,
    )


def evaluate(
    model_uri: str,
    data: Any,
    *,
    target: str,
    task: Literal["classification", "regression"] | None = None,
    slices: list[str] | tuple[str, ...] = (),
    threshold: float = 0.5,
) -> EvaluationResult:
    """Score a model version on data (a dataset ref, DatasetVersion or DataFrame); stored.

    Inside a run, the evaluation is linked to it.
    """
    run = active_run()
    return get_runtime().evaluation.evaluate(
        model_uri,
        data,
        target=target,
        task=task,
        slices=slices,
        threshold=threshold,
        run_id=run.run_id if run else None,
    )


def audit_fairness(
    model_uri: str,
    data: Any,
    target: str,
    sensitive_features: list[str] | tuple[str, ...],
    *,
    min_group_size: int = 30,
    threshold: float = 0.5,
    positive_label: Any = None,
    trusted: bool = False,
) -> FairnessResult:
    """Audit a model version's fairness across sensitive features; stored and audited.

    ``result.summary["gender"]["demographic_parity_ratio"]`` and the other
    :data:`~milepost.evaluation.fairness.SUMMARY_KEYS` are fairlearn's definitions;
    ``result.by_group`` is a DataFrame of per-group counts and rates, small groups flagged
    ``unreliable``. See :meth:`milepost.evaluation.EvaluationService.audit_fairness`.
    """
    return get_runtime().evaluation.audit_fairness(
        model_uri,
        data,
        target=target,
        sensitive_features=sensitive_features,
        min_group_size=min_group_size,
        threshold=threshold,
        positive_label=positive_label,
        trusted=trusted,
    )


def flush() -> None:
    """Block until every metric value logged so far is durable."""
    get_runtime().tracking.flush()


@atexit.register
def _end_open_runs() -> None:
    stack = _stack()
    while stack:
        try:
            _end(stack[-1], RunStatus.FINISHED, None)
        except Exception:
            stack.pop()
