"""The model card record and the human-written sections it holds.

A :class:`ModelCard` is built by :meth:`milepost.cards.CardService.card` from what the
store knows about one model version, plus the sections people wrote
(:data:`CARD_FIELDS`, after Mitchell et al., "Model Cards for Model Reporting", 2019).
A section nobody wrote is listed in :attr:`ModelCard.missing` with the command that
fills it: the card never invents it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from milepost._records import record_dict, short

if TYPE_CHECKING:
    from milepost.evaluation.fairness import FairnessResult
    from milepost.evaluation.models import EvaluationResult
    from milepost.governance.lineage import LineageGraph
    from milepost.models.models import StageEvent
    from milepost.promotion.models import PromotionRequest

__all__ = [
    "CARD_FIELDS",
    "FIELD_TITLES",
    "CardDataset",
    "CardDeployment",
    "CardField",
    "ModelCard",
    "fill_command",
]

#: The sections people write, in the order a card shows them (Mitchell et al. 2019:
#: intended use, factors, ethical considerations, caveats and recommendations; plus the
#: notes on the data, the license and whom to ask).
CARD_FIELDS: tuple[str, ...] = (
    "intended_use",
    "out_of_scope_use",
    "factors",
    "limitations",
    "caveats",
    "ethical_considerations",
    "training_data_notes",
    "evaluation_data_notes",
    "license",
    "contact",
)

#: Each section's heading, and what it should say.
FIELD_TITLES: dict[str, tuple[str, str]] = {
    "intended_use": ("Intended use", "the primary uses and users the model was built for"),
    "out_of_scope_use": ("Out-of-scope use", "uses the model must not be put to, and why"),
    "factors": (
        "Factors",
        "groups, instruments and environments whose performance should be reported apart",
    ),
    "limitations": ("Limitations", "known technical limitations and failure modes"),
    "caveats": ("Caveats and recommendations", "what a user should know or do before relying"),
    "ethical_considerations": (
        "Ethical considerations",
        "sensitive data, risks to people, mitigations and their trade-offs",
    ),
    "training_data_notes": (
        "Training data notes",
        "where the training data came from, how it was chosen and pre-processed",
    ),
    "evaluation_data_notes": (
        "Evaluation data notes",
        "why this evaluation data, and how it differs from the training data",
    ),
    "license": ("License", "the license the model may be used under"),
    "contact": ("Contact", "who answers questions about the model"),
}


def fill_command(name: str, field_name: str, version: int | None = None) -> str:
    """The CLI command that writes one section (model-wide, or for one version)."""
    where = f" --version {version}" if version is not None else ""
    return f'milepost models card-set {name} {field_name} "..."{where}'


@dataclass(frozen=True)
class CardField:
    """A section someone wrote: for the whole model (``version`` 0) or one version (which
    overrides the model's)."""

    field: str
    text: str
    version: int
    updated_by: str
    updated_at: int

    @property
    def title(self) -> str:
        """The section's heading."""
        return FIELD_TITLES[self.field][0] if self.field in FIELD_TITLES else self.field

    @property
    def scope(self) -> str:
        """``model`` or ``version N``: where the text was written."""
        return "model" if self.version == 0 else f"version {self.version}"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (with ``title`` and ``scope``)."""
        return record_dict(self, extra={"title": self.title, "scope": self.scope})

    def __repr__(self) -> str:
        return f"CardField({self.field} for {self.scope} by {self.updated_by}: {short(self.text)})"


@dataclass(frozen=True)
class CardDataset:
    """A dataset version the model was trained or evaluated on, with its profile.

    ``columns`` holds one dict per column (``name``, ``type``, ``nullable`` and, from the
    stored profile, ``nulls``, ``null_fraction``, ``min``, ``max``, ``mean``,
    ``distinct`` where known). ``found`` is False when the version named by the model no
    longer resolves (then only ``ref``, ``role`` and ``content_hash`` are known).
    """

    ref: str
    role: str
    content_hash: str | None
    num_rows: int | None
    columns: list[dict[str, Any]]
    size_bytes: int | None = None
    created_at: int | None = None
    description: str | None = None
    found: bool = True

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return record_dict(self)

    def __repr__(self) -> str:
        rows = f"{self.num_rows:,} rows" if self.num_rows is not None else "not found"
        return f"CardDataset({self.ref} as {self.role!r}, {rows}, {len(self.columns)} columns)"


@dataclass(frozen=True)
class CardDeployment:
    """An endpoint that served the version: when, in which roles, and the deployment
    events that put it there, changed its traffic or took it away (oldest first)."""

    endpoint: str
    first_at: int
    last_at: int
    roles: list[str]
    serving: bool  # the endpoint routes to it now
    events: list[dict[str, Any]]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return record_dict(self)

    def __repr__(self) -> str:
        now = "serving" if self.serving else "retired"
        return (
            f"CardDeployment({self.endpoint} as {'/'.join(self.roles) or '-'}, {now}, "
            f"{len(self.events)} events)"
        )


@dataclass(frozen=True)
class ModelCard:
    """Everything recorded about one model version, plus the sections people wrote.

    Generated sections come from the store: model details, training and evaluation data
    (versions and profiles), metrics (logged with the run, and each stored evaluation
    overall and per slice), fairness audits, promotion requests with each gate's result,
    lineage, stage history and deployments. ``fields`` holds the written sections
    (:data:`CARD_FIELDS`, the version's text overriding the model's); ``missing`` names
    those nobody wrote, and :meth:`fill_command` says how to write one.
    """

    name: str
    version: int
    stage: str
    aliases: list[str]
    flavor: str
    author: str
    created_at: int
    run_id: str | None
    code_version: str | None
    environment: dict[str, Any] | None
    signature: dict[str, Any] | None
    description: str | None
    files: dict[str, str]
    metrics: dict[str, float]
    feature_refs: list[str]
    training_data: list[CardDataset]
    evaluation_data: list[CardDataset]
    evaluations: list[EvaluationResult]
    fairness: list[FairnessResult]
    promotions: list[PromotionRequest]
    stage_history: list[StageEvent]
    deployments: list[CardDeployment]
    lineage: LineageGraph | None
    fields: dict[str, CardField]
    missing: list[str]
    generated_at: int
    #: Why a generated section is empty or partial (``{"lineage": "..."}``).
    notes: dict[str, str] = field(default_factory=dict)

    @property
    def uri(self) -> str:
        """``models:/NAME/VERSION``."""
        return f"models:/{self.name}/{self.version}"

    @property
    def failed_gates(self) -> list[tuple[PromotionRequest, Any]]:
        """(request, gate result) for every gate that did not pass, newest request first."""
        return [
            (request, gate)
            for request in self.promotions
            for gate in request.gates
            if gate.status in ("failed", "error")
        ]

    def text(self, field_name: str) -> str | None:
        """The written text of one section, or None when nobody wrote it."""
        written = self.fields.get(field_name)
        return written.text if written is not None else None

    def fill_command(self, field_name: str, *, for_version: bool = False) -> str:
        """The command that writes ``field_name`` (model-wide, or for this version)."""
        return fill_command(self.name, field_name, self.version if for_version else None)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (with ``uri``, and per missing section the command that
        fills it)."""
        return record_dict(
            self,
            extra={
                "uri": self.uri,
                "fill_commands": {f: self.fill_command(f) for f in self.missing},
            },
        )

    def __repr__(self) -> str:
        written = len(CARD_FIELDS) - len(self.missing)
        return (
            f"ModelCard({self.name}/{self.version} {self.stage}, {written}/{len(CARD_FIELDS)} "
            f"sections written, {len(self.evaluations)} evaluations)"
        )
