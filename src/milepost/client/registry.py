"""Remote proxies of the model registry, evaluations and model cards.

:class:`RemoteModels`, :class:`RemoteEvaluation` and :class:`RemoteCards` have the
methods ``milepost.Client`` and the CLI call on ``rt.models``, ``rt.evaluation`` and
``rt.cards``, with the same arguments, records and exceptions, answered by
``/api/v1/models/...`` on the server. What needs the model files or the training data
on this machine travels: ``log_model`` uploads the saved model, ``load`` downloads it and
loads it here with this side's trust. Evaluations and fairness audits run on the server
over a registered dataset version; a DataFrame or a loaded model there is refused with a
:class:`~milepost.errors.InvalidInput` that says what to do.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import quote

from milepost import _validate as check
from milepost._records import record_from_dict
from milepost.errors import InvalidInput
from milepost.models.models import ModelVersion, RegisteredModel, StageEvent, TrustedType
from milepost.models.uri import check_model_name, parse_model_uri

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from datetime import datetime
    from pathlib import Path

    from milepost.cards.models import CardField, ModelCard
    from milepost.client._runtime import RemoteRuntime
    from milepost.client._transport import Transport
    from milepost.evaluation.fairness import FairnessResult
    from milepost.evaluation.models import EvaluationResult
    from milepost.models.service import LoadedModel
    from milepost.models.signature import Signature
    from milepost.monitoring import Profile

__all__ = ["RemoteCards", "RemoteEvaluation", "RemoteModels", "local_only"]

T = TypeVar("T")


def seg(value: object) -> str:
    """One URL path segment (quoted: a name never reaches another route)."""
    return quote(str(value), safe="")


def items(cls: type[T], answer: Any, **rename: str) -> list[T]:
    """The records of a ``{"items": [...]}`` answer."""
    return [record_from_dict(cls, d, rename=rename or None) for d in answer["items"]]


def local_only(what: str, where: str) -> InvalidInput:
    """The error for a call that needs the stores on this machine."""
    return InvalidInput(
        f"{what} is not available in remote mode (MILEPOST_URL is set): it needs {where}.",
        hint="Run it where the metadata and artifact stores are reachable (unset "
        "MILEPOST_URL there, or run it on the server's machine), then read the result "
        "remotely.",
    )


def _name(name: object) -> str:
    return seg(check_model_name(name))


def _version(version: object) -> int:
    return check.integer(version, "Model version", minimum=1)


class RemoteModels:
    """``rt.models`` over HTTP."""

    def __init__(self, runtime: RemoteRuntime) -> None:
        self.runtime = runtime

    @property
    def http(self) -> Transport:
        return self.runtime.transport

    # -- reading ----------------------------------------------------------------------

    def get_version(self, name: str, version: int) -> ModelVersion:
        """A version by number. Raises NotFound."""
        path = f"/models/{_name(name)}/versions/{_version(version)}"
        return record_from_dict(ModelVersion, self.http.request("GET", path))

    def resolve(self, uri: str | ModelVersion) -> ModelVersion:
        """The version a URI points at (``models:/NAME/3``, ``/Production``, ``@alias``)."""
        if isinstance(uri, ModelVersion):
            return uri
        ref = parse_model_uri(uri)
        if ref.version is not None:
            return self.get_version(ref.name, ref.version)
        if ref.alias is not None:
            path = f"/models/{seg(ref.name)}/aliases/{seg(ref.alias)}"
        else:
            path = f"/models/{seg(ref.name)}/stages/{seg(ref.stage)}"
        return record_from_dict(ModelVersion, self.http.request("GET", path))

    def versions(self, name: str) -> list[ModelVersion]:
        """Every version of a model, oldest first."""
        return items(ModelVersion, self.http.request("GET", f"/models/{_name(name)}/versions"))

    def get_model(self, name: str) -> RegisteredModel:
        """A registered model with its stages and aliases."""
        return record_from_dict(RegisteredModel, self.http.request("GET", f"/models/{_name(name)}"))

    def list_models(self) -> list[RegisteredModel]:
        """Every registered model."""
        return items(RegisteredModel, self.http.request("GET", "/models"))

    def history(self, name: str) -> list[StageEvent]:
        """Every stage change of a model, oldest first."""
        return items(StageEvent, self.http.request("GET", f"/models/{_name(name)}/history"))

    def production_at(self, name: str, at: datetime | int) -> int | None:
        """The version that was in Production at a moment (ms or aware datetime)."""
        at_ms = check.timestamp_ms(at, "at")
        answer = self.http.request(
            "GET", f"/models/{_name(name)}/production-at", params={"at": at_ms}
        )
        version: int | None = answer["version"]
        return version

    # -- aliases and stages -----------------------------------------------------------

    def set_alias(self, name: str, alias: str, version: int) -> int | None:
        """Point an alias at a version (audited); returns the version it pointed at before."""
        alias = check.name(alias, "Alias", max_length=256)
        answer = self.http.request(
            "PUT",
            f"/models/{_name(name)}/aliases/{seg(alias)}",
            json={"version": _version(version)},
        )
        previous: int | None = answer["previous"]
        return previous

    def delete_alias(self, name: str, alias: str) -> None:
        """Remove an alias (audited)."""
        alias = check.name(alias, "Alias", max_length=256)
        self.http.request("DELETE", f"/models/{_name(name)}/aliases/{seg(alias)}")

    def archive(self, name: str, version: int, *, reason: str | None = None) -> None:
        """Archive a version (the Production version needs the approver role)."""
        reason = check.optional_text(reason, "reason")
        self.http.request(
            "POST",
            f"/models/{_name(name)}/versions/{_version(version)}/archive",
            json={"reason": reason},
        )

    # -- trusted types ----------------------------------------------------------------

    def list_trusted_types(self) -> list[TrustedType]:
        """Types every loader trusts beyond the built-in allow-list."""
        return items(TrustedType, self.http.request("GET", "/trusted-types"))

    def add_trusted_type(self, type_name: str, *, reason: str) -> TrustedType:
        """Trust a type in every loader (approver; audited)."""
        answer = self.http.request(
            "POST", "/trusted-types", json={"type_name": type_name, "reason": reason}
        )
        return record_from_dict(TrustedType, answer)

    def remove_trusted_type(self, type_name: str, *, reason: str | None = None) -> TrustedType:
        """Stop trusting a type (approver; audited)."""
        check.name(type_name, "Type name", max_length=512)
        answer = self.http.request(
            "DELETE", f"/trusted-types/{seg(type_name)}", params={"reason": reason}
        )
        return record_from_dict(TrustedType, answer)

    # -- what needs the stores here ---------------------------------------------------

    def log_model(
        self,
        run_id: str,
        model: Any,
        *,
        name: str,
        input_example: Any = None,
        training_data: Any = None,
        signature: Signature | None = None,
        flavor: str | None = None,
        onnx: bool = False,
        onnx_tolerance: float = 1e-4,
        trusted_types: list[str] | None = None,
        feature_refs: list[str] | None = None,
        description: str | None = None,
        tags: Mapping[str, Any] | None = None,
    ) -> ModelVersion:
        """Save the model here and register it on the server as the next version of
        ``name`` (as :meth:`milepost.models.ModelService.log_model`).

        The server rebuilds the model with its loaders' trust before logging it, so a
        type the author declares in ``trusted_types`` must also be trusted there
        (``milepost models trust add``); a pickle (python flavor) is refused.
        """
        from milepost.client._model_upload import upload_model

        answer = upload_model(
            self,
            run_id,
            model,
            name=name,
            input_example=input_example,
            training_data=training_data,
            signature=signature,
            flavor=flavor,
            onnx=onnx,
            onnx_tolerance=onnx_tolerance,
            trusted_types=trusted_types,
            feature_refs=feature_refs,
            description=description,
            tags=tags,
        )
        return record_from_dict(ModelVersion, answer)

    def _file(self, version: ModelVersion, fname: str) -> bytes:
        """A version's file from the server, checked against its recorded SHA-256."""
        import hashlib

        from milepost.errors import IntegrityViolation

        response = self.http.send(
            "GET", f"/models/{seg(version.name)}/versions/{version.version}/files/{seg(fname)}"
        )
        data = response.content
        if hashlib.sha256(data).hexdigest() != version.files[fname]:
            raise IntegrityViolation(
                f"{version.uri}: {fname} as downloaded does not match its recorded SHA-256.",
                hint="Download it again; if it persists, the stored file was altered.",
            )
        return data

    def load(
        self,
        uri: str | ModelVersion,
        *,
        trusted: bool = False,
        trusted_types: list[str] | None = None,
        extra_columns: str = "error",
        prefer_onnx: bool = False,
    ) -> LoadedModel:
        """Download a version and load it here, with this side's trust: ``trusted_types``,
        the ``trusted_types`` setting and the server's approver-set list (what the author
        declared is not trusted), as :meth:`milepost.models.ModelService.load` does.

        Raises:
            PermissionDenied: untrusted content (every type is named, with how to trust it).
            ConfigError: the model's code is not installed here.
            IntegrityViolation: a downloaded file does not match its digest.
        """
        from milepost.models import flavors
        from milepost.models.service import LoadedModel

        check.boolean(trusted, "trusted")
        check.choice(extra_columns, "extra_columns", ("error", "ignore"))
        check.boolean(prefer_onnx, "prefer_onnx")
        declared = check.string_list(trusted_types or [], "trusted_types")
        version = self.resolve(uri)
        flavor: Any = version.flavor
        data = self._file(version, flavors.MODEL_FILES[flavor])
        settings = self.runtime.settings
        options: dict[str, Any] = {
            "trusted": trusted or settings.trust_pickle,
            "trusted_types": [
                *declared,
                *settings.trusted_type_list(),
                *(t.type_name for t in self.list_trusted_types()),
            ],
            "what": version.uri,
            "declared": version.trusted_types,
        }
        mode: Any = extra_columns
        if prefer_onnx and version.has_onnx:
            flavors.check(flavor, data, **options)  # decided now, not on first use
            impl = flavors.load("onnx", self._file(version, "model.onnx"))
            loaded = LoadedModel(
                version,
                None,
                impl=impl,
                native_loader=lambda: flavors.load(flavor, data, **options),
                extra_columns=mode,
            )
            impl.native = lambda: loaded.native
            return loaded
        return LoadedModel(version, flavors.load(flavor, data, **options), extra_columns=mode)

    def get_profile(self, name: str, version: int) -> Profile | None:
        """The reference profile stored with a version, or None (logged without
        training data)."""
        import json

        from milepost.models.models import PROFILE_FILE
        from milepost.monitoring import Profile

        v = self.get_version(name, version)
        if PROFILE_FILE not in v.files:
            return None
        return Profile.from_dict(json.loads(self._file(v, PROFILE_FILE)))


