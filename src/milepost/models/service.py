"""The model registry: log, load, version, alias, stage and trace models.

``log_model`` saves the model (skops, ONNX or, only when trusted, cloudpickle), infers and
stores its signature, optionally keeps a verified ONNX twin, and registers a new version
carrying the run's metrics snapshot, the dataset versions it used, its environment,
author and code version. Loading verifies every file against its SHA-256 digest and
refuses untrusted content: which types a model file may hold is the loading side's
decision (the built-in allow-list, the ``trusted_types`` argument, the
``MILEPOST_TRUSTED_TYPES`` setting and the approver-set list), never the author's.
"""

from __future__ import annotations

import json
import re
import threading
from typing import TYPE_CHECKING, Any, Literal

from milepost import _validate as check
from milepost._actor import ActorAttribute
from milepost.errors import ConfigError, Conflict, IntegrityViolation, InvalidInput, NotFound
from milepost.models import _onnx, flavors, trust
from milepost.models.backends.sql import SqlRegistryStore
from milepost.models.backends.trusted import SqlTrustStore
from milepost.models.models import (
    PROFILE_FILE,
    ModelVersion,
    RegisteredModel,
    StageEvent,
    TrustedType,
)
from milepost.models.signature import (
    Signature,
    check_signature,
    enforce,
    example_and_signature,
    to_frame,
)
from milepost.models.uri import ModelRef, check_model_name, parse_model_uri
from milepost.tracking.models import ArtifactInfo

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from datetime import datetime

    import numpy as np
    import pandas as pd

    from milepost.config import Settings
    from milepost.data.service import DataService
    from milepost.features.service import FeatureService
    from milepost.monitoring import Profile
    from milepost.stores.blobs import BlobStore
    from milepost.stores.metadata import MetadataStore
    from milepost.tracking.service import TrackingService

__all__ = ["LoadedModel", "ModelService"]

_ALIAS = re.compile(r"[A-Za-z][\w\-]{0,127}")
_RESERVED_ALIASES = {"latest", "none", "staging", "production", "archived"}


class LoadedModel:
    """A loaded model version: ``predict`` enforces the signature before predicting."""

    def __init__(
        self,
        version: ModelVersion,
        native: Any,
        *,
        impl: Any = None,
        native_loader: Callable[[], Any] | None = None,
        extra_columns: Literal["error", "ignore"] = "error",
    ) -> None:
        """``native`` is the model object; with an ``impl``, ``native_loader`` may stand in.

        An ONNX-served version predicts without its native object; loading that object
        (and importing scikit-learn, SciPy and skops for it) waits until something asks
        for :attr:`native`, such as an explanation. That keeps a serving replica's start
        and memory small.
        """
        self.version = version
        if native_loader is not None and impl is None:
            raise ValueError("native_loader needs an impl to predict with")
        self._native, self._native_loader = native, native_loader
        self._native_lock = threading.Lock()
        self._impl = impl if impl is not None else native
        self.uses_onnx = impl is not None
        self.signature = version.signature
        self.extra_columns = extra_columns

    @property
    def native(self) -> Any:
        """The model object as logged (loaded on first use when ONNX serves the version)."""
        if self._native_loader is not None:
            with self._native_lock:
                if self._native_loader is not None:
                    self._native = self._native_loader()
                    self._native_loader = None
        return self._native

    def prepare(self, data: Any) -> pd.DataFrame:
        """The input checked and aligned to the signature."""
        check.unique_columns(data, "The input")
        if self.signature is None:
            return to_frame(data)
        return enforce(data, self.signature, extra_columns=self.extra_columns)

    def predict(self, data: Any) -> np.ndarray:
        """Predictions for rows of input (a DataFrame, dict of columns or list of rows)."""
        import numpy as np

        return np.asarray(self._impl.predict(self.prepare(data)))

    def predict_proba(self, data: Any) -> np.ndarray:
        """Class probabilities, for classifiers."""
        import numpy as np

        if not hasattr(self._impl, "predict_proba"):
            raise InvalidInput(f"{self.version.uri} is not a probabilistic classifier.")
        return np.asarray(self._impl.predict_proba(self.prepare(data)))

    def __repr__(self) -> str:
        onnx = " onnx" if self.uses_onnx else ""
        return f"<LoadedModel {self.version.uri} {self.version.flavor}{onnx}>"


