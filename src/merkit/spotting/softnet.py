"""SOFTNet: a shallow optical-flow three-stream CNN that learns to spot (Liong et al., ICIP 2021).

Each frame ``t`` of the aligned face is compared with frame ``t - k``: dense optical flow (u, v)
and its optical strain, minus the nose's (the head's own motion; |u| and |v|), the eyes masked
(blinks), the brows-and-eyes band and the mouth band each resized to 42 x 21 and stacked into one
42 x 42 image of three channels. ``k`` is half the mean length of the annotated expressions of the
training videos, micro and macro apart (the paper: k = 6 and 18 frames on CAS(ME)², 37 and 174 on
SAMM-LV). A network per kind regresses each frame's pseudo-label: 1 when the frames its flow spans
overlap an annotated interval of the kind (IoU > 0), else 0. Its three streams (u, v, strain) are
one 5 x 5 convolution each (3, 5 and 8 filters, ReLU) and a 3 x 3 max-pool; the streams are
concatenated, pooled 2 x 2, and a dense layer of 400 (ReLU) gives one linear output. Training as
the paper: mean squared error, SGD at lr 0.0005, batches of 12, 10 epochs; half the frames without
an expression dropped at random; micro-expression frames tripled by a flip, a 7 x 7 Gaussian blur
and Gaussian noise. A video's scores are smoothed over ``2k + 1`` frames; peaks above
``mean + p (max - mean)`` (the paper's p = 0.55; merkit chooses it on the training videos), at
least ``k`` frames apart, are spotted as ``2k + 1`` frames around them.

Where merkit differs from the paper:

- Faces come from merkit's tracker (128 x 128, eyes at 0.38 of the height), and the bands and the
  eye masks are fixed fractions of that face (:data:`BANDS`, ``roi_flow.EYES``) instead of dlib's
  landmarks of the first frame; the nose patch is ``roi_flow.REFERENCE``.
- Flow is Farnebäck by default (``flow='tvl1'`` gives the paper's TV-L1, about 20 times slower);
  strain uses central differences (:func:`merkit.preprocess.flow.optical_strain`).
- The row of frame ``t`` holds the flow from ``t - k`` to ``t`` (merkit's spotters stream), so its
  pseudo-label is 1 when frames ``t - k .. t`` overlap an interval, and a peak at ``t`` is centred
  on the flow's middle frame ``t - k // 2``; the paper indexes the flow by its first frame.
- Flow images are kept as float16, one block per kind named by its gap (``signal_parts``), so
  that the tracking cache holds each video's images once per distinct k whatever the folds.
- ``k`` comes from the training videos of each fold only (the paper computes it over the whole
  dataset); without a training interval of a kind, the paper's CAS(ME)² value (0.2 s micro, 0.6 s
  macro) is used. ``k_micro`` / ``k_macro`` (seconds) fix it instead.
- Each sample is min-max normalised per channel before augmentation (the paper after), and the
  noise is N(0, 0.1) on that scale (skimage's ``random_noise`` default variance, 0.01).
- Scores are smoothed by a centred mean over ``2k + 1`` frames (the paper: ``2k``). The threshold
  rule is the paper's, but ``p`` (the paper's 0.55, found on its whole dataset) is chosen inside
  each fit, per kind, on the training videos only: the value of :data:`P_GRID` whose spotted
  intervals give the best F1 (MEGC protocol) over the training videos' own scores, ties going to
  the value nearest 0.55 (:func:`chosen_p`). ``p > 0`` fixes it instead. Nothing is tuned on a
  test video.

References
----------
Liong, G.-B., See, J., Wong, L.-K. "Shallow optical flow three-stream CNN for macro- and
micro-expression spotting from long videos." ICIP 2021, 2643-2647.
"""

from __future__ import annotations

