"""The model registry: packaging (skops, ONNX, trusted pickles), signatures, versions,
stages, aliases and history."""

from milepost.models.models import STAGES, ModelVersion, RegisteredModel, StageEvent
from milepost.models.service import LoadedModel, ModelService
from milepost.models.signature import ColumnSpec, Signature, infer_signature
from milepost.models.trust import BUILTIN_TYPES, KNOWN_LIBRARIES
from milepost.models.uri import parse_model_uri

__all__ = [
    "BUILTIN_TYPES",
    "KNOWN_LIBRARIES",
    "STAGES",
    "ColumnSpec",
    "LoadedModel",
    "ModelService",
    "ModelVersion",
    "RegisteredModel",
    "Signature",
    "StageEvent",
    "infer_signature",
    "parse_model_uri",
]
