"""Recognition methods, registered by name (``merkit list methods``)."""

from merkit.methods import (  # noqa: F401  (register the methods)
    apex_flow_nets,
    apex_flow_svm,
    au_prevalence,
    ensemble,
    htnet,
    lbptop_svm,
    mdmo_svm,
    mer_rcnn,
    rcn,
    stanet,
)
from merkit.methods.base import FeatureMethod, Method
from merkit.methods.registry import create_method, list_methods, method_class, register_method

__all__ = ["FeatureMethod", "Method", "create_method", "list_methods", "method_class", "register_method"]
