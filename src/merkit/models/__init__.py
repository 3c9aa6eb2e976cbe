"""Networks, registered by name (timm style): ``create_model``, ``list_models``."""

from merkit.models import apex_flow_nets, htnet, mer_rcnn, rcn, stanet  # noqa: F401  (registers the models)
from merkit.models.registry import create_model, list_models, register_model

__all__ = ["create_model", "list_models", "register_model"]
