"""Bone maps of a whole job: pose the ellipsoid body per frame, rasterise it for every view and frame.

Also the pictures a user looks at: channels side by side (`to_images`) and views in a grid (`grid_images`).
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from hvg_cli.body.kinematics import axis_angle_to_matrix, forward_kinematics
from hvg_cli.bonemap.parts import palette_with_background, part_ellipsoids
from hvg_cli.core.progress import SILENT, Reporter
from hvg_cli.core.types import BoneMaps, CameraGrid, Skeleton

CHANNELS = ("semantic", "normal", "depth", "mask")


def posed_ellipsoids(poses: np.ndarray, trans: np.ndarray, skeleton: Skeleton, radii: np.ndarray
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The body's ellipsoids in every frame.

    poses:  [T, 24, 3] axis-angle, local to the parent
    trans:  [T, 3] world pelvis position, metres
    radii:  [P, 2] metres
    returns: centers [T, P, 3], axes [T, P, 3, 3], semi [T, P, 3] (see parts.part_ellipsoids)
    """
    poses = np.asarray(poses, dtype=np.float64)
    trans = np.asarray(trans, dtype=np.float64)
    G, joints = forward_kinematics(axis_angle_to_matrix(poses), skeleton.offsets, skeleton.parents, trans)
    return part_ellipsoids(joints, G, radii)


def render_bonemaps(poses: np.ndarray, trans: np.ndarray, skeleton: Skeleton, radii: np.ndarray,
                    grid: CameraGrid, progress: Reporter = SILENT, chunk: int = 16) -> BoneMaps:
    """Render the bone maps of every view and frame of a job.

    poses:    [T, 24, 3] axis-angle;  trans: [T, 3] pelvis world position, metres
    skeleton: the rest skeleton the poses act on;  radii: [P, 2] short semi-axes, metres
    grid:     cameras [V, T] (K, world_to_cam), width x height
    chunk:    maps rasterised at once (memory stays bounded by chunk x H x W)
    returns:  BoneMaps [V, T, H, W, ...]: semantic uint8, normal float16 (x right, y up, z to viewer),
              depth float32 (camera z, metres), mask bool, label int8 (-1 empty)
    """
    import torch

    from hvg_cli.bonemap.raster import rasterise

    V, T = grid.shape
    H, W = int(grid.height), int(grid.width)
    if poses.shape[0] != T or trans.shape[0] != T:
        raise ValueError(f"render_bonemaps: {poses.shape[0]} poses and {trans.shape[0]} positions for a grid of {T} frames")
    centers, axes, semi = posed_ellipsoids(poses, trans, skeleton, radii)  # [T, P, ...]
    palette = torch.from_numpy(palette_with_background())  # [P + 1, 3], label -1 -> black
    K = grid.K.reshape(V * T, 3, 3)  # [N, 3, 3], N = V*T, view-major
    w2c = grid.world_to_cam.reshape(V * T, 4, 4)
    frame = np.tile(np.arange(T), V)  # [N] frame of each map

    semantic = np.empty((V * T, H, W, 3), np.uint8)
    normal = np.empty((V * T, H, W, 3), np.float16)
    depth = np.empty((V * T, H, W), np.float32)
    label = np.empty((V * T, H, W), np.int8)
    N = V * T
    with progress.task("bone maps", N, unit="maps") as task:
        for lo in range(0, N, chunk):
            hi = min(lo + chunk, N)
            f = frame[lo:hi]
            r = rasterise(centers[f], axes[f], semi[f], K[lo:hi], w2c[lo:hi], W, H)
            semantic[lo:hi] = palette[r.label].numpy()
            normal[lo:hi] = r.normal.to(torch.float16).numpy()
            depth[lo:hi] = r.depth.to(torch.float32).numpy()
            label[lo:hi] = r.label.to(torch.int8).numpy()
            task.advance(hi - lo)
    return BoneMaps(
        semantic=semantic.reshape(V, T, H, W, 3),
        normal=normal.reshape(V, T, H, W, 3),
        depth=depth.reshape(V, T, H, W),
        mask=(label >= 0).reshape(V, T, H, W),
        label=label.reshape(V, T, H, W),
    )


def depth_range(depth: np.ndarray, mask: np.ndarray) -> tuple[float, float]:
    """Robust (near, far) of a job's depths: 1st and 99th percentiles of covered pixels (metres)."""
    d = depth[mask]
    if d.size == 0:
        return 0.0, 1.0
    if d.size > 2_000_000:  # a strided sample is plenty for percentiles
        d = d[:: d.size // 1_000_000]
    lo, hi = np.percentile(d, [1.0, 99.0])
    return float(lo), float(max(hi, lo + 1e-3))


def to_images(maps: BoneMaps, channels: Sequence[str] = CHANNELS) -> np.ndarray:
    """Channels of the bone maps side by side, as pictures.

    semantic: part colours; normal: (n + 1) / 2 as RGB (black where empty); depth: near bright, far dim,
    normalised over the whole job (1st..99th percentile), black where empty; mask: white on black.
    returns: [V, T, H, W * len(channels), 3] uint8
    """
    V, T, H, W = maps.shape
    unknown = [c for c in channels if c not in CHANNELS]
    if unknown or not channels:
        from hvg_cli.core.errors import BadInput

        raise BadInput(f"unknown bone map channel(s): {', '.join(unknown) or '(none given)'}",
                       hint=f"choose among {','.join(CHANNELS)}")
    out = np.zeros((V, T, H, W * len(channels), 3), np.uint8)
    mask = maps.mask
    for i, name in enumerate(channels):
        view = out[..., i * W:(i + 1) * W, :]
        if name == "semantic":
            view[:] = maps.semantic
        elif name == "normal":
            rgb = np.clip((maps.normal.astype(np.float32) + 1.0) * 127.5 + 0.5, 0, 255).astype(np.uint8)
            view[:] = np.where(mask[..., None], rgb, 0)
        elif name == "depth":
            lo, hi = depth_range(maps.depth, mask)
            near = 1.0 - np.clip((maps.depth - lo) / (hi - lo), 0.0, 1.0)  # 1 near, 0 far
            grey = (40.0 + 215.0 * near + 0.5).astype(np.uint8)
            view[:] = np.where(mask, grey, 0)[..., None]
        else:  # mask
            view[:] = (mask.astype(np.uint8) * 255)[..., None]
    return out


def grid_images(images: np.ndarray) -> np.ndarray:
    """Views laid out in a near-square grid per frame (row-major, view 0 top left, black filler).

    images:  [V, T, H, W, 3]
    returns: [T, H * rows, W * cols, 3], cols = ceil(sqrt(V)), rows = ceil(V / cols)
    """
    V, T, H, W, C = images.shape
    cols = int(math.ceil(math.sqrt(V)))
    rows = int(math.ceil(V / cols))
    padded = np.zeros((rows * cols, T, H, W, C), images.dtype)
    padded[:V] = images
    g = padded.reshape(rows, cols, T, H, W, C)  # [rows, cols, T, H, W, C]
    g = g.transpose(2, 0, 3, 1, 4, 5)  # [T, rows, H, cols, W, C]
    return g.reshape(T, rows * H, cols * W, C)  # [T, H*rows, W*cols, C]
