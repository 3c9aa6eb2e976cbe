"""Label schemes: each maps a dataset's emotion words to classes, or drops the clip.

The schemes and their mappings are those of ``shared/DATASETS.md``. Words are compared in lower
case with surrounding spaces removed. A clip whose word a scheme does not map is dropped and
counted in the report.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from merkit.datasets.aus import AU_SET, parse_aus
from merkit.errors import ConfigError, check_choice

NO_AU = "none"  # the label of a clip that codes AUs, none of them in the scheme's set


@dataclass(frozen=True)
class LabelScheme:
    """A mapping from (dataset, emotion word) to a class name.

    Parameters
    ----------
    name : str
    description : str
    classes : tuple of str, or None
        Class order (confusion matrices, integer codes). None: the dataset's own words, sorted.
    mapping : {dataset: {word: class}}
        Per dataset; the key ``"*"`` serves datasets without their own entry.
    """

    name: str
    description: str
    classes: tuple[str, ...] | None
    mapping: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    action_units: tuple[int, ...] | None = None  # a multi-label scheme over these AUs (labels from the AU cells)

    @property
    def multilabel(self) -> bool:
        return self.action_units is not None

    def label_of_aus(self, cell) -> str | None:
        """A clip's multi-label label from its AU cell: ``AU1+AU4``, ``none`` if it codes no AU of the
        set, None (dropped, as an unmapped emotion is) if the cell codes no AU at all."""
        aus = parse_aus(cell)
        if not aus:
            return None
        return "+".join(f"AU{a}" for a in aus if a in self.action_units) or NO_AU

    def _table(self, dataset: str) -> Mapping[str, str] | None:
        """The word table of ``dataset``, or of its family (``smic_hs`` -> ``smic``)."""
        for key in (dataset, dataset.split("_")[0], "*"):
            if key in self.mapping:
                return self.mapping[key]
        return None

    def applies_to(self, dataset: str) -> bool:
        return self.classes is None or self.multilabel or self._table(dataset) is not None

    def check_dataset(self, dataset: str) -> None:
        if not self.applies_to(dataset):
            usable = ", ".join(sorted(k for k in self.mapping if k != "*"))
            raise ConfigError(
                f"Label scheme {self.name!r} defines no classes for dataset {dataset!r} "
                f"(it is for: {usable}); choose another with --labels (merkit list labels)."
            )

    def map(self, dataset: str, emotion: str) -> str | None:
        """The class of ``emotion`` in ``dataset``, or None if the scheme drops it."""
        word = emotion.strip().lower()
        if self.classes is None:
            return word
        self.check_dataset(dataset)
        return self._table(dataset).get(word)

    def class_order(self, labels: Iterable[str]) -> tuple[str, ...]:
        """The classes present in ``labels``, in the scheme's order (for ``original``, sorted).

        SMIC under ``seed4`` has no ``other``: a class without clips would only add an empty row
        to every confusion matrix and a dead output to every network.
        """
        if self.multilabel:  # every AU of the set is a column, present in these clips or not
            return self.classes
        present = set(labels)
        return tuple(c for c in self.classes if c in present) if self.classes is not None else tuple(sorted(present))


def _words(**groups: Iterable[str]) -> dict[str, str]:
    """{class: words} -> {word: class}."""
    return {word: cls for cls, words in groups.items() for word in words}


# The emotion columns of the long-video workbooks (STRS scores a spotted expression by them):
# CAS(ME)2's estimated emotion is one of four words, CAS(ME)3 part A's emotion one of seven (the
# words of its short clips); SAMM-LV codes no emotion.
CASME2_LONG_WORDS = ("negative", "positive", "surprise", "others")
CASME3_WORDS = ("anger", "disgust", "fear", "happy", "sad", "surprise", "others")
DFME_WORDS = ("anger", "contempt", "disgust", "fear", "happiness", "sadness", "surprise")  # DFME's EmotionId 0..6

_SEED4_WORDS = _words(
    positive=["happiness", "happy", "amusement", "positive"],
    negative=["disgust", "sadness", "sad", "fear", "contempt", "anger", "angry", "negative"],
    surprise=["surprise"],
    other=["tense", "repression", "others", "other"],
)

SCHEMES: dict[str, LabelScheme] = {
    s.name: s
    for s in [
        LabelScheme("original", "the dataset's own emotion words", None),
        LabelScheme(
            "seed4",
            "MER-RCNN's four classes",
            ("positive", "negative", "surprise", "other"),
            {"*": _SEED4_WORDS},
        ),
        LabelScheme(
            "megc3",
            "MEGC 2019's three classes",
            ("negative", "positive", "surprise"),
            {
                "casme2": _words(negative=["disgust", "repression"], positive=["happiness"], surprise=["surprise"]),
                "samm": _words(
                    negative=["anger", "contempt", "disgust", "fear", "sadness"],
                    positive=["happiness"],
                    surprise=["surprise"],
                ),
                "smic": _words(negative=["negative"], positive=["positive"], surprise=["surprise"]),
                # CAS(ME)2 long videos code these three classes by name (others dropped, as above)
                "casme2_long": _words(negative=["negative"], positive=["positive"], surprise=["surprise"]),
                # CAS(ME)3 (clips and long videos), as MEGC 2022/2023 grouped its words
                "casme3": _words(
                    negative=["anger", "disgust", "fear", "sad", "sadness", "contempt"],
                    positive=["happy", "happiness"],
                    surprise=["surprise"],
                ),
            },
        ),
        LabelScheme(
            "casme2_5",
            "CASME II's five most frequent words",
            ("happiness", "surprise", "disgust", "repression", "others"),
            {
                "casme2": _words(**{w: [w] for w in ["happiness", "surprise", "disgust", "repression", "others"]}),
                # CAS(ME)2 long videos: its negative is CASME II's disgust or repression, so it is dropped
                "casme2_long": _words(happiness=["positive"], surprise=["surprise"], others=["others"]),
            },
        ),
        LabelScheme(
            "samm_5",
            "SAMM's five classes",
            ("anger", "contempt", "happiness", "surprise", "other"),
            {"samm": _words(**{w: [w] for w in ["anger", "contempt", "happiness", "surprise", "other"]})},
        ),
        LabelScheme(
            "aus",
            "action units, multi-label, the cross-dataset set of 12 (clips without AU codes dropped)",
            tuple(f"AU{a}" for a in AU_SET),
            action_units=AU_SET,
        ),
        LabelScheme(
            "dfme_7",
            "DFME's seven emotions (EmotionId order)",
            DFME_WORDS,
            {"dfme": _words(**{w: [w] for w in DFME_WORDS})},
        ),
        LabelScheme(
            "stanet_casme1",
            "STANet: CASME I's four largest classes",
            ("disgust", "repression", "surprise", "tense"),
            {"casme": _words(**{w: [w] for w in ["disgust", "repression", "surprise", "tense"]})},
        ),
    ]
}


def is_multilabel(name: str) -> bool:
    """Whether the scheme called ``name`` gives each clip a set of classes (action units); False
    for names that are no scheme (a dataset built for prediction is labelled ``input``)."""
    return name.startswith("aus:") or (name in SCHEMES and SCHEMES[name].multilabel)


def get_scheme(name: str) -> LabelScheme:
    """The label scheme called ``name``; a ConfigError lists the known ones. ``aus:1,2,25`` is the
    action-unit scheme over another set of AUs.

    Examples
    --------
    >>> get_scheme("aus:1,2,25").classes
    ('AU1', 'AU2', 'AU25')
    """
    if name.startswith("aus:"):
        try:
            aus = tuple(sorted({int(a) for a in name[4:].split(",") if a.strip()}))
        except ValueError:
            aus = ()
        if not aus or min(aus) < 1:
            raise ConfigError(f"--labels {name!r}: give the action units as numbers, e.g. aus:1,2,4,12.")
        return LabelScheme(
            name,
            f"action units {', '.join(map(str, aus))}, multi-label",
            tuple(f"AU{a}" for a in aus),
            action_units=aus,
        )
    return SCHEMES[check_choice("label scheme", name, SCHEMES)]
