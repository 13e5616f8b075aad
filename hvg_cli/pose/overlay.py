"""Drawing a fitted skeleton over a video frame (PIL), for `hvg pose --preview`."""

from __future__ import annotations

import numpy as np

from hvg_cli.core.types import SMPL_JOINT_NAMES, SMPL_PARENTS
from hvg_cli.io.video import fit_size

_LEFT = (255, 140, 0)  # the person's left side: orange
_RIGHT = (0, 170, 255)  # right: blue
_MIDDLE = (255, 255, 255)


def _colour(j: int) -> tuple[int, int, int]:
    name = SMPL_JOINT_NAMES[j]
    return _LEFT if name.startswith("left") else _RIGHT if name.startswith("right") else _MIDDLE


def draw_skeleton(frame: np.ndarray, joints2d: np.ndarray, max_side: int | None = 960) -> np.ndarray:
    """The frame (downscaled so its longer side is at most max_side) with bones drawn over it.

    frame:    [H, W, 3] uint8
    joints2d: [24, 2] pixel positions of the SMPL joints in `frame`
    returns:  [h, w, 3] uint8, h and w even
    """
    from PIL import Image, ImageDraw

    H, W = frame.shape[:2]
    w, h = (n // 2 * 2 for n in fit_size(W, H, max_side))  # even, for the H.264 writer
    img = Image.fromarray(frame)
    if (w, h) != (W, H):
        img = img.resize((w, h), Image.Resampling.BILINEAR)
    p = np.asarray(joints2d, dtype=np.float64) * np.array([w / W, h / H])  # [24, 2] px in the output
    draw = ImageDraw.Draw(img)
    width = max(2, int(round(max(w, h) / 240)))
    for j in range(1, len(SMPL_PARENTS)):
        a, b = p[SMPL_PARENTS[j]], p[j]
        if np.all(np.isfinite([a, b])):
            draw.line([tuple(a), tuple(b)], fill=_colour(j), width=width)
    r = width * 1.2
    for j, (x, y) in enumerate(p):
        if np.isfinite(x) and np.isfinite(y):
            draw.ellipse([x - r, y - r, x + r, y + r], fill=_colour(j), outline=(0, 0, 0))
    return np.asarray(img)


def weak_perspective(joints: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Place 3D joints on the image with the weak-perspective camera (one scale + offset per frame, least
    squares) that best matches 2D targets, so what is drawn is the joints' own shape.

    joints: [T, J, 3] m, y up (pelvis-relative or not: the offset absorbs it)
    target: [T, J, 2] px, image y down
    returns [T, J, 2] px
    """
    src = np.asarray(joints, dtype=np.float64)[..., :2] * np.array([1.0, -1.0])  # orthographic, image y down
    sc = src - src.mean(axis=1, keepdims=True)  # [T, J, 2]
    tc = target - target.mean(axis=1, keepdims=True)
    scale = (sc * tc).sum(axis=(1, 2)) / np.maximum((sc * sc).sum(axis=(1, 2)), 1e-12)  # [T]
    return scale[:, None, None] * sc + target.mean(axis=1, keepdims=True)  # [T, J, 2]
