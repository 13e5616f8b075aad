"""Hands with the photo's own pixels: the hand parts take the skin-coloured pixels around the hand landmarks.

The body fit's hand ellipsoids are coarse (a disc over the wrist, the fingers left outside), so the photo's
fingers went with the thigh or the forearm and the hand moved as a blob of whatever the ellipsoid covered.
`grow_hands` relabels, for each hand MediaPipe saw, the pixels that are

- inside the person's mask,
- within the hand's reach: along the wrist -> knuckles axis (length L) from 0.15 L behind the wrist to
  HAND_REACH L past it (the fingers are about as long as the palm), at most HAND_WIDTH L from the axis,
- of the hand's skin colour: chromaticity within SKIN_CHROMA of the median colour around the knuckle
  landmarks, brightness within a factor of 2 (shading),
- connected to the knuckles,

as palm (up to the knuckles) or fingers (past them). Over the body they keep the body's depth (the hand lies
on it; the back sheet there is the body's back), free of it the depth of the nearest hand-ellipsoid pixel.
"""

from __future__ import annotations

import numpy as np

HAND_REACH = 2.4  # fingertips: this many wrist->knuckle lengths from the wrist
HAND_WIDTH = 1.0  # half width of the hand's reach, in wrist->knuckle lengths
SKIN_CHROMA = 0.065  # most chromaticity (r, g of rgb / sum) distance from the hand's skin colour
HAND_FRINGE = 3  # pixels the skin region grows by (the hand's soft edge)
MIN_HAND_PX = 12  # fewer skin pixels than this: the hand stays as trim_hands left it

# MediaPipe hand landmarks per side: wrist, pinky, index, thumb
_MP_HAND = {"left": (15, 17, 19, 21), "right": (16, 18, 20, 22)}


def chroma(rgb: np.ndarray) -> np.ndarray:
    """[..., 3] -> [..., 2] (r, g) / (r + g + b): colour without its brightness."""
    s = np.maximum(rgb.sum(-1, keepdims=True), 1e-6)
    return rgb[..., :2] / s


def hand_pixels(image: np.ndarray, mask: np.ndarray, landmarks: np.ndarray, side: str) -> np.ndarray | None:
    """[H, W] int8 (0 none, 1 palm, 2 fingers): the photo's skin pixels of one hand, or None if too few.

    image: [H, W, 3] float in [0, 1]; mask: [H, W] float; landmarks: [33, 2] px at this size.
    """
    from scipy import ndimage

    H, W = mask.shape
    wrist, pinky, index, thumb = (np.asarray(landmarks[i], np.float64) for i in _MP_HAND[side])
    knuckles = (pinky + index) / 2.0
    axis = knuckles - wrist
    L = float(np.linalg.norm(axis))
    if L < 2.0:
        return None
    axis /= L
    tip = knuckles + HAND_REACH * L * axis
    lo = np.floor(np.minimum(wrist, tip) - HAND_WIDTH * L - 2).astype(int)  # [2] (x, y) of the hand's box
    hi = np.ceil(np.maximum(wrist, tip) + HAND_WIDTH * L + 2).astype(int)
    bx0, by0 = max(0, int(lo[0])), max(0, int(lo[1]))
    bx1, by1 = min(W, int(hi[0])), min(H, int(hi[1]))
    if bx1 - bx0 < 2 or by1 - by0 < 2:
        return None
    ys, xs = np.mgrid[by0:by1, bx0:bx1] + 0.5  # [h, w] pixel centres
    d = np.stack([xs - wrist[0], ys - wrist[1]], -1)  # [h, w, 2]
    t = (d @ axis) / L  # along the hand, in wrist->knuckle lengths
    lateral = np.abs(d @ np.array([-axis[1], axis[0]])) / L
    reach = (t >= -0.15) & (t <= HAND_REACH) & (lateral <= HAND_WIDTH)
    img = np.asarray(image, np.float64)[by0:by1, bx0:bx1]  # [h, w, 3]
    inside = np.asarray(mask)[by0:by1, bx0:bx1] > 0.5
    # the skin colour: the median around the knuckle landmarks (they lie on the back of the hand)
    near_knuckles = inside & (np.hypot(xs - knuckles[0], ys - knuckles[1]) <= 0.35 * L)
    if near_knuckles.sum() < 4:
        return None
    ref = np.median(img[near_knuckles], axis=0)  # [3]
    bright = img.sum(-1) / max(float(ref.sum()), 1e-6)
    skin = (
        inside
        & reach
        & (np.linalg.norm(chroma(img) - chroma(ref), axis=-1) <= SKIN_CHROMA)
        & (bright >= 0.5)
        & (bright <= 2.0)
    )
    lab, _ = ndimage.label(skin)
    seeds = np.unique(lab[near_knuckles & skin])
    hand = np.isin(lab, seeds[seeds > 0])
    # shading and nails leave specks and gaps: close them (within the mask and the hand's reach)
    hand = ndimage.binary_fill_holes(ndimage.binary_closing(hand, iterations=2)) & inside & reach
    # and its fringe (pixels half skin, half what lies behind) goes with the hand, not left as a skin ring
    hand = ndimage.binary_dilation(hand, iterations=HAND_FRINGE) & inside & reach
    if hand.sum() < MIN_HAND_PX:
        return None
    out = np.zeros((H, W), np.int8)
    out[by0:by1, bx0:bx1] = np.where(hand, np.where(t <= 1.0, 1, 2), 0)
    return out


