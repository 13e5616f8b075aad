"""The preview's back, hidden surfaces, hands and feet (issue 12): what the person looks like from behind.

- From behind (135-225 degrees) MediaPipe's face detector finds no face along a 48-view orbit; from the
  front (within 30 degrees) it finds one in every frame.
- The back panel is a low-detail continuation of the front: the front's small details (the street photo's
  logo and drawstrings, the plaid's lines) leave no high-frequency trace in it.
- Where a limb hides the torso in the photo, neither the under-layer nor the back shows the photo's
  background colour there.
"""

from __future__ import annotations

import numpy as np
import pytest

NAMES = ("photo_woman_street.jpg", "photo_woman_studio.jpg")


def _panels(subject, model):
    """(front, under-layer, back) panels of the atlas, each [H, W, 3] float32."""
    W = subject.mask.shape[1]
    t = model.texture
    return t[:, :W], t[:, W : 2 * W], t[:, 2 * W :]


def _high_pass(img: np.ndarray, sigma: float = 3.0) -> np.ndarray:
    """[H, W] colour distance of each pixel to its Gaussian-blurred surroundings (fine detail)."""
    from scipy import ndimage

    blur = np.stack([ndimage.gaussian_filter(img[..., k], sigma) for k in range(3)], -1)
    return np.linalg.norm(img - blur, axis=-1)


def _deep(subject) -> np.ndarray:
    """[H, W] bool: mask pixels at least 1% of the height inside the outline."""
    from scipy import ndimage

    core = subject.mask > 0.5
    return ndimage.distance_transform_edt(core) > 0.01 * core.shape[0]


# ----------------------------------------------------------------------------------------------
# the back of the head: no face from behind, a face from the front (48 views)
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", NAMES)
def test_no_face_from_behind_at_48_views(real, name):
    """13 frames from behind and 9 from the front (7.5 degrees apart); on main the studio photo showed a face
    in 1 of the back frames (hair on the shoulder copied to the back; texture.front_hair). Only those frames
    go to MediaPipe."""
    import mediapipe as mp
    from test_preview_look import render_orbit

    s, model = real[name]
    frames, _, az = render_orbit(s, model, views=48)
    front = (az <= 30) | (az >= 330)
    back = (az >= 135) & (az <= 225)
    assert front.sum() == 9 and back.sum() == 13
    with mp.solutions.face_detection.FaceDetection(model_selection=1, min_detection_confidence=0.5) as F:
        found = {
            int(i): bool(F.process(np.ascontiguousarray(frames[i])).detections) for i in np.nonzero(front | back)[0]
        }
    in_front = np.mean([found[i] for i in np.nonzero(front)[0]])
    behind = np.mean([found[i] for i in np.nonzero(back)[0]])
    assert in_front >= 0.9, found
    assert behind <= 0.02, found


# ----------------------------------------------------------------------------------------------
# the back of the clothes: low detail, no front-only features
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", NAMES)
def test_back_panel_has_no_fine_detail(real, name):
    """Fine detail (colour distance to a 3 px blur), 99th percentile inside the person: the front's is
    0.27 (street) and 0.58 (studio, the plaid); the mirrored front on main kept 0.24 and 0.55 on the back."""
    s, model = real[name]
    front, _, back = _panels(s, model)
    deep = _deep(s)
    f, b = np.percentile(_high_pass(front)[deep], 99), np.percentile(_high_pass(back)[deep], 99)
    assert f > 0.2  # the front does have detail
    assert b < 0.15 * f, (f, b)


