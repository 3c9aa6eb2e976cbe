"""Expressions in long videos: frame intervals of a kind (micro or macro), as annotated or spotted."""

from __future__ import annotations

from dataclasses import dataclass

KINDS = ("micro", "macro")


@dataclass(frozen=True)
class Interval:
    """An expression in a long video: frames ``onset`` to ``offset`` (inclusive, 0-based positions),
    of ``kind`` micro or macro; ``score`` is a spotter's confidence, ``aus`` and ``emotion`` what
    an annotator coded."""

    onset: int
    offset: int
    kind: str = "micro"
    score: float = 1.0
    apex: int | None = None
    aus: str = ""
    emotion: str = ""

    @property
    def length(self) -> int:
        return self.offset - self.onset + 1
