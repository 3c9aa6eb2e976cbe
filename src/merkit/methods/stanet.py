"""STANet: optical-flow sequences, spatial and temporal attention (``merkit.models.stanet``).

Section 4 of the paper, step by step:

- the face is aligned and cropped as for MER-RCNN (dlib's landmarks, the eyes of the onset frame
  fixing one similarity transform for the clip, ``align_size`` square): the paper computes flow on
  cropped faces (its Fig. 2), and a raw CASME II frame is mostly background. Datasets that ship
  cropped faces (CASME II's ``Cropped``, SMIC's ``cropped``) can be read with their reader's option
  and ``align=false``;
- each clip (onset to offset) is linearly interpolated to 20 frames, each frame resized to
  192x192, and the optical flow between adjacent frames computed: 19 two-channel frames.
  The paper uses FlowNet 2.0, whose weights merkit cannot ship (nothing is downloaded at run
  time); TV-L1 is the default, and any estimator registered with
  ``merkit.preprocess.flow.register_flow`` can be named in ``flow``. ``reference='onset'``
  (not the paper's) takes every frame's flow from the first frame instead: 20 flows, the
  displacement itself, largest at the apex, where adjacent-frame flow is near zero;
- training-only augmentation, drawn afresh for every clip at every epoch: CASME I and II,
  corner crops with rescaling by 0.9, 1.0 or 1.1; SMIC, corner crops and horizontal flips
  (``augment='auto'`` picks by dataset; how the crops are read: ``merkit.training.augment``);
- loss: cross-entropy + lambda ||M||_1, the mask's L1 norm per clip averaged over the batch;
- classes per dataset as the paper's (``paper_labels``): CASME I's four (disgust, repression,
  surprise, tense), CASME II's five (happiness, disgust, repression, surprise, others), SMIC-HS's
  three; ``merkit evaluate`` takes them unless ``--labels`` is given;
- Adam, learning rate 1e-5, weight decay 1e-4, lambda 1e-8; 60, 30 and 100 epochs for CASME I,
  CASME II and SMIC-HS (``epochs='auto'``; 30 for other data); mini-batches of 8 clips (not
  given in the paper);
- Table 2's ablations: ``variant`` = ``baseline``, ``sab``, ``sab_l1`` or ``sab_tab_l1`` (all).

A CPU configuration: ``--set size=64 --set widths=16,32,64,128`` (the bench times both).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from merkit.datasets.base import ClipDataset
from merkit.errors import check_choice
from merkit.methods.base import NetworkMethod
from merkit.methods.registry import register_method
from merkit.preprocess.cache import Cache
from merkit.preprocess.pipeline import Representation, Step
from merkit.training.augment import augment_flows
from merkit.training.recipe import Recipe

VARIANTS = {
    "baseline": (False, False, False),
    "sab": (True, False, False),
    "sab_l1": (True, False, True),
    "sab_tab_l1": (True, True, True),
}  # variant -> (SAB, TAB, L1 on the masks), Table 2
PAPER_EPOCHS = {"casme": 60, "casme2": 30, "smic": 100}


@register_method
@dataclass
class StanetMethod(NetworkMethod):
    """STANet with the paper's numbers as defaults (module docstring); switches for Table 2.

    Parameters
    ----------
    align, align_size : align and crop the face first (side of the aligned crop, before resizing)
    n_frames, size : frames per clip before the flow (20) and their side (192)
    flow : flow estimator
    reference : {'adjacent', 'onset'}: flow between adjacent frames (the paper's) or from the first frame
    variant : {'baseline', 'sab', 'sab_l1', 'sab_tab_l1'}
    widths, depth, mask_channels, hidden : the network (``merkit.models.stanet``)
    augment : {'auto', 'crop_scale', 'crop_flip', 'none'}
    epochs : int or 'auto' (the paper's per dataset)
    lr, weight_decay, l1, batch_size : the recipe
    threads : PyTorch threads per fold (1: identical figures for any ``--jobs``, executor or resume)
    device : 'cpu', or 'cuda' for a GPU
    """

    name = "stanet"
    summary = "STANet: TV-L1 flow sequences of aligned faces (20 frames, 192x192), spatial + temporal attention"
    paper_labels = {"casme": "stanet_casme1", "casme2": "casme2_5", "smic_hs": "megc3"}

    align: bool = True
    align_size: int = 224
    n_frames: int = 20
    size: int = 192
    flow: str = "tvl1"
    reference: str = "adjacent"
    variant: str = "sab_tab_l1"
    widths: tuple[int, int, int, int] = (32, 64, 128, 256)
    depth: int = 2
    mask_channels: int = 1
    hidden: int = 128
    augment: str = "auto"
    epochs: int | str = "auto"
    lr: float = 1e-5
    weight_decay: float = 1e-4
    l1: float = 1e-8
    batch_size: int = 8
    threads: int = 1
    device: str = "cpu"

    def __post_init__(self):
        check_choice("variant", self.variant, VARIANTS)
        check_choice("reference", self.reference, ("adjacent", "onset"))
        check_choice("augment", self.augment, ("auto", "crop_scale", "crop_flip", "none"))

    def representation(self) -> Representation:
        """(n_flows, size, size, 2) float32 flow over the grey, resized clip: n_frames - 1 between
        adjacent frames, or n_frames from the first frame."""
        steps = [Step("frames", grey=True)]
        if self.align:
            steps.append(
                Step("align", size=(self.align_size, self.align_size), upsample=2, on_missing="reuse", keep=True)
            )
        return Representation(
            *steps,
            Step("resize", size=(self.size, self.size)),
            Step("interpolate_time", n_frames=self.n_frames),
            Step("flow_sequence", method=self.flow, reference=self.reference),
        )

    def clip_input(self, clip, cache: Cache) -> np.ndarray:
        """(n_flows, 2, size, size) float32, from the cache."""
        return np.ascontiguousarray(self.representation().get(clip, cache)[0].transpose(0, 3, 1, 2), dtype=np.float32)

    def settings_for(self, data: ClipDataset) -> tuple[int, str]:
        """(epochs, augmentation) for ``data``: the paper's per dataset where they are 'auto'."""
        family = str(data.metadata["dataset"].iloc[0]).split("_")[0]
        epochs = PAPER_EPOCHS.get(family, 30) if self.epochs == "auto" else int(self.epochs)
        augment = ("crop_flip" if family == "smic" else "crop_scale") if self.augment == "auto" else self.augment
        return epochs, augment

    def create_network(self, num_classes: int):
        from merkit.models import create_model

        spatial, temporal, _ = VARIANTS[self.variant]
        return create_model(
            "stanet",
            num_classes=num_classes,
            widths=tuple(self.widths),
            spatial_attention=spatial,
            temporal_attention=temporal,
            depth=self.depth,
            mask_channels=self.mask_channels,
            hidden=self.hidden,
        )

    def loss(self, model, logits, labels):
        """Cross-entropy + l1 * ||M||_1 (per clip, averaged over the batch) when the variant has it."""
        from torch.nn import functional as F

        loss = F.cross_entropy(logits, labels)
        masks = model.last_attention.masks
        if VARIANTS[self.variant][2] and masks is not None:
            loss = loss + self.l1 * masks.abs().flatten(1).sum(1).mean()
        return loss

    def fit(self, train: ClipDataset, *, seed: int, cache: Cache) -> StanetMethod:
        import torch

        from merkit.training.trainer import seed_everything, tensor_batches, torch_threads
        from merkit.training.trainer import train as run

        with torch_threads(self.threads):
            epochs, augment = self.settings_for(train)
            rng = seed_everything(seed)
            self.classes_ = train.classes
            x, y = (
                torch.from_numpy(self.inputs(train, cache)),
                torch.from_numpy(train.y),
            )  # the fold's training part only
            plain = tensor_batches(x, y, self.batch_size)

            def batches(rng):
                for inputs, labels in plain(rng):
                    yield (inputs if augment == "none" else augment_flows(inputs, rng, augment)), labels

            self.model_ = self.create_network(len(self.classes_))
            recipe = Recipe(
                optimizer="adam",
                lr=self.lr,
                momentum=0.0,
                weight_decay=self.weight_decay,
                batch_size=self.batch_size,
                lr_decay=1.0,
                tolerance=0.0,
                max_epochs=epochs,
            )
            self.history_ = run(
                self.model_,
                batches,
                recipe,
                rng=rng,
                device=self.device,
                loss_fn=self.loss,
                description="stanet: training",
            )
        return self

    def logits(self, test: ClipDataset, *, cache: Cache) -> np.ndarray:
        return self.attend(test, cache=cache)[0]

    def attend(self, data: ClipDataset, *, cache: Cache):
        """Logits (N, C) and, per clip, (masks (T, mask_channels, h, w) or None, weights (T,) or None)."""
        import torch

        from merkit.training.trainer import torch_device, torch_threads

        device = torch_device(self.device)
        self.model_.to(device).eval()
        logits, attention = [], []
        with torch.no_grad(), torch_threads(self.threads):
            for clip in data:
                x = torch.from_numpy(self.clip_input(clip, cache)[None]).to(device)
                logits.append(self.model_(x).cpu().numpy())
                a = self.model_.last_attention
                attention.append(
                    (
                        None if a.masks is None else a.masks[0].cpu().numpy(),
                        None if a.weights is None else a.weights[0].cpu().numpy(),
                    )
                )
        return np.concatenate(logits), attention
