"""Onset-to-apex optical flow + linear SVM: the MEGC-era representation with a plain classifier.

The representation of STSTNet, OffApexNet and their successors (u, v and optical strain from
the onset to the apex frame, at 28x28) read straight into a linear SVM. It is the quick baseline
for that representation, and it runs on flow-image manifests as well as on raw clips.

References
----------
S.-T. Liong, Y. S. Gan, J. See, H.-Q. Khor, Y.-C. Huang, "Shallow Triple Stream Three-dimensional
CNN (STSTNet) for Micro-expression Recognition", IEEE FG 2019 (the representation).
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
class ApexFlowSvm(FeatureMethod):
    """Onset-to-apex (u, v, strain) at ``size`` -> standardised -> SVM.

    Parameters
    ----------
    flow : str
        Flow estimator (``tvl1`` as the MEGC-era methods; any registered one).
    size : (height, width)
        28x28 as STSTNet.
    C, kernel : SVM settings; features are standardised on the fold's training part.
    """

    name = "apex_flow_svm"
    summary = "onset-to-apex optical flow and strain (28x28) + linear SVM; runs on flow-image manifests"
    quick = True
    needs_apex = True

    flow: str = "tvl1"
    size: tuple[int, int] = (28, 28)
    C: float = 1.0
    kernel: str = "linear"

    def representation(self) -> Representation:
        """Onset-to-apex u, v, strain at ``size``, each map scaled to [0, 1] (or a flow image's)."""
        return Representation(Step("apex_flow", method=self.flow, size=self.size, normalise="minmax"))

    def make_classifier(self, seed: int):
        return make_pipeline(StandardScaler(), SVC(C=self.C, kernel=self.kernel, random_state=seed))
