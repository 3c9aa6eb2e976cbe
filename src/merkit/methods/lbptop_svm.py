"""LBP-TOP + SVM, the handcrafted baseline of the micro-expression literature.

References
----------
T. Pfister, X. Li, G. Zhao, M. Pietikainen, "Recognising spontaneous facial micro-expressions",
ICCV 2011: faces normalised in space, clips normalised in time with TIM, LBP-TOP on a block grid
of the face, SVM.
W.-J. Yan et al., "CASME II ...", PLoS ONE 2014: the CASME II baseline, LBP-TOP on 5x5 blocks with
radii Rx = Ry = 1, Rt = 4, SVM, LOSO.
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
class LbpTopSvm(FeatureMethod):
    """LBP-TOP of the onset-to-offset frames, then a linear SVM.

    Parameters
    ----------
    size : (height, width)
        Faces are resized to this before the descriptor (Pfister et al. normalise face size).
    n_frames : int
        TIM length. Pfister et al. use 10 to 20; Rt = 4 needs at least 9 frames, and 20 leaves
        12 centre frames per block, so 20 is the default.
    radius, blocks, n_points, interpolation
        As :func:`merkit.features.lbp_top`; the defaults are the CASME II baseline's.
    C : float
        SVM regularisation; ``kernel`` one of scikit-learn's SVC kernels. Features are
        standardised first, with means and scales fit on the fold's training part only (the
        papers do not say; raw histogram values of about 0.02 leave a C = 1 SVM at the majority
        class).
    class_weight : {'none', 'balanced'}
        'balanced' reweights classes by inverse frequency (the papers use none).
    """

    name = "lbptop_svm"
    summary = "LBP-TOP (5x5 blocks, TIM) + linear SVM: the classic handcrafted baseline"
    quick = True

    size: tuple[int, int] = (128, 128)
    n_frames: int = 20
    radius: tuple[int, int, int] = (1, 1, 4)
    blocks: tuple[int, int, int] = (5, 5, 1)
    n_points: int = 8
    interpolation: str = "nearest"
    C: float = 1.0
    kernel: str = "linear"
    class_weight: str = "none"

    def representation(self) -> Representation:
        """Grey onset..offset frames, resized, TIM to ``n_frames`` (rounded to grey levels), LBP-TOP."""
        return Representation(
            Step("frames", grey=True),
            Step("resize", size=self.size),
            Step("tim", n_frames=self.n_frames),
            Step(
                "lbp_top",
                radius=self.radius,
                blocks=self.blocks,
                n_points=self.n_points,
                interpolation=self.interpolation,
            ),
        )

    def make_classifier(self, seed: int):
        weight = None if self.class_weight == "none" else self.class_weight
        return make_pipeline(
            StandardScaler(), SVC(C=self.C, kernel=self.kernel, class_weight=weight, random_state=seed)
        )