class RemoteEvaluation:
    """``rt.evaluation`` over HTTP: stored evaluations and fairness audits."""

    def __init__(self, runtime: RemoteRuntime) -> None:
        self.runtime = runtime

    def _version_path(self, uri: str | ModelVersion) -> str:
        v = self.runtime.models.resolve(uri)
        return f"/models/{seg(v.name)}/versions/{v.version}"

    def for_version(self, uri: str | ModelVersion, *, limit: int = 20) -> list[EvaluationResult]:
        """Stored evaluations of a model version, newest first."""
        from milepost.evaluation.models import EvaluationResult

        check.integer(limit, "limit", minimum=1, maximum=1000)
        answer = self.runtime.transport.request(
            "GET", self._version_path(uri) + "/evaluations", params={"limit": limit}
        )
        return items(EvaluationResult, answer, model_uri="model", dataset_ref="dataset")

    def fairness_for_version(
        self, uri: str | ModelVersion, *, limit: int = 20
    ) -> list[FairnessResult]:
        """Stored fairness audits of a model version, newest first."""
        from milepost.evaluation.fairness import FairnessResult

        check.integer(limit, "limit", minimum=1, maximum=1000)
        answer = self.runtime.transport.request(
            "GET", self._version_path(uri) + "/fairness-audits", params={"limit": limit}
        )
        return items(FairnessResult, answer, model_uri="model", dataset_ref="dataset")

    def get_fairness_audit(self, audit_id: str) -> FairnessResult:
        """One stored fairness audit by its id. Raises NotFound."""
        from milepost.evaluation.fairness import FairnessResult

        if isinstance(audit_id, str):
            audit_id = audit_id.strip().lower()
        check.name(audit_id, "Fairness audit id", max_length=32)
        answer = self.runtime.transport.request("GET", f"/fairness-audits/{seg(audit_id)}")
        return record_from_dict(
            FairnessResult, answer, rename={"model_uri": "model", "dataset_ref": "dataset"}
        )

    def _remote_target(self, model: Any, data: Any, trusted: Any, what: str) -> tuple[str, str]:
        """The version path and dataset ref of a remote evaluation or audit."""
        from milepost.data.models import DatasetVersion, parse_ref

        check.boolean(trusted, "trusted")
        if trusted:
            raise InvalidInput(
                f"{what} with trusted=True is not available in remote mode: which types a "
                "model file may hold is the server's loaders' decision.",
                hint="Ask an approver to trust the types (`milepost models trust add`), or "
                "run it where the stores are reachable.",
            )
        if not isinstance(model, (str, ModelVersion)):
            raise local_only(f"{what} of a loaded model", "the model in this process")
        if isinstance(data, DatasetVersion):
            data = data.ref
        if not isinstance(data, str):
            raise InvalidInput(
                f"{what} in remote mode runs on the server over a registered dataset version, "
                f"not a {type(data).__name__}.",
                hint="Register the data first (rt.data.register(name, data)) and pass its "
                "ref ('name@N').",
            )
        parse_ref(data)
        return self._version_path(model), data

    def evaluate(
        self,
        model: str | ModelVersion,
        data: Any,
        *,
        target: str,
        task: str | None = None,
        slices: Sequence[str] = (),
        threshold: float = 0.5,
        run_id: str | None = None,
        trusted: bool = False,
    ) -> EvaluationResult:
        """Evaluate a version on a registered dataset version, on the server; stored."""
        from milepost.evaluation.models import EvaluationResult
        from milepost.evaluation.service import _check_arguments

        wanted = _check_arguments(None, target, task, slices, threshold, run_id, trusted)
        path, ref = self._remote_target(model, data, trusted, "Evaluating a model")
        answer = self.runtime.transport.request(
            "POST",
            path + "/evaluations",
            json={
                "dataset": ref,
                "target": target,
                "task": task,
                "slices": wanted,
                "threshold": threshold,
                "run_id": run_id,
            },
        )
        return record_from_dict(
            EvaluationResult, answer, rename={"model_uri": "model", "dataset_ref": "dataset"}
        )

    def audit_fairness(
        self,
        model: str | ModelVersion,
        data: Any,
        *,
        target: str,
        sensitive_features: Sequence[str],
        min_group_size: int = 30,
        threshold: float = 0.5,
        positive_label: Any = None,
        trusted: bool = False,
    ) -> FairnessResult:
        """Audit a version's fairness on a registered dataset version, on the server."""
        from milepost.evaluation.fairness import FairnessResult
        from milepost.evaluation.service import _check_fairness_arguments

        features = _check_fairness_arguments(
            None, target, sensitive_features, min_group_size, threshold, trusted
        )
        path, ref = self._remote_target(model, data, trusted, "A fairness audit")
        answer = self.runtime.transport.request(
            "POST",
            path + "/fairness-audits",
            json={
                "dataset": ref,
                "target": target,
                "sensitive_features": features,
                "min_group_size": min_group_size,
                "threshold": threshold,
                "positive_label": positive_label,
            },
        )
        return record_from_dict(
            FairnessResult, answer, rename={"model_uri": "model", "dataset_ref": "dataset"}
        )


