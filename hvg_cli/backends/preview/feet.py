"""Feet as solid shoes: a closed shoe per foot on the foot and toes bones, fitted to the photo's foot.

The photo mesh (mesh.py) lifts a foot from its front view only: a foot pointing at the camera is a short
blob in the photo, its length lies along the view, and the lift makes it a lens that reads as a white cloud
from the side and a skin stub from behind. Here each foot the photo shows is replaced by a shoe:

1. The foot's pixels (`foot_regions`): the person's mask below a line a little above the ankle landmark
   (FOOT_CUT of the foot's image height), of that leg's shin, foot and toe parts.
2. The shoe (`shoe_points`): a closed surface over (s, theta), s from the heel (0) to the toe tip (1), theta
   round the foot's long axis: rounded-box cross-sections (superellipse, SHOE_ROUND) on a flat sole, high
   at the ankle (the collar, up to the region's top) and lower at the toes, rounded at both ends from the
   top (a blunt toe box and heel counter over a sole flat nearly to the tips). It sits in
   the foot's frame (ankle over the heel, forward along the ankle -> ball bone on the ground, y up), sized
   from the bone, then fitted in the photo camera's image plane: its box stretched onto the region's box,
   then each image row and the bottom of each column warped onto the region's outline (from the front at
   rest it covers the photo's foot). Points are moved along depth-kept rays, except that a point the fit
   would take below the ground slides along its photo ray instead (the foot nearer the camera).
   The region it fits leaves out the photo's background inside the mask (`ground_like`: colours of the
   background round the foot, joined to the region's outline: a sneaker's cast shadow on the ground, the
   studio backdrop between a sandal's straps at the edge); those pixels give the shoe no colour either.
3. Colours (`build_shoe`, a texture panel per foot over (s, theta)): what the photo camera sees of the shoe
   (a z-buffer test, off the mask's soft edge unless it faces the camera) takes the photo's pixel it
   projects to; elsewhere the shoe's own colours, faded in by PHOTO_FACING: the foot region's pixels (off
   its soft edge, the rest filled from them) wrapped round the shoe as mirrored tiles of the front view (a
   sandal's straps over skin, a sneaker's white and grey), rows by height above the sole; the sole's band
   takes the colour of the shoe's own lowest pixels (never the ground's shadow below them). Those own
   colours are shaded by a fixed soft light in the foot's frame (top lighter, sides and heel darker, the
   sole's edge darker still) so the shoe reads as a solid.
4. Faces whose three corners the photo saw fully sample the photo panel directly (at rest the front is the
   photo, as the photo mesh was); the rest sample the shoe's panel.
5. Skinning: the heel half follows the ankle, the toes the foot joint, blended over SHOE_BLEND of s.

`attach_feet` drops the photo mesh's faces inside the foot regions and appends the shoes (each panel put
into a free block of the texture atlas, so the atlas keeps its size when one is found). Everything is in the photo camera's pixels at the mask's size.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .mesh import RIM_BAND, photo_landmarks
from .texture import free_block, used_texels

FOOT_CUT = 0.25  # the region starts this fraction of the foot's image height (ankle -> sole) above the ankle
MIN_FOOT_PX = 40  # fewer region pixels than this: that foot keeps the photo mesh
SHOE_ROWS = 41  # mesh rows along the foot (heel tip to toe tip)
SHOE_COLS = 48  # mesh columns round the foot
TEXELS = 3  # texels per mesh step in the shoe's panel
SHOE_ROUND = 3.0  # superellipse exponent of the cross-section (2: ellipse; larger: boxier)
HEEL_BACK = 0.45  # heel behind the ankle, in ankle -> ball lengths (horizontal)
TOE_FRONT = 1.4  # toe tip ahead of the ankle, in ankle -> ball lengths
SHOE_WIDTH = 0.62  # widest width, in ankle -> ball lengths
TOE_HEIGHT = 0.75  # height at the toes, fraction of the collar's height
SOLE_FLAT = 0.35  # the ends' rounding of the shoe's lower half, as a power of the upper half's (1: alike)
SHOE_BLEND = 0.08  # s over which the weights pass from the ankle to the foot joint at the ball
PHOTO_FACING = (0.0, 0.15)  # cos(normal, towards the photo camera): photo colour fades in between these
SEEN_EPS = 0.004  # metres: a point this close behind the shoe's nearest surface in the photo counts as seen
SOLE_BAND = 0.08  # fraction of the collar height that is the sole's band
CROP_INSET = 3  # px: the own colours come from the foot region this far inside its outline
CROP_SPAN = (0.1, 0.9)  # the columns of the foot's crop that are tiled round the shoe
LIGHT = (0.25, 0.9, 0.35)  # the fixed light in the foot's frame (x lateral out, y up, z forward)
AMBIENT = 0.42  # shade = AMBIENT + (1 - AMBIENT) * (0.5 + 0.5 n.l): top ~1, sides ~0.7, heel ~0.6, sole ~0.45
SOLE_EDGE_DARK = 0.8  # the sole's band is this much darker again
FIT_SCALE = (0.5, 2.0)  # bounds of the image-plane stretch that fits the shoe to the foot region
DROP_GROW = 3  # px: the foot regions grow by this (sideways and down) when the photo mesh's foot is dropped
ISLAND_FACES = 200  # pieces of the photo mesh left with fewer faces than this, all at the foot, go too
SLIDE_MAX = 0.12  # metres: the most a point of the shoe slides along its photo ray in the fit
COLLAR_MAX = 2.2  # the collar's most height, in the ankle joint's heights above the sole
FIT_OVERLAP = 0.08  # the shoe's top reaches this fraction of the foot region's height above the region
GROUND_TAU = 0.045  # RGB distance (0..1) to the nearest photo background colour round the foot: "ground-like"
GROUND_RING = 0.4  # the background round the foot: outside the mask within this fraction of the foot's height
SOLE_ROWS = 8  # the sole's colour: the median of the shoe's own pixels in its lowest 1/SOLE_ROWS of the crop
SOLE_GREY = (0.16, 0.16, 0.17)  # the sole's colour when the shoe shows too few of its own pixels
WARP_BINS = 1.0  # pixels per bin of the outline warps

_SIDES = ("left", "right")
_MP_FOOT = {"left": (27, 29, 31), "right": (28, 30, 32)}  # MediaPipe ankle, heel, foot index


@dataclass(frozen=True, eq=False)
class Shoe:
    """One foot's shoe, ready to join the skinned mesh (photo pose, world metres)."""

    verts: np.ndarray  # [N, 3] world metres
    faces: np.ndarray  # [F, 3] int64, outward winding
    uv: np.ndarray  # [N, 2] texture px: photo px for photo faces' vertices, else px in `panel` (offset later)
    on_panel: np.ndarray  # [N] bool: the uv is in the shoe's own panel (else in the photo panel)
    joint_index: np.ndarray  # [N, 2] int SMPL joints (ankle, foot)
    joint_weight: np.ndarray  # [N, 2] float, rows sum to 1
    labels: np.ndarray  # [N] int bonemap part (side_foot or side_toes)
    panel: np.ndarray  # [h, w, 3] float32 the shoe's own texture panel


