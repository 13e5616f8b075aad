"""The preview's texture atlas beyond the photo itself: what the back and the hidden surfaces show.

The photo shows one side of the person. The mesh (mesh.py) has two more surfaces that need colours:

1. The under-layer: where a limb covers a part it is not joined to (an arm across the torso, a hand on the
   hip), the hidden part continues beneath the limb. `uncover` paints those pixels with the hidden part's
   own cloth: a push-pull fill from the visible pixels of the same body region (torso, a leg, an arm, the
   head), taken well inside the mask, so neither the limb's skin nor the photo's background (the grey that
   the mask's soft edge carries between an arm and the body) leaks into it.
2. The back sheet. Choice: a low-detail continuation of the front, not the mirrored front. `back_panel`
   takes the uncovered photo (limbs over the body removed as in 1), covers the face and neck with the hair
   (render.back_of_head), and keeps only the cloth's colours and low-frequency shading: a median filter
   over a window of BACK_WINDOW of the person's height (computed on a copy downsampled to BACK_HEIGHT rows)
   followed by a light Gaussian. A median keeps the borders between garments (shirt/shorts, sleeve/skin)
   where they are, while small front-only details that cover less than half of a window (drawstrings, a
   logo, buttons, a pocket's seam, the face's features, a plaid's lines) vanish into the surrounding cloth.

All images here are [H, W, 3] float32 in [0, 1] at the photo's (mask's) resolution.
"""

from __future__ import annotations

import numpy as np

BACK_HEIGHT = 256  # rows of the working copy the back panel is computed on (the person's height ~ this)
BACK_WINDOW = 0.05  # median window, fraction of the person's height (a logo or a drawstring is smaller)
BACK_SOFTEN = 0.1  # Gaussian after the median, fraction of the window
REGION_FEATHER = 1.0  # working pixels over which the back panel blends from one body region to the next
HEAD_REGION = 1  # body_regions' index of the head (and neck)
HAIR_COLOUR = 0.2  # RGB distance to the hair's median colour within which a body pixel counts as hair
UNCOVER_SMOOTH = 0.006  # the repainted hidden pixels are smoothed by this fraction of the photo height


def body_regions() -> np.ndarray:
    """[P] int: the region (0 torso, 1 head, 2/3 left/right upper arm, 4/5 left/right leg, 6/7 left/right forearm
    and hand) of each bonemap part.

    A hidden part is filled from visible pixels of its own region: the ribs behind an arm take the shirt's
    colours from the chest and belly beside it, not the arm's skin. The forearm and hand are a region of their
    own: below a short sleeve they are skin, and one region for the whole arm gave the back of a bare forearm
    the grey of sleeve and skin mixed (the back panel's median over a window wider than the forearm).
    """
    from hvg_cli.bonemap.parts import PARTS

    out = np.zeros(len(PARTS), np.int64)
    for i, p in enumerate(PARTS):
        name = p.name
        if name in ("head", "neck"):
            out[i] = 1
        elif name.endswith("upper_arm"):
            out[i] = 2 if name.startswith("left") else 3
        elif name.endswith(("forearm", "palm", "fingers")):
            out[i] = 6 if name.startswith("left") else 7
        elif name.endswith(("thigh", "shin", "foot", "toes")):
            out[i] = 4 if name.startswith("left") else 5
    return out  # pelvis, belly, ribs, chest, hips, collars: torso (0)


def filled_labels(label: np.ndarray, inside: np.ndarray) -> np.ndarray:
    """[H, W] int: `label` (-1 empty) with empty pixels given the nearest labelled pixel's part (-1 if none)."""
    from scipy import ndimage

    have = label >= 0
    if not have.any():
        return label.copy()
    _, idx = ndimage.distance_transform_edt(~have, return_indices=True)  # [2, H, W]
    out = label[idx[0], idx[1]]
    return np.where(inside | have, out, label)


