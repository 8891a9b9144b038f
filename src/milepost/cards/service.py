"""Model cards: built from what the store knows about a version, plus what people wrote.

``CardService.card(name, version)`` reads, through each capability's service, the
version's details (stage, aliases, flavor, author, run, code version, environment,
signature), its training and evaluation data (dataset versions with their profiles), its
metrics (logged with the run, and every stored evaluation overall and per slice), its
fairness audits, its promotion requests with every gate's result, its lineage, its stage
history and the endpoints that served it with their deployment events.

The sections people write (:data:`~milepost.cards.CARD_FIELDS`) are stored per model
(every version's card shows them) or per version (which overrides the model's text) by
:meth:`CardService.set_field` / :meth:`~CardService.set_fields` /
:meth:`~CardService.clear_field`, each change audited in its transaction. A section
nobody wrote is listed in ``card.missing``: the card never makes one up.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from milepost import _validate as check
from milepost._actor import ActorAttribute
from milepost.cards.models import (
    CARD_FIELDS,
    LINEAGE_DEPTH,
    CardDataset,
    CardDeployment,
    CardField,
    ModelCard,
)
from milepost.cards.store import SqlCardStore
from milepost.errors import InvalidInput, MilepostError, NotFound, did_you_mean

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from milepost.data.service import DataService
    from milepost.evaluation.fairness import FairnessResult
    from milepost.evaluation.models import EvaluationResult
    from milepost.evaluation.service import EvaluationService
    from milepost.governance.lineage import LineageGraph, LineageService
    from milepost.models.models import ModelVersion
    from milepost.models.service import ModelService
    from milepost.promotion.service import PromotionService
    from milepost.serving.service import DeploymentService
    from milepost.stores.metadata import MetadataStore
    from milepost.tracking.service import TrackingService

__all__ = ["CardService", "read_fields_file"]

#: The longest text one section may hold.
MAX_TEXT = 20_000
#: Dataset input roles read as evaluation data (every other role is training data).
EVALUATION_ROLES = frozenset({"eval", "evaluation", "test", "validation", "holdout"})
#: Profile statistics a card shows per column.
_PROFILE_KEYS = ("kind", "nulls", "null_fraction", "min", "max", "mean", "distinct")
#: How many deployment events of one endpoint a card reads (newest first).
_EVENT_LIMIT = 5_000


def _now() -> int:
    return int(time.time() * 1000)


def check_field(name: Any) -> str:
    """A section name from :data:`CARD_FIELDS`, or InvalidInput with the close ones."""
    if not isinstance(name, str):
        raise InvalidInput(
            f"A model card field is a name, got {type(name).__name__}.",
            hint="Fields: " + ", ".join(CARD_FIELDS) + ".",
        )
    if name not in CARD_FIELDS:
        raise InvalidInput(
            f"A model card has no field {name!r}.{did_you_mean(name, CARD_FIELDS)}",
            hint="Fields: " + ", ".join(CARD_FIELDS) + ".",
        )
    return name


def _check_text(field: str, text: Any) -> str:
    value = check.text(text, f"The text of {field!r}", max_length=MAX_TEXT)
    if not value.strip():
        raise InvalidInput(
            f"The text of {field!r} is empty.",
            hint="Write what the section should say, or clear it with "
            f"`milepost models card-clear NAME {field}`.",
        )
    return value


def read_fields_file(path: str | Path) -> dict[str, str]:
    """Sections from a YAML (or JSON) file mapping field names to text.

    Example ``card.yaml``::

        intended_use: Rank customers by churn risk for the retention team.
        out_of_scope_use: Pricing or credit decisions.
        contact: ml-team@example.com

    Raises:
        InvalidInput: the file is missing, not a mapping of names to text, or names a
            field a model card does not have.
    """
    import yaml

    file = check.local_path(path, "Model card file", kind="file")
    try:
        data = yaml.safe_load(file.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise InvalidInput(
            f"{file} is not valid YAML: {exc}",
            hint="Write one `field: text` line per section (use `|` for several lines).",
        ) from exc
    if not isinstance(data, dict) or not data:
        raise InvalidInput(
            f"{file} must map field names to text, got {type(data).__name__}.",
            hint="Fields: " + ", ".join(CARD_FIELDS) + ".",
        )
    out: dict[str, str] = {}
    for key, value in data.items():
        field = check_field(str(key))
        if not isinstance(value, str):
            raise InvalidInput(
                f"{file}: the value of {field!r} must be text, got {type(value).__name__}.",
                hint="Quote it, or use `|` for a block of text.",
            )
        out[field] = _check_text(field, value)
    return out


def _profile_columns(
    schema: list[Any], profile: Mapping[str, Mapping[str, Any]]
) -> list[dict[str, Any]]:
    columns = []
    for col in schema:
        stats = profile.get(col.name, {})
        columns.append(
            {
                "name": col.name,
                "type": col.type,
                "nullable": col.nullable,
                **{k: stats.get(k) for k in _PROFILE_KEYS},
            }
        )
    return columns


class CardService:
    """Builds model cards and stores the sections people write.

    Args:
        db: the metadata store (the written sections live in ``model_card_fields``).
        actor: who writes sections through this service.
        models, evaluation, promotion, data, tracking: the services a card reads.
        serving, lineage: built on first use (a card of a never-deployed model needs no
            serving stack).
    """

    actor = ActorAttribute()

    def __init__(
        self,
        db: MetadataStore,
        actor: str,
        *,
        models: ModelService,
        evaluation: EvaluationService,
        promotion: PromotionService,
        data: DataService,
        tracking: TrackingService,
        serving: Callable[[], DeploymentService],
        lineage: Callable[[], LineageService],
    ) -> None:
        self.store = SqlCardStore(db)
        self.actor = actor
        self.models = models
        self.evaluation = evaluation
        self.promotion = promotion
        self.data = data
        self.tracking = tracking
        self._serving = serving
        self._lineage = lineage

    # -- the card ---------------------------------------------------------------------

    def card(self, name: str, version: int) -> ModelCard:
        """The card of one model version.

        Args:
            name: the registered model.
            version: its version number.

        Returns:
            A :class:`~milepost.cards.ModelCard`; ``missing`` names the written sections
            nobody filled in, ``notes`` says why a generated section is partial.

        Raises:
            NotFound: no such model or version (with close names).
        """
        mv = self.models.get_version(name, check.integer(version, "version", minimum=1))
        notes: dict[str, str] = {}
        evaluations = self.evaluation.for_version(mv, limit=50)
        fairness = self._fairness(mv)
        training, evaluation_data = self._datasets(mv, evaluations, fairness)
        fields = self._merged_fields(mv.name, mv.version)
        return ModelCard(
            name=mv.name,
            version=mv.version,
            stage=mv.stage,
            aliases=list(mv.aliases),
            flavor=mv.flavor,
            author=mv.author,
            created_at=mv.created_at,
            run_id=mv.run_id,
            code_version=mv.code_version,
            environment=self._environment(mv),
            signature=mv.signature.to_dict() if mv.signature is not None else None,
            description=mv.description,
            files=dict(mv.files),
            metrics=dict(mv.metrics),
            feature_refs=list(mv.feature_refs),
            training_data=training,
            evaluation_data=evaluation_data,
            evaluations=evaluations,
            fairness=fairness,
            promotions=self.promotion.list_requests(model=mv.name, version=mv.version),
            stage_history=[e for e in self.models.history(mv.name) if e.version == mv.version],
            deployments=self._deployments(mv),
            lineage=self._lineage_graph(mv, notes),
            fields=fields,
            missing=[f for f in CARD_FIELDS if f not in fields],
            generated_at=_now(),
            notes=notes,
        )

    def _environment(self, mv: ModelVersion) -> dict[str, Any] | None:
        if not mv.env_hash:
            return None
        try:
            env = self.tracking.get_environment(mv.env_hash)
        except NotFound:
            return {"env_hash": mv.env_hash}
        return env.to_dict()

    def _dataset(self, ref: str, role: str, content_hash: str | None) -> CardDataset:
        try:
            dv = self.data.get(ref)
        except NotFound:
            return CardDataset(ref, role, content_hash, None, [], found=False)
        return CardDataset(
            ref=dv.ref,
            role=role,
            content_hash=dv.content_hash,
            num_rows=dv.num_rows,
            columns=_profile_columns(dv.schema, dv.profile),
            size_bytes=dv.size_bytes,
            created_at=dv.created_at,
            description=dv.description,
        )

    def _datasets(
        self,
        mv: ModelVersion,
        evaluations: list[EvaluationResult],
        fairness: list[FairnessResult],
    ) -> tuple[list[CardDataset], list[CardDataset]]:
        """The training data (the run's inputs) and the evaluation data (inputs in an
        evaluation role, then what evaluations and fairness audits scored), each once."""
        training: list[CardDataset] = []
        evaluation: list[CardDataset] = []
        seen: set[str] = set()
        for used in mv.datasets:
            ref, role = used.get("ref", ""), used.get("role", "train")
            if not ref or ref in seen:
                continue
            seen.add(ref)
            entry = self._dataset(ref, role, used.get("content_hash"))
            (evaluation if role in EVALUATION_ROLES else training).append(entry)
        scored = [(e.dataset_ref, "evaluation") for e in evaluations]
        scored += [(a.dataset_ref, "fairness audit") for a in fairness]
        for data_ref, why in scored:
            if data_ref is None or data_ref in seen:
                continue
            seen.add(data_ref)
            evaluation.append(self._dataset(data_ref, why, None))
        return training, evaluation

    def _fairness(self, mv: ModelVersion) -> list[FairnessResult]:
        return self.evaluation.fairness_for_version(mv.uri, limit=20)

    def _lineage_graph(self, mv: ModelVersion, notes: dict[str, str]) -> LineageGraph | None:
        try:
            return self._lineage().graph(mv.uri, depth=LINEAGE_DEPTH)
        except NotImplementedError:
            notes["lineage"] = "the lineage graph is not available in this installation"
        except MilepostError as exc:
            notes["lineage"] = f"the lineage graph could not be read: {exc}"
        return None

    def _deployments(self, mv: ModelVersion) -> list[CardDeployment]:
        serving = self._serving()
        out = []
        for endpoint in serving.list_endpoints():
            events = list(reversed(serving.store.events(endpoint, limit=_EVENT_LIMIT)))
            spec, _ = serving.get(endpoint)
            entry = _served(endpoint, events, mv.name, mv.version)
            now = any(v.model == mv.name and v.version == mv.version for v in spec.variants)
            if entry is None and not now:
                continue
            history = entry or []
            roles = sorted({e["role"] for e in history if e.get("role")})
            if now:
                roles = sorted(
                    set(roles)
                    | {
                        v.role
                        for v in spec.variants
                        if v.model == mv.name and v.version == mv.version
                    }
                )
            times = [e["at"] for e in history] or [0]
            out.append(
                CardDeployment(
                    endpoint=endpoint,
                    first_at=min(times),
                    last_at=max(times),
                    roles=roles,
                    serving=now,
                    events=history,
                )
            )
        return out

    # -- the written sections ------------------------------------------------------------

    def _merged_fields(self, name: str, version: int) -> dict[str, CardField]:
        merged: dict[str, CardField] = {}
        for f in self.store.fields(name, version):  # model-wide first, then the version's
            if f.field in CARD_FIELDS:
                merged[f.field] = f
        return {f: merged[f] for f in CARD_FIELDS if f in merged}

    def fields(self, name: str, version: int | None = None) -> dict[str, CardField]:
        """The written sections a version's card shows (``version`` None: the model's own).

        Raises:
            NotFound: no such model or version.
        """
        check.name(name, "Model name")
        if version is None:
            return {f.field: f for f in self.store.fields(name, 0) if f.version == 0}
        self.models.get_version(name, check.integer(version, "version", minimum=1))
        return self._merged_fields(name, version)

    def set_field(
        self,
        name: str,
        field: str,
        text: str,
        *,
        version: int | None = None,
        reason: str | None = None,
    ) -> CardField:
        """Write one section, for the whole model or (``version``) one version, audited
        (``model_card.update``). Writing the text already there changes nothing.

        Raises:
            InvalidInput: an unknown field (with the close names) or empty text.
            NotFound: no such model or version.
        """
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
        """Write several sections in one transaction (one audit event per section that
        changes). Every name and text is checked before anything is written."""
        if not isinstance(fields, Mapping) or not fields:
            raise InvalidInput(
                "set_fields takes a non-empty mapping of field names to text.",
                hint="Fields: " + ", ".join(CARD_FIELDS) + ".",
            )
        changes = {check_field(k): _check_text(str(k), v) for k, v in fields.items()}
        return self.store.write(
            check.name(name, "Model name"),
            self._version(version),
            changes,
            actor=self.actor,
            reason=check.optional_text(reason, "reason"),
        )

    def set_fields_from_file(
        self,
        name: str,
        path: str | Path,
        *,
        version: int | None = None,
        reason: str | None = None,
    ) -> list[CardField]:
        """Write the sections in a YAML file (see :func:`read_fields_file`)."""
        return self.set_fields(name, read_fields_file(path), version=version, reason=reason)

    def clear_field(
        self,
        name: str,
        field: str,
        *,
        version: int | None = None,
        reason: str | None = None,
    ) -> None:
        """Remove one written section (the model's, or one version's override), audited.
        Clearing a section nobody wrote changes nothing."""
        self.store.write(
            check.name(name, "Model name"),
            self._version(version),
            {check_field(field): None},
            actor=self.actor,
            reason=check.optional_text(reason, "reason"),
        )

    @staticmethod
    def _version(version: int | None) -> int:
        return 0 if version is None else check.integer(version, "version", minimum=1)


def _variants(details: Any) -> list[dict[str, Any]] | None:
    """The variants an event's details record (a spec summary), or None when the event
    records something else (controller statistics)."""
    if isinstance(details, dict) and isinstance(details.get("variants"), list):
        return [v for v in details["variants"] if isinstance(v, dict)]
    return None


def _served(
    endpoint: str, events: list[Any], name: str, version: int
) -> list[dict[str, Any]] | None:
    """The events (oldest first) that put ``name``/``version`` on the endpoint, changed
    its role or weight, or took it off; None when it was never there."""
    del endpoint
    mine: dict[str, Any] | None = None
    out: list[dict[str, Any]] = []
    for event in events:
        variants = _variants(event.details)
        if variants is None:
            if mine is not None:  # a controller step while it was there: keep the story
                out.append(_entry(event, mine))
            continue
        now = next(
            (v for v in variants if v.get("model") == name and v.get("version") == version),
            None,
        )
        if now is not None or mine is not None:
            out.append(_entry(event, now))
        mine = now
    return out or None


def _entry(event: Any, variant: Mapping[str, Any] | None) -> dict[str, Any]:
    return {
        "at": event.at,
        "kind": event.kind,
        "actor": event.actor,
        "revision": event.revision,
        "reason": event.reason,
        "role": variant.get("role") if variant else None,
        "weight": variant.get("weight") if variant else None,
    }
