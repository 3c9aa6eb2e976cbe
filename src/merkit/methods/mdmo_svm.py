"""MDMO + SVM: the optical-flow baseline the seed papers compare against (Liu et al. 2016).

Faces are aligned to the onset's eyes (dlib), the flow between consecutive frames is summarised
per region of interest by its main direction's mean vector, averaged over the clip and
normalised (``merkit.features.mdmo``), and a linear SVM classifies the 72 numbers. The paper's
SVM is linear on the raw feature; merkit standardises it on the fold's training part first, as
for the other SVM methods.
"""

from __future__ import annotations

from dataclasses import dataclass

from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

from merkit.methods.base import FeatureMethod
from merkit.methods.registry import register_method
from merkit.preprocess.pipeline import Representation, Step


@register_method
@dataclass
class MdmoSvm(FeatureMethod):
    """Aligned faces -> MDMO (36 ROIs x (rho, theta)) -> standardised -> SVM.

    Parameters
    ----------
    align_size : side of the aligned face crop in pixels
    flow : flow estimator between consecutive frames (``rlof``, as the paper; any registered one)
    bins : direction sectors of the histogram of oriented flow (8, as the paper)
    average : {'polar', 'vector'} how the per-frame vectors are averaged over the clip
    C, kernel : SVM settings
    """

    name = "mdmo_svm"
    summary = "MDMO (36 landmark ROIs, main-direction mean flow) + linear SVM (Liu et al. 2016)"

    align_size: int = 128
    flow: str = "rlof"
    bins: int = 8
    average: str = "polar"
    C: float = 1.0
    kernel: str = "linear"

    def representation(self) -> Representation:
        """Onset..offset frames aligned to the onset's eyes, then MDMO: (72,) float32."""
        return Representation(
            Step("frames"),
            Step("align", size=(self.align_size, self.align_size), upsample=2, on_missing="reuse", keep=True),
            Step("mdmo", flow=self.flow, bins=self.bins, average=self.average),
        )

    def make_classifier(self, seed: int):
        return make_pipeline(StandardScaler(), SVC(C=self.C, kernel=self.kernel, random_state=seed))
