"""Handcrafted spatio-temporal descriptors."""

from merkit.features.lbp_top import lbp_top, uniform_mapping

__all__ = ["lbp_top", "uniform_mapping"]