def uncover(
    image: np.ndarray, known: np.ndarray, hidden: np.ndarray, label_front: np.ndarray, label_behind: np.ndarray
) -> np.ndarray:
    """The photo with pixels where a limb hides another part painted with the hidden part's own cloth.

    image:        [H, W, 3] float32 (the person's colours)
    known:        [H, W] bool: trustworthy visible pixels (inside the mask, off its soft edge, not hidden)
    hidden:       [H, W] bool: pixels to repaint (a part hides an unrelated one there)
    label_front:  [H, W] int part seen at each pixel (filled inside the mask; -1 outside)
    label_behind: [H, W] int part behind the occluder at each pixel (the one to paint; -1 empty)
    returns:      [H, W, 3] float32, equal to `image` off `hidden`
    """
    from scipy import ndimage

    out = np.asarray(image, np.float32).copy()
    if not hidden.any():
        return out
    H, W = hidden.shape
    region = body_regions()
    r_front = np.where(label_front >= 0, region[np.maximum(label_front, 0)], -1)
    r_behind = np.where(label_behind >= 0, region[np.maximum(label_behind, 0)], -1)
    any_known = known & (r_front >= 0)
    if not any_known.any():
        return out
    # each hidden pixel takes the colour of the nearest visible pixel of its region (a push-pull fill would
    # average the whole region: a hidden upper arm would take the mean of sleeve and skin, a grey), then the
    # repainted pixels are smoothed among themselves so the nearest-pixel streaks do not show
    src_of = np.zeros((2, H, W), np.int64)
    todo = hidden.copy()
    for r in np.unique(r_behind[hidden]):
        where = hidden & (r_behind == r)
        src = any_known & (r_front == r)
        if r < 0 or src.sum() < 16:
            continue  # no visible pixel of that region: the nearest visible cloth (below)
        _, idx = ndimage.distance_transform_edt(~src, return_indices=True)  # [2, H, W]
        src_of[:, where] = idx[:, where]
        todo &= ~where
    if todo.any():
        _, idx = ndimage.distance_transform_edt(~any_known, return_indices=True)
        src_of[:, todo] = idx[:, todo]
    fill = out[src_of[0], src_of[1]]  # [H, W, 3] (meaningful on `hidden`)
    sig = max(1.0, UNCOVER_SMOOTH * H)
    m = hidden.astype(np.float32)
    den = np.maximum(ndimage.gaussian_filter(m, sig), 1e-6)
    smooth = np.stack([ndimage.gaussian_filter(fill[..., k] * m, sig) / den for k in range(3)], -1)  # [H, W, 3]
    out[hidden] = smooth[hidden]
    return out


def low_detail(
    image: np.ndarray, known: np.ndarray, person_height: float, region: np.ndarray | None = None
) -> np.ndarray:
    """The cloth's colours and low-frequency shading without small details (see the module doc).

    image:  [H, W, 3] float32; known: [H, W] bool pixels to trust (elsewhere filled from them)
    person_height: pixels (sets the window)
    region: [H, W] int (-1 none) or None: each region is filtered from its own pixels only (a hand's back
            takes the hand's skin, not the shorts it lay on); the head and pixels of no region take the
            all-region result (measured: a head filtered alone, sharp-edged over the shoulders, was taken for
            a face from behind in 1 of 13 back views of each shared photo; blended, in none)
    returns: [H, W, 3] float32 at full resolution (everywhere, the surroundings continued from `known`)
    """
    import torch
    import torch.nn.functional as F
    from scipy import ndimage

    H, W = known.shape
    f = max(1.0, person_height / BACK_HEIGHT)  # downsampling factor
    h, w = max(2, int(round(H / f))), max(2, int(round(W / f)))
    win = max(3, int(round(BACK_WINDOW * person_height / f)) | 1)  # odd, in working pixels

    def down(x: np.ndarray) -> np.ndarray:  # [H, W, C] -> [h, w, C], area average
        t = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)).permute(2, 0, 1)[None]
        return F.interpolate(t, size=(h, w), mode="area")[0].permute(1, 2, 0).numpy()

    def up(x: np.ndarray) -> np.ndarray:  # [h, w, C] -> [H, W, C], bilinear
        t = torch.from_numpy(np.ascontiguousarray(x)).permute(2, 0, 1)[None]
        return F.interpolate(t, size=(H, W), mode="bilinear", align_corners=False)[0].permute(1, 2, 0).numpy()

    base = _median_of(down(image * known[..., None]), down(known[..., None].astype(np.float32))[..., 0], win)
    if region is None:
        return up(base).astype(np.float32)
    # each region's own result, blended across region borders over REGION_FEATHER working pixels (a hard
    # step between, say, the arm's and the torso's halves of one sweater would be a seam of its own)
    num = np.zeros_like(base)
    den = np.zeros(base.shape[:2], np.float32)
    rest = np.ones(base.shape[:2], np.float32)  # [h, w] share of pixels left to the all-region result
    for r in np.unique(region[known & (region >= 0)]):
        if r == HEAD_REGION:
            continue  # the head's hair blends into the shoulders (a sharp-edged head oval reads as a face)
        mine = known & (region == r)
        small_w = down(mine[..., None].astype(np.float32))[..., 0]  # [h, w] fraction of each cell in region r
        if (small_w > 0.5).sum() < 4:
            continue  # too small to filter at this scale: the all-region result
        share = down((region == r)[..., None].astype(np.float32))[..., 0]  # [h, w]
        rest -= share
        wgt = ndimage.gaussian_filter(share, REGION_FEATHER)
        num += wgt[..., None] * _median_of(down(image * mine[..., None]), small_w, win)
        den += wgt
    wgt = ndimage.gaussian_filter(np.clip(rest, 0.0, 1.0), REGION_FEATHER)
    num += wgt[..., None] * base
    den += wgt
    return up(num / np.maximum(den, 1e-6)[..., None]).astype(np.float32)