class ModelService:
    """Everything the registry does, for the Python API, the CLI and the server."""

    actor = ActorAttribute()

    def __init__(
        self,
        db: MetadataStore,
        blobs: BlobStore,
        settings: Settings,
        *,
        tracking: TrackingService,
        data: DataService | Callable[[], DataService],
        features: FeatureService | Callable[[], FeatureService | None] | None = None,
    ) -> None:
        """``data`` and ``features`` may be given as functions that build them: they are
        then built on first use (a command that only lists models needs neither, nor the
        pandas and PyArrow they import)."""
        self.store = SqlRegistryStore(db)
        self.trust_store = SqlTrustStore(db)
        self.blobs = blobs
        self.settings = settings
        self.actor = settings.actor()
        self.tracking = tracking
        self._data, self._features = data, features

    @property
    def data(self) -> DataService:
        """The data service (built on first use when given as a function)."""
        if callable(self._data):
            self._data = self._data()
        return self._data

    @property
    def features(self) -> FeatureService | None:
        """The feature service, if any (built on first use when given as a function)."""
        if callable(self._features):
            self._features = self._features()
        return self._features

    # -- logging ----------------------------------------------------------------------

    def log_model(
        self,
        run_id: str,
        model: Any,
        *,
        name: str,
        input_example: Any = None,
        training_data: Any = None,
        signature: Signature | None = None,
        flavor: flavors.Flavor | None = None,
        onnx: bool = False,
        onnx_tolerance: float = 1e-4,
        trusted_types: list[str] | None = None,
        feature_refs: list[str] | None = None,
        description: str | None = None,
        tags: Mapping[str, Any] | None = None,
    ) -> ModelVersion:
        """Save ``model`` with run ``run_id`` and register it as the next version of ``name``.

        ``trusted_types`` declares types the file holds beyond the built-in allow-list
        (your own transformers): they let the model be saved and are shown with the
        version, but trust nothing when it is loaded; the loading side decides that.

        ``training_data`` (a DataFrame of the rows the model was trained on) is profiled
        once (:func:`milepost.monitoring.profile`: quantiles, PSI bins, category counts;
        its size does not grow with the rows) and stored as the version's
        ``profile.json``, which drift monitoring reads instead of the training set
        (:meth:`get_profile`). The input example is never profiled: a few rows say
        nothing about a distribution; without ``training_data`` no profile is stored.

        Raises:
            InvalidInput: bad name, unsavable model, types outside the trusted list, or
                training data that is not a DataFrame with rows.
        """
        import numpy as np

        _model_name(name)
        check_signature(signature)
        if flavor is not None:
            check.choice(flavor, "flavor", flavors.MODEL_FILES)
        check.boolean(onnx, "onnx")
        description = check.optional_text(description, "Model description")
        clean_tags = _tags(tags)
        run = self.tracking.get_run(run_id)
        reference = _training_profile(training_data)
        flavor = flavor or flavors.detect_flavor(model)
        example, signature = example_and_signature(model, flavor, input_example, signature)
        declared = _type_names(trusted_types, "trusted_types")
        data = flavors.save(model, flavor, trusted_types=[*declared, *self._loader_trust(())])
        files = {flavors.MODEL_FILES[flavor]: self.blobs.put_bytes(data).digest}
        onnx_info = None
        if onnx:
            if flavor != "sklearn" or example is None:
                raise InvalidInput("onnx=True needs a scikit-learn model and an input_example.")
            outcome = _onnx.convert(model, example, tolerance=onnx_tolerance)
            onnx_info = outcome.to_dict()
            if outcome.data is not None:
                files["model.onnx"] = self.blobs.put_bytes(outcome.data).digest
        if reference is not None:
            text = json.dumps(reference.to_dict(), allow_nan=False, separators=(",", ":"))
            files[PROFILE_FILE] = self.blobs.put_bytes(text.encode()).digest
        self.tracking.store.record_artifacts(
            run_id,
            [ArtifactInfo(f"models/{name}/{fname}", digest, 0) for fname, digest in files.items()],
        )
        self.tracking.flush()
        run = self.tracking.get_run(run_id)
        datasets = [
            {"ref": i.ref, "role": i.role, "content_hash": i.content_hash}
            for i in self.data.inputs_of_run(run_id)
        ]
        if feature_refs is None and self.features is not None:
            # pin exactly the feature versions the run's training data was built from
            feature_refs = self.features.registry.refs_of_run(run_id)
        values = {
            "run_id": run_id,
            "flavor": flavor,
            "files_json": json.dumps(files),
            "signature_json": json.dumps(signature.to_dict()) if signature else None,
            "input_example_json": example.to_json(orient="records", date_format="iso")
            if example is not None
            else None,
            "metrics_json": json.dumps({k: v for k, v in run.metrics.items() if np.isfinite(v)}),
            "datasets_json": json.dumps(datasets),
            "feature_refs_json": json.dumps(list(feature_refs or [])),
            "trusted_types_json": json.dumps(declared),
            "onnx_json": json.dumps(onnx_info) if onnx_info else None,
            "env_hash": run.env_hash,
            "author": self.actor,
            "code_version": run.git_commit,
            "description": description,
        }
        version = self.store.add_version(name, values, clean_tags, actor=self.actor)
        return self.get_version(name, version)

    # -- reading ----------------------------------------------------------------------

    def get_version(self, name: str, version: int) -> ModelVersion:
        """A version by number. Raises NotFound."""
        _model_name(name)
        return self.store.version(name, version=_version(version))

    def resolve(self, uri: str | ModelVersion) -> ModelVersion:
        """The version a URI points at (``models:/NAME/3``, ``/Production``, ``@alias``)."""
        if isinstance(uri, ModelVersion):
            return uri
        ref: ModelRef = parse_model_uri(uri)
        return self.store.version(ref.name, version=ref.version, stage=ref.stage, alias=ref.alias)

    def get_profile(self, name: str, version: int) -> Profile | None:
        """The reference profile stored with a version (from ``log_model(...,
        training_data=)``), or None when it was logged without training data.

        Raises:
            NotFound: no such version. IntegrityViolation: the stored file was altered.
        """
        from milepost.monitoring import Profile

        v = self.get_version(name, version)
        if PROFILE_FILE not in v.files:
            return None
        return Profile.from_dict(json.loads(self._file(v, PROFILE_FILE)))

    def promotion_snapshot(
        self, name: str, version: int
    ) -> tuple[int, str | None, ModelVersion, ModelVersion | None]:
        """In one read: model id, stored policy JSON, the version and the Production version."""
        _model_name(name)
        _version(version)
        return self.store.promotion_snapshot(name, version)

    def versions(self, name: str) -> list[ModelVersion]:
        """Every version of a model, oldest first."""
        _model_name(name)
        return self.store.versions(name)

    def get_model(self, name: str) -> RegisteredModel:
        """A registered model with its stages and aliases."""
        return self.store.model(_model_name(name))

    def list_models(self) -> list[RegisteredModel]:
        """Every registered model."""
        return self.store.models()

    # -- loading ----------------------------------------------------------------------

    def _file(self, version: ModelVersion, fname: str) -> bytes:
        try:
            return self.blobs.get_bytes(version.files[fname])  # the store checks the digest
        except IntegrityViolation as exc:
            raise IntegrityViolation(
                f"{version.uri}: {fname} does not match its recorded SHA-256; the stored file "
                "was altered or truncated.",
                hint="Restore it from a backup or log the model again.",
            ) from exc

    def _loader_trust(self, trusted_types: Any) -> list[str]:
        """What the loading side trusts: the argument, the setting, the approver-set list."""
        try:
            setting = _type_names(self.settings.trusted_type_list(), "MILEPOST_TRUSTED_TYPES")
        except InvalidInput as exc:
            raise ConfigError(exc.message, hint="Fix the trusted_types setting.") from exc
        return [
            *_type_names(trusted_types, "trusted_types"),
            *setting,
            *self.trust_store.names(),
        ]

    def _where_loaded(self, version: ModelVersion, exc: ConfigError) -> ConfigError:
        """A missing-module error with the package version the model was logged with."""
        details = exc.details if isinstance(exc.details, dict) else {}
        module = details.get("missing_module")
        if not module or not version.env_hash:
            return exc
        try:
            packages = self.tracking.get_environment(version.env_hash).packages
        except NotFound:
            return exc
        return trust.missing_module_error(version.uri, module, details.get("type"), packages)

    def load(
        self,
        uri: str | ModelVersion,
        *,
        trusted: bool = False,
        trusted_types: list[str] | None = None,
        extra_columns: Literal["error", "ignore"] = "error",
        prefer_onnx: bool = False,
    ) -> LoadedModel:
        """Load a version for prediction.

        Trust is decided here, when the version is loaded, even when ``prefer_onnx`` serves
        it through its ONNX twin and the native object is rebuilt only on first use.

        Args:
            uri: ``models:/NAME/VERSION``, ``models:/NAME/Production``, ``models:/NAME@alias``.
            trusted: allow unpickling a python-flavor model (runs code from the file).
            trusted_types: types this load trusts beyond the built-in allow-list, the
                ``MILEPOST_TRUSTED_TYPES`` setting and the approver-set list. What the
                author declared when logging is not trusted.
            extra_columns: what ``predict`` does with columns the model does not take.
            prefer_onnx: predict through the verified ONNX twin when there is one.

        Raises:
            PermissionDenied: untrusted content (every type is named, with how to trust it).
            ConfigError: the model's code is not installed here (the module is named).
            IntegrityViolation: a stored file does not match its digest.
        """
        check.boolean(trusted, "trusted")
        check.choice(extra_columns, "extra_columns", ("error", "ignore"))
        check.boolean(prefer_onnx, "prefer_onnx")
        version = self.resolve(uri)
        flavor: flavors.Flavor = version.flavor  # type: ignore[assignment]
        data = self._file(version, flavors.MODEL_FILES[flavor])  # digest checked
        options: dict[str, Any] = {
            "trusted": trusted or self.settings.trust_pickle,
            "trusted_types": self._loader_trust(trusted_types),
            "what": version.uri,
            "declared": version.trusted_types,
        }

        def native() -> Any:
            try:
                return flavors.load(flavor, data, **options)
            except ConfigError as exc:
                raise self._where_loaded(version, exc) from exc

        if prefer_onnx and version.has_onnx:
            try:
                flavors.check(flavor, data, **options)  # decided now, not on first use
            except ConfigError as exc:
                raise self._where_loaded(version, exc) from exc
            impl = flavors.load("onnx", self._file(version, "model.onnx"))
            loaded = LoadedModel(
                version, None, impl=impl, native_loader=native, extra_columns=extra_columns
            )
            impl.native = lambda: loaded.native  # answers what the twin is not trusted on
            return loaded
        return LoadedModel(version, native(), extra_columns=extra_columns)

    # -- the approver-set list of trusted types ---------------------------------------

    def list_trusted_types(self) -> list[TrustedType]:
        """The types every loader trusts beyond the built-in allow-list, by name."""
        return self.trust_store.list()

    def add_trusted_type(self, type_name: str, *, reason: str) -> TrustedType:
        """Trust a type in model files for every loader (needs the approver or admin role).

        The change and its audit event are written in one transaction.

        Raises:
            InvalidInput: not a dotted type name, or no reason.
            PermissionDenied: the actor holds neither the approver nor the admin role.
            AlreadyExists: the type is trusted already.
        """
        name = trust.check_type_name(type_name)
        check.text(reason, "reason")
        if not isinstance(reason, str) or not reason.strip() or len(reason) > 2000:
            raise InvalidInput(
                "Say why the type is trusted (reason, 1-2000 characters): it is recorded in "
                "the audit trail.",
            )
        return self.trust_store.add(name, reason.strip(), actor=self.actor)

    def remove_trusted_type(self, type_name: str, *, reason: str | None = None) -> TrustedType:
        """Stop trusting a type (needs the approver or admin role; audited).

        Raises:
            NotFound: the type is not on the list.
            PermissionDenied: the actor holds neither the approver nor the admin role.
        """
        return self.trust_store.remove(
            trust.check_type_name(type_name),
            check.optional_text(reason, "reason"),
            actor=self.actor,
        )

    # -- aliases, stages, history -----------------------------------------------------

    def set_alias(self, name: str, alias: str, version: int) -> int | None:
        """Point an alias at a version (audited); returns the version it pointed at before."""
        _model_name(name)
        _alias(alias)
        if alias.lower() in _RESERVED_ALIASES:
            raise InvalidInput(
                f"Alias {alias!r} is reserved: stage names and 'latest' cannot be aliases.",
                hint="For example 'champion' or 'challenger'.",
            )
        return self.store.set_alias(name, alias, _version(version), actor=self.actor)

    def delete_alias(self, name: str, alias: str) -> None:
        """Remove an alias (audited)."""
        self.store.set_alias(_model_name(name), _alias(alias), None, actor=self.actor)

    def transition(
        self,
        name: str,
        version: int,
        to_stage: str,
        *,
        reason: str | None = None,
        request_id: str | None = None,
        expected_production: int | bool | None = False,
        details: Any = None,
        in_transaction: Callable[[Any], None] | None = None,
    ) -> list[tuple[int, str, str]]:
        """Change a stage without running gates: only where the model's policy has none.

        A version enters Staging or Production past gates only through
        :meth:`milepost.promotion.PromotionService.promote`, which runs them; this method
        refuses such a move when the policy guards it (the gates a promotion on the same
        path would run), so a version that failed a gate cannot be moved in by hand.

        Raises:
            Conflict: the model's promotion policy has gates on the way to ``to_stage``
                (or cannot be read), an illegal change, Production moved since
                ``expected_production``, or an endpoint tracks Production of the model
                (Production then changes only through that endpoint's rollouts).
        """
        _model_name(name)
        _version(version)
        check.name(to_stage, "Stage", max_length=16)
        check.optional_text(reason, "reason")
        if to_stage in ("Staging", "Production"):
            current = self.store.version(name, version=version).stage
            gated = _gated_path(self.store.policy(name), current, to_stage)
            if gated:
                raise Conflict(
                    f"{name} version {version} cannot be moved to {to_stage} without its "
                    f"gates: the promotion policy of {name} guards it ({gated}).",
                    hint=f"Promote it, which runs the gates: `milepost models promote {name} "
                    f"{version} {to_stage.lower()}`.",
                )
        return self.store.transition(
            name,
            version,
            to_stage,
            actor=self.actor,
            reason=reason,
            request_id=request_id,
            expected_production=expected_production,
            details=details,
            in_transaction=in_transaction,
        )

    def archive(self, name: str, version: int, *, reason: str | None = None) -> None:
        """Archive a version (no gates: taking a model out of use needs none).

        Raises:
            Conflict: an endpoint tracking Production of the model holds the version (its
                primary, a canary, or the previous version kept for rollback): change it
                through that endpoint instead, so that registry and endpoint agree.
        """
        self.store.transition(
            _model_name(name),
            _version(version),
            "Archived",
            actor=self.actor,
            reason=check.optional_text(reason, "reason"),
        )

    def set_description(self, name: str, text: str, *, version: int | None = None) -> None:
        """Describe a model or a version."""
        _model_name(name)
        if version is not None:
            _version(version)
        self.store.set_description(name, version, check.text(text, "Description"), actor=self.actor)

    def set_tags(self, name: str, version: int, tags: Mapping[str, Any]) -> None:
        """Set version tags."""
        _model_name(name)
        _version(version)
        self.store.set_tags(name, version, _tags(tags))

    def history(self, name: str) -> list[StageEvent]:
        """Every stage change of a model, oldest first."""
        _model_name(name)
        return self.store.history(name)

    def production_at(self, name: str, at: datetime | int) -> int | None:
        """The version that was in Production at a moment (ms or aware datetime)."""
        at_ms = check.timestamp_ms(at, "at")
        current: int | None = None
        for event in self.history(name):
            if event.at > at_ms:
                break
            if event.to_stage == "Production":
                current = event.version
            elif event.from_stage == "Production" and current == event.version:
                current = None
        return current


