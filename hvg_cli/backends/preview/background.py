"""The background behind the person: the photo with the person removed and the hole filled, seen
through any camera of the job; or a solid colour; or nothing (transparent).

Hole filling needs no learned weights: across the hole along each row (a standing person leaves a
tall narrow hole; walls, floor lines and horizons continue across it), each side weighted by how typical
its colour is of the row (the person's cast shadow and a door frame beside the hole are not: they would
draw a dark ghost of the person), then smoothed vertically; a push-pull pyramid fills what rows cannot
(known pixels averaged down a pyramid with their weights, the coarse levels filling the finer ones'
holes on the way back up). Both are exact outside the hole.

The world seen from any camera of the job (`Backdrop`, `render_background`): the filled photo lies on two
planes of the scene, the ground (y = 0) and a vertical backdrop behind the person (facing the photo camera,
at the distance where the photo's floor meets its wall, when that line can be found). Every output pixel's
ray is cut with the planes in 3D (a plane seen by a pinhole is a homography: per pixel a few multiply-adds,
no triangles), the hit point is projected into the photo camera and the photo is sampled there. So a camera
at the photo's pose sees the photo, and a turning camera sees the ground and the backdrop stay in place,
with parallax against the person.

Beyond the photo's footprint each plane continues softly in its own coordinates (metres on the plane, not
angles around a camera, so nothing smears along a view direction): a texture per plane of the heavily
blurred photo, continued outwards (push-pull) and fading into the plane's median colour (a robust colour of
the whole wall or floor) from PHOTO_BAND inside the footprint's edge to PLANE_FADE beyond it, so that a door
at the photo's side ends softly instead of being drawn sideways across the frame. Where the ground meets the
backdrop beyond the photo both blend towards one colour over CORNER / CORNER_GROUND metres (a soft crease, no
hard line). A ray that grazes the backdrop (GRAZE) sees its plain colour, not the photo squeezed edge-on into
a hard strip. The photo itself fades into that soft texture over a wide band inside its frame (no rectangle edge),
and the whole world fades with distance from the person into one haze colour (the backdrop's median), which
is also the colour of rays that hit nothing: the ground meets the sky at a soft horizon, with no bands and no
seam at the back. Nothing is ever mirrored or repeated. The backdrop is one-sided: a camera that goes behind
it no longer sees it (faded over half a metre of camera travel, no pop). Nothing depends on time: a camera
that does not move sees the same background in every frame.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from torch import Tensor


def push_pull_fill(image: np.ndarray, known: np.ndarray) -> np.ndarray:
    """Fill unknown pixels smoothly from the known ones.

    image: [H, W, C] float; known: [H, W] bool
    returns: [H, W, C] float32, equal to image where known
    """
    import torch
    import torch.nn.functional as F

    img = torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32)).permute(2, 0, 1)[None]  # [1, C, H, W]
    w = torch.from_numpy(known.astype(np.float32))[None, None]  # [1, 1, H, W]
    levels = []
    cur, cw = img * w, w
    while min(cur.shape[-2:]) > 1:
        levels.append((cur, cw))
        cur = F.avg_pool2d(cur, 2, ceil_mode=True)
        cw = F.avg_pool2d(cw, 2, ceil_mode=True)
    filled = cur / cw.clamp_min(1e-8)
    for cur, cw in reversed(levels):
        up = F.interpolate(filled, size=cur.shape[-2:], mode="bilinear", align_corners=False)
        mean = cur / cw.clamp_min(1e-8)
        a = cw.clamp(0, 1)
        filled = a * mean + (1 - a) * up
    out = filled[0].permute(1, 2, 0).numpy()
    out[known] = image[known]
    return out


def row_fill(image: np.ndarray, known: np.ndarray, bright: float = 0.0, reach: float = 0.0) -> np.ndarray:
    """Fill unknown pixels along each row from the nearest known pixel on either side.

    Between the two sides the fill is linear in x; with bright > 0 the darker side's share is scaled by
    exp(-(excess) / bright), excess: how much darker it is (mean of the channels) beyond BRIGHT_DEAD (a cast
    shadow or a door frame beside the hole gives way to the lit wall; a gentle gradient stays linear). With
    reach > 0, each side's own colour
    still holds near it, giving way to that blend over `reach` pixels (exp(-distance / reach)), so the fill
    meets both sides without a step. A standing person leaves a tall, narrow hole: across it, walls, floors and
    horizons continue.
    image: [H, W, C] float; known: [H, W] bool.
    Rows with nothing known are left for the caller.
    returns: [H, W, C] float32
    """
    img = np.asarray(image, dtype=np.float32)
    H, W, _ = img.shape
    x = np.arange(W)[None]  # [1, W]
    left = np.maximum.accumulate(np.where(known, x, -1), axis=1)  # [H, W] nearest known column at or left of x
    right = np.minimum.accumulate(np.where(known, x, W)[:, ::-1], axis=1)[:, ::-1]  # ... at or right of x
    ys, xs = np.nonzero(~known & ((left >= 0) | (right < W)))  # [n] the pixels to fill (a side known)
    lx, rx = left[ys, xs], right[ys, xs]  # [n]
    hl, hr = lx >= 0, rx < W
    cl, cr = img[ys, lx.clip(0, W - 1)], img[ys, rx.clip(0, W - 1)]  # [n, C]
    a = ((xs - lx) / np.maximum(rx - lx, 1)).astype(np.float32)  # [n] 0 at the left side, 1 at the right
    tl, tr = np.ones(len(ys), np.float32), np.ones(len(ys), np.float32)
    if bright > 0:
        gap = cr.mean(-1) - cl.mean(-1)  # [n] how much brighter the right side is
        tl = np.exp(-np.maximum(gap - BRIGHT_DEAD, 0) / bright)
        tr = np.exp(-np.maximum(-gap - BRIGHT_DEAD, 0) / bright)
    wl = np.where(hl, np.where(hr, (1 - a) * tl, 1.0), 0.0)  # only one side known: take it whole
    wr = np.where(hr, np.where(hl, a * tr, 1.0), 0.0)
    fill = (wl[:, None] * cl + wr[:, None] * cr) / np.maximum(wl + wr, 1e-12)[:, None]  # [n, C]
    if reach > 0:  # each side's colour near it: el, er (at most 1 together)
        el = np.where(hl, np.exp(-(xs - lx) / reach), 0.0)
        er = np.where(hr, np.exp(-(rx - xs) / reach), 0.0)
        s = np.maximum(el + er, 1.0)
        el, er = (el / s)[:, None], (er / s)[:, None]
        fill = (1 - el - er) * fill + el * cl + er * cr
    out = img.copy()
    out[ys, xs] = fill
    return out


BRIGHT_DEAD = 0.06  # across a hole, sides differing in brightness (mean of RGB in [0, 1]) by less count the same
TRUST_LUMA = 0.05  # beyond that, each further TRUST_LUMA darker gives a side e times less weight (shadows are dark)
SHADOW_REACH = 0.12  # fraction of the photo's height around the hole in which the person's cast shadow is lifted
SHADOW_GREY = 0.08  # how far a darkening's channel ratios may differ (relative) and still count as a shadow


def remove_person(image: np.ndarray, mask: np.ndarray, grow: float = 0.015) -> np.ndarray:
    """The photo with the person removed, the hole filled and the person's cast shadow around it lifted.

    The hole (mask grown by `grow` of the image height, covering its soft edge and the person's contact
    shadow) is filled by `fill_hole`. Around it (within SHADOW_REACH of the height) a darkening of the
    surface behind (the same fill across the hole grown by that reach: the surface as seen beyond it) that
    keeps the colour's hue, i.e. the same ratio in every channel, is the person's cast shadow: it is lifted,
    fully over the inner half of the reach, fading out over the outer half (a door or a darker wall beside the person changes the
    hue, not only the brightness, and stays), so that no dark outline of the person is left behind; the hole
    is then filled from the lifted photo.
    image: [H, W, 3] uint8; mask: [H, W] float person mask in [0, 1]
    returns: [H, W, 3] float32 in [0, 1]
    """
    from scipy import ndimage

    H, W = mask.shape
    r = max(1, int(round(grow * H)))
    hole = ndimage.binary_dilation(mask > 0.1, iterations=1, structure=np.ones((3, 3), bool))
    dist = ndimage.distance_transform_edt(~hole)  # [H, W] px from the (ungrown) person
    hole = dist <= r  # a disc of radius r (fast for any r)
    img = image.astype(np.float32) / 255.0
    reach = max(2, int(round(SHADOW_REACH * H)))
    ring = ~hole & (dist <= r + reach)
    if ring.any():
        ys, xs = np.nonzero(ring)
        y0, y1, x0, x1 = max(0, ys.min() - r), min(H, ys.max() + 1 + r), max(0, xs.min() - r), min(W, xs.max() + 1 + r)
        lit = fill_hole(img, hole | ring, r)[y0:y1, x0:x1]  # [h, w, 3] the surface behind, from beyond the ring
        sub = img[y0:y1, x0:x1]
        # per-channel darkening, smoothed (a shadow is smooth; the surface's own texture is kept)
        ratio = smooth((sub + 0.02) / (lit + 0.02), r / 2, r / 2)
        lum = ratio.mean(-1)
        spread = np.sqrt(((ratio - lum[..., None]) ** 2).mean(-1)) / np.maximum(lum, 1e-3)
        x = np.clip(2 * (r + reach - dist[y0:y1, x0:x1]) / reach, 0, 1)  # 1 over the inner half, 0 at the reach
        weight = x * x * (3 - 2 * x) * np.exp(-((spread / SHADOW_GREY) ** 2) / 2) * (lum < 1) * ring[y0:y1, x0:x1]
        weight *= (~(hole | ring)).any(axis=1)[y0:y1, None]  # rows with the surface seen beyond the ring only
        lifted = np.minimum((sub + 0.02) / np.clip(ratio, 0.3, None) - 0.02, np.maximum(lit, sub))  # [h, w, 3]
        img = img.copy()
        img[y0:y1, x0:x1] = sub + weight[..., None] * (lifted - sub)
    return fill_hole(np.clip(img, 0, 1), hole, r)


def fill_hole(img: np.ndarray, hole: np.ndarray, r: int) -> np.ndarray:
    """The image with the hole filled along rows from the colours just outside it (averaged over a short run of
    known pixels), the brighter side trusted more (the person's cast shadow beside the hole, a darker door
    frame, would otherwise be drawn across it as a ghost or a band) while each side's colour holds within r
    pixels of it, then smoothed inside the hole (sigma r along columns, r / 2 along rows); rows with nothing
    known are filled by the push-pull pyramid. Works on the hole's bounding box with a margin only.
    img: [H, W, 3] float32 in [0, 1]; hole: [H, W] bool
    returns: [H, W, 3] float32, equal to img outside the hole
    """
    from scipy import ndimage

    H, W = hole.shape
    out = np.array(img, dtype=np.float32)
    ys, xs = np.nonzero(hole)
    if len(ys) == 0:
        return out
    m = 5 * r  # the blur's and the runs' reach
    y0, y1, x0, x1 = max(0, ys.min() - m), min(H, ys.max() + 1 + m), max(0, xs.min() - m), min(W, xs.max() + 1 + m)
    sub = out[y0:y1, x0:x1]  # [h, w, 3]
    known: np.ndarray = ~hole[y0:y1, x0:x1]  # [h, w]
    rows_known = np.asarray(known.any(axis=1))  # [h]
    # 1. Each known pixel's colour averaged over the known pixels of a short run of its row
    k = known.astype(np.float32)
    num = ndimage.uniform_filter1d(sub * k[..., None], size=max(3, r), axis=1, mode="nearest")
    den = ndimage.uniform_filter1d(k, size=max(3, r), axis=1, mode="nearest")
    border = np.where(known[..., None], num / np.maximum(den, 1e-6)[..., None], sub)
    # 2. Across the hole, the brighter side trusted more; each side's own colour within r of it
    filled = row_fill(border, known, bright=TRUST_LUMA, reach=float(r))
    if rows_known.any() and not rows_known.all():  # whole rows inside the hole: between the nearest filled rows
        filled = _between_rows(filled, rows_known)
    # 3. Smoothed inside the hole, most along the columns (each row's fill depends on what its sides showed)
    soft = smooth(filled, r, r / 2)
    out[y0:y1, x0:x1] = np.where(known[..., None], sub, soft)
    return out


def _between_rows(image: np.ndarray, rows_known: np.ndarray) -> np.ndarray:
    """image [H, W, C] with the rows where rows_known [H] is False interpolated linearly between the nearest rows
    above and below where it is True (the nearest one only, beyond the first or the last)."""
    idx = np.nonzero(rows_known)[0]
    miss = np.nonzero(~rows_known)[0]
    j = np.searchsorted(idx, miss).clip(1, len(idx) - 1) if len(idx) > 1 else np.zeros(len(miss), int)
    lo, hi = idx[j - 1] if len(idx) > 1 else idx[j], idx[j]
    a = np.clip((miss - lo) / np.maximum(hi - lo, 1), 0, 1)[:, None, None]  # [m, 1, 1]
    out = image.copy()
    out[miss] = (1 - a) * image[lo] + a * image[hi]
    return out


def smooth(image: np.ndarray, sigma_y: float, sigma_x: float) -> np.ndarray:
    """A wide Gaussian blur of image [H, W, C] (sigmas in pixels, edges repeated), computed at a reduced size
    (a quarter of the smaller sigma per pixel, area-averaged down, bilinear up): for smooth fills, not detail."""
    import torch
    import torch.nn.functional as F
    from scipy import ndimage

    H, W = image.shape[:2]
    k = max(1, int(min(sigma_y, sigma_x) // 4))
    if k == 1:
        return ndimage.gaussian_filter(image, (sigma_y, sigma_x, 0), mode="nearest").astype(np.float32)
    t = torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32)).permute(2, 0, 1)[None]  # [1, C, H, W]
    small = F.interpolate(t, size=(max(1, H // k), max(1, W // k)), mode="area")[0].permute(1, 2, 0).numpy()
    small = ndimage.gaussian_filter(small, (sigma_y / k, sigma_x / k, 0), mode="nearest")
    up = F.interpolate(
        torch.from_numpy(small).permute(2, 0, 1)[None], size=(H, W), mode="bilinear", align_corners=False
    )
    return up[0].permute(1, 2, 0).numpy()


BACKDROP_DEFAULT = 2.0  # metres behind the person when the photo shows no floor-to-wall line
BACKDROP_RANGE = (0.5, 8.0)  # metres: where the backdrop may stand behind the person
SOFT_BLUR = 0.02  # sigma of the soft textures' blur, fraction of the photo's height
TEX_CELL = 0.03  # metres per texel of the soft plane textures
GROUND_HALF = 7.0  # metres: the ground texture covers the person's foot point +- this in x and z
WALL_HALF, WALL_TOP = 7.0, 7.0  # metres: the backdrop texture covers +- WALL_HALF along it, 0..WALL_TOP up
PLANE_FADE = 0.25  # metres: beyond the photo's footprint a plane's continuation fades into its median colour
EDGE_BLUR = 0.08  # metres: sigma of the blur over the continuation (no outline of the footprint or of the fade)
PHOTO_BAND = 0.3  # metres inside the photo's footprint on a plane over which the photo fades into the soft world
# metres up the backdrop and along the ground from their line over which the planes' soft colours meet there (no
# seam, no hard crease); the ground's is longer: it is seen at a grazing angle, its metres shrink in the image
CORNER, CORNER_GROUND = 0.5, 1.5
BEHIND_FADE = 0.4  # metres behind the backdrop over which the photo's ground fades out (it shows the wall there)
HAZE_MARGIN = 0.5  # metres beyond the photo's farthest point at which the world starts fading into the haze
HAZE_LENGTH = 4.0  # metres: the haze's e-folding distance
# sines of the angle between a ray and the backdrop over which the photo's detail on it gives way to its plain
# colour (8 to 30 degrees: a ray that grazes it)
GRAZE = (math.sin(math.radians(8.0)), math.sin(math.radians(30.0)))
CAMERA_FADE = 0.5  # metres of camera travel over which the backdrop fades when the camera passes behind it


@dataclass(frozen=True, eq=False)
class Backdrop:
    """The photo's world: the filled photo on the ground and a backdrop plane, each continued softly, in a haze.

    Each plane's texture holds the soft colour (RGB) and how much of the photo itself shows there (A: 1 deep
    inside the photo's footprint, a smoothstep to 0 over PHOTO_BAND metres inside its edges, 0 beyond).

    Plane coordinates: the ground texture's texel (row i, column j) covers world (x, z) = (x0, z0) + TEX_CELL *
    (j + 0.5, i + 0.5); the backdrop's covers (s, y) = (s0, y0) + TEX_CELL * (j + 0.5, i + 0.5), where s = e . X
    along the backdrop, e = (n_z, 0, -n_x).
    """

    image: np.ndarray  # [H, W, 3] float32 in [0, 1]: the photo with the person removed
    K: np.ndarray  # [3, 3] photo intrinsics at the image's size
    world_to_cam: np.ndarray  # [4, 4] the photo camera
    plane: np.ndarray  # [4] backdrop n (unit, horizontal, towards the photo camera) and c: n . X = c, metres
    ground: np.ndarray  # [gh, gw, 4] float32: the ground's soft texture (rows z, columns x) and photo weight
    ground_origin: np.ndarray  # [2] (x0, z0) metres: the ground texture's outer corner
    wall: np.ndarray  # [wh, ww, 7] float32: the backdrop's soft texture (rows y, columns s), photo weight, and
    # its plain colour (the median with the soft corner, no detail of the photo) for rays that graze it
    wall_origin: np.ndarray  # [2] (s0, y0) metres
    haze: np.ndarray  # [6]: haze colour RGB, the person's foot point (x, z), the haze's start radius (metres)


def build_backdrop(
    filled: np.ndarray,
    K: np.ndarray,
    world_to_cam: np.ndarray,
    subject_pos: np.ndarray,
    distance: float | None = None,
    mask: np.ndarray | None = None,
) -> Backdrop:
    """The photo's world from the filled photo and its camera.

    filled: [H, W, 3] float32 in [0, 1] (`remove_person`); K: [3, 3] at that size; world_to_cam: [4, 4];
    subject_pos: [3] world metres of the person (pelvis); distance: metres from the person to the backdrop
    (None: `backdrop_distance`)
    """
    import torch
    import torch.nn.functional as F
    from scipy import ndimage

    from .raster import sample_bilinear

    H, W = filled.shape[:2]
    D = backdrop_distance(filled, K, world_to_cam, subject_pos, mask) if distance is None else float(distance)
    n, _ = _backdrop_normal(world_to_cam, subject_pos)
    pos = np.asarray(subject_pos, np.float64)
    c = float(n @ pos) - D
    e = np.array([n[2], 0.0, -n[0]])  # [3] horizontal, along the backdrop
    # 1. The photo blurred to the soft layer's scale (area-averaged down first: the blur is wide)
    sigma = SOFT_BLUR * H
    k = max(1, int(sigma // 3))
    img = torch.from_numpy(np.ascontiguousarray(filled, dtype=np.float32)).permute(2, 0, 1)[None]  # [1, 3, H, W]
    small = F.interpolate(img, size=(max(1, H // k), max(1, W // k)), mode="area")[0].permute(1, 2, 0).numpy()
    small = ndimage.gaussian_filter(small, (sigma / k, sigma / k, 0), mode="nearest")  # [h, w, 3]
    sh, sw = small.shape[:2]
    R, t = np.asarray(world_to_cam, np.float64)[:3, :3], np.asarray(world_to_cam, np.float64)[:3, 3]
    mean = filled.reshape(-1, 3).mean(0)

    def texture(points: np.ndarray, visible: np.ndarray, keep: np.ndarray):
        """(soft texture [h, w, 4], median colour [3], known [h, w]) of a plane's grid of world points [h, w, 3]:
        the photo's colours where it sees them (inside its frame and `visible`), continued and faded into the
        median beyond; A: the photo's weight, from the distance inside the frame, times `keep` [h, w]."""
        q = points @ R.T + t  # [h, w, 3] photo camera frame
        z = np.maximum(q[..., 2], 1e-9)
        u, v = K[0, 0] * q[..., 0] / z + K[0, 2], K[1, 1] * q[..., 1] / z + K[1, 2]
        frame = (q[..., 2] > 1e-6) & (u >= 0) & (u <= W) & (v >= 0) & (v <= H)
        known = visible & frame
        x = (ndimage.distance_transform_edt(frame) * TEX_CELL / PHOTO_BAND).clip(0, 1)
        weight = (x * x * (3 - 2 * x) * keep).astype(np.float32)[..., None]  # smoothstep
        if not known.any():
            return np.concatenate([np.broadcast_to(mean, points.shape), weight], -1), None, known
        col = sample_bilinear(
            torch.from_numpy(small), torch.from_numpy(u * (sw / W)), torch.from_numpy(v * (sh / H))
        ).numpy()
        median = np.median(col[known], axis=0)  # [3]
        cont = push_pull_fill(col, known)  # continued outwards smoothly
        # metres inside the photo's footprint (> 0) or beyond it (< 0)
        inside = (ndimage.distance_transform_edt(known) - ndimage.distance_transform_edt(~known)) * TEX_CELL
        # 1 from PHOTO_BAND inside the footprint on (where the photo shows whole), smoothstep to 0 at PLANE_FADE
        # beyond it: what the photo shows at its edge fades into the plane's median within a short reach
        x = np.clip((inside + PLANE_FADE) / (PLANE_FADE + PHOTO_BAND), 0, 1)
        a = (x * x * (3 - 2 * x))[..., None]
        # blurred once more (EDGE_BLUR): the continuation bends into the median at the footprint's edge and at
        # PLANE_FADE, which would outline the footprint
        soft = ndimage.gaussian_filter(a * cont + (1 - a) * median, (EDGE_BLUR / TEX_CELL,) * 2 + (0,))
        return np.concatenate([soft, weight], -1).astype(np.float32), median, known

    # 2. The ground around the person's foot point, seen in the photo where it lies in front of the backdrop
    foot = np.array([pos[0], 0.0, pos[2]])
    g0 = foot[[0, 2]] - GROUND_HALF  # (x0, z0)
    ng = int(round(2 * GROUND_HALF / TEX_CELL))
    gx = g0[0] + (np.arange(ng) + 0.5) * TEX_CELL
    gz = g0[1] + (np.arange(ng) + 0.5) * TEX_CELL
    Z, X = np.meshgrid(gz, gx, indexing="ij")  # [ng, ng] rows z, columns x
    gpts = np.stack([X, np.zeros_like(X), Z], -1)
    behind = gpts @ n - c  # [ng, ng] metres in front of the backdrop (where the photo sees the ground)
    ground, gmed, gknown = texture(gpts, behind > 0, np.clip(1 + behind / BEHIND_FADE, 0, 1))
    # 3. The backdrop: (s, y) on the plane n . X = c, X = c n + s e + y up
    w0 = np.array([float(e @ foot) - WALL_HALF, 0.0])  # (s0, y0)
    ns, ny = int(round(2 * WALL_HALF / TEX_CELL)), int(round(WALL_TOP / TEX_CELL))
    ss = w0[0] + (np.arange(ns) + 0.5) * TEX_CELL
    yy = w0[1] + (np.arange(ny) + 0.5) * TEX_CELL
    Y, S = np.meshgrid(yy, ss, indexing="ij")  # [ny, ns] rows y, columns s
    wpts = c * n + S[..., None] * e + Y[..., None] * np.array([0.0, 1.0, 0.0])
    wall, wmed, wknown = texture(wpts, np.ones(Y.shape, bool), np.ones(Y.shape))
    # 4. The corner: beyond the photo's footprint (where only the soft textures show; the photo shows its own
    # corner) the ground and the backdrop meet softly: within CORNER up the backdrop and CORNER_GROUND along the
    # ground, both blend towards one colour along their line, the mean of the ground's there and the backdrop's
    # median (the same colour on both sides: no seam; a soft crease, not a hard line)
    line = c * n[[0, 2]] + ss[:, None] * e[[0, 2]]  # [ns, 2] (x, z) of the backdrop's foot
    base = sample_bilinear(
        torch.from_numpy(ground[..., :3]),
        torch.from_numpy((line[:, 0] - g0[0]) / TEX_CELL),
        torch.from_numpy((line[:, 1] - g0[1]) / TEX_CELL),
    ).numpy()  # [ns, 3] the ground's soft colour along the line
    mid = 0.5 * (base + (wmed if wmed is not None else base))  # [ns, 3] (the backdrop's median: its local colour
    # could be a door's, beside the photo, and would be carried along the ground)
    x = np.clip(yy / CORNER, 0, 1)
    b = (1 - x * x * (3 - 2 * x))[:, None, None]  # [ny, 1, 1] 1 at the line, smoothstep to 0 at CORNER up
    plain = (1 - b) * (wmed if wmed is not None else mid[None]) + b * mid[None]  # [ny, ns, 3]
    wall[..., :3] = (1 - b) * wall[..., :3] + b * mid[None]
    j = np.clip(np.rint(((gpts @ e) - w0[0]) / TEX_CELL - 0.5).astype(int), 0, ns - 1)  # [ng, ng] column on the line
    x = np.clip(np.abs(behind) / CORNER_GROUND, 0, 1)  # (behind it too: seen from there, a soft band, no edge)
    b = (1 - x * x * (3 - 2 * x))[..., None]  # [ng, ng, 1]
    ground[..., :3] = (1 - b) * ground[..., :3] + b * mid[j]
    # 5. The haze: the backdrop's median colour (the ground's, or the photo's mean, when it shows none), from
    # just beyond the photo's farthest point seen on the planes
    haze = wmed if wmed is not None else gmed if gmed is not None else mean
    reach = [np.linalg.norm(p[m] - foot, axis=-1).max() for p, m in ((gpts, gknown), (wpts, wknown)) if m.any()]
    r0 = (max(reach) if reach else D) + HAZE_MARGIN
    return Backdrop(
        image=np.ascontiguousarray(filled, dtype=np.float32),
        K=np.asarray(K, np.float64),
        world_to_cam=np.asarray(world_to_cam, np.float64),
        plane=np.append(n, c),
        ground=np.ascontiguousarray(ground, dtype=np.float32),
        ground_origin=g0,
        wall=np.ascontiguousarray(np.concatenate([wall, plain], -1), dtype=np.float32),
        wall_origin=w0,
        haze=np.array([*np.asarray(haze, np.float64), foot[0], foot[2], r0]),
    )