def foot_regions(mask: np.ndarray, label_near: np.ndarray, landmarks: np.ndarray, visibility: np.ndarray) -> np.ndarray:
    """[H, W] int8: 1 on the left foot's pixels, 2 on the right's, 0 elsewhere (see the module doc).

    mask: [H, W] float; label_near: [H, W] bonemap part per pixel (-1 empty); landmarks: [33, 2] px at this
    size; visibility: [33]. A foot whose ankle, heel or toe landmark is unseen (visibility < 0.5) has none.
    """
    from hvg_cli.bonemap.parts import PART_INDEX

    from .texture import filled_labels

    core = np.asarray(mask) > 0.5
    H, W = core.shape
    lab = filled_labels(np.asarray(label_near), core)
    lm = np.asarray(landmarks, np.float64)
    out = np.zeros((H, W), np.int8)
    rows = np.arange(H)[:, None] + 0.5
    for k, side in enumerate(_SIDES):
        ankle, heel, toe = _MP_FOOT[side]
        if float(np.min(np.asarray(visibility)[[ankle, heel, toe]])) < 0.5:
            continue
        bottom = max(lm[heel, 1], lm[toe, 1])
        height = bottom - lm[ankle, 1]
        if height < 2.0:
            continue
        cut = lm[ankle, 1] - FOOT_CUT * height
        parts = [PART_INDEX[f"{side}_{p}"] for p in ("shin", "foot", "toes")]
        region = core & np.isin(lab, parts) & (rows >= cut)
        if region.sum() >= MIN_FOOT_PX:
            out[region & (out == 0)] = k + 1
    return out


