"""A synthetic stand-in for a manifest of onset-to-apex flow images (as the MEGC-era
repositories distribute them), made from known flows instead of estimated ones.

Each clip's flow is the true onset-to-apex displacement of a synthetic expression on its
subject's face, plus a small head translation and smooth estimation noise; its optical strain
is computed from that flow. The three maps are resized, scaled to [0, 1] each and written as
one PNG (R, G, B = u, v, strain), listed in ``manifest.csv`` with dataset, subject and label.
The default has the MEGC 2019 composite's size and class counts: 442 clips of 68 subjects.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from merkit.io.atomic import atomic_write_bytes, atomic_write_text
from merkit.preprocess.flow import minmax, optical_strain
from merkit.synthetic.expressions import Expression
from merkit.synthetic.faces import FaceGeometry

# dataset -> (subjects, clips per class), as in the MEGC 2019 composite (See et al. 2019)
MEGC_2019: dict[str, tuple[int, dict[str, int]]] = {
    "smic": (16, {"negative": 70, "positive": 51, "surprise": 43}),
    "casme2": (24, {"negative": 88, "positive": 32, "surprise": 25}),
    "samm": (28, {"negative": 92, "positive": 26, "surprise": 15}),
}


@dataclass(frozen=True)
class FlowSetConfig:
    """What a synthetic flow-image set is made of; the same config gives the same files.

    datasets : dataset -> (subjects, {class word: clips})
    frame_size : (height, width) of the faces the flows are drawn on
    size : (height, width) of the written images
    amplitude : (low, high) peak displacement in pixels, drawn per clip
    drift_px : largest head translation between onset and apex, pixels
    flow_noise : standard deviation of the smooth estimation noise, pixels
    """

    datasets: Mapping[str, tuple[int, Mapping[str, int]]] = field(default_factory=lambda: dict(MEGC_2019))
    frame_size: tuple[int, int] = (144, 120)
    size: tuple[int, int] = (28, 28)
    amplitude: tuple[float, float] = (0.3, 1.0)
    drift_px: float = 0.2
    flow_noise: float = 0.05
    seed: int = 0


def flow_image(
    geometry: FaceGeometry, expression: Expression, rng: np.random.Generator, config: FlowSetConfig
) -> np.ndarray:
    """(height, width, 3) float32 u, v, strain of one clip at ``config.size``, each in [0, 1]."""
    flow = expression.apex_field(geometry) + rng.uniform(-config.drift_px, config.drift_px, 2).astype(np.float32)
    noise = cv2.GaussianBlur(rng.standard_normal(flow.shape).astype(np.float32), (0, 0), 2.0)
    flow += noise * (config.flow_noise / max(float(noise.std()), 1e-12))
    maps = np.dstack([flow, optical_strain(flow)]).astype(np.float32)
    return minmax(cv2.resize(maps, (config.size[1], config.size[0]), interpolation=cv2.INTER_AREA))


def write_flow_manifest(out: str | Path, config: FlowSetConfig = FlowSetConfig()) -> Path:
    """Write the images under ``out/<dataset>/<subject>/`` and ``out/manifest.csv``; return its path.

    Every subject has at least one clip; the rest are spread over the subjects at random.
    """
    root = Path(out)
    rows = []
    for d, (dataset, (n_subjects, counts)) in enumerate(config.datasets.items()):
        rng = np.random.default_rng(np.random.SeedSequence([config.seed, d]))
        faces = [FaceGeometry.random(config.frame_size, rng) for _ in range(n_subjects)]
        words = rng.permutation([w for w, n in counts.items() for _ in range(n)])
        subjects = np.concatenate([rng.permutation(n_subjects), rng.integers(0, n_subjects, len(words) - n_subjects)])
        for k, (word, s) in enumerate(zip(words, subjects)):
            expression = Expression.random(str(word), rng.uniform(*config.amplitude), rng)
            image = flow_image(faces[s], expression, rng, config)
            subject, clip = f"{dataset}_s{s + 1:02d}", f"{dataset}_{k + 1:03d}"
            path = Path(dataset) / subject / f"{clip}.png"
            encoded = cv2.imencode(".png", np.rint(image[..., ::-1] * 255).astype(np.uint8))[
                1
            ]  # file R, G, B = u, v, strain
            (root / path.parent).mkdir(parents=True, exist_ok=True)
            atomic_write_bytes(root / path, encoded.tobytes())
            rows.append(
                {
                    "dataset": dataset,
                    "subject": subject,
                    "clip": clip,
                    "label": str(word),
                    "flow_image": path.as_posix(),
                }
            )
    manifest = root / "manifest.csv"
    atomic_write_text(manifest, pd.DataFrame(rows).to_csv(index=False))
    return manifest
