"""Recognition methods: a representation, a classifier and its training recipe.

A method's hyper-parameters are the fields of its dataclass (defaults from its paper); ``fit``
sees only a fold's training clips and ``predict`` only its test clips, so augmentation, which
runs inside ``fit``, can never touch a test clip.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import ClassVar

import numpy as np
from sklearn.multiclass import OneVsRestClassifier

from merkit.datasets.base import Clip, ClipDataset, multi_hot
from merkit.datasets.labels import NO_AU
from merkit.errors import MerkitError
from merkit.io.state import read_arrays, read_estimator, write_arrays, write_estimator
from merkit.preprocess.cache import Cache
from merkit.preprocess.pipeline import Representation


class Method:
    """Base of every method. Subclasses are dataclasses registered with ``@register_method``.

    A fitted method has ``classes_`` (the class names, in the order of ``predict_proba``'s columns).
    """

    name: ClassVar[str]
    summary: ClassVar[str]
    quick: ClassVar[bool] = False  # runs in ``merkit demo`` (a LOSO in well under a minute on 2 cores)
    needs_apex: ClassVar[bool] = False  # reads the apex frame (missing apexes must be estimated)
    min_frames: ClassVar[int] = 2  # the fewest onset..offset frames the representation can use
    paper_labels: ClassVar[dict[str, str]] = {}  # dataset -> the label scheme the method's paper used on it
    keep_fold_models: ClassVar[bool] = False  # a run keeps each fold's fitted state (costly to refit, explainable)
    multilabel: ClassVar[bool] = False  # predicts a set of classes per clip (action units) on multi-label data
    single_label: ClassVar[bool] = True  # predicts one class per clip (every method but the AU baseline)
    # the files ``save`` writes, names inside its folder: a bundle holds exactly these (a property
    # where they depend on the parameters)
    state_files: ClassVar[tuple[str, ...]] = ()

    def params(self) -> dict:
        """The hyper-parameters, as given to the constructor."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    def representation(self) -> Representation | None:
        """What the method reads of each clip, computed once per clip and cached (None: nothing)."""
        return None

    def prepare(self, clip: Clip, cache: Cache) -> bool:
        """Compute and cache what ``clip`` needs before any fold; True if computed now."""
        representation = self.representation()
        return representation.get(clip, cache)[1] if representation is not None else False

    def fit(self, train: ClipDataset, *, seed: int, cache: Cache) -> Method:
        raise NotImplementedError

    def check_machine(self) -> None:
        """Raise a ConfigError if this machine cannot run the method as configured (a network's device)."""

    def folds_together(self) -> int:
        """How many folds ``fit_folds`` should be given at once (0: all of a run's; 1: one)."""
        return 1

    def fit_folds(self, trains: list[ClipDataset], *, seeds: list[int], cache: Cache) -> list[Method]:
        """One fitted copy of this method per training part, ``trains[i]`` with ``seeds[i]``:
        each exactly as ``fit`` would give it (methods that can train several at once do)."""
        return [dataclasses.replace(self).fit(train, seed=seed, cache=cache) for train, seed in zip(trains, seeds)]

    def predict_proba(self, test: ClipDataset, *, cache: Cache) -> np.ndarray:
        """(n_clips, n_classes) probabilities, rows summing to 1, columns in ``classes_``."""
        raise NotImplementedError

    def predict(self, test: ClipDataset, *, cache: Cache) -> np.ndarray:
        """(n_clips,) predicted class names: the most probable class of each clip."""
        return np.asarray(self.classes_, dtype=object)[self.predict_proba(test, cache=cache).argmax(axis=1)]

    def save(self, folder: Path) -> list[str]:
        """Write what ``fit`` learned into ``folder`` (each file atomically, never a pickle);
        returns the names of the files written (``state_files``)."""
        raise NotImplementedError

    def load(self, folder: Path) -> Method:
        """Restore what ``save`` wrote: the method then predicts exactly as the fitted one did."""
        raise NotImplementedError


def probability_columns(classes) -> list[str]:
    """The columns of each class's probability in a table of predictions: ``p_<class>``.

    Examples
    --------
    >>> probability_columns(("negative", "positive"))
    ['p_negative', 'p_positive']
    """
    return [f"p_{name}" for name in classes]


def softmax(logits: np.ndarray) -> np.ndarray:
    """(N, C) logits -> (N, C) float64 probabilities.

    Examples
    --------
    >>> softmax(np.array([[0.0, np.log(3.0)]])).round(3).tolist()
    [[0.25, 0.75]]
    """
    z = np.asarray(logits, dtype=np.float64)
    z = np.exp(z - z.max(axis=1, keepdims=True))
    return z / z.sum(axis=1, keepdims=True)


class NetworkMethod(Method):
    """A method whose fitted state is ``model_`` (a network built by ``create_network``),
    ``classes_`` and the arrays of ``fitted_arrays``; probabilities are the softmax of the logits.
    Subclasses have a ``device`` field (``cpu``, ``cuda``...)."""

    NETWORK_FILE: ClassVar[str] = "network.safetensors"
    state_files = (NETWORK_FILE,)
    keep_fold_models = True
    fitted_names: ClassVar[tuple[str, ...]] = ()  # fitted arrays besides the weights (e.g. input scaling), by attribute

    def create_network(self, num_classes: int):
        raise NotImplementedError

    def check_machine(self) -> None:
        from merkit.training.trainer import torch_device

        torch_device(self.device)

    def clip_input(self, clip: Clip, cache: Cache) -> np.ndarray:
        """The network's float32 input for one clip (its shape without the batch axis)."""
        raise NotImplementedError

    def inputs(self, data: ClipDataset, cache: Cache) -> np.ndarray:
        """(n_clips, ...) float32: every clip's input, stacked."""
        return np.stack([self.clip_input(clip, cache) for clip in data])

    def logits(self, test: ClipDataset, *, cache: Cache) -> np.ndarray:
        """(n_clips, n_classes) the network's outputs."""
        raise NotImplementedError

    def predict_proba(self, test: ClipDataset, *, cache: Cache) -> np.ndarray:
        return softmax(self.logits(test, cache=cache))

    def fitted_arrays(self) -> dict[str, np.ndarray]:
        """Fitted state besides the network's weights: the attributes ``fitted_names`` declares."""
        return {name: np.asarray(getattr(self, name)) for name in self.fitted_names}

    def save(self, folder: Path) -> list[str]:
        arrays = {f"network.{k}": v.detach().cpu().numpy() for k, v in self.model_.state_dict().items()}
        arrays.update({f"fitted.{k}": np.asarray(v) for k, v in self.fitted_arrays().items()})
        write_arrays(Path(folder) / self.NETWORK_FILE, arrays, {"classes": list(self.classes_)})
        return [self.NETWORK_FILE]

    def load(self, folder: Path) -> NetworkMethod:
        """Restore ``save``'s file; a file holding any name besides the network's weights and
        ``fitted_names`` (or lacking one) is refused before anything is set."""
        import torch

        path = Path(folder) / self.NETWORK_FILE
        arrays, metadata = read_arrays(path)
        classes = metadata.get("classes")
        if not isinstance(classes, list) or len(classes) < 2 or not all(isinstance(c, str) for c in classes):
            raise MerkitError(
                f"{path}: its metadata names no classes (a list of two or more names); "
                "only load models merkit wrote, or train it again."
            )
        model = self.create_network(len(classes))
        declared = {f"network.{k}" for k in model.state_dict()} | {f"fitted.{k}" for k in self.fitted_names}
        unknown, missing = sorted(set(arrays) - declared), sorted(declared - set(arrays))
        if unknown or missing:
            raise MerkitError(
                f"{path} does not hold a {self.name} network with these parameters and {len(classes)} "
                f"classes: "
                + "; ".join(
                    ([f"unexpected {', '.join(unknown[:5])}"] if unknown else [])
                    + ([f"missing {', '.join(missing[:5])}"] if missing else [])
                )
                + ". Only load models merkit wrote, or train it again."
            )
        try:
            model.load_state_dict(
                {k.split(".", 1)[1]: torch.from_numpy(v.copy()) for k, v in arrays.items() if k.startswith("network.")}
            )
        except RuntimeError as error:
            raise MerkitError(
                f"{path} does not hold a {self.name} network with these parameters and "
                f"{len(classes)} classes: {str(error).splitlines()[0]}"
            ) from None
        self.classes_, self.model_ = tuple(classes), model
        for name in self.fitted_names:
            setattr(self, name, arrays[f"fitted.{name}"])
        return self


def labels_of(decisions: np.ndarray, classes) -> np.ndarray:
    """(n, n_classes) 0/1 decisions -> (n,) multi-label labels ``AU1+AU4`` (``none``: no class)."""
    return np.asarray(["+".join(c for c, d in zip(classes, row) if d) or NO_AU for row in decisions], dtype=object)


def calibration_splits(y: np.ndarray, groups: np.ndarray, seed: int) -> list[tuple[np.ndarray, np.ndarray]] | None:
    """The (fit, held-out) index pairs on which :func:`calibrated` fits its sigmoids: a k-fold of
    whole ``groups`` (subjects), stratified by class, k up to 5 and at most the fewest subjects
    of a class, the largest k whose every fit part holds every class; None where there is none
    (a class with a single subject: no split can hold it out and keep it)."""
    from sklearn.model_selection import StratifiedGroupKFold

    subjects_per_class = Counter(label for label, _ in set(zip(y, groups)))
    classes = set(y)
    for k in range(min(5, min(subjects_per_class.values())), 1, -1):
        splits = list(
            StratifiedGroupKFold(k, shuffle=True, random_state=seed % 2**32).split(np.zeros(len(y)), y, groups)
        )
        if all(set(y[fit]) == classes for fit, _ in splits):
            return splits
    return None


def calibrated(estimator, x: np.ndarray, y: np.ndarray, groups: np.ndarray, seed: int):
    """``estimator`` fitted on (x, y) with sigmoid-calibrated probabilities, all from these samples.

    Calibration follows Platt: each class's decision values are mapped to probabilities by a
    sigmoid fitted on held-out decisions of a k-fold split of the training part itself, whole
    subjects (``groups``) held out together (:func:`calibration_splits`), so the probabilities are
    those of a person the estimator has not seen, as a bundle meets; the final estimator is fitted
    on all of it (scikit-learn's ``CalibratedClassifierCV(ensemble=False)``). Where a class has a
    single subject no split holds it out: the sigmoid is then fitted on the estimator's own
    training decisions (over-confident, but nothing outside the training part is used).
    """
    from sklearn.base import clone
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.frozen import FrozenEstimator

    splits = calibration_splits(y, groups, seed)
    if splits is not None:
        return CalibratedClassifierCV(estimator, method="sigmoid", cv=splits, ensemble=False).fit(x, y)
    everything = [(np.arange(len(y)), np.arange(len(y)))]  # the frozen estimator's own training decisions
    return CalibratedClassifierCV(FrozenEstimator(clone(estimator).fit(x, y)), method="sigmoid", cv=everything).fit(
        x, y
    )


class FeatureMethod(Method):
    """A fixed (fold-independent) descriptor per clip, its representation, then a scikit-learn
    classifier whose probabilities are calibrated on the training part (:func:`calibrated`).

    ``predict`` is the classifier's own decision (an SVM's, as the papers use it), fitted on the
    whole training part; ``predict_proba`` its calibrated probabilities. As with scikit-learn's
    ``SVC(probability=True)``, the two can disagree on a close call: the calibration sigmoids
    shift probability towards frequent classes, which would cost UF1 and UAR as the decision.
    """

    CLASSIFIER_FILE: ClassVar[str] = "classifier.skops"
    state_files = (CLASSIFIER_FILE,)
    multilabel = True

    def make_classifier(self, seed: int):
        raise NotImplementedError

    def augment(self, features: np.ndarray, clip: Clip, rng: np.random.Generator) -> Iterable[np.ndarray]:
        """Training-only variants of one clip's descriptor (default: the descriptor itself)."""
        yield features

    def features(self, clip: Clip, cache: Cache) -> np.ndarray:
        """(D,) the clip's representation, flattened."""
        return self.representation().get(clip, cache)[0].ravel()

    def _feature_matrix(self, data: ClipDataset, cache: Cache) -> np.ndarray:
        """(n_clips, D) every clip's features."""
        return np.stack([self.features(clip, cache) for clip in data])

    def fit(self, train: ClipDataset, *, seed: int, cache: Cache) -> FeatureMethod:
        rng = np.random.default_rng(seed)
        samples, labels, groups, subjects = [], [], [], train.groups
        for index, clip in enumerate(train):
            for variant in self.augment(self.features(clip, cache), clip, rng):
                samples.append(variant)
                labels.append(clip.label)
                groups.append(subjects[index])  # the clip's subject: calibration holds out whole people
        self.classes_ = train.classes
        if train.multilabel:  # one linear SVM per action unit, each on all the training clips
            with warnings.catch_warnings():  # an AU absent from every training clip gets a constant "no"
                warnings.filterwarnings("ignore", message="Label not .* is present in all training examples")
                self.classifier_ = OneVsRestClassifier(self.make_classifier(seed)).fit(
                    np.stack(samples), multi_hot(labels, self.classes_)
                )
            return self
        self.classifier_ = calibrated(
            self.make_classifier(seed), np.stack(samples), np.asarray(labels), np.asarray(groups), seed
        )
        return self

    def predict(self, test: ClipDataset, *, cache: Cache) -> np.ndarray:
        features = self._feature_matrix(test, cache)
        if isinstance(self.classifier_, OneVsRestClassifier):
            return labels_of(self.classifier_.predict(features), self.classes_)
        decision = self.classifier_.calibrated_classifiers_[0].estimator  # fitted on the whole training part
        return np.asarray(decision.predict(features), dtype=object)

    def predict_proba(self, test: ClipDataset, *, cache: Cache) -> np.ndarray:
        if isinstance(self.classifier_, OneVsRestClassifier):
            raise MerkitError(
                f"{self.name} gives no probabilities for action units yet: each AU's SVM decides yes or no."
            )
        proba = self.classifier_.predict_proba(self._feature_matrix(test, cache))
        known = list(self.classifier_.classes_)
        out = np.zeros((len(proba), len(self.classes_)))  # a class absent from the training part gets 0
        for column, name in enumerate(self.classes_):
            if name in known:
                out[:, column] = proba[:, known.index(name)]
        return out

    def save(self, folder: Path) -> list[str]:
        write_estimator(
            Path(folder) / self.CLASSIFIER_FILE, {"classes": list(self.classes_), "classifier": self.classifier_}
        )
        return [self.CLASSIFIER_FILE]

    def load(self, folder: Path) -> FeatureMethod:
        state = read_estimator(Path(folder) / self.CLASSIFIER_FILE)
        self.classes_, self.classifier_ = tuple(state["classes"]), state["classifier"]
        return self
