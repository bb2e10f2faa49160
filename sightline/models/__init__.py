"""Models: a registry of architectures by name, and a Keras-style summary."""

from sightline.models.curated import CURATED, CuratedBackbone, backbones_table, listed_timm_models
from sightline.models.registry import (
    DATASET_DEFAULT_MODELS,
    DEFAULT_MODEL,
    ModelEntry,
    create_model,
    default_model,
    get_model_entry,
    list_models,
    register_model,
)
from sightline.models.summary import LayerRow, ModelSummary, summary

__all__ = [
    "CURATED",
    "CuratedBackbone",
    "backbones_table",
    "listed_timm_models",
    "DATASET_DEFAULT_MODELS",
    "DEFAULT_MODEL",
    "LayerRow",
    "ModelEntry",
    "ModelSummary",
    "create_model",
    "default_model",
    "get_model_entry",
    "list_models",
    "register_model",
    "summary",
]
