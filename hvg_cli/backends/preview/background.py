"""The background behind the person: the photo with the person removed and the hole filled, seen
through any camera of the job; or a solid colour; or nothing (transparent).

Hole filling needs no learned weights: across the hole along each row (a standing person leaves a
tall narrow hole; walls, floor lines and horizons continue across it), softened vertically; a push-pull
pyramid fills what rows cannot (known pixels averaged down a pyramid with their weights, the coarse
levels filling the finer ones' holes on the way back up). Both are exact outside the hole.

The world seen from any camera of the job (`Backdrop`, `render_background`): the filled photo is
projected onto two planes of the scene, the ground (y = 0) and a vertical backdrop behind the person
(facing the photo camera, at the distance where the photo's floor meets its wall, when that line can
be found). Every output pixel's ray is cut with the planes in 3D (a plane seen by a pinhole is a
homography: per pixel a few multiply-adds, no triangles), the hit point is projected into the photo
camera and the photo is sampled there. So a camera at the photo's pose sees the photo exactly, and a
turning camera sees the ground and the backdrop stay in place, with parallax against the person.

Beyond the photo's field of view (and for rays that hit neither plane) the hit's direction from the
photo camera indexes a soft canvas: the photo continued smoothly outwards (push-pull fill), fading
within about one photo width into the photo's mean colour per row, so that the turn closes on one
colour per row (no seam at the back) and nothing is ever mirrored or repeated. The backdrop is one-sided:
a camera that goes behind it no longer sees it (faded over half a metre of camera travel, no pop).
Nothing depends on time: a camera that does not move sees the same background in every frame.
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


def row_fill(image: np.ndarray, known: np.ndarray) -> np.ndarray:
    """Fill unknown pixels by linear interpolation along each row between the nearest known pixels.

    A standing person leaves a tall, narrow hole: across it, walls, floors and horizons continue.
    image: [H, W, C] float; known: [H, W] bool. Rows with nothing known are left for the caller.
    returns: [H, W, C] float32
    """
    out = np.asarray(image, dtype=np.float32).copy()
    xs = np.arange(image.shape[1])
    for y in np.nonzero((~known).any(axis=1) & known.any(axis=1))[0]:
        k = known[y]
        for c in range(image.shape[2]):
            out[y, ~k, c] = np.interp(xs[~k], xs[k], image[y, k, c])
    return out


def remove_person(image: np.ndarray, mask: np.ndarray, grow: float = 0.015) -> np.ndarray:
    """The photo with the person removed and the hole filled.

    The hole (mask grown by `grow` of the image height, covering its soft edge and the person's
    contact shadow) is filled along rows (walls and floor continue across it), softened vertically
    inside the hole, and any rows with nothing known are filled by the push-pull pyramid.
    image: [H, W, 3] uint8; mask: [H, W] float person mask in [0, 1]
    returns: [H, W, 3] float32 in [0, 1]
    """
    from scipy import ndimage

    H, W = mask.shape
    r = max(1, int(round(grow * H)))
    hole = ndimage.binary_dilation(mask > 0.1, iterations=1, structure=np.ones((3, 3), bool))
    hole = ndimage.distance_transform_edt(~hole) <= r  # a disc of radius r (fast for any r)
    img = image.astype(np.float32) / 255.0
    filled = row_fill(img, ~hole)
    soft = ndimage.uniform_filter1d(filled, size=max(3, r), axis=0, mode="nearest")
    filled = np.where(hole[..., None], soft, img)
    rows_known = (~hole).any(axis=1)
    if not rows_known.all():  # whole rows inside the hole (a person cut by the frame's edge)
        filled = push_pull_fill(filled, np.broadcast_to(rows_known[:, None], hole.shape) | ~hole)
    return filled


BACKDROP_DEFAULT = 2.0  # metres behind the person when the photo shows no floor-to-wall line
BACKDROP_RANGE = (0.8, 8.0)  # metres: where the backdrop may stand behind the person
CANVAS_WIDTH = 1024  # pixels across the soft canvas (the whole turn around the photo camera)
FADE_WIDTHS = 0.75  # the continuation fades into the row colour over this many photo widths
EDGE_BAND = 0.08  # fraction of the photo width beyond its edge over which the photo fades into the canvas
CAMERA_FADE = 0.5  # metres of camera travel over which the backdrop fades when the camera passes behind it


@dataclass(frozen=True, eq=False)
class Backdrop:
    """The photo's world: the filled photo on the ground and a backdrop plane, and a soft canvas beyond.

    The canvas is indexed by the angular map of the photo camera (`angular_uv`): photo pixel coordinates
    inside the photo's field of view, continued linearly in the horizontal angle beyond it.
    """

    image: np.ndarray  # [H, W, 3] float32 in [0, 1]: the photo with the person removed
    canvas: np.ndarray  # [h, w, 3] float32: the soft continuation, covering `canvas_box`
    K: np.ndarray  # [3, 3] photo intrinsics at the image's size
    world_to_cam: np.ndarray  # [4, 4] the photo camera
    plane: np.ndarray  # [4] backdrop n (unit, horizontal, towards the photo camera) and c: n . X = c, metres
    canvas_box: np.ndarray  # [4] (u0, v0, u1, v1) photo pixel coordinates of the canvas' outer edges


def angular_constants(K: np.ndarray, width: int) -> tuple[float, float, float]:
    """(phi_e, slope_o, U) of the angular map: the photo's horizontal half field of view to its farther
    edge (radians), the map's pixels per radian beyond it (continuing the pinhole's slope at the edge),
    and the half width of the whole turn (pixels, u at phi = +-pi is cx +- U)."""
    fx, cx = float(K[0, 0]), float(K[0, 2])
    phi_e = math.atan(max(cx, width - cx) / fx)
    slope_o = fx / math.cos(phi_e) ** 2
    return phi_e, slope_o, fx * math.tan(phi_e) + slope_o * (math.pi - phi_e)


def angular_uv(q, K: np.ndarray, width: int) -> tuple[Tensor, Tensor]:
    """Photo coordinates of points or directions in the photo camera's frame, continued past its view.

    q: [..., 3] torch, photo-camera coordinates (x right, y down, z forward); any length
    returns: (u, v) [...] pixels; equal to the pinhole projection inside the photo's horizontal field of
    view; beyond it u grows linearly with the horizontal angle and v keeps the edge's vertical scale, so
    the map is continuous everywhere and u = cx +- U behind the camera (the two ends meet there).
    """
    import torch

    fx, fy, cx, cy = float(K[0, 0]), float(K[1, 1]), float(K[0, 2]), float(K[1, 2])
    phi_e, slope_o, _ = angular_constants(K, width)
    phi = torch.atan2(q[..., 0], q[..., 2])  # horizontal angle from the photo's axis
    horiz = torch.sqrt(q[..., 0] ** 2 + q[..., 2] ** 2).clamp_min(1e-9)
    slope = q[..., 1] / horiz  # tangent of the elevation (down positive)
    pc = phi.clamp(-phi_e, phi_e)
    u_in = cx + fx * torch.tan(pc)
    u = torch.where(
        phi.abs() <= phi_e, u_in, cx + torch.sign(phi) * (fx * math.tan(phi_e) + slope_o * (phi.abs() - phi_e))
    )
    v = cy + fy * slope / torch.cos(pc)
    return u, v


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

    from .raster import sample_bilinear

    H, W = filled.shape[:2]
    D = backdrop_distance(filled, K, world_to_cam, subject_pos, mask) if distance is None else float(distance)
    n, _ = _backdrop_normal(world_to_cam, subject_pos)
    c = float(n @ np.asarray(subject_pos, np.float64)) - D
    # 1. The canvas grid: u over the whole turn, v from one photo height above to one below
    _, _, U = angular_constants(K, W)
    cx = float(K[0, 2])
    u0, u1, v0, v1 = cx - U, cx + U, -float(H), 2.0 * H
    s = (u1 - u0) / CANVAS_WIDTH  # photo pixels per canvas pixel
    ch = int(math.ceil((v1 - v0) / s))
    v1 = v0 + ch * s
    uu = torch.from_numpy(u0 + (np.arange(CANVAS_WIDTH) + 0.5) * s)
    vv = torch.from_numpy(v0 + (np.arange(ch) + 0.5) * s)
    gv, gu = torch.meshgrid(vv, uu, indexing="ij")  # [ch, cw] photo coordinates of canvas pixel centres
    # 2. The photo, area-averaged to the canvas' scale, where the canvas lies over it
    img = torch.from_numpy(np.ascontiguousarray(filled, dtype=np.float32)).permute(2, 0, 1)[None]
    small = F.interpolate(img, size=(max(1, round(H / s)), max(1, round(W / s))), mode="area")[0].permute(1, 2, 0)
    sh, sw = small.shape[:2]
    col = sample_bilinear(small, gu * (sw / W), gv * (sh / H)).numpy()  # [ch, cw, 3]
    known = ((gu >= 0) & (gu <= W) & (gv >= 0) & (gv <= H)).numpy()
    # 3. Continued outwards smoothly, then faded into each row's mean colour (a turn closes on it)
    pp = push_pull_fill(col, known)
    inside_cols = known.any(0)
    row = pp[:, inside_cols].mean(1, keepdims=True)  # [ch, 1, 3]
    # below the horizon the far colour is one floor colour (rows there are circles on the ground around
    # the photo camera: per-row colours would draw rings), taken from the photo's rows under the horizon
    v_h = _horizon_row(K, world_to_cam)
    floor_rows = (vv.numpy() > max(v_h, 0.0) + 0.05 * H) & (vv.numpy() < H)
    if floor_rows.any():
        floor = np.median(row[floor_rows, 0], axis=0)  # [3]
        b = np.clip((vv.numpy() - v_h) / (0.05 * H), 0.0, 1.0)[:, None, None]  # [ch, 1, 1]: 0 above the horizon
        row = (1 - b) * row + b * floor
    dist = np.maximum(np.maximum(-gu.numpy(), gu.numpy() - W), 0.0)  # photo px outside, horizontally
    a = np.exp(-dist / (FADE_WIDTHS * W))[..., None]
    canvas = (a * pp + (1 - a) * row).astype(np.float32)
    return Backdrop(
        image=np.ascontiguousarray(filled, dtype=np.float32),
        canvas=canvas,
        K=np.asarray(K, np.float64),
        world_to_cam=np.asarray(world_to_cam, np.float64),
        plane=np.append(n, c),
        canvas_box=np.array([u0, v0, u1, v1]),
    )


def _horizon_row(K: np.ndarray, world_to_cam: np.ndarray) -> float:
    """Photo row of the ground's vanishing line straight ahead (the horizon), pixels."""
    fwd = world_to_cam[2, :3].copy()  # the camera's optical axis in world coordinates
    fwd[1] = 0.0
    q = world_to_cam[:3, :3] @ (fwd / max(np.linalg.norm(fwd), 1e-9))
    return float(K[1, 1] * q[1] / max(q[2], 1e-6) + K[1, 2])


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