def backdrop_distance(
    filled: np.ndarray, K: np.ndarray, world_to_cam: np.ndarray, subject_pos: np.ndarray, mask: np.ndarray | None = None
) -> float:
    """Metres behind the person at which the photo's floor meets its wall (or BACKDROP_DEFAULT).

    The ground line at distance D behind the person projects to a row of the photo; the chosen D is the
    one whose row has the strongest horizontal edge (mean |d/dy| of the filled background across the
    columns), when that edge stands out (3x the median over the candidate rows); else the default.
    filled: [H, W, 3] in [0, 1]; subject_pos: [3] world metres (the pelvis); mask: person mask (ignored columns)
    """
    from scipy import ndimage

    H, W = filled.shape[:2]
    n, _ = _backdrop_normal(world_to_cam, subject_pos)
    grey = ndimage.gaussian_filter(filled.mean(-1), 1.5)
    grad = np.abs(np.gradient(grey, axis=0))  # [H, W]
    if mask is not None:
        cols = (mask > 0.5).any(0)  # columns the person covers: their fill is not evidence
        grad = grad[:, ~cols] if (~cols).sum() > W // 4 else grad
    prof = ndimage.uniform_filter1d(grad.mean(1), 5)  # [H]
    Ds = np.geomspace(BACKDROP_RANGE[0], BACKDROP_RANGE[1], 64)
    foot = np.array([subject_pos[0], 0.0, subject_pos[2]])
    pts = foot[None] - Ds[:, None] * n[None]  # [64, 3] ground points straight behind the person
    q = pts @ world_to_cam[:3, :3].T + world_to_cam[:3, 3]
    rows = K[1, 1] * q[:, 1] / np.maximum(q[:, 2], 1e-6) + K[1, 2]  # [64] photo rows
    ok = (q[:, 2] > 0) & (rows >= 2) & (rows < H - 2)
    if ok.sum() < 4:
        return BACKDROP_DEFAULT
    score = prof[rows[ok].astype(int)]
    best = int(np.argmax(score))
    if score[best] < 3.0 * np.median(score):
        return BACKDROP_DEFAULT
    return float(Ds[ok][best])


