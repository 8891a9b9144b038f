"""Shared names for the contract suites (the model fixtures live in tests/conftest.py)."""

from __future__ import annotations

from milepost.demo.data import CATEGORICAL, NUMERIC

FEATURES = NUMERIC + CATEGORICAL
