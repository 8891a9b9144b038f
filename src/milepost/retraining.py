"""The built-in retraining pipeline (a template users copy or call with their own train
function). Built in issue 14."""

from __future__ import annotations

__all__: list[str] = []