def _backdrop_normal(world_to_cam: np.ndarray, subject_pos: np.ndarray):
    """(n [3], photo camera centre [3]): unit horizontal direction from the person towards the camera."""
    R, t = world_to_cam[:3, :3], world_to_cam[:3, 3]
    centre = -R.T @ t
    d = centre - np.asarray(subject_pos, np.float64)
    d[1] = 0.0
    if np.linalg.norm(d) < 1e-6:  # a camera straight above: face it along its own view axis
        d = -R[2].copy()
        d[1] = 0.0
    return d / max(np.linalg.norm(d), 1e-9), centre


def world_rays(K_out, world_to_cam_out, width: int, height: int) -> tuple[Tensor, Tensor]:
    """Camera centres [B, 3] and world ray directions [B, H*W, 3] (float32 torch) of every pixel centre."""
    import torch

    K = torch.as_tensor(np.asarray(K_out), dtype=torch.float64)
    M = torch.as_tensor(np.asarray(world_to_cam_out), dtype=torch.float64)
    R, t = M[:, :3, :3], M[:, :3, 3]
    o = -torch.einsum("bji,bj->bi", R, t)  # [B, 3] camera centres, world
    ys, xs = torch.meshgrid(
        torch.arange(height, dtype=torch.float32) + 0.5, torch.arange(width, dtype=torch.float32) + 0.5, indexing="ij"
    )
    pix = torch.stack([xs, ys, torch.ones_like(xs)], -1).reshape(-1, 3)  # [H*W, 3]
    A = (R.transpose(1, 2) @ torch.linalg.inv(K)).to(torch.float32)  # [B, 3, 3] pixel -> world direction
    return o.to(torch.float32), pix @ A.transpose(1, 2)


