"""The background behind the person: the photo with the person removed and the hole filled, seen
through any camera of the job; or a solid colour; or nothing (transparent).

Hole filling needs no learned weights: across the hole along each row (a standing person leaves a
tall narrow hole; walls, floor lines and horizons continue across it), softened vertically; a push-pull
pyramid fills what rows cannot (known pixels averaged down a pyramid with their weights, the coarse
levels filling the finer ones' holes on the way back up). Both are exact outside the hole.

Seeing the filled photo from another camera: the background is treated as far away (rotation only),
wrapped on a cylinder around the photo camera. Inside the photo's field of view the mapping is the
photo camera's own pinhole, so a camera at the photo's pose sees the photo exactly; outside it
continues with mirrored copies of the photo, scaled so that a full turn closes without a seam.
Nothing depends on time: a camera that does not move sees the same background in every frame.
"""

from __future__ import annotations

import math

import numpy as np


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


def background_rays_to_photo(K_out, world_to_cam_out, K_photo, world_to_cam_photo, width, height, photo_w, photo_h):
    """Where each output pixel's background ray lands in the (mirror-tiled) photo.

    K_out: [B, 3, 3]; world_to_cam_out: [B, 4, 4]; K_photo: [3, 3]; world_to_cam_photo: [4, 4]
    returns: [B, H, W, 2] photo image coordinates (u, v), folded into [0, W] x [0, H]
    """
    import torch

    K_out = torch.as_tensor(np.asarray(K_out), dtype=torch.float64)
    Rout = torch.as_tensor(np.asarray(world_to_cam_out), dtype=torch.float64)[:, :3, :3]
    Rph = torch.as_tensor(np.asarray(world_to_cam_photo), dtype=torch.float64)[:3, :3]
    B = K_out.shape[0]
    ys, xs = torch.meshgrid(torch.arange(height, dtype=torch.float32) + 0.5, torch.arange(width, dtype=torch.float32) + 0.5, indexing="ij")
    pix = torch.stack([xs, ys, torch.ones_like(xs)], -1).reshape(-1, 3)  # [H*W, 3]
    # output pixel -> output camera ray -> world -> photo camera (rotation only: a background far away)
    M = (Rph[None] @ Rout.transpose(1, 2) @ torch.linalg.inv(K_out)).to(torch.float32)  # [B, 3, 3]
    d = pix @ M.transpose(1, 2)  # [B, H*W, 3]
    Kp = np.asarray(K_photo, dtype=np.float64)
    fx, fy, cx, cy = float(Kp[0, 0]), float(Kp[1, 1]), float(Kp[0, 2]), float(Kp[1, 2])
    phi = torch.atan2(d[..., 0], d[..., 2])  # horizontal angle from the photo's axis
    horiz = torch.sqrt(d[..., 0] ** 2 + d[..., 2] ** 2).clamp_min(1e-9)
    slope = d[..., 1] / horiz  # vertical slope
    # photo's own field of view (half-angle to the farther edge), and a continuation beyond it
    phi_e = math.atan(max(cx, photo_w - cx) / fx)
    inside = phi.abs() <= phi_e
    u_in = cx + fx * torch.tan(phi.clamp(-phi_e, phi_e))
    slope_e = fx / math.cos(phi_e) ** 2  # du/dphi at the edge
    # choose the outer slope so that u(pi) - cx is a whole number of photo widths: the turn closes
    span = fx * math.tan(phi_e) + slope_e * (math.pi - phi_e)
    k = max(1, round(span / photo_w))
    slope_o = (k * photo_w - fx * math.tan(phi_e)) / (math.pi - phi_e)
    u_out = cx + torch.sign(phi) * (fx * math.tan(phi_e) + slope_o * (phi.abs() - phi_e))
    u = torch.where(inside, u_in, u_out)
    v = cy + fy * slope / torch.cos(phi.clamp(-phi_e, phi_e))
    u = _reflect(u, photo_w)
    v = _reflect(v, photo_h)
    return torch.stack([u, v], -1).reshape(B, height, width, 2)


def _reflect(x, n: int):
    """Fold image coordinates into [0, n] by mirroring at the image borders (period 2n)."""
    import torch

    p = 2 * n
    y = torch.remainder(x, p)
    return torch.where(y >= n, p - y, y)


def render_background(filled, K_out, world_to_cam_out, K_photo, world_to_cam_photo, width: int, height: int):
    """The filled photo seen through each output camera.

    filled: [Hp, Wp, 3] float32 in [0, 1] (from `remove_person`)
    returns: [B, H, W, 3] float32 torch tensor in [0, 1]
    """
    import torch

    from hvg_cli.backends.preview.raster import sample_bilinear

    tex = torch.from_numpy(np.ascontiguousarray(filled, dtype=np.float32))
    uv = background_rays_to_photo(K_out, world_to_cam_out, K_photo, world_to_cam_photo, width, height, filled.shape[1], filled.shape[0])
    return sample_bilinear(tex, uv[..., 0], uv[..., 1])