def test_back_panel_drops_the_logo_and_drawstrings(real):
    """The street photo's trousers carry a red logo and white drawstrings (front only): on the back panel
    those pixels take the trousers' own colour."""
    s, model = real["photo_woman_street.jpg"]
    front, _, back = _panels(s, model)
    deep = _deep(s)
    H = s.mask.shape[0]
    rows = np.nonzero(deep.any(1))[0]
    lower = np.zeros_like(deep)
    lower[rows[0] + int(0.4 * (rows[-1] - rows[0])) :] = True  # below the waist's top (trousers, shoes)
    red = deep & lower & (front[..., 0] - front[..., 1] > 0.22)  # the logo's red (skin: about 0.16)
    white = deep & lower & (front.min(-1) > 0.75)
    assert red.sum() > 100
    ys, xs = np.nonzero(red)
    box = np.zeros_like(deep)
    box[ys.min() - 10 : ys.max() + 10, xs.min() - 10 : xs.max() + 10] = True  # the logo with its white letters
    around = np.zeros_like(deep)
    pad = int(0.03 * H)
    around[ys.min() - pad : ys.max() + pad, xs.min() - pad : xs.max() + pad] = True
    cloth = np.median(front[around & deep & ~box], axis=0)  # [3] the trousers around the logo
    logo = box & deep & (np.linalg.norm(front - cloth, axis=-1) > 0.25)
    assert logo.sum() > 150  # the logo is there on the front
    assert np.linalg.norm(back[logo] - cloth, axis=-1).max() < 0.15, (back[logo].mean(0), cloth)
    # drawstrings and other white front details (the shoes are white on both sides: below the trousers)
    shoes = np.zeros_like(deep)
    shoes[rows[-1] - int(0.1 * (rows[-1] - rows[0])) :] = True
    strings = white & ~shoes
    assert strings.sum() > 50
    assert (back[strings].min(-1) > 0.75).mean() < 0.02


# ----------------------------------------------------------------------------------------------
# hidden surfaces: the hidden part's own cloth, never the photo's background
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", NAMES)
def test_torso_behind_and_under_limbs_is_never_background(real, name):
    """Torso pixels of the back panel, and every repainted pixel of the under-layer panel, lie well away
    from the photo's background colour (the studio's grey showed through on main: 0.8% of the back within
    0.08 of it)."""
    from scipy import ndimage

    from hvg_cli.backends.preview import mesh as M
    from hvg_cli.backends.preview.texture import body_regions, filled_labels

    s, model = real[name]
    _, under, back = _panels(s, model)
    core = s.mask > 0.5
    H, W = core.shape
    img = s.image.astype(np.float32) / 255.0
    ring = ndimage.binary_dilation(core, iterations=int(0.05 * H)) & ~ndimage.binary_dilation(
        core, iterations=int(0.01 * H)
    )
    bg = np.median(img[ring], axis=0)  # [3] the background around the person
    maps = M.body_maps_at_photo(s, W, H)
    lab_front = filled_labels(maps["label_near"], core)
    behind = np.where(maps["label_far"] >= 0, maps["label_far"], lab_front)
    torso = core & (body_regions()[np.maximum(behind, 0)] == 0)
    hidden = M.occluded_pixels(maps) & core
    assert torso.sum() > 1000
    assert np.linalg.norm(back[torso] - bg, axis=-1).min() > 0.1
    if hidden.any():
        assert np.linalg.norm(under[hidden] - bg, axis=-1).min() > 0.1


def test_uncover_takes_the_hidden_parts_own_colour():
    """An arm (skin) across a torso (blue shirt) beside a grey background: the repainted pixels are blue,
    not the arm's skin, not the background, not a mean of the arm's sleeve and hand."""
    from hvg_cli.backends.preview.texture import uncover
    from hvg_cli.bonemap.parts import PART_INDEX

    H, W = 120, 100
    img = np.full((H, W, 3), 0.85, np.float32)  # grey background
    front = np.full((H, W), -1)
    front[20:110, 30:70] = PART_INDEX["chest"]
    img[20:110, 30:70] = (0.1, 0.2, 0.8)  # the shirt
    front[40:60, 10:90] = PART_INDEX["left_forearm"]
    img[40:60, 10:90] = (0.9, 0.7, 0.6)  # the arm across it
    behind = front.copy()
    behind[40:60, 30:70] = PART_INDEX["chest"]
    hidden = np.zeros((H, W), bool)
    hidden[40:60, 30:70] = True
    known = (front >= 0) & ~hidden
    out = uncover(img, known, hidden, front, behind)
    np.testing.assert_allclose(out[hidden].mean(0), (0.1, 0.2, 0.8), atol=0.03)
    np.testing.assert_array_equal(out[~hidden], img[~hidden])