def ground_like(image: np.ndarray, mask: np.ndarray, region: np.ndarray) -> np.ndarray:
    """[H, W] bool: the pixels of a foot region that are the photo's background, not the shoe: within
    GROUND_TAU (RGB distance) of a background colour round the foot (outside the mask, within GROUND_RING of
    the foot's height, not above the region's top) and joined to the region's outline through such pixels
    (the ground and its cast shadow inside the mask beside a sneaker, the studio backdrop between straps at
    the edge; a grey panel inside the shoe stays the shoe's even where it matches the ground's colour).

    image: [H, W, 3] float 0..1 the photo; mask: [H, W] float; region: [H, W] bool.
    """
    from scipy import ndimage
    from scipy.spatial import cKDTree

    H, W = region.shape
    out = np.zeros((H, W), bool)
    ys, _ = np.nonzero(region)
    if len(ys) == 0:
        return out
    reach = max(2, int(GROUND_RING * (ys.max() + 1 - ys.min())))
    ring = ndimage.binary_dilation(region, iterations=reach) & (np.asarray(mask) < 0.05)
    ring &= np.arange(H)[:, None] >= ys.min()
    samples = np.asarray(image, np.float64)[ring]  # [n, 3]
    if len(samples) < MIN_FOOT_PX:
        return out
    samples = samples[:: max(1, len(samples) // 4000)]
    d, _ = cKDTree(samples).query(np.asarray(image, np.float64)[region])  # [N] to the nearest background colour
    like = np.zeros((H, W), bool)
    like[region] = d < GROUND_TAU
    lab, _ = ndimage.label(like)
    edge = like & ndimage.binary_dilation(~region)  # on the region's outline
    keep = np.unique(lab[edge])
    return np.isin(lab, keep[keep > 0])


def _shoe_pixels(region: np.ndarray, ground: np.ndarray | None) -> np.ndarray:
    """The region without its ground-like pixels, cleaned (its largest piece, holes filled); the region
    itself when too little is left. [H, W] bool"""
    from scipy import ndimage

    if ground is None or not (ground & region).any():
        return region
    lab, n = ndimage.label(region & ~ground)
    if n == 0:
        return region
    own = lab == 1 + int(np.argmax(np.bincount(lab.ravel())[1:]))
    own = ndimage.binary_fill_holes(own)
    return own if own.sum() >= max(MIN_FOOT_PX, 0.5 * region.sum()) else region


def _smooth01(x: np.ndarray, lo: float, hi: float) -> np.ndarray:
    t = np.clip((x - lo) / max(hi - lo, 1e-9), 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def shoe_points(s: np.ndarray, theta: np.ndarray, length: float, width: float, collar: float) -> np.ndarray:
    """Points of the shoe in its own frame: x lateral, y up from the sole, z forward from the heel tip.

    s: [...] in [0, 1] heel tip -> toe tip; theta: [...] radians round the long axis (0: +x, pi/2: top);
    length, width, collar (height at the ankle): metres. returns [..., 3] metres
    """
    s = np.asarray(s, np.float64)
    # the top line: the collar over the heel and ankle, down the instep to the toes' height
    top = collar * (1.0 - (1.0 - TOE_HEIGHT) * _smooth01(s, 0.3, 0.72))
    top = top * (1.0 - 0.05 * _smooth01(0.18 - s, 0.0, 0.18))  # the heel's back a little lower
    # the width: narrower at the heel, widest at the ball
    half_w = 0.5 * width * (0.72 + 0.28 * _smooth01(s, 0.1, 0.62))
    # both ends rounded (a superellipse along the foot: the heel boxier than the toe)
    e = np.where(s < 0.5, 4.0, 2.6)
    r = np.clip(1.0 - np.abs(2.0 * s - 1.0) ** e, 0.0, 1.0) ** (1.0 / e)
    c, sn = np.cos(theta), np.sin(theta)
    q = 2.0 / SHOE_ROUND
    cx = np.sign(c) * np.abs(c) ** q
    cy = np.sign(sn) * np.abs(sn) ** q
    x = half_w * r * cx
    # the lower half rounds less at the ends: the sole stays flat nearly to the tips, the toe box and the
    # heel counter round over from the top (a blunt end, not a point at mid height: "flippers" from the side)
    rr = np.where(cy < 0, r**SOLE_FLAT, r)
    y = 0.5 * top * (1.0 + rr * cy)
    z = s * length
    return np.stack([x, y, z], -1)


def _normals(P: np.ndarray) -> np.ndarray:
    """[R, C+1, 3] grid (last column = first) -> [R, C+1, 3] unit normals (central differences, wrapped)."""
    Pc = P[:, :-1]  # [R, C, 3]
    ds = np.gradient(Pc, axis=0)
    dt = np.roll(Pc, -1, axis=1) - np.roll(Pc, 1, axis=1)
    n = np.cross(dt, ds)
    ln = np.linalg.norm(n, axis=-1, keepdims=True)
    n = n / np.maximum(ln, 1e-12)
    return np.concatenate([n, n[:, :1]], 1)


def build_shoe(
    side: str,
    region: np.ndarray,
    photo: np.ndarray,
    joints: np.ndarray,
    K: np.ndarray,
    world_to_cam: np.ndarray,
    inside_px: np.ndarray | None = None,
    ground: np.ndarray | None = None,
) -> Shoe | None:
    """The shoe of one foot (module doc, steps 2-5).

    region: [H, W] bool the foot's pixels; photo: [H, W, 3] float32 the person's colours (extended past the
    mask); joints: [24, 3] world metres in the photo pose; K: [3, 3] the photo camera at this size;
    world_to_cam: [4, 4]; inside_px: [H, W] each pixel's distance inside the person's mask (px), or None;
    ground: [H, W] bool the region's ground-like pixels (`ground_like`), or None: the shoe is fitted to the
    region without them, and neither the photo's colours it shows nor its own colours come from them.
    returns None when the foot is too small to fit.
    """
    from hvg_cli.bonemap.parts import PART_INDEX
    from hvg_cli.core.types import SMPL_JOINT_NAMES

    from .background import push_pull_fill

    H, W = region.shape
    if len(np.nonzero(region)[0]) < MIN_FOOT_PX:
        return None
    region = _shoe_pixels(region, ground)  # the shoe's own pixels (the ground and its shadow left out)
    ys, xs = np.nonzero(region)
    ja, jf = SMPL_JOINT_NAMES.index(f"{side}_ankle"), SMPL_JOINT_NAMES.index(f"{side}_foot")
    A, B = np.asarray(joints[ja], np.float64), np.asarray(joints[jf], np.float64)
    # 1. The foot's frame: forward along the ankle -> ball bone on the ground, y up, x to the side
    fwd = np.array([B[0] - A[0], 0.0, B[2] - A[2]])
    dh = float(np.linalg.norm(fwd))
    if dh < 1e-3:
        return None
    fwd /= dh
    up = np.array([0.0, 1.0, 0.0])
    lat = np.cross(up, fwd)  # [3] x of the shoe's frame (its sign does not matter: the shoe is symmetric)
    sole_y = min(float(B[1]), float(A[1]) - 0.04)
    # the collar reaches the region's top (the cut above the ankle), found at the ankle's depth in the photo
    Rc, tc = world_to_cam[:3, :3], world_to_cam[:3, 3]
    a_cam = Rc @ A + tc  # [3] the ankle in the photo camera
    top_px = float(ys.min()) - max(2.0, FIT_OVERLAP * float(ys.max() + 1 - ys.min()))
    a_u = K[0, 0] * a_cam[0] / a_cam[2] + K[0, 2]
    top_cam = np.array([(a_u - K[0, 2]) * a_cam[2] / K[0, 0], (top_px - K[1, 2]) * a_cam[2] / K[1, 1], a_cam[2]])
    top_y = float((Rc.T @ (top_cam - tc))[1])  # world height of the region's top above the ankle
    ankle_h = float(A[1] - sole_y)
    collar = float(np.clip(top_y - sole_y, 1.15 * ankle_h, COLLAR_MAX * ankle_h))
    length = (HEEL_BACK + TOE_FRONT) * dh
    origin = np.array([A[0], sole_y, A[2]]) - HEEL_BACK * dh * fwd  # the heel tip on the sole
    R = np.stack([lat, up, fwd], 1)  # [3, 3] columns: the frame's axes in world

    # 2. The dense surface (texel grid) in the frame and in world: [Rt, Ct + 1, 3]
    Rt, Ct = (SHOE_ROWS - 1) * TEXELS + 1, SHOE_COLS * TEXELS
    s = np.linspace(0.0, 1.0, Rt)
    th = np.linspace(0.0, 2.0 * np.pi, Ct + 1)
    S, TH = np.meshgrid(s, th, indexing="ij")
    local = shoe_points(S, TH, length, SHOE_WIDTH * dh, collar)  # [Rt, Ct+1, 3]
    world = local @ R.T + origin
    # 3. Fit: stretch in the photo camera's image plane (depth kept) so the outline's box is the region's box
    #    (its top FIT_OVERLAP of the foot's height above the region's, over the cut's seam), then warp each
    #    row and the bottom of each column onto the region's own outline
    cam = world @ Rc.T + tc  # [Rt, Ct+1, 3]
    z = cam[..., 2]
    if (z <= 1e-3).any():
        return None
    u = K[0, 0] * cam[..., 0] / z + K[0, 2]
    v = K[1, 1] * cam[..., 1] / z + K[1, 2]
    box_t = np.array([u.min(), v.min(), u.max(), v.max()])
    box_m = np.array([xs.min(), ys.min(), xs.max() + 1.0, ys.max() + 1.0])
    box_m[1] -= max(2.0, FIT_OVERLAP * (box_m[3] - box_m[1]))
    sx = np.clip((box_m[2] - box_m[0]) / max(box_t[2] - box_t[0], 1e-6), *FIT_SCALE)
    sy = np.clip((box_m[3] - box_m[1]) / max(box_t[3] - box_t[1], 1e-6), *FIT_SCALE)
    u = (box_m[0] + box_m[2]) / 2 + (u - (box_t[0] + box_t[2]) / 2) * sx
    v = (box_m[1] + box_m[3]) / 2 + (v - (box_t[1] + box_t[3]) / 2) * sy
    u = _warp_rows(u, v, region)
    v = _warp_bottom(u, v, region, top=box_m[1])
    u = _warp_rows(u, v, region)
    cam = np.stack([(u - K[0, 2]) * z / K[0, 0], (v - K[1, 2]) * z / K[1, 1], z], -1)
    world_a = (cam - tc) @ Rc  # back to world at the same depth: [Rt, Ct+1, 3]
    # a point the stretch took below half its height above the sole slides along its photo ray (nearer the
    # camera) to that height instead: the photo's foot lower in the image than the bone's is a foot nearer
    # the camera, not one sunk into the ground (the same pixel at rest either way)
    eye = -Rc.T @ tc  # the photo camera's centre, world
    floor_y = sole_y + 0.5 * (world[..., 1] - sole_y)  # [Rt, Ct+1]
    ray = world_a - eye
    t = (floor_y - eye[1]) / np.where(np.abs(ray[..., 1]) > 1e-9, ray[..., 1], 1e-9)
    slid = eye + t[..., None] * ray
    move = slid - world_a
    move *= np.minimum(1.0, SLIDE_MAX / np.maximum(np.linalg.norm(move, axis=-1, keepdims=True), 1e-12))
    world = np.where((world_a[..., 1] < floor_y)[..., None] & (t > 0)[..., None], world_a + move, world_a)
    normal = _normals(world)  # world
    centre = world.reshape(-1, 3).mean(0)
    if float(((world - centre) * normal).sum()) < 0:  # outward
        normal = -normal
    to_eye = eye - world
    to_eye /= np.linalg.norm(to_eye, axis=-1, keepdims=True)
    facing = (normal * to_eye).sum(-1)  # [Rt, Ct+1] cos
    # what the photo camera sees of the shoe itself takes the photo (at rest the front is the photo wherever
    # it shows, grazing parts included); hidden parts fade in by how squarely they face the camera
    # (but not the mask's soft edge where the shoe turns away: the photo's background mixes in there, a bright
    # line seen from the side; the front sheet's rim keeps those pixels nearly edge-on for the same reason)
    seen_px = _visible_from_photo(world, K, world_to_cam, H, W)  # [Rt, Ct+1] bool
    pj = np.clip(np.floor(K[0, 0] * cam[..., 0] / z + K[0, 2]).astype(int), 0, W - 1)
    pi = np.clip(np.floor(K[1, 1] * cam[..., 1] / z + K[1, 2]).astype(int), 0, H - 1)
    if inside_px is not None:
        seen_px &= (inside_px[pi, pj] > max(2.0, RIM_BAND * H)) | (facing >= PHOTO_FACING[1])
    if ground is not None:  # the photo's ground or shadow is not the shoe's colour (a dark band when it tilts)
        seen_px &= ~ground[pi, pj]
    w_photo = np.where(seen_px, 1.0, _smooth01(facing, *PHOTO_FACING))

    # 4. Own colours: the region's crop wrapped round the shoe as mirrored tiles, rows by height
    y0, y1 = int(box_m[1]), int(box_m[3])
    x0, x1 = int(box_m[0]), int(box_m[2])
    # only pixels off the mask's soft edge (it mixes in the photo's background: a white rim tiled round the
    # shoe reads as a metallic sheen), the rest filled from them
    from scipy import ndimage

    inner = ndimage.binary_erosion(region, iterations=CROP_INSET)
    if ground is not None:
        inner &= ~ndimage.binary_dilation(ground, iterations=CROP_INSET)
    if inner[y0:y1, x0:x1].sum() < MIN_FOOT_PX // 2:
        inner = region
    crop = push_pull_fill(photo[y0:y1, x0:x1], inner[y0:y1, x0:x1])  # [h, w, 3] the region's colours only
    ch, cw = crop.shape[:2]
    n_local = normal @ R  # normals in the shoe's frame
    eta = np.clip(local[..., 1] / max(collar, 1e-6), 0.0, 1.0)  # height above the sole, 0..1
    zc = local[..., 2] - 0.5 * length
    phi = np.arctan2(local[..., 0] / (0.5 * SHOE_WIDTH * dh), zc / (0.5 * length))  # 0 at the toe
    perimeter = np.pi * (0.5 * SHOE_WIDTH * dh + 0.5 * length)  # metres round the foot (about)
    # the crop spans the shoe's width as the fit stretched it (sx): one tile is that many metres of perimeter
    t = phi / (2 * np.pi) * perimeter / (SHOE_WIDTH * dh * sx) + 0.5  # crop widths from the toe
    tri = 1.0 - np.abs(np.mod(t, 2.0) - 1.0)  # mirrored tiling, 0..1 across the crop
    pu = x0 + (CROP_SPAN[0] + tri * (CROP_SPAN[1] - CROP_SPAN[0])) * (cw - 1) + 0.5  # the crop's inner columns
    pv = y0 + (1.0 - eta) * (ch - 1) + 0.5
    own = _bilinear(photo, pu, pv, crop_box=(x0, y0, crop))
    # the sole: the shoe's own lowest pixels (a sneaker's white midsole, a sandal's black sole), never the
    # ground's shadow (the region's bottom rows held it: a dark band across the front when the foot tilts)
    iy, ix = np.nonzero(inner[y0:y1, x0:x1])
    low = iy >= iy.max() - max(2, ch // SOLE_ROWS) if len(iy) else iy >= 0
    mine = photo[y0:y1, x0:x1][iy[low], ix[low]]  # [n, 3]
    sole_colour = np.median(mine, axis=0) if len(mine) >= MIN_FOOT_PX // 4 else np.asarray(SOLE_GREY)  # [3]
    sole = (local[..., 1] < SOLE_BAND * collar)[..., None]
    own = np.where(sole, sole_colour, own)
    light = np.asarray(LIGHT) / np.linalg.norm(LIGHT)
    nl = n_local.copy()
    nl[..., 0] = np.abs(nl[..., 0])  # both sides alike (the light comes from outside on each)
    shade = AMBIENT + (1.0 - AMBIENT) * (0.5 + 0.5 * (nl @ light))
    shade = shade * np.where(local[..., 1] < SOLE_BAND * collar, SOLE_EDGE_DARK, 1.0)
    own = own * shade[..., None]
    # the photo where the camera saw it
    pu_photo = K[0, 0] * cam[..., 0] / z + K[0, 2]
    pv_photo = K[1, 1] * cam[..., 1] / z + K[1, 2]
    seen = _bilinear(photo, pu_photo, pv_photo)
    colour = w_photo[..., None] * seen + (1.0 - w_photo[..., None]) * own  # [Rt, Ct+1, 3]
    panel = np.pad(colour.astype(np.float32), ((1, 1), (1, 1), (0, 0)), mode="edge")  # a texel of border

    # 5. The mesh: every TEXELS-th texel, poles split per column (no zero-area triangles)
    idx_r = np.arange(0, Rt, TEXELS)  # [SHOE_ROWS]
    idx_c = np.arange(0, Ct + 1, TEXELS)  # [SHOE_COLS + 1]
    V = world[np.ix_(idx_r, idx_c)].reshape(-1, 3)
    nr, nc = len(idx_r), len(idx_c)
    faces = _grid_faces(nr, nc)
    # winding: outward normals
    p0, p1, p2 = V[faces[:, 0]], V[faces[:, 1]], V[faces[:, 2]]
    fn = np.cross(p1 - p0, p2 - p0)
    fc = (p0 + p1 + p2) / 3.0
    if float(((fc - centre) * fn).sum()) < 0:
        faces = faces[:, ::-1]
    panel_uv = np.stack(np.meshgrid(idx_r + 1.5, idx_c + 1.5, indexing="ij")[::-1], -1).reshape(-1, 2)  # (u, v)
    photo_uv = np.stack([pu_photo[np.ix_(idx_r, idx_c)], pv_photo[np.ix_(idx_r, idx_c)]], -1).reshape(-1, 2)
    full = w_photo[np.ix_(idx_r, idx_c)].reshape(-1) >= 0.999
    # photo faces: all three corners fully seen; they get vertex copies whose uv is in the photo panel
    pf = full[faces].all(1)
    nV = len(V)
    used = np.unique(faces[pf])
    remap = np.arange(nV)
    remap[used] = nV + np.arange(len(used))
    faces = faces.copy()
    faces[pf] = remap[faces[pf]]
    verts = np.concatenate([V, V[used]], 0)
    uv = np.concatenate([panel_uv, photo_uv[used]], 0)
    on_panel = np.concatenate([np.ones(nV, bool), np.zeros(len(used), bool)])
    s_v = np.concatenate([np.repeat(s[idx_r], nc), np.repeat(s[idx_r], nc)[used]])
    s_ball = (HEEL_BACK + 1.0) / (HEEL_BACK + TOE_FRONT)
    w_toe = _smooth01(s_v, s_ball - SHOE_BLEND, s_ball + SHOE_BLEND)
    joint_index = np.tile(np.array([ja, jf], np.int64), (len(verts), 1))
    joint_weight = np.stack([1.0 - w_toe, w_toe], -1)
    labels = np.where(s_v < s_ball, PART_INDEX[f"{side}_foot"], PART_INDEX[f"{side}_toes"]).astype(np.int64)
    return Shoe(
        verts=verts,
        faces=faces.astype(np.int64),
        uv=uv,
        on_panel=on_panel,
        joint_index=joint_index,
        joint_weight=joint_weight,
        labels=labels,
        panel=panel,
    )


def _grid_faces(nr: int, nc: int) -> np.ndarray:
    """[F, 3] triangles of an nr x nc vertex grid (row-major ids) whose first and last rows are poles (every
    vertex of the row at one point): the triangles with a pole edge are skipped (zero area)."""
    vid = np.arange(nr * nc).reshape(nr, nc)
    a, b, c, d = vid[:-1, :-1], vid[:-1, 1:], vid[1:, 1:], vid[1:, :-1]
    tri1 = np.stack([a, b, c], -1)[1:]  # the first row's (a, b) edge is a pole: skip that triangle
    tri2 = np.stack([a, c, d], -1)[:-1]  # the last row's (c, d) edge is a pole
    return np.concatenate([tri1.reshape(-1, 3), tri2.reshape(-1, 3)], 0)


def _visible_from_photo(world: np.ndarray, K: np.ndarray, world_to_cam: np.ndarray, H: int, W: int) -> np.ndarray:
    """[R, C] bool: points of a dense surface grid [R, C, 3] (world, poles in the first and last rows) that
    the photo camera sees (not behind the surface itself): depth within SEEN_EPS of the z-buffer there."""
    import torch

    from .raster import rasterise

    R, C = world.shape[:2]
    cam = world.reshape(-1, 3) @ world_to_cam[:3, :3].T + world_to_cam[:3, 3]  # [R*C, 3]
    frags = rasterise(torch.from_numpy(cam)[None], torch.from_numpy(_grid_faces(R, C)), torch.from_numpy(K)[None], W, H)
    zbuf = frags.dense_depth()[0].numpy()  # [H, W] metres, 0 where empty
    u = K[0, 0] * cam[:, 0] / cam[:, 2] + K[0, 2]
    v = K[1, 1] * cam[:, 1] / cam[:, 2] + K[1, 2]
    seen = np.zeros(len(cam), bool)
    for dy in (-0.5, 0.0, 0.5):  # the nearest pixel centres around the point (a point on an edge)
        for dx in (-0.5, 0.0, 0.5):
            j = np.clip(np.floor(u + dx).astype(int), 0, W - 1)
            i = np.clip(np.floor(v + dy).astype(int), 0, H - 1)
            z = zbuf[i, j]
            seen |= (z > 0) & (cam[:, 2] <= z + SEEN_EPS)
    return seen.reshape(R, C)


def _extents(a: np.ndarray, b: np.ndarray, n: int, lo: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Per integer bin of b in [0, n): (min, max) of a, bins without points interpolated from their neighbours
    (ends held). a, b: [M]. returns ([n], [n])"""
    k = np.clip(np.floor(b).astype(int), 0, n - 1)
    mn = np.full(n, np.inf)
    mx = np.full(n, -np.inf)
    np.minimum.at(mn, k, a)
    np.maximum.at(mx, k, a)
    ok = np.isfinite(mn)
    if not ok.any():
        return mn, mx
    i = np.arange(n)
    return np.interp(i, i[ok], mn[ok]), np.interp(i, i[ok], mx[ok])


def _warp_rows(u: np.ndarray, v: np.ndarray, region: np.ndarray) -> np.ndarray:
    """u moved, row by row, so the points' extent in each image row becomes the region's extent there.

    u, v: [...] image px of a dense surface; region: [H, W] bool. Rows outside the region's take its
    nearest row's extent. returns u' [...]"""
    H, W = region.shape
    ys, xs = np.nonzero(region)
    r0, r1 = ys.min(), ys.max() + 1
    m_lo, m_hi = _extents(xs.astype(np.float64), ys + 0.5 - r0, r1 - r0)
    m_hi = m_hi + 1.0  # the pixels' right edges
    t_lo, t_hi = _extents(u.ravel(), v.ravel() - r0, r1 - r0)  # the surface's own extents, same rows
    rows = np.arange(r0, r1) + 0.5
    vv = np.clip(v, r0 + 0.5, r1 - 0.5)
    Lm, Rm = np.interp(vv, rows, m_lo), np.interp(vv, rows, m_hi)
    # the surface's extent at the point's own row (bins from the points themselves, smoothed a little)
    from scipy import ndimage

    t_lo, t_hi = ndimage.uniform_filter1d(t_lo, 3), ndimage.uniform_filter1d(t_hi, 3)
    Lt, Rt = np.interp(vv, rows, t_lo), np.interp(vv, rows, t_hi)
    f = (u - Lt) / np.maximum(Rt - Lt, 1e-6)
    return Lm + f * (Rm - Lm)


def _warp_bottom(u: np.ndarray, v: np.ndarray, region: np.ndarray, top: float) -> np.ndarray:
    """v moved, column by column, so the points' lowest v in each image column becomes the region's lowest
    pixel edge there (the sole on the photo's foot), `top` fixed. u, v: [...] px; returns v' [...]"""
    from scipy import ndimage

    ys, xs = np.nonzero(region)
    c0, c1 = xs.min(), xs.max() + 1
    _, m_bot = _extents(ys.astype(np.float64) + 1.0, xs + 0.5 - c0, c1 - c0)
    _, t_bot = _extents(v.ravel(), u.ravel() - c0, c1 - c0)
    t_bot = ndimage.uniform_filter1d(t_bot, 3)
    cols = np.arange(c0, c1) + 0.5
    uu = np.clip(u, c0 + 0.5, c1 - 0.5)
    Bm, Bt = np.interp(uu, cols, m_bot), np.interp(uu, cols, t_bot)
    f = (v - top) / np.maximum(Bt - top, 1e-6)
    return top + f * np.maximum(Bm - top, 1e-6)


def _bilinear(img: np.ndarray, u: np.ndarray, v: np.ndarray, crop_box=None) -> np.ndarray:
    """Bilinear lookup of img [H, W, 3] at pixel coordinates (u, v) [...] (centres at +0.5), borders clamped.
    crop_box (x0, y0, crop): look up in crop [h, w, 3] placed at (x0, y0) instead."""
    if crop_box is not None:
        x0, y0, img = crop_box
        u, v = u - x0, v - y0
    H, W = img.shape[:2]
    x = np.clip(u - 0.5, 0.0, W - 1.0)
    y = np.clip(v - 0.5, 0.0, H - 1.0)
    j0, i0 = np.floor(x).astype(int), np.floor(y).astype(int)
    j1, i1 = np.minimum(j0 + 1, W - 1), np.minimum(i0 + 1, H - 1)
    fx, fy = (x - j0)[..., None], (y - i0)[..., None]
    top = img[i0, j0] * (1 - fx) + img[i0, j1] * fx
    bot = img[i1, j0] * (1 - fx) + img[i1, j1] * fx
    return top * (1 - fy) + bot * fy


def subject_foot_regions(subject, maps: dict) -> np.ndarray:
    """`foot_regions` of a core Subject at its mask's size (maps: mesh.body_maps_at_photo there); none when
    the subject's legs were guessed. returns [H, W] int8"""
    mask = np.asarray(subject.mask, np.float32)
    if getattr(subject, "legs_guessed", False):
        return np.zeros(mask.shape, np.int8)
    H, W = mask.shape
    return foot_regions(mask, maps["label_near"], photo_landmarks(subject, W, H), subject.visibility)


def build_shoes(
    subject, maps: dict, photo: np.ndarray, K: np.ndarray, regions: np.ndarray | None = None
) -> tuple[np.ndarray, list[Shoe]]:
    """The foot regions and the shoes of the feet the photo shows.

    subject: core Subject; maps: mesh.body_maps_at_photo at the mask's size; photo: [H, W, 3] float32 the
    person's colours extended past the mask; K: [3, 3] the photo camera at the mask's size; regions: the
    subject's foot regions if already computed (subject_foot_regions).
    returns: (regions [H, W] int8 as foot_regions, only for the feet that got a shoe; shoes)
    """
    from hvg_cli.body.kinematics import pose_joints

    mask = np.asarray(subject.mask, np.float32)
    if getattr(subject, "legs_guessed", False):
        return np.zeros(mask.shape, np.int8), []
    regions = (subject_foot_regions(subject, maps) if regions is None else regions).copy()
    sk = subject.skeleton
    joints = pose_joints(
        np.asarray(subject.photo_pose)[None], sk.rest_joints, sk.parents, np.asarray(subject.photo_trans)[None]
    )[0]  # [24, 3]
    from scipy import ndimage

    inside = ndimage.distance_transform_edt(mask > 0.5)  # [H, W] px to the nearest pixel outside the mask
    image = np.asarray(subject.image, np.float32) / 255.0  # [H, W, 3] the photo with its background
    shoes = []
    for k, side in enumerate(_SIDES):
        region = regions == k + 1
        shoe = None
        if region.any():
            ground = ground_like(image, mask, region)
            shoe = build_shoe(side, region, photo, joints, K, subject.camera.world_to_cam, inside, ground)
        if shoe is None:
            regions[region] = 0
        else:
            shoes.append(shoe)
    return regions, shoes


def _foot_islands(faces: np.ndarray, keep: np.ndarray, in_foot: np.ndarray, n: int) -> np.ndarray:
    """[F] bool: kept faces in connected pieces (faces sharing vertices) of fewer than ISLAND_FACES faces that
    all touch the foot: slivers of the lifted foot the drop left. faces [F, 3]; keep [F]; in_foot [N]."""
    from scipy import sparse
    from scipy.sparse.csgraph import connected_components

    idx = np.nonzero(keep)[0]
    f = faces[idx]  # [K, 3]
    rows = np.repeat(np.arange(len(f)), 3)
    A = sparse.coo_matrix((np.ones(rows.size), (rows, f.ravel())), shape=(len(f), n)).tocsr()  # face x vertex
    _, comp = connected_components(A @ A.T, directed=False)  # [K] piece of each kept face
    size = np.bincount(comp)
    touch = np.bincount(comp, weights=in_foot[f].any(1).astype(np.float64))
    bad = (size < ISLAND_FACES) & (touch >= size)
    out = np.zeros(len(faces), bool)
    out[idx] = bad[comp]
    return out


def attach_feet(skinned, texture: np.ndarray, regions: np.ndarray, shoes: list[Shoe]) -> tuple:
    """The skinned photo mesh with the foot regions' faces dropped and the shoes added; the texture atlas with
    the shoes' panels in a free block (texels no face samples) or, if none, in columns added on the right.

    skinned: skin.SkinnedMesh (uv in the atlas [H, nW]); texture: [H, nW, 3] float32; regions: [H, W] int8
    (W: the photo panel's width). returns (SkinnedMesh, texture)
    """
    import dataclasses

    if not shoes:
        return skinned, texture
    H, W = regions.shape
    # 1. Drop the photo mesh's faces in the foot regions (a face with two corners or more there)
    px = np.clip(np.floor(np.mod(skinned.uv[:, 0], W)).astype(int), 0, W - 1)
    py = np.clip(np.floor(skinned.uv[:, 1]).astype(int), 0, H - 1)
    # each region grown by DROP_GROW px sideways and down (not above its top, the cut): the outline's vertices,
    # snapped onto the mask's 0.5 contour, count as the foot's too
    from scipy import ndimage

    grown = np.zeros((H, W), bool)
    rows = np.arange(H)[:, None]
    for k in np.unique(regions[regions > 0]):
        r = regions == k
        top = int(np.nonzero(r.any(1))[0][0])
        grown |= ndimage.binary_dilation(r, iterations=DROP_GROW) & (rows >= top)
    in_foot = grown[py, px]  # [N]
    keep = in_foot[skinned.faces].sum(1) < 2
    # and what is left of the foot as islands (triangles with a corner in it, joined to nothing else)
    keep &= ~_foot_islands(skinned.faces, keep, in_foot, len(skinned.verts))
    faces = skinned.faces[keep]
    used_v = np.zeros(len(skinned.verts), bool)
    used_v[faces.ravel()] = True
    remap = -np.ones(len(skinned.verts), np.int64)
    remap[used_v] = np.arange(int(used_v.sum()))
    faces = remap[faces]
    K_ = skinned.joint_index.shape[1]
    # 2. Panels into a free block of the atlas (what the remaining faces sample, grown by 2 texels, is used)
    # (the dropped foot's faces too: its texels stay as they were)
    used: np.ndarray = used_texels(skinned.uv, skinned.faces, texture.shape[:2])
    # the photo faces of the shoes sample the photo panel too
    for sh in shoes:
        p = sh.uv[~sh.on_panel]
        if len(p):
            x0, y0 = np.clip(np.floor(p.min(0) - 3).astype(int), 0, None)
            x1, y1 = np.ceil(p.max(0) + 3).astype(int)
            used[y0:y1, x0:x1] = True
    # each panel on its own: a free block if there is one, else columns added on the right
    places = []
    tex: np.ndarray = texture
    for sh in shoes:
        h, w = sh.panel.shape[:2]
        at = free_block(used, h, w)
        if at is None:
            if h > tex.shape[0]:
                tex = np.pad(tex, ((0, h - tex.shape[0]), (0, 0), (0, 0)))
                used = np.pad(used, ((0, h - used.shape[0]), (0, 0)))
            at = (0, tex.shape[1])
            tex = np.pad(tex, ((0, 0), (0, w), (0, 0)))
            used = np.pad(used, ((0, 0), (0, w)))
        elif tex is texture:
            tex = texture.copy()
        used[at[0] : at[0] + h, at[1] : at[1] + w] = True
        places.append(at)
    # 3. The kept photo mesh, then each shoe (joint columns padded to the mesh's K with zero weights)
    verts, uvs, labs = [skinned.verts[used_v]], [skinned.uv[used_v]], [skinned.labels[used_v]]
    ji, jw, backs = [skinned.joint_index[used_v]], [skinned.joint_weight[used_v]], [skinned.back[used_v]]
    n = int(used_v.sum())
    all_faces = [faces]
    for sh, (r0, col) in zip(shoes, places):
        h, w = sh.panel.shape[:2]
        tex[r0 : r0 + h, col : col + w] = sh.panel
        uv = np.where(sh.on_panel[:, None], sh.uv + np.array([col, r0], np.float64), sh.uv)
        verts.append(sh.verts)
        uvs.append(uv)
        pad = np.zeros((len(sh.verts), K_ - 2))
        ji.append(np.concatenate([sh.joint_index, pad.astype(np.int64)], 1))
        jw.append(np.concatenate([sh.joint_weight, pad], 1))
        labs.append(sh.labels)
        backs.append(np.zeros(len(sh.verts), bool))
        all_faces.append(sh.faces + n)
        n += len(sh.verts)
    mesh = dataclasses.replace(
        skinned,
        verts=np.concatenate(verts, 0),
        faces=np.concatenate(all_faces, 0).astype(np.int64),
        uv=np.concatenate(uvs, 0),
        joint_index=np.concatenate(ji, 0).astype(skinned.joint_index.dtype),
        joint_weight=np.concatenate(jw, 0).astype(skinned.joint_weight.dtype),
        labels=np.concatenate(labs, 0),
        back=np.concatenate(backs, 0),
    )
    return mesh, tex
