"""Model cards: what the store knows about a model version, plus what people wrote.

::

    import milepost

    rt = milepost.get_runtime()
    rt.cards.set_field("churn", "intended_use", "Rank customers by churn risk.")
    card = rt.cards.card("churn", 3)          # a ModelCard
    card.missing                              # sections nobody wrote, never invented
    from milepost.cards import render_card, write_card
    print(render_card(card, "markdown"))
    write_card(card, "card.html")             # self-contained HTML (also json, cyclonedx)

``CardService`` (``rt.cards``) builds a :class:`ModelCard` (model details, training and
evaluation data with their profiles, metrics overall and per slice, fairness audits,
gate results, lineage, stage and deployment history) and stores the written sections
(:data:`CARD_FIELDS`, per model or per version, audited). Renderers: Markdown,
self-contained HTML, JSON and a CycloneDX 1.6 ML-BOM (:func:`cyclonedx_bom`), validated
against the CycloneDX schema before it is written.
"""

import importlib
from typing import TYPE_CHECKING, Any

# The records are light; the service, the renderers and the BOM (SQLAlchemy, Jinja2,
# cyclonedx-python-lib) are imported on first use, so `milepost --help` stays fast.
from milepost.cards.models import (
    CARD_FIELDS,
    FIELD_TITLES,
    CardDataset,
    CardDeployment,
    CardField,
    ModelCard,
    fill_command,
)

if TYPE_CHECKING:
    from milepost.cards.cyclonedx import cyclonedx_bom, validate_bom
    from milepost.cards.render import FORMATS, render_card, write_card
    from milepost.cards.service import CardService, read_fields_file

__all__ = [
    "CARD_FIELDS",
    "FIELD_TITLES",
    "FORMATS",
    "CardDataset",
    "CardDeployment",
    "CardField",
    "CardService",
    "ModelCard",
    "cyclonedx_bom",
    "fill_command",
    "read_fields_file",
    "render_card",
    "validate_bom",
    "write_card",
]

# Public name -> the module that defines it.
_LAZY: dict[str, str] = {
    **dict.fromkeys(("cyclonedx_bom", "validate_bom"), "milepost.cards.cyclonedx"),
    **dict.fromkeys(("FORMATS", "render_card", "write_card"), "milepost.cards.render"),
    **dict.fromkeys(("CardService", "read_fields_file"), "milepost.cards.service"),
}


def __getattr__(name: str) -> Any:
    """Import a public name on first use and keep it as a module attribute."""
    target = _LAZY.get(name)
    if target is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(target), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
