"""Synthetic micro-expressions: procedural faces, action-unit motion, real dataset layouts."""

from merkit.synthetic.clips import ClipTruth, Nuisance, synthesize_clip
from merkit.synthetic.expressions import ACTION_UNITS, EMOTION_AUS, Expression, timing_profile
from merkit.synthetic.faces import FaceGeometry, render_face
from merkit.synthetic.layouts import (
    LAYOUTS,
    SynthConfig,
    SyntheticDataset,
    is_written,
    write_casme2,
    write_dataset,
    write_megc2019,
)

__all__ = [
    "ACTION_UNITS",
    "EMOTION_AUS",
    "LAYOUTS",
    "ClipTruth",
    "Expression",
    "FaceGeometry",
    "Nuisance",
    "SynthConfig",
    "SyntheticDataset",
    "is_written",
    "render_face",
    "synthesize_clip",
    "timing_profile",
    "write_casme2",
    "write_dataset",
    "write_megc2019",
]