SOFT_FACTOR = 4  # the soft canvas layer is computed at 1/4 of the output size per axis and upsampled


def render_background(backdrop: Backdrop, K_out, world_to_cam_out, width: int, height: int) -> Tensor:
    """The photo's world seen through each output camera.

    Fast path: the soft canvas (smooth by construction) at 1/SOFT_FACTOR of the size, upsampled; the photo
    itself through one homography per plane (output pixel -> photo pixel, a few multiply-adds per pixel),
    sampled only where it shows. `render_background_reference` is the plain twin.
    K_out: [B, 3, 3]; world_to_cam_out: [B, 4, 4]
    returns: [B, H, W, 3] float32 torch tensor in [0, 1]
    """
    import torch
    import torch.nn.functional as F

    K = np.asarray(K_out, np.float64).reshape(-1, 3, 3)
    M = np.asarray(world_to_cam_out, np.float64).reshape(-1, 4, 4)
    B = len(K)
    # 1. The soft layer: [B, h, w, 3] at low resolution (image coordinates scale exactly), then bilinear up
    ws, hs = max(1, math.ceil(width / SOFT_FACTOR)), max(1, math.ceil(height / SOFT_FACTOR))
    Ks = K.copy()
    Ks[:, 0] *= ws / width
    Ks[:, 1] *= hs / height
    soft = render_background_reference(backdrop, Ks, M, ws, hs, sharp=False)
    out = F.interpolate(soft.permute(0, 3, 1, 2), size=(height, width), mode="bilinear", align_corners=False)
    out = out.permute(0, 2, 3, 1).contiguous()  # [B, H, W, 3]
    # 2. The photo on the planes: per camera, the weight and the photo coordinates of every pixel
    image = torch.from_numpy(backdrop.image)
    ys, xs = torch.meshgrid(
        torch.arange(height, dtype=torch.float32) + 0.5, torch.arange(width, dtype=torch.float32) + 0.5, indexing="ij"
    )  # [H, W] pixel centres
    for b in range(B):
        fade = _backdrop_fade(backdrop, M[b])
        w, u, v = _photo_on_planes(backdrop, K[b], M[b], xs, ys, with_backdrop=fade > 0)
        if 0 < fade < 1:  # a camera passing the backdrop's plane: blend towards the world without it
            w0, u0, v0 = _photo_on_planes(backdrop, K[b], M[b], xs, ys, with_backdrop=False)
            out[b] = fade * _mix(image, w, u, v, out[b]) + (1 - fade) * _mix(image, w0, u0, v0, out[b])
        else:
            out[b] = _mix(image, w, u, v, out[b])
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
    ww = w[idx][:, None]
    out[idx] = soft[idx] + ww * (sample_bilinear(image, u[idx], v[idx]) - soft[idx])
    return out