# ----------------------------------------------------------------------------------------------
# hands: the photo's own hand pixels, fingers included, in a hand's shape
# ----------------------------------------------------------------------------------------------
def hand_figures(subject) -> dict:
    """Per seen hand of the photo: what the mesh's hand parts (palm + fingers) cover in the photo.

    skin:  fraction of the hand-labelled mask pixels whose chromaticity lies within 0.08 of the photo's
           colour around the knuckle landmarks (the back of the hand)
    reach: how far the labelled hand extends from the wrist along the wrist -> knuckles axis, in
           wrist -> knuckle lengths (fingertips lie about 2 lengths out)
    elong: ratio of the region's principal axes (a hand with fingers is elongated; a disc is 1)
    """
    from hvg_cli.backends.preview import mesh as M
    from hvg_cli.bonemap.parts import PART_INDEX

    core = subject.mask > 0.5
    H, W = core.shape
    maps = M.body_maps_at_photo(subject, W, H)
    img = subject.image.astype(np.float64) / 255.0
    chroma = img[..., :2] / np.maximum(img.sum(-1, keepdims=True), 1e-6)
    out = {}
    for side, (w, p, i, _) in (("left", (15, 17, 19, 21)), ("right", (16, 18, 20, 22))):
        if np.asarray(subject.visibility)[[w, p, i]].mean() < 0.5:
            continue
        lm = np.asarray(subject.landmarks, np.float64)
        wrist, knuckles = lm[w], (lm[p] + lm[i]) / 2
        L = np.linalg.norm(knuckles - wrist)
        ys, xs = np.mgrid[0:H, 0:W] + 0.5
        ref = np.median(chroma[core & (np.hypot(xs - knuckles[0], ys - knuckles[1]) < 0.3 * L)], axis=0)
        hand = core & np.isin(maps["label_near"], [PART_INDEX[f"{side}_palm"], PART_INDEX[f"{side}_fingers"]])
        pts = np.stack([xs[hand], ys[hand]], -1)  # [n, 2]
        axis = (knuckles - wrist) / L
        ev = np.linalg.eigvalsh(np.cov((pts - pts.mean(0)).T))
        out[side] = dict(
            skin=float((np.linalg.norm(chroma[hand] - ref, axis=-1) < 0.08).mean()),
            reach=float(np.percentile((pts - wrist) @ axis, 98) / L),
            elong=float(np.sqrt(ev[1] / max(ev[0], 1e-9))),
            area=float(len(pts) / L**2),
        )
    return out


def test_hands_keep_the_photos_hand_pixels(real):
    """The studio photo's two hands (one on the hip, one hanging, fingers on the shorts and free): the hand parts
    are the photo's skin, reach the fingertips and are hand-shaped. On main the coarse ellipsoids, trimmed to the
    landmarks, gave left skin 0.06 reach 1.32 area 0.65 (a sliver over the wrist), right skin 0.96 reach 1.56
    area 0.85 (the fingers went to the shorts); here 0.63 / 1.89 / 1.28 and 0.88 / 1.95 / 2.66 (the hand's
    3-pixel fringe, half skin and half what lies behind, goes with the hand on purpose: hence not 1.0)."""
    s, _ = real["photo_woman_studio.jpg"]
    fig = hand_figures(s)
    assert set(fig) == {"left", "right"}, fig
    for side, f in fig.items():
        assert f["skin"] >= 0.55, (side, f)
        assert f["reach"] >= 1.7, (side, f)
        assert f["elong"] >= 1.2 and f["area"] >= 0.9, (side, f)