SOFT_FACTOR = 4  # the soft layer (textures, haze) is computed at 1/4 of the output size per axis and upsampled


def render_background(backdrop: Backdrop, K_out, world_to_cam_out, width: int, height: int) -> Tensor:
    """The photo's world seen through each output camera.

    Fast path: the soft layer (plane textures and haze, smooth by construction) and the haze weight at
    1/SOFT_FACTOR of the size, upsampled; the photo itself through one homography per plane (output pixel ->
    photo pixel, a few multiply-adds per pixel), sampled only where it shows. `render_background_reference`
    is the plain twin.
    K_out: [B, 3, 3]; world_to_cam_out: [B, 4, 4]
    returns: [B, H, W, 3] float32 torch tensor in [0, 1]
    """
    import torch
    import torch.nn.functional as F

    K = np.asarray(K_out, np.float64).reshape(-1, 3, 3)
    M = np.asarray(world_to_cam_out, np.float64).reshape(-1, 4, 4)
    B = len(K)
    # 1. The soft layer and the photo's weight: [B, h, w, 4] at low resolution (image coordinates scale
    # exactly), both smooth, bilinear up
    ws, hs = max(1, math.ceil(width / SOFT_FACTOR)), max(1, math.ceil(height / SOFT_FACTOR))
    Ks = K.copy()
    Ks[:, 0] *= ws / width
    Ks[:, 1] *= hs / height
    o, d = world_rays(Ks, M, ws, hs)  # [B, 3], [B, hs*ws, 3]
    soft, _, wp = _world(backdrop, o, d, sharp=False)  # [B, hs*ws, 3], [B, hs*ws]
    low = torch.cat([soft, wp[..., None]], -1).reshape(B, hs, ws, 4).permute(0, 3, 1, 2)  # [B, 4, hs, ws]
    up = F.interpolate(low, size=(height, width), mode="bilinear", align_corners=False)  # [B, 4, H, W]
    out, photo_w = up[:, :3].permute(0, 2, 3, 1).contiguous(), up[:, 3]  # [B, H, W, 3], [B, H, W]
    # 2. The photo on the planes, within the bounding box of its weight: per camera, the photo coordinates of
    # every pixel there (one homography per plane). The box is found on the low-resolution weight (a full-size
    # pixel's bilinear weight mixes the low-resolution pixels on either side of it: one more low-resolution
    # pixel on each side holds every full-size pixel where the weight is not 0)
    image = torch.from_numpy(backdrop.image)
    low_w = wp.reshape(B, hs, ws) > 0  # [B, hs, ws]
    fy, fx = height / hs, width / ws  # full-size pixels per low-resolution pixel
    for b in range(B):
        rows = torch.nonzero(low_w[b].any(1))[:, 0]
        cols = torch.nonzero(low_w[b].any(0))[:, 0]
        if len(rows) == 0:
            continue
        y0, y1 = max(0, math.floor((int(rows[0]) - 1) * fy)), min(height, math.ceil((int(rows[-1]) + 2) * fy))
        x0, x1 = max(0, math.floor((int(cols[0]) - 1) * fx)), min(width, math.ceil((int(cols[-1]) + 2) * fx))
        ys, xs = torch.meshgrid(
            torch.arange(y0, y1, dtype=torch.float32) + 0.5,
            torch.arange(x0, x1, dtype=torch.float32) + 0.5,
            indexing="ij",
        )  # [h, w] pixel centres of the box
        pw, box = photo_w[b, y0:y1, x0:x1], out[b, y0:y1, x0:x1]
        fade = _backdrop_fade(backdrop, M[b])
        hit, u, v = _photo_on_planes(backdrop, K[b], M[b], xs, ys, with_backdrop=fade > 0)
        mixed = _mix(image, pw * hit, u, v, box)
        if 0 < fade < 1:  # a camera passing the backdrop's plane: blend towards the world without it
            hit0, u0, v0 = _photo_on_planes(backdrop, K[b], M[b], xs, ys, with_backdrop=False)
            mixed = fade * mixed + (1 - fade) * _mix(image, pw * hit0, u0, v0, box)
        out[b, y0:y1, x0:x1] = mixed
    return out


