"""The model registry (MLflow): training runs, adapter versions, the `candidate`/`champion` aliases.

Importing this package is cheap; mlflow itself is imported on first use of `ModelRegistry`.
"""

from __future__ import annotations

from docs_assistant.registry.backend import mlflow_key
from docs_assistant.registry.hashing import adapter_hash
from docs_assistant.registry.model_registry import (
    CANDIDATE,
    CHAMPION,
    ModelRegistry,
    ModelVersionInfo,
    TrainingRun,
)
from docs_assistant.registry.resolve import resolve_model_settings

__all__ = [
    "CANDIDATE",
    "CHAMPION",
    "ModelRegistry",
    "ModelVersionInfo",
    "TrainingRun",
    "adapter_hash",
    "mlflow_key",
    "resolve_model_settings",
]