def test_neckline_is_front_only():
    """Skin-coloured torso pixels (a V-neck) are dropped from what the back continues; a torso that is mostly
    skin keeps it (a bare back is as likely as a bare front)."""
    from hvg_cli.backends.preview.texture import neckline

    H, W = 100, 80
    img = np.zeros((H, W, 3), np.float32)
    img[:] = (0.2, 0.3, 0.8)  # the shirt
    img[10:30, 30:50] = (0.9, 0.7, 0.6)  # the face
    img[35:50, 36:44] = (0.85, 0.66, 0.57)  # a V-neck, the face's skin a little darker
    region = np.full((H, W), 0)
    region[:32] = 1  # head
    known = np.ones((H, W), bool)
    lm = np.zeros((33, 2))
    lm[0], lm[2], lm[5] = (40, 20), (45, 15), (35, 15)
    vis = np.ones(33)
    out = neckline(img, known, region, lm, vis)
    assert out[35:50, 36:44].all() and out.sum() == 15 * 8
    img[32:, :] = (0.85, 0.66, 0.57)  # a bare torso
    assert not neckline(img, known, region, lm, vis).any()
    assert not neckline(img, known, region, lm, np.zeros(33)).any()  # no face seen: nothing


def test_front_hair_marks_hair_coloured_body_pixels_only():
    """Hair-coloured torso pixels (a lock on the shoulder) are front-only; the torso's cloth and the head are
    not; with the face unseen nothing is marked."""
    from hvg_cli.backends.preview.texture import front_hair
    from hvg_cli.bonemap.parts import PART_INDEX

    H = W = 60
    hair, shirt = np.array([0.6, 0.35, 0.2], np.float32), np.array([0.3, 0.4, 0.7], np.float32)
    img = np.broadcast_to(shirt, (H, W, 3)).copy()
    img[:20] = hair  # the head: hair above the eyes
    img[25:40, 10:16] = hair  # a lock on the shoulder
    label = np.full((H, W), PART_INDEX["chest"], np.int64)
    label[:20] = PART_INDEX["head"]
    region = np.where(label == PART_INDEX["head"], 1, 0)
    known = np.ones((H, W), bool)
    lm = np.zeros((33, 2))
    lm[[0, 2, 5]] = [[30, 15], [26, 12], [34, 12]]
    vis = np.ones(33)
    out = front_hair(img, known, region, label, lm, vis)
    assert out[25:40, 10:16].all() and out.sum() == 15 * 6
    assert not front_hair(img, known, region, label, lm, np.zeros(33)).any()


def test_used_texels_and_free_block_match_a_plain_loop():
    """texture.used_texels (difference array) against marking each face's grown uv box in a loop, and
    free_block's answer is the first free block in row-major order of a plain scan."""
    from hvg_cli.backends.preview.texture import free_block, used_texels

    rng = np.random.default_rng(0)
    Ht, Wt = 40, 60
    uv = rng.uniform([-3, -3], [Wt + 3, Ht + 3], (30, 2))  # some outside the atlas (clipped)
    faces = rng.integers(0, 30, (12, 3))
    uv[faces[:6]] = uv[faces[:6]] * 0.1 + np.array([5.0, 5.0])  # small faces too
    got = used_texels(uv, faces, (Ht, Wt, 3), grow=2.5)
    want = np.zeros((Ht, Wt), bool)
    for f in faces:
        lo = np.clip(np.floor(uv[f].min(0) - 2.5).astype(int), 0, [Wt, Ht])
        hi = np.clip(np.ceil(uv[f].max(0) + 2.5).astype(int), 0, [Wt, Ht])
        want[lo[1] : hi[1], lo[0] : hi[0]] = True
    np.testing.assert_array_equal(got, want)
    for h, w in ((3, 4), (8, 8), (Ht, 1)):
        scan = [(r, c) for r in range(Ht - h + 1) for c in range(Wt - w + 1) if not got[r : r + h, c : c + w].any()]
        assert free_block(got, h, w) == (scan[0] if scan else None), (h, w)
    assert free_block(np.zeros((4, 4), bool), 5, 1) is None