def _mix(image, w, u, v, soft):
    """soft [H, W, 3] with the photo sampled at (u, v) blended in by w [H, W] (sampled only where w > 0)."""
    import torch

    from .raster import sample_bilinear

    show = w > 0
    n = int(show.sum())
    if n == 0:
        return soft
    if n > show.numel() // 3:  # most of the view shows the photo: one dense lookup beats gather/scatter
        return soft + w[..., None] * (sample_bilinear(image, u, v) - soft)
    out = soft.clone()
    idx = torch.nonzero(show, as_tuple=True)
    out[idx] = soft[idx] + w[idx][:, None] * (sample_bilinear(image, u[idx], v[idx]) - soft[idx])
    return out


def _backdrop_fade(backdrop: Backdrop, world_to_cam: np.ndarray) -> float:
    """How much of the backdrop a camera sees: 1 in front of it, 0 behind, a ramp over CAMERA_FADE metres."""
    o = -world_to_cam[:3, :3].T @ world_to_cam[:3, 3]
    return float(np.clip((backdrop.plane[:3] @ o - backdrop.plane[3]) / CAMERA_FADE, 0.0, 1.0))


def _photo_on_planes(backdrop: Backdrop, K: np.ndarray, world_to_cam: np.ndarray, xs, ys, with_backdrop: bool):
    """(hit, u, v) [H, W] of the photo at every output pixel, by one homography per plane.

    A pixel p = (x, y, 1) has the world ray d = A p (A = R^T K^-1) from the camera centre o. On the plane
    n . X = c it hits X = o + t d with t = -side / (n . d), side = n . o - c, and the photo camera sees
    q = q0 + t R_ph d with q0 = R_ph o + t_ph; so q (n . d) = (q0 (n A) - side R_ph A) p: a homography.
    The nearer plane with t > 0 wins; hit: 1.0 where one is hit in front of the photo camera, else 0.
    """
    import torch

    R, t = world_to_cam[:3, :3], world_to_cam[:3, 3]
    o = -R.T @ t
    A = R.T @ np.linalg.inv(K)  # [3, 3] pixel -> world direction
    Rp, tp, Kp = backdrop.world_to_cam[:3, :3], backdrop.world_to_cam[:3, 3], backdrop.K
    q0 = Rp @ o + tp
    planes = [(np.array([0.0, 1.0, 0.0]), 0.0)]  # the ground, y = 0
    if with_backdrop:
        planes.append((backdrop.plane[:3], float(backdrop.plane[3])))
    best_t = torch.full_like(xs, math.inf)
    U = torch.zeros_like(xs)
    V = torch.zeros_like(xs)
    Z = torch.zeros_like(xs)  # projective photo coordinates of the chosen hit, with the sign of q_z
    for n, c in planes:
        side = float(n @ o - c)
        if side <= 0:  # the camera is behind (or on) this plane: it sees its back, which is not drawn
            continue
        nA = n @ A  # [3]: n . d as a linear form in (x, y, 1)
        s = float(nA[0]) * xs + float(nA[1]) * ys + float(nA[2])  # [H, W]
        tt = torch.where(s < -1e-12, side / (-s).clamp_min(1e-12), torch.full_like(xs, math.inf))
        G = Kp @ (np.outer(q0, nA) - side * (Rp @ A))  # [3, 3] homography to the photo, up to the factor s
        take = tt < best_t
        best_t = torch.where(take, tt, best_t)
        sg = torch.sign(s)  # q = G p / s: keep the sign so that Z > 0 means in front of the photo camera
        for k, dst in enumerate((U, V, Z)):
            val = (float(G[k, 0]) * xs + float(G[k, 1]) * ys + float(G[k, 2])) * sg
            dst.copy_(torch.where(take, val, dst))
    hit = (best_t < math.inf) & (Z > 1e-9)
    Zs = torch.where(hit, Z, torch.ones_like(Z))
    u, v = U / Zs, V / Zs
    return hit.to(xs.dtype), u, v