import dataclasses
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from merkit.datasets.intervals import KINDS, Interval
from merkit.errors import ConfigError
from merkit.preprocess.flow import optical_flow, optical_strain
from merkit.spotting.protocol import spotting_scores
from merkit.spotting.registry import LearnedSpotter, Spotting, TrainingVideo, register_spotter
from merkit.spotting.roi_flow import REGIONS, region_slices

SIDE = 42  # the network's input: SIDE x SIDE, the two bands SIDE / 2 high each
CELLS = 3 * SIDE * SIDE  # numbers per frame and kind: u, v, strain
# (top, bottom, left, right) as fractions of the aligned face: brows and eyes, then the mouth
BANDS = ((0.12, 0.50, 0.12, 0.88), (0.68, 0.96, 0.24, 0.78))
PAPER_K = {"micro": 0.2, "macro": 0.6}  # seconds: the paper's k on CAS(ME)² (6 and 18 frames at 30 fps)
PAPER_P = 0.55
P_GRID = tuple(round(0.05 * i, 2) for i in range(1, 20))  # the thresholds p a fit chooses from: 0.05 .. 0.95


def flow_image(before: np.ndarray, after: np.ndarray, *, method: str = "farneback") -> np.ndarray:
    """(3, SIDE, SIDE) float32: |u|, |v| and strain minus the nose's, of the flow from ``before`` to
    ``after`` ((S, S) grey faces); the eyes masked; the brows-and-eyes band above the mouth band."""
    size = before.shape[0]
    flow = optical_flow(before, after, method=method)
    maps = np.dstack([flow, optical_strain(flow)])
    slices = region_slices(size)
    rows, cols = slices[-1]
    maps -= maps[rows, cols].reshape(-1, 3).mean(axis=0)
    maps[..., :2] = np.abs(maps[..., :2])
    for rows, cols in slices[len(REGIONS) : -1]:  # the eyes
        maps[rows, cols] = 0
    bands = [
        cv2.resize(
            maps[int(t * size) : int(b * size), int(left * size) : int(right * size)],
            (SIDE, SIDE // 2),
            interpolation=cv2.INTER_AREA,
        )
        for t, b, left, right in BANDS
    ]
    return np.concatenate(bands, axis=0).transpose(2, 0, 1).astype(np.float32)


def pseudo_labels(n_frames: int, intervals: Sequence[Interval], k: int) -> np.ndarray:
    """(T,) float32: 1 for the rows whose flow (frames ``t - k .. t``) overlaps one of ``intervals``.

    Examples
    --------
    >>> pseudo_labels(12, [Interval(4, 5)], 3).astype(int).tolist()
    [0, 0, 0, 0, 1, 1, 1, 1, 1, 0, 0, 0]
    """
    labels = np.zeros(n_frames, np.float32)
    for interval in intervals:
        labels[max(interval.onset, 0) : max(interval.offset + k + 1, 0)] = 1.0
    return labels


def smoothed(score: np.ndarray, k: int) -> np.ndarray:
    """(T,) the mean of ``score`` over the ``2k + 1`` frames around each (fewer at the ends).

    Examples
    --------
    >>> smoothed(np.array([0.0, 0, 3, 0, 0]), 1).tolist()
    [0.0, 1.0, 1.0, 1.0, 0.0]
    """
    total = np.concatenate([[0.0], np.cumsum(score, dtype=np.float64)])
    t = np.arange(len(score))
    low, high = np.maximum(t - k, 0), np.minimum(t + k + 1, len(score))
    return (total[high] - total[low]) / (high - low)


def spotted_intervals(score: np.ndarray, k: int, p: float, kind: str) -> list[Interval]:
    """The paper's peak detection on a smoothed (T,) ``score``: peaks above ``mean + p (max - mean)``,
    at least ``k`` frames apart, each spotted as the ``2k + 1`` frames around the middle of its flow
    (``peak - k // 2``), clipped to the video.

    Examples
    --------
    >>> [(i.onset, i.offset, i.apex) for i in spotted_intervals(np.array([0.0, 0, 1, 0, 0, 0, 0, 0, 0, 3, 0, 0]), 2, 0.5, "micro")]
    [(6, 10, 8)]
    """
    from scipy.signal import find_peaks

    if not len(score):
        return []
    peaks, _ = find_peaks(score, height=threshold(score, p), distance=k)
    last = len(score) - 1
    return [
        Interval(max(centre - k, 0), min(centre + k, last), kind, float(score[peak]), max(centre, 0))
        for peak in peaks
        for centre in [int(peak) - k // 2]
    ]


def threshold(score: np.ndarray, p: float) -> float:
    """``mean + p (max - mean)`` of a (T,) score (0 for an empty one)."""
    return float(score.mean() + p * (score.max() - score.mean())) if len(score) else 0.0


def chosen_p(
    scores: Sequence[np.ndarray],
    truths: Sequence[Sequence[Interval]],
    k: Sequence[int],
    kind: str,
    grid: Sequence[float] = P_GRID,
) -> tuple[float, list[float]]:
    """The p of ``grid`` whose :func:`spotted_intervals` give the best F1 of ``kind`` over the videos
    (smoothed (T,) ``scores``, annotated ``truths``, each video's ``k``), ties going to the value
    nearest the paper's 0.55; and the F1 of each grid value.

    Examples
    --------
    >>> score = np.array([0.0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0])  # a lesser peak at 3, the expression at 10
    >>> chosen_p([score], [[Interval(8, 12)]], [2], "micro", grid=(0.1, 0.5, 0.9))[0]  # 0.1 spots both (F1 2/3)
    0.5
    """
    f1 = [
        spotting_scores(
            [(truth, spotted_intervals(score, gap, p, kind)) for score, truth, gap in zip(scores, truths, k)]
        )[kind]["f1"]
        for p in grid
    ]
    best = max(range(len(grid)), key=lambda i: (f1[i], -abs(grid[i] - PAPER_P)))
    return float(grid[best]), f1


def normalised(x: np.ndarray) -> np.ndarray:
    """(N, 3, SIDE, SIDE) float32: each sample's channels min-max scaled to [0, 1] (as the paper's ``cv2.normalize``)."""
    x = np.asarray(x, np.float32)
    low = x.min(axis=(2, 3), keepdims=True)
    span = x.max(axis=(2, 3), keepdims=True) - low
    return ((x - low) / np.where(span > 0, span, 1.0)).astype(np.float32)


def augmented(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """(3N, 3, SIDE, SIDE) the flipped, blurred (7 x 7 Gaussian) and noisy (N(0, 0.1), clipped) copies of ``x``."""
    flipped = x[..., ::-1]
    blurred = np.stack(
        [cv2.GaussianBlur(np.ascontiguousarray(s.transpose(1, 2, 0)), (7, 7), 0).transpose(2, 0, 1) for s in x]
    )
    noisy = np.clip(x + rng.normal(0.0, 0.1, x.shape), 0.0, 1.0)
    return np.concatenate([flipped, blurred.reshape(x.shape), noisy]).astype(np.float32)


def network():
    """The shallow three-stream CNN: (N, 3, SIDE, SIDE) u, v, strain -> (N,) score. On a CPU the
    network runs through :mod:`merkit.spotting.softnet_kernel` (the same function, compiled streams;
    a training step of 12 samples about 4 times faster than through PyTorch's layers)."""
    import torch
    from torch import nn

    from merkit.spotting import softnet_kernel

    class SOFTNetNetwork(nn.Module):
        def __init__(self):
            super().__init__()
            self.streams = nn.ModuleList(
                nn.Sequential(nn.Conv2d(1, c, 5, padding=2), nn.ReLU(), nn.MaxPool2d(3)) for c in (3, 5, 8)
            )
            side = SIDE // 3 // 2
            self.head = nn.Sequential(
                nn.MaxPool2d(2), nn.Flatten(), nn.Linear(16 * side * side, 400), nn.ReLU(), nn.Linear(400, 1)
            )

        def forward(self, x):
            if softnet_kernel.handles(x):  # the same function: compiled streams, the backward pass written out
                convs = [stream[0] for stream in self.streams]
                return softnet_kernel.network_output(x, convs, self.head[2], self.head[4])[:, 0]
            return self.head(torch.cat([stream(x[:, i : i + 1]) for i, stream in enumerate(self.streams)], dim=1))[:, 0]

    return SOFTNetNetwork()


@register_spotter
@dataclass
class SOFTNet(LearnedSpotter):
    """Shallow optical-flow three-stream CNN regressing each frame's pseudo-label (Liong et al. 2021).

    Parameters
    ----------
    p : threshold share of the way from a video's mean smoothed score to its maximum; 0 = chosen per
        kind on the training videos (:func:`chosen_p`)
    epochs, batch_size, lr : SGD training of each network (the paper's 10, 12, 0.0005)
    k_micro, k_macro : seconds between the frames of a flow; 0 = half the mean annotated length in training
    flow : optical flow estimator (``farneback``, ``tvl1``, ...)
    seed : of the weights, the dropped frames and the noise
    """

    name = "softnet"
    summary = "SOFTNet: optical flow k frames apart, a shallow three-stream CNN regressing pseudo-labels (learned)"

    p: float = 0.0
    epochs: int = 10
    batch_size: int = 12
    lr: float = 0.0005
    k_micro: float = 0.0
    k_macro: float = 0.0
    flow: str = "farneback"
    seed: int = 0

    def gaps(self, fps: float) -> tuple[int, int]:
        """k in frames at ``fps``, micro and macro."""
        if not hasattr(self, "k_"):
            self.check_fitted()
        return tuple(max(1, int(round(self.k_[kind] * fps))) for kind in KINDS)

    def signal_tag(self, fps: float) -> str:
        micro, macro = self.gaps(fps)
        return f"k{micro}-{macro}-{self.flow}"

    def fewest_frames(self, fps: float) -> int:
        """A micro row needs the frame k_micro before: k_micro + 1 frames."""
        return self.gaps(fps)[0] + 1

    def signal_parts(self, fps: float) -> list[str]:
        """One block per kind, named by its gap: folds whose k agree for a kind share its flow images."""
        return [f"k{gap}-{self.flow}-f16" for gap in self.gaps(fps)]

    def part_signals(self, faces: Iterable[np.ndarray | None], fps: float, part: int) -> np.ndarray:
        """(T, CELLS) float16: the flow images (:func:`flow_image`) from the frame k of kind ``part``
        before, flattened (NaN where a flow is unknown: the first k frames, or a frame without a
        usable face lies between)."""
        return self._flow_images(faces, fps, [self.gaps(fps)[part]])

    def signals(self, faces: Iterable[np.ndarray | None], fps: float) -> np.ndarray:
        """(T, 2 CELLS) float16: :meth:`part_signals` micro, then macro, in one pass over ``faces``."""
        return self._flow_images(faces, fps, self.gaps(fps))

    def _flow_images(self, faces: Iterable[np.ndarray | None], fps: float, gaps: Sequence[int]) -> np.ndarray:
        if not fps > 0:
            raise ConfigError(f"Spotting needs the frame rate; got fps={fps}.")
        history: deque = deque(maxlen=max(gaps) + 1)
        rows, images = [], {}
        for face in faces:
            row = np.full(len(gaps) * CELLS, np.nan, np.float16)
            if face is None:
                history.clear()
            else:
                history.append(face)
                images.clear()  # one flow per distinct gap and frame
                for i, gap in enumerate(gaps):
                    if len(history) > gap:
                        if gap not in images:
                            images[gap] = flow_image(history[-1 - gap], face, method=self.flow).ravel()
                        row[i * CELLS : (i + 1) * CELLS] = images[gap]
            rows.append(row)
        return np.array(rows, np.float16).reshape(-1, len(gaps) * CELLS)

    def _k_seconds(self, kind: str, videos: Sequence[TrainingVideo]) -> float:
        fixed = {"micro": self.k_micro, "macro": self.k_macro}[kind]
        lengths = [i.length / v.fps for v in videos for i in v.intervals if i.kind == kind]
        return fixed if fixed > 0 else float(np.mean(lengths)) / 2 if lengths else PAPER_K[kind]

    def signal_settings(self, videos: Sequence[TrainingVideo]) -> SOFTNet:
        """A copy with k (seconds, micro and macro) as :meth:`fit` on ``videos`` sets it."""
        spotter = dataclasses.replace(self)
        spotter.k_ = {kind: self._k_seconds(kind, videos) for kind in KINDS}
        return spotter

    def training_set(
        self, videos: Sequence[TrainingVideo], kind: str, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray]:
        """((N, 3, SIDE, SIDE) float16 normalised flow images, (N,) pseudo-labels) of ``kind``: every
        known row with an expression, a random half of those without (drawn per video, so that only
        the rows kept are held), and (micro) three augmented copies of each row with one."""
        i = KINDS.index(kind)
        xs, ys = [], []
        for video in videos:
            block = np.asarray(video.signals(self))[:, i * CELLS : (i + 1) * CELLS]
            known = np.isfinite(block[:, 0])
            labels = pseudo_labels(len(block), [t for t in video.intervals if t.kind == kind], self.gaps(video.fps)[i])
            negatives = np.flatnonzero(known & (labels == 0))
            keep = np.sort(
                np.concatenate(
                    [np.flatnonzero(known & (labels > 0)), rng.choice(negatives, len(negatives) // 2, replace=False)]
                )
            )
            xs.append(normalised(block[keep].reshape(-1, 3, SIDE, SIDE)).astype(np.float16))
            ys.append(labels[keep])
        x, y = np.concatenate(xs), np.concatenate(ys)
        if kind == "micro" and (y > 0).any():
            x = np.concatenate([x, augmented(x[y > 0].astype(np.float32), rng).astype(np.float16)])
            y = np.concatenate([y, np.ones(3 * int((y > 0).sum()), np.float32)])
        return x, y

    def fit(self, videos: Sequence[TrainingVideo]) -> SOFTNet:
        """Set k from ``videos``' intervals, then train one network per kind on their pseudo-labels."""
        import torch

        from merkit.training.recipe import Recipe
        from merkit.training.trainer import seed_everything, tensor_batches, torch_threads, train

        if not videos:
            raise ConfigError(f"{self.name} needs annotated training videos; none were given.")
        self.k_ = self.signal_settings(videos).k_
        rng = seed_everything(self.seed)
        recipe = Recipe("sgd", self.lr, 0.0, 0.0, self.batch_size, 1.0, 0.0, self.epochs)
        self.networks_, self.loss_ = {}, {}
        for kind in KINDS:
            x, y = self.training_set(videos, kind, rng)
            if not len(y):
                raise ConfigError(
                    f"The training videos of {self.name} have no frame with a usable face to learn {kind} from."
                )
            model = network()
            batches = tensor_batches(torch.from_numpy(x), torch.from_numpy(y), self.batch_size)
            with torch_threads(
                1
            ):  # a network this small trains fastest on one thread (14 times faster than two on a busy machine)
                self.loss_[kind] = train(
                    model,
                    lambda rng, batches=batches: ((xb.float(), yb) for xb, yb in batches(rng)),
                    recipe,
                    rng=rng,
                    loss_fn=lambda m, out, target: torch.nn.functional.mse_loss(out, target),
                    description=f"{self.name} {kind}",
                )
            self.networks_[kind] = model.eval()
        self.fitted_ = True
        self.p_ = {kind: self.p for kind in KINDS} if self.p > 0 else self._chosen_p(videos)
        return self

    def _chosen_p(self, videos: Sequence[TrainingVideo]) -> dict[str, float]:
        """{kind: p} chosen on the training ``videos``' own smoothed scores (:func:`chosen_p`)."""
        chosen, self.p_f1_ = {}, {}
        raw = [self.scores(np.asarray(video.signals(self)), video.fps) for video in videos]
        for i, kind in enumerate(KINDS):
            gaps = [self.gaps(video.fps)[i] for video in videos]
            scores = [smoothed(r[kind], gap) for r, gap in zip(raw, gaps)]
            truths = [[t for t in video.intervals if t.kind == kind] for video in videos]
            chosen[kind], self.p_f1_[kind] = chosen_p(scores, truths, gaps, kind)
        return chosen

    def state(self) -> tuple[dict[str, np.ndarray], dict]:
        """Each network's weights (``KIND.NAME``), and the learned k (seconds), thresholds p and training losses."""
        self.check_fitted()
        arrays = {
            f"{kind}.{name}": value.detach().cpu().numpy()
            for kind, model in self.networks_.items()
            for name, value in model.state_dict().items()
        }
        return arrays, {"k": self.k_, "p": self.p_, "loss": self.loss_}

    def load_state(self, arrays: dict[str, np.ndarray], learned: dict) -> SOFTNet:
        import torch

        try:
            self.k_ = {kind: float(learned["k"][kind]) for kind in KINDS}
            self.p_ = {
                kind: float(learned.get("p", {}).get(kind, self.p or PAPER_P)) for kind in KINDS
            }  # bundles before p was learned: 0.55
            self.loss_ = {kind: [float(v) for v in learned.get("loss", {}).get(kind, [])] for kind in KINDS}
            self.networks_ = {}
            for kind in KINDS:
                model = network()
                names = set(model.state_dict())
                given = {name.split(".", 1)[1] for name in arrays if name.startswith(f"{kind}.")}
                if given != names:
                    raise ValueError(f"the {kind} network's weights are {sorted(given)}, not {sorted(names)}")
                model.load_state_dict({name: torch.from_numpy(np.array(arrays[f"{kind}.{name}"])) for name in names})
                self.networks_[kind] = model.eval()
        except (KeyError, TypeError, ValueError, RuntimeError) as error:
            raise ConfigError(
                f"The {self.name} state is not one merkit wrote ({error}); train the spotter again."
            ) from None
        self.fitted_ = True
        return self

    def scores(self, signals: np.ndarray, fps: float) -> dict[str, np.ndarray]:
        """{micro, macro: (T,)} each network's raw output (0 where the flow is unknown)."""
        import torch

        from merkit.training.trainer import torch_threads

        self.check_fitted()
        out = {}
        for i, kind in enumerate(KINDS):
            block = signals[:, i * CELLS : (i + 1) * CELLS]
            known = np.flatnonzero(np.isfinite(block[:, 0]))
            score = np.zeros(len(signals), np.float32)
            with torch.no_grad(), torch_threads(1):
                for start in range(0, len(known), 1024):
                    rows = known[start : start + 1024]
                    x = torch.from_numpy(normalised(np.asarray(block[rows]).reshape(-1, 3, SIDE, SIDE)))
                    score[rows] = self.networks_[kind](x).numpy()
            out[kind] = score
        return out

    def intervals(self, signals: np.ndarray, fps: float) -> Spotting:
        raw, found, scores, thresholds = self.scores(signals, fps), [], {}, {}
        for kind, k in zip(KINDS, self.gaps(fps)):
            score = scores[kind] = smoothed(raw[kind], k)
            thresholds[kind] = threshold(score, self.p_[kind])
            found += spotted_intervals(score, k, self.p_[kind], kind)
        return Spotting(scores, thresholds, sorted(found, key=lambda i: i.onset))
