"""The MEGC spotting protocol, as evaluation reaches it: defined in :mod:`merkit.spotting.protocol`
(learned spotters choose their thresholds by it on their training videos, below evaluation)."""

from merkit.spotting.protocol import iou, match, matched_pairs, spotting_scores

__all__ = ["iou", "match", "matched_pairs", "spotting_scores"]
