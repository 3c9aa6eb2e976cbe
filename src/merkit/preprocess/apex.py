"""Apex estimation for clips whose annotation lacks one (SMIC, some CASME II and SAMM rows)."""

from __future__ import annotations

import cv2
import numpy as np

from merkit.errors import check_array, check_choice
from merkit.progress import progress_bar

APEX_METHODS = ("annotated", "middle", "motion")


def estimate_apex(frames, onset: int, offset: int, *, method: str = "motion", blur: float = 1.5) -> int:
    """Position of the apex between ``onset`` and ``offset`` (inclusive).

    Parameters
    ----------
    frames : (T, H, W) or (T, H, W, 3) array
    method : {'middle', 'motion'}
        ``middle``: the middle frame, (onset + offset) // 2. ``motion``: the frame that differs most
        from the onset frame once the head's translation is removed: each frame (blurred by
        ``blur`` pixels against sensor noise) is registered to the onset by ECC (Evangelidis &
        Psarakis 2008, translation only) and brought to the onset's mean brightness (flicker),
        and the mean absolute difference inside a 4-pixel margin is the motion. Without the registration a head drift of 0.2 px outweighs a 1 px
        expression, and the estimate falls to the frame of largest drift.
    """
    check_choice("apex method", method, APEX_METHODS[1:])
    if method == "middle":
        return (onset + offset) // 2
    frames = check_array("frames", frames, ndim=(3, 4))
    grey = frames.mean(axis=3) if frames.ndim == 4 else frames
    smooth = [cv2.GaussianBlur(f.astype(np.float32), (0, 0), blur) for f in grey[onset : offset + 1]]
    reference = smooth[0]
    criteria = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 50, 1e-6)
    change = []
    for frame in smooth:
        warp = np.eye(2, 3, dtype=np.float32)
        try:
            _, warp = cv2.findTransformECC(reference, frame, warp, cv2.MOTION_TRANSLATION, criteria, None, 5)
        except cv2.error:  # no convergence (a flat frame): compare unregistered
            pass
        registered = cv2.warpAffine(
            frame,
            warp,
            frame.shape[::-1],
            flags=cv2.INTER_CUBIC + cv2.WARP_INVERSE_MAP,
            borderMode=cv2.BORDER_REFLECT101,
        )
        inner = registered[4:-4, 4:-4] * (reference[4:-4, 4:-4].mean() / max(registered[4:-4, 4:-4].mean(), 1e-6))
        change.append(float(np.abs(inner - reference[4:-4, 4:-4]).mean()))
    return onset + int(np.argmax(change))


def fill_apex(dataset, method: str):
    """``dataset`` with each missing apex estimated by ``method``; ``apex_source`` records the choice.

    ``annotated`` leaves missing apexes empty. ``motion`` reads the frames of those clips.
    """
    check_choice("apex", method, APEX_METHODS)
    missing = dataset.metadata["apex"].isna().to_numpy()
    if method == "annotated" or not missing.any():
        return dataset
    positions = [None] * len(dataset)
    with progress_bar(f"estimating apexes ({method})", int(missing.sum())) as advance:
        for i in np.flatnonzero(missing):
            clip = dataset[int(i)]
            frames = clip.read(grey=True) if method == "motion" else None
            positions[i] = estimate_apex(frames, clip.onset, clip.offset, method=method)
            advance()
    return dataset.with_apex(positions, method)
