"""Model cards: what the store knows about a model version, plus what people wrote.

CONTRACT (issue 15; the cards part builds it): ``CardService`` (``rt.cards``) with
``card(name, version) -> ModelCard``, ``set_field(name, field, text, *, version=None)``
and renderers to Markdown, self-contained HTML, JSON and a CycloneDX ML-BOM.
"""

__all__: list[str] = []