def grow_hands(maps: dict, image: np.ndarray, mask: np.ndarray, landmarks: np.ndarray, visibility: np.ndarray) -> dict:
    """The body maps (mesh.body_maps_at_photo) with each seen hand's skin pixels labelled palm / fingers.

    maps: near, far [H, W] depth (0 empty), label_near, label_far [H, W] int; image [H, W, 3] in [0, 1];
    mask [H, W]; landmarks [33, 2] px at this size; visibility [33]. Returns a new dict.
    """
    from scipy import ndimage

    from hvg_cli.bonemap.parts import PART_INDEX

    out = {k: np.array(v, copy=True) for k, v in maps.items()}
    for side, idx in _MP_HAND.items():
        if float(np.mean(np.asarray(visibility)[list(idx)])) < 0.5:
            continue
        px = hand_pixels(image, mask, landmarks, side)
        if px is None:
            continue
        palm, fingers = PART_INDEX[f"{side}_palm"], PART_INDEX[f"{side}_fingers"]
        ellipsoid = np.isin(maps["label_near"], [palm, fingers]) & (maps["near"] > 0)
        if not ellipsoid.any():
            ellipsoid = np.isin(maps["label_near"], [PART_INDEX[f"{side}_forearm"]]) & (maps["near"] > 0)
        if not ellipsoid.any():
            continue
        # depth of the nearest pixel of the hand's ellipsoid (else the forearm's)
        _, (iy, ix) = ndimage.distance_transform_edt(~ellipsoid, return_indices=True)
        new = px > 0
        # over the body (a hand on the hip, fingers on the shorts) the hand lies on the body's surface, so the
        # sheet keeps the body's thickness there; free of the body, the hand ellipsoid's depth
        out["near"][new] = np.where(maps["near"][new] > 0, maps["near"][new], maps["near"][iy[new], ix[new]])
        far = maps["far"][iy[new], ix[new]]
        out["far"][new] = np.maximum(np.where(maps["far"][new] > 0, maps["far"][new], far), out["near"][new])
        out["label_near"][new] = np.where(px[new] == 1, palm, fingers)
        # behind the hand: what was there, or the hand itself (fingers hanging free of the body)
        behind = maps["label_far"][new]
        out["label_far"][new] = np.where(behind >= 0, behind, out["label_near"][new])
        # pixels the hand's ellipsoid claimed that are not the hand's skin: what lies behind them
        lost = np.isin(out["label_near"], [palm, fingers]) & ~new & (np.asarray(mask) > 0.5)
        lost &= ~ndimage.binary_dilation(new, iterations=2)
        back = maps["label_far"][lost]
        out["label_near"][lost] = np.where(np.isin(back, [palm, fingers]), -1, back)
        out["near"][lost] = 0.0
    # pixels a hand gave up (here or in mesh.trim_hands) show the part behind it but keep no depth; left so,
    # lift labels them after the nearest covered part, often the hand itself, and they went with the hand as
    # a flap of the clothes. They take the depth of the nearest pixel of their own part (the body around).
    orphan = (out["label_near"] >= 0) & (out["near"] <= 0) & (np.asarray(mask) > 0.5)
    for part in np.unique(out["label_near"][orphan]):
        src = (out["label_near"] == part) & (out["near"] > 0)
        if not src.any():
            continue
        where = orphan & (out["label_near"] == part)
        _, (iy, ix) = ndimage.distance_transform_edt(~src, return_indices=True)
        out["near"][where] = out["near"][iy[where], ix[where]]
        out["far"][where] = np.maximum(out["far"][where], out["near"][where])
    return out
