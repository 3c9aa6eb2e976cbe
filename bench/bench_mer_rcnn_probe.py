"""Does MER-RCNN's input carry the expression? A linear probe on its representation.

Run by hand: ``.venv/bin/python bench/bench_mer_rcnn_probe.py``. Builds the demo's synthetic
CASME II (16 subjects, 121 clips), takes mer_rcnn's cached representation of every clip (32x32,
central 80%, with and without Eulerian magnification), brings it to 30 frames, subtracts the
onset frame and runs a LOSO of a standardised linear SVM on it. Above chance means the
information is in the tensor the network reads; the gap between the two rows is what
magnification adds.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

from merkit.datasets import load
from merkit.evaluation import make_protocol
from merkit.evaluation.metrics import scores
from merkit.methods import create_method
from merkit.preprocess.cache import Cache
from merkit.preprocess.temporal import resize_time
from merkit.synthetic import SynthConfig, is_written, write_casme2


def main() -> None:
    out = Path(__file__).parent / "results" / "mer_rcnn_probe"
    if not is_written(out / "data", SynthConfig()):
        write_casme2(out / "data", SynthConfig(), jobs=2)
    data = load("casme2", root=out / "data", labels="seed4")
    cache = Cache(out / "cache")
    labels = data.metadata["label"].to_numpy()
    print("| representation | accuracy | UF1 | UAR |\n| --- | ---: | ---: | ---: |")
    for magnify in (True, False):
        method = create_method("mer_rcnn", align=False, magnify=magnify)
        rows = []
        for clip in data:
            frames = resize_time(method.clip_frames(clip, cache), method.n_frames, method=method.test_kernel)
            rows.append((frames - frames[0]).ravel())
        features = np.stack(rows)
        predicted = np.empty(len(labels), dtype=object)
        for fold in make_protocol("loso").folds(data):
            probe = make_pipeline(StandardScaler(), SVC(kernel="linear")).fit(features[fold.train], labels[fold.train])
            predicted[fold.test] = probe.predict(features[fold.test])
        s = scores(labels, predicted, data.classes)
        name = "magnified (alpha 10, lambda 16)" if magnify else "not magnified"
        print(f"| {name} | {s['accuracy']:.3f} | {s['uf1']:.3f} | {s['uar']:.3f} |", flush=True)


if __name__ == "__main__":
    main()
