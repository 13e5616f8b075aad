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
MP_HAND = {"left": (15, 17, 19, 21), "right": (16, 18, 20, 22)}


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
    wrist, pinky, index, thumb = (np.asarray(landmarks[i], np.float64) for i in MP_HAND[side])
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
    for side, idx in MP_HAND.items():
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


# --- arms: which pixels an arm claims are the arm -----------------------------------------------------------------
# The photo mesh labels a pixel with the arm when the arm's ellipsoids cover it or, where no ellipsoid does (the
# clothes beside the body's ellipsoids), when the arm is the nearest part. Both claim more than the arm: the shorts
# beside a forearm or under a hand resting on them, the trousers round a hand in a pocket, and these went with the
# arm: raised, it carried dark flaps of the shorts. `relabel_arms` gives them back to the body by colour, with
# colour models taken locally (a window round each tile of the arm), since the clothes change along an arm.
ARM_CORE = 0.04  # pixels this close to the arm's axis (in forearm lengths) are the arm's colour samples ...
ARM_BODYLIKE = 0.06  # ... unless their colour is this near the body's (MediaPipe's axis may run along the arm's
#                      edge, over the cloth beside it), as long as most of them are not (else the arm is dressed
#                      like the body there, a sleeve of the sweater's cloth, and all of them are)
ARM_UNLIKE = 0.5  # see arm_colour_test
ARM_UNLIKE_ALL = 0.3
ARM_TILE = 0.5  # tiles of this many forearm lengths each get their own colour models ...
ARM_WINDOW = 0.5  # ... from the samples within this many forearm lengths round the tile
ARM_NEIGHBOURS = 8  # a colour's distance to a model: the mean distance to its this many nearest samples
ARM_MARGIN = 0.04  # RGB distance by which the body's model must be nearer than the arm's (ambiguous: the arm)
ARM_RATIO = 2.0  # ... and the arm's model this many times further than the body's
HAND_GAP_MARGIN = 0.0  # a hand's pixel not of its skin's colour goes to the body when the body's colour model is
HAND_GAP_RATIO = 1.0  # nearer by this much and this many times (the cloth between the fingers, arm_pixels)
ARM_FRINGE = 2  # pixels the arm grows by again after the colour test (its soft edge, half arm, half cloth)
MAX_SAMPLES = 2000  # colour samples per model (every k-th pixel, no randomness)

# MediaPipe pose landmarks per side: shoulder, elbow, wrist, pinky, index
_MP_ARM = {"left": (11, 13, 15, 17, 19), "right": (12, 14, 16, 18, 20)}
_ARM_PARTS = ("upper_arm", "forearm", "palm", "fingers")


def _arm_part_ids() -> list[int]:
    """Part indices of both arms (upper arm, forearm, palm, fingers)."""
    from hvg_cli.bonemap.parts import PART_INDEX

    return [PART_INDEX[f"{s}_{p}"] for s in ("left", "right") for p in _ARM_PARTS]


def arm_axis_distance(shape: tuple[int, int], landmarks: np.ndarray, side: str) -> tuple[np.ndarray, float]:
    """([H, W] distance of every pixel centre to the arm's polyline elbow -> wrist -> knuckles, in pixels; the
    forearm's length in pixels). landmarks: [33, 2] px at this size."""
    H, W = shape
    _, el, wr, pk, ix = (np.asarray(landmarks[i], np.float64) for i in _MP_ARM[side])
    pts = [el, wr, (pk + ix) / 2.0]
    ys, xs = np.mgrid[0:H, 0:W] + 0.5
    p = np.stack([xs, ys], -1)  # [H, W, 2]
    d = np.full((H, W), np.inf)
    for a, b in zip(pts[:-1], pts[1:]):
        ab = b - a
        t = np.clip(((p - a) @ ab) / max(float(ab @ ab), 1e-9), 0.0, 1.0)  # [H, W]
        d = np.minimum(d, np.linalg.norm(p - (a + t[..., None] * ab), axis=-1))
    return d, float(np.linalg.norm(wr - el))