def _median_of(num: np.ndarray, weight: np.ndarray, win: int) -> np.ndarray:
    """Median filter (window `win`, then a light Gaussian) of the colours num / weight where weight > 0.5,
    the rest filled from them first (push-pull). num: [h, w, 3] area sums of colour x weight; weight [h, w]."""
    from scipy import ndimage

    from .background import push_pull_fill

    ok = weight > 0.5
    colour = num / np.maximum(weight, 1e-6)[..., None]
    if not ok.any():
        return colour
    # only a box around the pixels (plus two windows) is filtered; beyond it the box's edge is continued
    h, w = ok.shape
    ys, xs = np.nonzero(ok)
    y0, y1 = max(0, ys.min() - 2 * win), min(h, ys.max() + 2 * win + 1)
    x0, x1 = max(0, xs.min() - 2 * win), min(w, xs.max() + 2 * win + 1)
    filled = push_pull_fill(colour[y0:y1, x0:x1], ok[y0:y1, x0:x1])
    med = np.stack([ndimage.median_filter(filled[..., k], size=win, mode="nearest") for k in range(3)], -1)
    med = np.stack([ndimage.gaussian_filter(med[..., k], BACK_SOFTEN * win, mode="nearest") for k in range(3)], -1)
    return np.pad(med, ((y0, h - y1), (x0, w - x1), (0, 0)), mode="edge")  # [h, w, 3]


def neckline(
    image: np.ndarray, known: np.ndarray, region: np.ndarray, landmarks: np.ndarray, visibility: np.ndarray
) -> np.ndarray:
    """[H, W] bool: torso pixels of the face's skin colour (a neckline, a V-neck): front-only, the back of a
    shirt continues its cloth there. Empty when the face is not seen or when skin is most of the torso's
    visible pixels (a bare back is as likely as a bare front then).

    image: [H, W, 3] float32; known: [H, W] bool trusted pixels; region: [H, W] int (body_regions per pixel,
    -1 empty); landmarks: [33, 2] px, visibility [33] (MediaPipe: 0 nose, 2/5 eyes)
    """
    from .hands import SKIN_CHROMA, chroma

    H, W = known.shape
    out = np.zeros((H, W), bool)
    lm = np.asarray(landmarks, np.float64)
    if np.asarray(visibility)[[0, 2, 5]].min() < 0.5:
        return out
    r = 0.35 * float(np.linalg.norm(lm[2] - lm[5]))  # a patch of cheek and nose around the nose tip
    ys, xs = np.mgrid[0:H, 0:W] + 0.5
    patch = known & (np.hypot(xs - lm[0, 0], ys - lm[0, 1]) <= max(r, 2.0))
    torso = known & (region == 0)
    if patch.sum() < 4 or torso.sum() < 16:
        return out
    ref = np.median(image[patch], axis=0)  # [3] the face's skin
    bright = image.sum(-1) / max(float(ref.sum()), 1e-6)
    skin = (np.linalg.norm(chroma(image) - chroma(ref), axis=-1) <= SKIN_CHROMA) & (bright >= 0.5) & (bright <= 2.0)
    out = torso & skin
    if out.sum() > 0.4 * torso.sum():
        return np.zeros((H, W), bool)
    return out