def render_background_reference(
    backdrop: Backdrop, K_out, world_to_cam_out, width: int, height: int, sharp: bool = True
) -> Tensor:
    """The plain twin of `render_background`: every pixel's ray cut with the planes, projected, sampled.

    sharp: False leaves out the photo itself (the soft layer only).

    K_out: [B, 3, 3]; world_to_cam_out: [B, 4, 4]
    returns: [B, H, W, 3] float32 torch tensor in [0, 1]
    """
    o, d = world_rays(K_out, world_to_cam_out, width, height)  # [B, 3], [B, HW, 3]
    return _world(backdrop, o, d, sharp)[0].reshape(-1, height, width, 3)


def _world(backdrop: Backdrop, o, d, sharp: bool):
    """(colour [B, N, 3], haze weight [B, N], photo weight [B, N]) of rays from camera centres o [B, 3] along
    d [B, N, 3]."""
    import torch

    n = torch.as_tensor(backdrop.plane[:3], dtype=torch.float32)
    c = float(backdrop.plane[3])
    # 1. The ground y = 0 (cameras above it); rays that miss keep t = inf
    oy = o[:, None, 1]
    tg = torch.where(
        d[..., 1] < -1e-9, -oy / torch.where(d[..., 1] < -1e-9, d[..., 1], -1.0), torch.full_like(d[..., 1], math.inf)
    )
    tg = torch.where(oy > 0, tg, torch.full_like(tg, math.inf))
    # 2. The backdrop: hit from its front side only (a camera behind it does not see it)
    side = o @ n - c  # [B] metres in front of the backdrop
    dn = d @ n  # [B, N]
    tb = torch.where(dn < -1e-9, side[:, None] / (-torch.where(dn < -1e-9, dn, -1.0)), torch.full_like(dn, math.inf))
    tb = torch.where(side[:, None] > 0, tb, torch.full_like(tb, math.inf))
    fade = (side / CAMERA_FADE).clamp(0, 1)  # [B] how much of the backdrop a camera near its plane sees
    out, h, w = _shade(backdrop, o, d, tg, tb, sharp)
    part = (fade > 0) & (fade < 1)
    if part.any():  # a camera passing the backdrop's plane: blend towards the world without it
        without, h0, w0 = _shade(backdrop, o[part], d[part], tg[part], torch.full_like(tb[part], math.inf), sharp)
        f = fade[part][:, None]
        out[part] = f[..., None] * out[part] + (1 - f[..., None]) * without
        h[part] = f * h[part] + (1 - f) * h0
        w[part] = f * w[part] + (1 - f) * w0
    return out, h, w