def model_distance(samples: np.ndarray, colours: np.ndarray) -> np.ndarray:
    """[M] mean RGB distance of each colour [M, 3] to its ARM_NEIGHBOURS nearest samples [S, 3] (at most
    MAX_SAMPLES of them, evenly strided)."""
    from scipy.spatial import cKDTree

    if len(colours) == 0:
        return np.zeros(0)
    step = max(1, len(samples) // MAX_SAMPLES)
    s = samples[::step]
    k = min(ARM_NEIGHBOURS, len(s))
    d, _ = cKDTree(s).query(colours, k=k)
    return np.asarray(d).reshape(len(colours), k).mean(1)


def arm_colour_test(
    image: np.ndarray,
    claimed: np.ndarray,
    arm_src: np.ndarray,
    body_src: np.ndarray,
    tile: int,
    margin: float = ARM_MARGIN,
    ratio: float = ARM_RATIO,
) -> np.ndarray:
    """[H, W] bool: claimed pixels whose colour is not clearly the body's (see `arm_pixels`).

    image [H, W, 3] float; claimed, arm_src, body_src: [H, W] bool; tile: pixels per tile side (the window
    round a tile reaches `tile * ARM_WINDOW / ARM_TILE` further).
    The arm's samples of a tile: those of its window unlike the body's there, when at least ARM_UNLIKE of them
    are; else those of all the arm's windows, when at least ARM_UNLIKE_ALL of all are (a hand on a thigh is
    skin on skin, but the forearm above it says what the arm's skin looks like); else all of the window's.
    margin, ratio: how much nearer the body's model must be (ARM_MARGIN, ARM_RATIO unless told).
    """
    H, W = claimed.shape
    out = np.zeros((H, W), bool)
    pad = int(round(tile * ARM_WINDOW / ARM_TILE))
    ys, xs = np.nonzero(claimed)
    tiles = []  # (window of the tile, claimed pixels there, arm samples, body samples, unlike [S] bool)
    for ty in range(int(ys.min()) // tile, int(ys.max()) // tile + 1):
        for tx in range(int(xs.min()) // tile, int(xs.max()) // tile + 1):
            box = (slice(ty * tile, (ty + 1) * tile), slice(tx * tile, (tx + 1) * tile))
            here = claimed[box]
            if not here.any():
                continue
            win = (
                slice(max(0, ty * tile - pad), (ty + 1) * tile + pad),
                slice(max(0, tx * tile - pad), (tx + 1) * tile + pad),
            )
            a, b = image[win][arm_src[win]], image[win][body_src[win]]  # [S, 3] local samples
            unlike = model_distance(b, a) > ARM_BODYLIKE if len(a) >= 8 and len(b) >= 8 else np.zeros(len(a), bool)
            tiles.append((box, here, a, b, unlike))
    n_all = sum(len(t[4]) for t in tiles)
    unlike_all = np.concatenate([t[2][t[4]] for t in tiles]) if tiles else np.zeros((0, 3))
    arm_wide = len(unlike_all) >= 8 and len(unlike_all) >= ARM_UNLIKE_ALL * max(n_all, 1)
    for box, here, a, b, unlike in tiles:
        if len(a) < 8 or len(b) < 8:
            out[box][here] = True  # nothing to tell them apart by: the arm's
            continue
        if unlike.mean() >= ARM_UNLIKE and unlike.sum() >= 8:
            a = a[unlike]
        elif arm_wide:
            a = unlike_all
        c = image[box][here]  # [M, 3]
        d_arm, d_body = model_distance(a, c), model_distance(b, c)
        out[box][here] = ~((d_body + margin < d_arm) & (ratio * d_body < d_arm))
    return out


def arm_pixels(
    image: np.ndarray,
    mask: np.ndarray,
    label: np.ndarray,
    landmarks: np.ndarray,
    side: str,
    label_far: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray] | None:
    """Which of the pixels a forearm and hand claim show them: ([H, W] bool claimed, [H, W] bool kept), or None
    when the arm is too small to judge. (The upper arm keeps its pixels: a sleeve is mostly the shirt's cloth.)

    Claimed: inside the mask, labelled the side's forearm, palm or fingers, or labelled nothing (no ellipsoid
    covers it) with such a part the nearest labelled pixel (mesh.lift fills those from the parts around), or
    with such a part on the far side (label_far [H, W], when given: the back sheet there goes with the arm).
    A claimed pixel stays the arm's unless its colour is clearly nearer to the body's colours round it than to
    the arm's own: nearer by ARM_MARGIN and ARM_RATIO times, a colour's distance to a model being the mean
    distance to its nearest samples (a plaid or a skin with shading is a cloud, not one colour). The samples,
    per tile of ARM_TILE forearm lengths, within ARM_WINDOW of it: the arm's, its pixels near its axis
    (elbow -> wrist -> knuckles), those of the body's colour left out
    (ARM_BODYLIKE); the body's, the other parts' pixels. What stays is the arm's connected piece round its
    axis, holes closed, grown by ARM_FRINGE pixels.
    image: [H, W, 3] float in [0, 1]; mask [H, W]; label: [H, W] int parts (-1 none); landmarks: [33, 2] px.
    """
    from scipy import ndimage

    from hvg_cli.bonemap.parts import PART_INDEX

    from .texture import filled_labels

    inside = np.asarray(mask) > 0.5
    mine = [PART_INDEX[f"{side}_{p}"] for p in _ARM_PARTS[1:]]
    arms = [PART_INDEX[f"{s}_{p}"] for s in ("left", "right") for p in _ARM_PARTS]
    filled = filled_labels(label, inside)  # [H, W] every mask pixel's (nearest) part
    claimed = inside & np.isin(filled, mine)
    if label_far is not None:  # and those whose far side is the arm's (an arm beside the hip, behind its front)
        claimed |= inside & np.isin(label_far, mine)
    if claimed.sum() < 16:
        return None
    d_axis, L = arm_axis_distance(label.shape, landmarks, side)
    if L < 4.0:
        return None
    deep = ndimage.binary_erosion(inside, iterations=2)
    core = inside & np.isin(label, mine) & (d_axis <= ARM_CORE * L)  # on the axis and under the arm's ellipsoids
    arm_src = core & deep  # (not all of the hand's pixels: grow_hands' closing takes cloth between the fingers)
    body_src = deep & (filled >= 0) & ~np.isin(filled, arms)
    if arm_src.sum() < 8 or body_src.sum() < 8:
        return None
    is_arm = arm_colour_test(np.asarray(image, np.float64), claimed, arm_src, body_src, max(4, int(ARM_TILE * L)))
    is_arm |= core
    # the arm's own piece: specks of shadow inside it stay, islands of cloth-coloured-like-arm beside it go
    is_arm = ndimage.binary_fill_holes(ndimage.binary_closing(is_arm, iterations=2)) & claimed
    lab, _ = ndimage.label(is_arm)
    seeds = np.unique(lab[core])
    is_arm = np.isin(lab, seeds[seeds > 0])
    is_arm = ndimage.binary_dilation(is_arm, iterations=ARM_FRINGE) & claimed
    # the hand's gaps: the closing and the fringe above (and grow_hands' own) fill the gaps between the fingers,
    # where the photo shows the cloth under the hand (raised, the hand carried stripes of the shorts). The hand's
    # pixels that are not of its skin's colour (grow_hands' test, the skin's colour the median of those the arm
    # keeps) and nearer to the body's colours than to the arm's (HAND_GAP_MARGIN, HAND_GAP_RATIO) go back to it
    hand = is_arm & np.isin(label, mine[1:]) & ~core
    if hand.sum() >= 8:
        img = np.asarray(image, np.float64)
        ref = np.median(img[hand], axis=0)  # [3] the hand's skin
        bright = img.sum(-1) / max(float(ref.sum()), 1e-6)  # [H, W]
        skin = (np.linalg.norm(chroma(img) - chroma(ref), axis=-1) <= SKIN_CHROMA) & (bright >= 0.5) & (bright <= 2.0)
        hand &= ~skin
        if hand.any():
            tile = max(4, int(ARM_TILE * L))
            is_arm &= ~(hand & ~arm_colour_test(img, hand, arm_src, body_src, tile, HAND_GAP_MARGIN, HAND_GAP_RATIO))
    return claimed, is_arm


def relabel_arms(
    maps: dict, image: np.ndarray, mask: np.ndarray, landmarks: np.ndarray, visibility: np.ndarray
) -> dict:
    """The body maps with the pixels an arm claims but whose colour is the body's given back to it, and the
    body's own back where an arm lay behind it (beyond an upper arm's axis: the sleeve, the arm's front and back).

    Such a pixel shows what the core body (the ellipsoids without the arms: maps' core_* entries) shows there,
    with its depth; off the core body's silhouette it keeps no depth (mesh.lift fills it from the body around)
    and gets the nearest core pixel's part. So the mesh's cut (skin.cut_overlaps) runs along the arm's real
    outline and the clothes stay with the body. Pixels no ellipsoid covers get their part in a new map,
    "label_fill" ([H, W] int, -1 where lift's own fill decides): the arm's for those of the arm's colour (lift's
    fill, which favours large parts, gave a bare arm's edge to the torso), the body's for the others.
    maps: body_maps_at_photo's dict; image [H, W, 3] in [0, 1]; mask [H, W]; landmarks [33, 2] px at this size;
    visibility [33]. Returns a new dict; its "label_far_tex" ([H, W] int) is the far part the texture's back panel
    goes by (label_far, but the arm's where the body's back was closed over it above the middle of the upper arm).
    """
    from hvg_cli.bonemap.parts import PARTS

    out = {k: np.array(v, copy=True) for k, v in maps.items()}
    inside = np.asarray(mask) > 0.5
    if "label_fill" not in out:
        out["label_fill"] = np.full(inside.shape, -1, np.int64)
    # an arm behind the body (the photo shows the body there, the arm's ellipsoid reaches behind it): the back
    # sheet is the core body's far side, not the arm's, so the body stays closed there when the arm leaves
    # (measured: the studio's torso seen from behind had a strip of holes along the arm that hung beside it)
    # Behind an upper arm only on its inner side (towards the hips): beyond it the photo shows the sleeve (the
    # chest's ellipsoid reaches over it), and closed as the torso's it stayed as a sliver of its own when the arm
    # left (measured: a speck off the studio's sleeve at 67.5 degrees); there front and back are the arm's.
    arm_ids = _arm_part_ids()
    behind = (
        inside
        & (maps["label_near"] >= 0)
        & ~np.isin(maps["label_near"], arm_ids)
        & np.isin(maps["label_far"], arm_ids)
        & (maps["label_core_far"] >= 0)
        & (maps["core_far"] > 0)
    )
    lower = np.isin(maps["label_far"], [i for i in arm_ids if not PARTS[i].name.endswith("upper_arm")])
    inner = lower | _inner_side(inside.shape, landmarks, visibility, maps["label_far"])
    outer = behind & ~inner
    out["label_near"][outer] = maps["label_far"][outer]
    behind &= inner
    out["label_far"][behind] = maps["label_core_far"][behind]
    out["far"][behind] = np.maximum(maps["core_far"][behind], maps["near"][behind])
    out = _give_back(out, image, mask, landmarks, visibility)
    # the back panel (render.build_preview_model reads "label_far_tex") paints the closed strip as the body's cloth,
    # but above the middle of the upper arms as the arm's: all of it as the shirt changed the back enough that
    # MediaPipe found a face from behind in 2 of 13 views of the studio photo (scores 0.61-0.63, at 165-172
    # degrees); the arm's colours everywhere there left a pale patch on the torso's side at 90 degrees
    lm = np.asarray(landmarks, np.float64)
    rows = np.arange(inside.shape[0])[:, None] + 0.5  # [H, 1]
    high = np.zeros(inside.shape, bool)  # [H, W] above the middle of an upper arm
    for sh, el, *_rest in _MP_ARM.values():
        high |= rows < (lm[sh, 1] + lm[el, 1]) / 2.0
    out["label_far_tex"] = np.where(behind & high, maps["label_far"], out["label_far"])
    return out


def _inner_side(shape: tuple[int, int], landmarks: np.ndarray, visibility: np.ndarray, label: np.ndarray) -> np.ndarray:
    """[H, W] bool: pixels labelled an arm's part (label [H, W]) that lie on that arm's inner side: their nearest
    point on the arm's polyline shoulder -> elbow -> wrist sees them towards the hips' midpoint (MediaPipe 23/24).
    An arm whose shoulder, elbow or wrist is unseen has no inner side."""
    from hvg_cli.bonemap.parts import PART_INDEX

    H, W = shape
    out = np.zeros((H, W), bool)
    lm, vis = np.asarray(landmarks, np.float64), np.asarray(visibility)
    centre = (lm[23] + lm[24]) / 2.0
    ys, xs = np.mgrid[0:H, 0:W] + 0.5
    p = np.stack([xs, ys], -1)  # [H, W, 2]
    for side, (sh, el, wr, *_rest) in _MP_ARM.items():
        mine = np.isin(label, [PART_INDEX[f"{side}_{q}"] for q in _ARM_PARTS])
        if not mine.any() or vis[[sh, el, wr]].min() < 0.5:
            continue
        best = np.full((H, W), np.inf)
        foot = np.zeros((H, W, 2))  # [H, W, 2] nearest point on the polyline
        for a, b in ((lm[sh], lm[el]), (lm[el], lm[wr])):
            ab = b - a
            t = np.clip(((p - a) @ ab) / max(float(ab @ ab), 1e-9), 0.0, 1.0)
            q = a + t[..., None] * ab
            d = np.linalg.norm(p - q, axis=-1)
            closer = d < best
            best = np.where(closer, d, best)
            foot = np.where(closer[..., None], q, foot)
        out |= mine & (((p - foot) * (centre - foot)).sum(-1) > 0)
    return out


def _give_back(maps: dict, image: np.ndarray, mask: np.ndarray, landmarks: np.ndarray, visibility: np.ndarray) -> dict:
    """relabel_arms' colour test and what follows from it (see there). Returns a new dict."""
    from scipy import ndimage

    from .texture import filled_labels

    out = {k: np.array(v, copy=True) for k, v in maps.items()}
    inside = np.asarray(mask) > 0.5
    give = np.zeros(inside.shape, bool)
    keep = np.zeros(inside.shape, bool)
    for side, idx in _MP_ARM.items():
        if float(np.min(np.asarray(visibility)[list(idx[:3])])) < 0.5:
            continue  # shoulder, elbow or wrist unseen: no axis to trust
        r = arm_pixels(image, mask, maps["label_near"], landmarks, side, maps["label_far"])
        if r is None:
            continue
        claimed, is_arm = r
        give |= claimed & ~is_arm
        keep |= is_arm
    core = (maps["label_core_near"] >= 0) & (maps["core_near"] > 0)
    if not give.any() or not core.any():
        return out
    # the back sheet: a given pixel whose far side is an arm's shows the core body's far side there, or (off the
    # core body) its own front's part
    arm_far = give & np.isin(maps["label_far"], _arm_part_ids())
    far_core = arm_far & core
    out["label_far"][far_core] = maps["label_core_far"][far_core]
    out["far"][far_core] = np.maximum(maps["core_far"][far_core], maps["near"][far_core])
    far_off = arm_far & ~core
    out["label_far"][far_off] = np.where(
        np.isin(maps["label_near"][far_off], _arm_part_ids()), -1, maps["label_near"][far_off]
    )
    # the front: given pixels the arm showed (or, uncovered, would have been filled with)
    filled = filled_labels(maps["label_near"], inside)  # [H, W]
    give &= np.isin(filled, _arm_part_ids())
    uncovered = ~((maps["label_near"] >= 0) & (maps["near"] > 0) & (maps["far"] > 0))
    # arm-coloured pixels no ellipsoid covers: the arm's (the nearest labelled part, an arm part)
    arm_fill = keep & uncovered & np.isin(filled, _arm_part_ids())
    out["label_fill"][arm_fill] = filled[arm_fill]
    # the body's pixels: what the core body shows there, else (no depth) the nearest core pixel's part
    on_core = give & core
    out["label_near"][on_core] = maps["label_core_near"][on_core]
    out["label_far"][on_core] = maps["label_core_far"][on_core]
    out["near"][on_core] = maps["core_near"][on_core]
    out["far"][on_core] = np.maximum(maps["core_far"][on_core], maps["core_near"][on_core])
    off = give & ~core
    _, (iy, ix) = ndimage.distance_transform_edt(~core, return_indices=True)  # nearest core pixel of each pixel
    out["label_near"][off] = -1
    out["label_far"][off] = -1
    out["near"][off] = 0.0
    out["far"][off] = 0.0
    out["label_fill"][off] = maps["label_core_near"][iy[off], ix[off]]
    return out


# --- hands in pockets -----------------------------------------------------------------------------------------------
POCKET_REACH = 0.25  # a hidden hand lies within this many forearm lengths past the wrist, along the forearm ...
POCKET_WIDTH = 0.3  # ... and this many forearm lengths from that line
POCKET_MARGIN = 0.1  # ... and at least this many forearm lengths off the core body's silhouette
POCKET_HIDDEN = 0.5  # a hand whose landmarks' mean visibility is below this is hidden (in a pocket, behind the hip)
POCKET_WRIST = 0.3  # ... while its wrist's is at least this (the arm leads there)


def pocket_pixels(maps: dict, mask: np.ndarray, landmarks: np.ndarray, visibility: np.ndarray) -> np.ndarray:
    """[H, W] bool: the bulge of the clothes round a hidden hand (a hand in a trouser pocket), beyond the core body.

    A hand MediaPipe does not see (POCKET_HIDDEN) at a wrist it does (POCKET_WRIST) lies in a pocket or behind the
    hip. The clothes round it stand out of the body's silhouette (the hand inside), and none of it is the arm's:
    with the hips they stuck out as flaps once the dance took the hand out, with the hand they would travel as a
    piece of the trousers. These pixels: inside the mask, off the core body's silhouette (the ellipsoids without
    the arms), not an arm's, within POCKET_WIDTH forearm lengths of the line from the wrist POCKET_REACH forearm
    lengths on along the forearm. render.build_preview_model leaves them out of the mesh (the filled background
    shows there, as where the photo's background showed).
    maps: body_maps_at_photo's dict (label_fill included); mask [H, W]; landmarks [33, 2] px; visibility [33].
    """
    from .texture import filled_labels

    inside = np.asarray(mask) > 0.5
    out = np.zeros(inside.shape, bool)
    vis = np.asarray(visibility, np.float64)
    labels = np.where(maps["label_near"] >= 0, maps["label_near"], maps.get("label_fill", maps["label_near"]))
    body = inside & ~np.isin(filled_labels(labels, inside), _arm_part_ids()) & ~(maps["core_near"] > 0)
    from scipy import ndimage

    core_dist = ndimage.distance_transform_edt(~(maps["core_near"] > 0))  # [H, W] pixels from the core body
    if not body.any():
        return out
    H, W = inside.shape
    for side, (_, el_i, wr_i, *_hand) in _MP_ARM.items():
        hand = list(MP_HAND[side][1:])  # pinky, index, thumb
        if float(vis[hand].mean()) >= POCKET_HIDDEN or vis[wr_i] < POCKET_WRIST or vis[el_i] < POCKET_WRIST:
            continue
        el, wr = np.asarray(landmarks[el_i], np.float64), np.asarray(landmarks[wr_i], np.float64)
        L = float(np.linalg.norm(wr - el))
        if L < 4.0:
            continue
        tip = wr + POCKET_REACH * (wr - el)
        r = POCKET_WIDTH * L
        x0, y0 = np.floor(np.minimum(wr, tip) - r).astype(int)
        x1, y1 = np.ceil(np.maximum(wr, tip) + r).astype(int)
        x0, y0, x1, y1 = max(0, x0), max(0, y0), min(W, x1), min(H, y1)
        if x1 <= x0 or y1 <= y0:
            continue
        ys, xs = np.mgrid[y0:y1, x0:x1] + 0.5
        p = np.stack([xs, ys], -1)  # [h, w, 2]
        ab = tip - wr
        t = np.clip(((p - wr) @ ab) / max(float(ab @ ab), 1e-9), 0.0, 1.0)
        near = np.linalg.norm(p - (wr + t[..., None] * ab), axis=-1) <= r
        # a margin off the core body: seen from the side, the body's own silhouette covers what lies close to it
        out[y0:y1, x0:x1] |= near & body[y0:y1, x0:x1] & (core_dist[y0:y1, x0:x1] > POCKET_MARGIN * L)
    # only what reaches the silhouette's edge (a bulge), never a hole inside the person
    edge = inside & ~ndimage.binary_erosion(inside, iterations=2)
    lab, _ = ndimage.label(out)
    ids = np.unique(lab[edge & out])
    return np.isin(lab, ids[ids > 0])


# --- the photo's background held by the mask near an arm --------------------------------------------------------------
# The person mask holds the photo's background in narrow gaps: between a hand resting on the hip and the waist, between
# the fingers. Those pixels went with the arm (their colour is nobody's), and the raised hand carried a grey flap.
GAP_REACH = 0.6  # pixels within this many forearm lengths of the arm's axis (elbow -> wrist -> knuckles) ...
GAP_RING = (3.0, 20.0)  # ... whose colour is the background's: samples outside the mask, this far from it (px) ...
GAP_NEAR = 0.05  # ... within this RGB distance (mean over ARM_NEIGHBOURS nearest samples) of them ...
GAP_RATIO = 2.0  # ... and this many times nearer to them than to the person's colours round the arm
GAP_DEEP = 4.0  # the person's colour samples: mask pixels at least this far (px) inside its edge


def background_pixels(image: np.ndarray, mask: np.ndarray, landmarks: np.ndarray, visibility: np.ndarray) -> np.ndarray:
    """[H, W] bool: mask pixels near a seen forearm or hand whose colour is the photo's background round the person.

    Per arm whose elbow and wrist MediaPipe saw: the pixels within GAP_REACH forearm lengths of its axis, the
    background's samples there (outside the mask, GAP_RING px from it) and the person's (inside, GAP_DEEP px from
    the edge, those of the background's colour left out). A pixel is the background's when its colour is within
    GAP_NEAR of the background's samples and GAP_RATIO times nearer to them than to the person's; pixels on the
    arm's axis (ARM_CORE) never are. render.build_preview_model leaves them out of the mesh (the filled background
    shows there, as where the photo's background showed), like hands.pocket_pixels.
    image: [H, W, 3] float in [0, 1]; mask [H, W]; landmarks [33, 2] px at this size; visibility [33].
    """
    from scipy import ndimage

    img = np.asarray(image, np.float64)
    inside = np.asarray(mask) > 0.5
    out = np.zeros(inside.shape, bool)
    vis = np.asarray(visibility, np.float64)
    if not inside.any() or inside.all():
        return out
    d_out = ndimage.distance_transform_edt(~inside)  # [H, W] px outside the mask
    d_in = ndimage.distance_transform_edt(inside)  # [H, W] px inside it
    ring = ~inside & (d_out >= GAP_RING[0]) & (d_out <= GAP_RING[1])
    for side, (_, el_i, wr_i, *_hand) in _MP_ARM.items():
        if min(vis[el_i], vis[wr_i]) < 0.5:
            continue
        d_axis, L = arm_axis_distance(inside.shape, landmarks, side)
        if L < 4.0:
            continue
        near = d_axis <= GAP_REACH * L
        bg = img[ring & (d_axis <= (GAP_REACH + 0.5) * L)]  # [B, 3]
        here = inside & near & (d_axis > ARM_CORE * L)
        if len(bg) < 8 or not here.any():
            continue
        c = img[here]  # [M, 3]
        d_bg = model_distance(bg, c)
        cand = np.zeros(inside.shape, bool)
        cand[here] = d_bg <= GAP_NEAR
        person = inside & near & (d_in >= GAP_DEEP) & ~cand
        pers = img[person]
        if len(pers) < 8 or not cand.any():
            continue
        cc = img[cand]
        out[cand] |= model_distance(bg, cc) * GAP_RATIO < model_distance(pers, cc)
    # only what reaches the mask's edge (its outline or a hole in it): white cloth inside the person stays
    edge = inside & ~ndimage.binary_erosion(inside, iterations=2, border_value=1)
    lab, _ = ndimage.label(out)
    ids = np.unique(lab[edge & out])
    return np.isin(lab, ids[ids > 0])


# --- the back of a forearm and hand ----------------------------------------------------------------------------------
ARM_BACK_BLUR = 0.005  # the back of a forearm or hand: its front's skin, blurred by this many person heights (sigma)
ARM_BACK_PAD = 4  # texels round the arm's back-sheet vertices that its panel holds


def arm_back_skin(image: np.ndarray, known: np.ndarray, front: np.ndarray, person_height: float) -> np.ndarray | None:
    """[H, W, 3] float32: the forearms' and hands' own skin everywhere, or None when too few of their pixels are known:
    the pixels whose front is a forearm or hand (front [H, W] int part) and `known` ([H, W] bool), filled outwards
    from them (background.push_pull_fill), blurred by ARM_BACK_BLUR person heights (pixels). image [H, W, 3]."""
    from scipy import ndimage

    from .background import push_pull_fill

    src = known & np.isin(front, _hand_arm_ids())
    if src.sum() < 16:
        return None
    skin = push_pull_fill(np.asarray(image, np.float32), src)  # [H, W, 3]
    sigma = max(1.0, ARM_BACK_BLUR * person_height)
    return ndimage.gaussian_filter(skin, (sigma, sigma, 0)).astype(np.float32)


def _hand_arm_ids() -> list[int]:
    """Part indices of both forearms and hands (palm, fingers)."""
    from hvg_cli.bonemap.parts import PART_INDEX

    return [PART_INDEX[f"{s}_{p}"] for s in ("left", "right") for p in _ARM_PARTS[1:]]


def attach_arm_backs(skinned, texture: np.ndarray, skin: np.ndarray | None, back_panel: int) -> tuple:
    """The skinned mesh whose forearms' and hands' back-sheet vertices sample a panel of their own skin, and the
    atlas with that panel in it: (SkinnedMesh, texture [H, n W, 3]).

    The back panel's low-detail filter (texture.low_detail) works at a scale the forearms are too thin for: there
    they took the all-region result, a blend of the background's fill, the hair and the shorts, and where a hand
    lay on the body the panel is the body's (the shorts), the same texels its back sheet samples: a raised hand
    seen from behind was a brownish-grey flap. Each arm's back-sheet vertices (skinned.back, labelled its forearm,
    palm or fingers) sample at their photo position (uv x - back_panel W) the skin (arm_back_skin, [H, W, 3])
    copied into a free block of the back panel (texels no face samples, texture.free_block: the back sheet still
    samples the back panel), else into columns added on the right.
    """
    import dataclasses

    from hvg_cli.bonemap.parts import PART_INDEX

    from .texture import free_block, used_texels

    if skin is None:
        return skinned, texture
    H, W = skin.shape[:2]
    uv = skinned.uv.copy()
    tex = texture
    for side in ("left", "right"):
        ids = [PART_INDEX[f"{side}_{p}"] for p in _ARM_PARTS[1:]]
        sel = np.asarray(skinned.back) & np.isin(skinned.labels, ids)  # [N]
        if not sel.any():
            continue
        p = uv[sel] - np.array([back_panel * W, 0.0])  # [n, 2] photo pixels (x, y)
        x0, y0 = np.clip(np.floor(p.min(0) - ARM_BACK_PAD).astype(int), 0, None)
        x1, y1 = np.minimum(np.ceil(p.max(0) + ARM_BACK_PAD).astype(int), [W, H])
        if x1 <= x0 or y1 <= y0:
            continue
        panel = skin[y0:y1, x0:x1]  # [h, w, 3]
        h, w = panel.shape[:2]
        # texels any face samples (its uv box grown by 2.5, the moved arm's included): the others are free
        used = used_texels(uv, skinned.faces, tex.shape[:2])
        c0 = back_panel * W
        at = free_block(used[:H, c0 : c0 + W], h, w)
        if at is None:
            at = (0, tex.shape[1])
            tex = np.pad(tex, ((0, max(0, h - tex.shape[0])), (0, w), (0, 0)))
        else:
            at = (at[0], at[1] + c0)
            tex = np.array(tex, copy=True) if tex is texture else tex
        tex[at[0] : at[0] + h, at[1] : at[1] + w] = panel
        uv[sel] = p - np.array([x0, y0]) + np.array([at[1], at[0]])  # into the panel's block
    return dataclasses.replace(skinned, uv=uv), tex
