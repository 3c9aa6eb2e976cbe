"""Datasets as distributed: readers, label schemes, ``Clip`` and ``ClipDataset``."""

from merkit.datasets import casme, casme2, casme3, cross, dfme, fourdme, manifest, megc2019, mmew, samm, smic  # noqa: F401  (register readers)
from merkit.datasets.base import Clip, ClipDataset
from merkit.datasets.labels import SCHEMES, LabelScheme, get_scheme
from merkit.datasets.registry import list_datasets, load, register_dataset

__all__ = ["SCHEMES", "Clip", "ClipDataset", "LabelScheme", "get_scheme", "list_datasets", "load", "register_dataset"]