def _shade(backdrop: Backdrop, o, d, tg, tb, sharp: bool = True):
    """(colour [B, N, 3], haze weight [B, N], photo weight [B, N]) of rays o + t d hitting the ground at tg or
    the backdrop at tb (inf: missed), the nearer one counting; rays that hit nothing are the haze."""
    import torch

    from .raster import sample_bilinear

    t = torch.minimum(tg, tb)
    hit = torch.isfinite(t)
    ground = hit & (tg <= tb)
    X = o[:, None] + torch.where(hit, t, torch.zeros_like(t))[..., None] * d  # [B, N, 3] world points
    # 1. The soft world: the plane's texture, hazed with the distance from the person's foot point (the photo's
    # footprint lies nearer than the haze's start: the photo itself is never hazed)
    haze = torch.as_tensor(backdrop.haze[:3], dtype=torch.float32)
    fx, fz, r0 = (float(x) for x in backdrop.haze[3:])
    nb = torch.as_tensor(backdrop.plane[:3], dtype=torch.float32)
    e = torch.stack([nb[2], torch.zeros(()), -nb[0]])  # along the backdrop
    gx0, gz0 = (float(x) for x in backdrop.ground_origin)
    ws0, wy0 = (float(x) for x in backdrop.wall_origin)
    on_ground = sample_bilinear(
        torch.from_numpy(backdrop.ground), (X[..., 0] - gx0) / TEX_CELL, (X[..., 2] - gz0) / TEX_CELL
    )
    on_wall = sample_bilinear(torch.from_numpy(backdrop.wall), (X @ e - ws0) / TEX_CELL, (X[..., 1] - wy0) / TEX_CELL)
    # a ray that grazes the backdrop sees its plain colour, without the photo: seen edge-on, the photo's detail
    # (a door beside the person) would be squeezed into a hard-edged strip
    sin = (d @ nb).abs() / d.norm(dim=-1).clamp_min(1e-12)  # [B, N] sine of the angle between ray and backdrop
    x = ((sin - GRAZE[0]) / (GRAZE[1] - GRAZE[0])).clamp(0, 1)
    g = (x * x * (3 - 2 * x))[..., None]  # [B, N, 1] 1 for a ray that meets it steeply, 0 for one that grazes it
    on_wall = torch.cat([g * on_wall[..., :3] + (1 - g) * on_wall[..., 4:7], g * on_wall[..., 3:4]], -1)
    tex = torch.where(ground[..., None], on_ground, on_wall)  # [B, N, 4]: soft colour, photo weight
    w = torch.where(hit, tex[..., 3], torch.zeros_like(tex[..., 3]))
    tex = tex[..., :3]
    r = torch.sqrt((X[..., 0] - fx) ** 2 + X[..., 1] ** 2 + (X[..., 2] - fz) ** 2)
    h = torch.where(hit, 1 - torch.exp(-(r - r0).clamp_min(0) / HAZE_LENGTH), torch.ones_like(r))  # [B, N]
    soft = tex + h[..., None] * (haze - tex)
    if not sharp:
        return soft, h, w
    # 2. The photo, blended in by its weight (fading inside its footprint's edges and behind the backdrop)
    R = torch.as_tensor(backdrop.world_to_cam[:3, :3], dtype=torch.float32)
    tr = torch.as_tensor(backdrop.world_to_cam[:3, 3], dtype=torch.float32)
    q = X @ R.T + tr  # [B, N, 3] photo camera frame
    Kp = backdrop.K
    z = q[..., 2].clamp_min(1e-9)
    u = float(Kp[0, 0]) * q[..., 0] / z + float(Kp[0, 2])
    v = float(Kp[1, 1]) * q[..., 1] / z + float(Kp[1, 2])
    wq = (w * (q[..., 2] > 1e-9))[..., None]
    photo = sample_bilinear(torch.from_numpy(backdrop.image), u, v)  # (unhazed: it lies nearer than the haze)
    return soft + wq * (photo - soft), h, w