_model_name = check_model_name


def _gated_path(raw_policy: str | None, current: str, to_stage: str) -> str:
    """The gate kinds a promotion ``current -> to_stage`` would run under the stored
    policy (as ``PromotionPolicy.gates_on_path`` picks them), joined; "" when none. A
    policy that cannot be read guards everything (fail closed)."""
    if not raw_policy:
        return ""
    try:
        policy = json.loads(raw_policy)
        gates = list(policy.get(to_stage.lower()) or [])
        if (
            to_stage == "Production"
            and current != "Staging"
            and not policy.get("allow_direct_production", False)
        ):
            gates = list(policy.get("staging") or []) + gates
        kinds = [str(g.get("kind", "?")) for g in gates]
    except (ValueError, AttributeError, TypeError):
        return "its stored policy cannot be read"
    return ", ".join(kinds) + (" gate" if len(kinds) == 1 else " gates") if kinds else ""


def _alias(alias: Any) -> str:
    return check.name(
        alias,
        "Alias",
        max_length=128,
        pattern=_ALIAS,
        rule="start with a letter; use letters, digits, '_' or '-'",
        hint="For example 'champion' or 'challenger'.",
    )


def _version(version: Any) -> int:
    return check.integer(version, "Model version", minimum=1)


def _tags(tags: Any) -> dict[str, str]:
    """Model version tags as text: keys are names, values anything storable."""
    if tags is None:
        return {}
    clean = {}
    for k, v in check.mapping(tags, "tags").items():
        key = check.name(str(k), "Tag name", max_length=250)
        clean[key] = check.text(str(v), f"The value of tag {key!r}")
    return clean


def _type_names(value: Any, what: str) -> list[str]:
    """A list of dotted type names, or InvalidInput naming the bad entry."""
    if value is None:
        return []
    if isinstance(value, str) or not isinstance(value, (list, tuple, set, frozenset)):
        raise InvalidInput(
            f"{what} must be a list of type names, not {type(value).__name__} {value!r}.",
            hint="For example trusted_types=['mypkg.transformers.Doubler'].",
        )
    return [trust.check_type_name(v) for v in value]


def _training_profile(training_data: Any) -> Profile | None:
    """The reference profile of ``training_data`` (None when not given)."""
    if training_data is None:
        return None
    from milepost.monitoring import profile

    try:
        reference = profile(training_data)
    except InvalidInput as exc:
        raise InvalidInput(
            f"training_data: {exc.message}",
            hint="Pass the training rows as a pandas DataFrame (features only, or with "
            "the label), or leave training_data out.",
        ) from exc
    if reference.rows == 0 or not reference.columns:
        raise InvalidInput(
            "training_data has no rows or no columns: there is no distribution to profile.",
            hint="Pass the DataFrame the model was trained on.",
        )
    return reference