class RemoteCards:
    """``rt.cards`` over HTTP: model cards and their written sections."""

    def __init__(self, runtime: RemoteRuntime) -> None:
        self.runtime = runtime

    @property
    def http(self) -> Transport:
        return self.runtime.transport

    def card(self, name: str, version: int) -> ModelCard:
        """The card of one model version."""
        from milepost.cards.models import ModelCard

        answer = self.http.request(
            "GET", f"/models/{_name(name)}/versions/{_version(version)}/card"
        )
        return record_from_dict(ModelCard, answer)

    def render(self, name: str, version: int, format: str = "markdown") -> str:
        """The card rendered by the server (``markdown`` or ``html``)."""
        response = self.http.send(
            "GET",
            f"/models/{_name(name)}/versions/{_version(version)}/card",
            params={"format": format},
        )
        return response.text

    def fields(self, name: str, version: int | None = None) -> dict[str, CardField]:
        """The written sections a version's card shows (``version`` None: the model's)."""
        from milepost.cards.models import CardField

        if version is not None:
            version = _version(version)
        answer = self.http.request(
            "GET", f"/models/{_name(name)}/card-fields", params={"version": version}
        )
        return {k: record_from_dict(CardField, v) for k, v in answer["fields"].items()}

    def set_field(
        self,
        name: str,
        field: str,
        text: str,
        *,
        version: int | None = None,
        reason: str | None = None,
    ) -> CardField:
        """Write one section (audited). Writing the text already there changes nothing."""
        from milepost.cards.service import check_field

        (written,) = self.set_fields(
            name, {check_field(field): text}, version=version, reason=reason
        )
        return written

    def set_fields(
        self,
        name: str,
        fields: Mapping[str, str],
        *,
        version: int | None = None,
        reason: str | None = None,
    ) -> list[CardField]:
        """Write several sections in one transaction."""
        from collections.abc import Mapping as MappingABC

        from milepost.cards.models import CARD_FIELDS, CardField

        if not isinstance(fields, MappingABC) or not fields:
            raise InvalidInput(
                "set_fields takes a non-empty mapping of field names to text.",
                hint="Fields: " + ", ".join(CARD_FIELDS) + ".",
            )
        for key, text in fields.items():
            if not isinstance(key, str) or not isinstance(text, str):
                raise InvalidInput(
                    f"Card field {check.short_repr(key)}: names and texts are strings, got "
                    f"{type(key).__name__} -> {type(text).__name__}."
                )
        answer = self.http.request(
            "PUT",
            f"/models/{_name(name)}/card-fields",
            json={
                "fields": dict(fields),
                "version": None if version is None else _version(version),
                "reason": check.optional_text(reason, "reason"),
            },
        )
        return items(CardField, answer)

    def set_fields_from_file(
        self,
        name: str,
        path: str | Path,
        *,
        version: int | None = None,
        reason: str | None = None,
    ) -> list[CardField]:
        """Write the sections in a local YAML file."""
        from milepost.cards.service import read_fields_file

        return self.set_fields(name, read_fields_file(path), version=version, reason=reason)

    def clear_field(
        self,
        name: str,
        field: str,
        *,
        version: int | None = None,
        reason: str | None = None,
    ) -> None:
        """Remove one written section (the model's, or one version's override)."""
        from milepost.cards.service import check_field

        self.http.request(
            "DELETE",
            f"/models/{_name(name)}/card-fields/{seg(check_field(field))}",
            params={
                "version": None if version is None else _version(version),
                "reason": check.optional_text(reason, "reason"),
            },
        )