def front_hair(
    image: np.ndarray,
    known: np.ndarray,
    region: np.ndarray,
    label: np.ndarray,
    landmarks: np.ndarray,
    visibility: np.ndarray,
) -> np.ndarray:
    """[H, W] bool: pixels of the torso and the limbs that show the hair's colour (long hair falling over a
    shoulder or an arm in the photo): front-only, the back shows the cloth there (the back panel fills them
    from the surrounding known pixels). The hair's colour is the median of the head's pixels above the eyes.
    Empty when the face is not seen (no way to tell hair from the head's other pixels).

    image: [H, W, 3] float32; known: [H, W] bool trusted pixels; region: [H, W] int (body_regions per pixel,
    -1 empty); label: [H, W] bonemap part at the photo camera (-1 empty); landmarks [33, 2] px, visibility [33]
    (measured on the studio photo: with its lock of hair on the shoulder kept on the back, the head from
    behind read as a face framed by hair in 1 of 13 back views at 48; without it, in none, and no detection
    scores even 0.2 on either shared photo)
    """
    from hvg_cli.bonemap.parts import PART_INDEX

    H, W = known.shape
    out = np.zeros((H, W), bool)
    lm = np.asarray(landmarks, np.float64)
    if np.asarray(visibility)[[0, 2, 5]].min() < 0.5:
        return out
    eyes_y = float(min(lm[2, 1], lm[5, 1]))
    rows = np.arange(H)[:, None] + 0.5  # [H, 1]
    top = known & (label == PART_INDEX["head"]) & (rows < eyes_y)  # hair (and forehead) above the eyes
    if top.sum() < 16:
        return out
    colour = np.median(image[top], axis=0)  # [3]
    near = np.linalg.norm(image - colour, axis=-1) < HAIR_COLOUR
    return known & (region >= 0) & (region != HEAD_REGION) & near


def free_block(used: np.ndarray, h: int, w: int) -> tuple[int, int] | None:
    """(row, col) of an h x w block of False in `used` [Ht, Wt] bool, or None (summed-area table)."""
    Ht, Wt = used.shape
    if h > Ht or w > Wt:
        return None
    sat = np.zeros((Ht + 1, Wt + 1), np.int64)
    sat[1:, 1:] = used.astype(np.int64).cumsum(0).cumsum(1)
    n = sat[h:, w:] - sat[:-h, w:] - sat[h:, :-w] + sat[:-h, :-w]  # [Ht-h+1, Wt-w+1] used texels per block
    free = np.argwhere(n == 0)
    if len(free) == 0:
        return None
    return int(free[0, 0]), int(free[0, 1])


def used_texels(uv: np.ndarray, faces: np.ndarray, shape: tuple[int, ...], grow: float = 2.5) -> np.ndarray:
    """[Ht, Wt] bool: the atlas texels some face samples (its uv box grown by `grow` texels for bilinear reads).

    uv [N, 2] texels (u along the width); faces [F, 3]; shape the atlas' (Ht, Wt[, C]). A 2D difference array
    of the faces' boxes, summed: linear in the atlas size, not in the faces' areas.
    """
    Ht, Wt = shape[0], shape[1]
    fu = uv[faces]  # [F, 3, 2]
    lo = np.clip(np.floor(fu.min(1) - grow).astype(int), 0, [Wt, Ht])  # [F, 2]
    hi = np.clip(np.ceil(fu.max(1) + grow).astype(int), 0, [Wt, Ht])
    diff = np.zeros((Ht + 1, Wt + 1), np.int64)
    np.add.at(diff, (lo[:, 1], lo[:, 0]), 1)
    np.add.at(diff, (lo[:, 1], hi[:, 0]), -1)
    np.add.at(diff, (hi[:, 1], lo[:, 0]), -1)
    np.add.at(diff, (hi[:, 1], hi[:, 0]), 1)
    return diff.cumsum(0).cumsum(1)[:-1, :-1] > 0
