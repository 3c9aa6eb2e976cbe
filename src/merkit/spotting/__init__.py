"""Spotters: a long video's face frames -> scored intervals of micro- and macro-expressions."""

from merkit.spotting import feature_difference, roi_flow, softnet  # noqa: F401  (register the spotters)
from merkit.spotting.registry import (
    KIND_HEX,
    KIND_RGB,
    LearnedSpotter,
    NotFitted,
    OnlineSpotter,
    Spotter,
    Spotting,
    TrainingVideo,
    create_spotter,
    list_spotters,
    register_spotter,
    spot_cached,
    training_video,
)

__all__ = [
    "KIND_HEX",
    "KIND_RGB",
    "LearnedSpotter",
    "NotFitted",
    "OnlineSpotter",
    "Spotter",
    "Spotting",
    "TrainingVideo",
    "create_spotter",
    "list_spotters",
    "register_spotter",
    "spot_cached",
    "training_video",
]