def _backdrop_fade(backdrop: Backdrop, world_to_cam: np.ndarray) -> float:
    """How much of the backdrop a camera sees: 1 in front of it, 0 behind, a ramp over CAMERA_FADE metres."""
    o = -world_to_cam[:3, :3].T @ world_to_cam[:3, 3]
    return float(np.clip((backdrop.plane[:3] @ o - backdrop.plane[3]) / CAMERA_FADE, 0.0, 1.0))


def _photo_on_planes(backdrop: Backdrop, K: np.ndarray, world_to_cam: np.ndarray, xs, ys, with_backdrop: bool):
    """(weight, u, v) [H, W] of the photo at every output pixel, by one homography per plane.

    A pixel p = (x, y, 1) has the world ray d = A p (A = R^T K^-1) from the camera centre o. On the plane
    n . X = c it hits X = o + t d with t = -side / (n . d), side = n . o - c, and the photo camera sees
    q = q0 + t R_ph d with q0 = R_ph o + t_ph; so q (n . d) = (q0 (n A) - side R_ph A) p: a homography.
    The nearer plane with t > 0 wins; weight 1 inside the photo, a ramp over EDGE_BAND outside, 0 where
    the hit is behind the photo camera or no plane is hit.
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
    Hp, Wp = backdrop.image.shape[:2]
    band = max(1.0, EDGE_BAND * Wp)
    outside = torch.maximum(torch.maximum(-u, u - Wp), torch.maximum(-v, v - Hp)).clamp_min(0)
    w = (1 - outside / band).clamp(0, 1) * hit
    return w, u, v


def render_background_reference(
    backdrop: Backdrop, K_out, world_to_cam_out, width: int, height: int, sharp: bool = True
) -> Tensor:
    """The plain twin of `render_background`: every pixel's ray cut with the planes, projected, sampled.

    sharp: False leaves out the photo itself (the soft canvas only).

    K_out: [B, 3, 3]; world_to_cam_out: [B, 4, 4]
    returns: [B, H, W, 3] float32 torch tensor in [0, 1]
    """
    import torch

    o, d = world_rays(K_out, world_to_cam_out, width, height)  # [B, 3], [B, HW, 3]
    n = torch.as_tensor(backdrop.plane[:3], dtype=torch.float32)
    c = float(backdrop.plane[3])
    # 1. The ground y = 0 (cameras above it); rays that miss keep their direction (a point at infinity)
    oy = o[:, None, 1]
    tg = torch.where(
        d[..., 1] < -1e-9, -oy / torch.where(d[..., 1] < -1e-9, d[..., 1], -1.0), torch.full_like(d[..., 1], math.inf)
    )
    tg = torch.where(oy > 0, tg, torch.full_like(tg, math.inf))
    # 2. The backdrop: hit from its front side only (a camera behind it does not see it)
    side = o @ n - c  # [B] metres in front of the backdrop
    dn = d @ n  # [B, HW]
    tb = torch.where(dn < -1e-9, side[:, None] / (-torch.where(dn < -1e-9, dn, -1.0)), torch.full_like(dn, math.inf))
    tb = torch.where(side[:, None] > 0, tb, torch.full_like(tb, math.inf))
    fade = (side / CAMERA_FADE).clamp(0, 1)  # [B] how much of the backdrop a camera near its plane sees
    out = _shade(backdrop, o, d, torch.minimum(tg, tb), sharp)
    part = (fade > 0) & (fade < 1)
    if part.any():  # a camera passing the backdrop's plane: blend towards the world without it
        without = _shade(backdrop, o[part], d[part], tg[part], sharp)
        f = fade[part][:, None, None]
        out[part] = f * out[part] + (1 - f) * without
    return out.reshape(-1, height, width, 3)


def _shade(backdrop: Backdrop, o, d, t, sharp: bool = True):
    """Colours [B, HW, 3] of rays o + t d (t = inf: the direction d itself) from the photo and canvas."""
    import torch

    from .raster import sample_bilinear

    R = torch.as_tensor(backdrop.world_to_cam[:3, :3], dtype=torch.float32)
    tr = torch.as_tensor(backdrop.world_to_cam[:3, 3], dtype=torch.float32)
    hit = torch.isfinite(t)
    X = o[:, None] + torch.where(hit, t, torch.zeros_like(t))[..., None] * d  # [B, HW, 3] world points
    q = torch.where(hit[..., None], X @ R.T + tr, d @ R.T)  # photo camera frame: points, or directions
    H, W = backdrop.image.shape[:2]
    u, v = angular_uv(q, backdrop.K, W)
    # the sharp photo inside its frame (exactly), blending over a band outside it into the soft canvas
    band = max(1.0, EDGE_BAND * W)
    outside = torch.maximum(torch.maximum(-u, u - W), torch.maximum(-v, v - H)).clamp_min(0)  # px beyond the frame
    w = ((1 - outside / band).clamp(0, 1) * (q[..., 2] > 0)).unsqueeze(-1)
    u0, v0, u1, v1 = (float(x) for x in backdrop.canvas_box)
    ch, cw = backdrop.canvas.shape[:2]
    soft = sample_bilinear(torch.from_numpy(backdrop.canvas), (u - u0) * (cw / (u1 - u0)), (v - v0) * (ch / (v1 - v0)))
    if not sharp:
        return soft
    photo = sample_bilinear(torch.from_numpy(backdrop.image), u, v)
    return w * photo + (1 - w) * soft
