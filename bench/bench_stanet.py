"""STANet on synthetic CASME II: does the attention go where the face moves, and what an epoch costs.

Run by hand: ``.venv/bin/python bench/bench_stanet.py [--subjects 12 --folds 3 --epochs 30 ...]``
(about 12 minutes on 2 cores). Trains STANet in a CPU configuration under a subject k-fold and,
for every held-out clip, compares the attention with the synthetic truth:

- spatial: the share of the mask's mass (averaged over the flow frames) that falls on the region
  that really moves (where the apex displacement exceeds a quarter of its peak), against the
  share a uniform mask would put there (the region's area);
- temporal: whether the frame weights peak within ``--window`` flow frames of the apex, against
  the chance that a peak drawn uniformly would; and how the weights correlate with the true
  motion each flow sees: the expression's speed between frames for adjacent-frame flow (largest
  half-way up to the apex and half-way down, near zero at the apex itself), its displacement
  from the first frame for ``--reference onset`` (largest at the apex).

Then times one training epoch at the paper's 192x192 with the default widths (a few steps,
scaled to an epoch) beside the CPU configuration's measured one.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import cv2
import numpy as np
import torch

from merkit.datasets import load
from merkit.evaluation.metrics import scores
from merkit.evaluation.protocols import make_protocol
from merkit.methods import create_method
from merkit.preprocess.cache import Cache
from merkit.synthetic import SynthConfig, write_casme2


def moving_region(truth, size: int) -> np.ndarray:
    """(size, size) bool: where the apex displacement exceeds a quarter of its peak."""
    magnitude = np.linalg.norm(truth.apex_field, axis=2)
    magnitude = cv2.resize(magnitude, (size, size), interpolation=cv2.INTER_AREA)
    return magnitude > 0.25 * magnitude.max()


def true_motion(truth, clip, n_frames: int, reference: str) -> np.ndarray:
    """How far the expression moves in each flow: between the interpolated frames t and t + 1
    (``adjacent``, n_frames - 1 values) or from the first frame to frame t (``onset``, n_frames)."""
    strength = truth.profile[clip.onset : clip.offset + 1]
    at_frames = np.interp(np.linspace(0, len(strength) - 1, n_frames), np.arange(len(strength)), strength)
    return np.abs(np.diff(at_frames)) if reference == "adjacent" else np.abs(at_frames - at_frames[0])


def epoch_seconds(method, n_clips: int, steps: int = 2) -> float:
    """Seconds per training epoch of ``n_clips`` clips, from ``steps`` timed steps on random flows."""
    model = method.create_network(4)
    optimiser = torch.optim.Adam(model.parameters(), lr=method.lr, weight_decay=method.weight_decay)
    x = torch.randn(method.batch_size, method.n_frames - 1, 2, method.size, method.size)
    y = torch.randint(0, 4, (method.batch_size,))
    started = time.perf_counter()
    for _ in range(steps):
        optimiser.zero_grad()
        method.loss(model, model(x), y).backward()
        optimiser.step()
    return (time.perf_counter() - started) / steps * -(-n_clips // method.batch_size)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--subjects", type=int, default=12)
    parser.add_argument("--folds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--widths", default="16,32,64,128")
    parser.add_argument("--lr", type=float, default=1e-3, help="the paper's is 1e-5; this bench trains only 30 epochs")
    parser.add_argument("--variant", default="sab_tab_l1")
    parser.add_argument(
        "--l1", type=float, default=1e-8, help="the weight of the masks' L1 norm in the loss (the paper's: 1e-8)"
    )
    parser.add_argument(
        "--reference",
        default="adjacent",
        choices=("adjacent", "onset"),
        help="flow between adjacent frames or from the first",
    )
    parser.add_argument("--window", type=int, default=2)
    parser.add_argument("--amplitude", type=float, nargs=2, default=(0.3, 1.0), help="peak displacement range, pixels")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "stanet")
    args = parser.parse_args()

    config = SynthConfig(n_subjects=args.subjects, seed=4, amplitude=tuple(args.amplitude))
    root = args.out / f"casme2_{args.amplitude[0]}_{args.amplitude[1]}"
    truths = {f"casme2/{t.subject}/{t.clip}": t for t in write_casme2(root, config, jobs=2).clips}
    data = load("casme2", root=root, labels="seed4")
    cache = Cache(args.out / "cache")
    params = {
        "size": args.size,
        "widths": tuple(int(w) for w in args.widths.split(",")),
        "epochs": args.epochs,
        "lr": args.lr,
        "variant": args.variant,
        "reference": args.reference,
        "l1": args.l1,
    }

    labels, predicted, shares, uniform, near, chance, motion, fit_seconds = [], [], [], [], [], [], [], []
    for fold in make_protocol("subject_kfold", n_splits=args.folds).folds(data):
        method = create_method("stanet", **params)
        started = time.perf_counter()
        method.fit(data.subset(fold.train), seed=fold.index, cache=cache)
        fit_seconds.append((time.perf_counter() - started) / args.epochs)
        test = data.subset(fold.test)
        logits, attention = method.attend(test, cache=cache)
        labels += list(test.metadata["label"])
        predicted += list(np.asarray(method.classes_)[logits.argmax(1)])
        for clip, (masks, weights) in zip(test, attention):
            truth = truths[clip.key]
            region = moving_region(truth, args.size)
            if masks is not None:
                mask = cv2.resize(
                    masks.mean(axis=(0, 1)).astype(np.float32), (args.size, args.size), interpolation=cv2.INTER_LINEAR
                )
                shares.append(mask[region].sum() / mask.sum())
                uniform.append(region.mean())
            if weights is not None:
                peak = int(np.argmax(truth.profile))  # the true apex (the sheet may not give it)
                apex = (peak - truth.onset) / max(truth.offset - truth.onset, 1) * (method.n_frames - 1)
                centres = np.arange(len(weights)) + (0.5 if args.reference == "adjacent" else 0.0)  # flow t's time
                near.append(abs(centres[int(np.argmax(weights))] - apex) <= args.window)
                chance.append(np.mean(np.abs(centres - apex) <= args.window))
                motion.append(np.corrcoef(weights, true_motion(truth, clip, method.n_frames, args.reference))[0, 1])
        print(f"fold {fold.name}: {fit_seconds[-1]:.1f} s per epoch", flush=True)

    figures = scores(labels, predicted, data.classes)
    print(
        f"\nSTANet ({args.variant}, {args.reference} flow), {len(data)} clips, {args.folds}-fold subject split, {args.size}x{args.size}, "
        f"widths {args.widths}, {args.epochs} epochs, lr {args.lr}, L1 {args.l1}: UF1 {figures['uf1']:.3f}, UAR {figures['uar']:.3f}\n"
    )
    print("| figure | value |\n|---|---|")
    if shares:
        shares, uniform = np.array(shares), np.array(uniform)
        print(
            f"| mask mass on the moving region: learned / uniform (mean over {len(shares)} clips) | {shares.mean():.3f} / {uniform.mean():.3f} |"
        )
        print(f"| clips whose mask puts more mass there than a uniform one | {np.mean(shares > uniform):.2f} |")
    if near:
        print(
            f"| temporal weights peak within {args.window} flows of the apex: learned / chance | {np.mean(near):.2f} / {np.mean(chance):.2f} |"
        )
        print(
            f"| correlation of the weights with the true motion in each flow (mean over clips) | {np.nanmean(motion):.2f} |"
        )
    n_train = int(round(len(data) * (args.folds - 1) / args.folds))
    print(
        f"| one epoch ({n_train} clips), {args.size}x{args.size}, widths {args.widths}, measured | {np.mean(fit_seconds):.0f} s |"
    )
    paper = create_method("stanet")
    print(
        f"| one epoch ({n_train} clips), 192x192, widths 32,64,128,256 (two steps timed, scaled) | {epoch_seconds(paper, n_train):.0f} s |"
    )


if __name__ == "__main__":
    main()
