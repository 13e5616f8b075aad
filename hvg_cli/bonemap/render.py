"""Bone maps of a whole job: pose the ellipsoid body per frame, rasterise it for every view and frame.

Also the pictures a user looks at: channels side by side (`to_images`) and views in a grid (`grid_images`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from hvg_cli.body.kinematics import axis_angle_to_matrix, forward_kinematics
from hvg_cli.bonemap.parts import PALETTE, part_ellipsoids
from hvg_cli.core.progress import SILENT, Reporter
from hvg_cli.core.types import BoneMaps, CameraGrid, Skeleton

CHANNELS = ("semantic", "normal", "depth", "mask")


def posed_ellipsoids(
    poses: np.ndarray, trans: np.ndarray, skeleton: Skeleton, radii: np.ndarray
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


def render_bonemaps(
    poses: np.ndarray,
    trans: np.ndarray,
    skeleton: Skeleton,
    radii: np.ndarray,
    grid: CameraGrid,
    progress: Reporter = SILENT,
    chunk: int | None = None,
    workers: int | None = None,
) -> BoneMaps:
    """Render the bone maps of every view and frame of a job.

    poses:    [T, 24, 3] axis-angle;  trans: [T, 3] pelvis world position, metres
    skeleton: the rest skeleton the poses act on;  radii: [P, 2] short semi-axes, metres
    grid:     cameras [V, T] (K, world_to_cam), width x height
    chunk:    maps rasterised at once (default: about a million pixels), so memory stays bounded
    workers:  chunks rendered in parallel, each single-threaded (default: up to 2 by the CPU count).
              torch's own intra-op threads are set to 1 meanwhile and restored after: independent chunks
              keep both cores busy even when other processes share the CPU, where torch's thread barriers
              stall badly
    returns:  BoneMaps [V, T, H, W, ...]: semantic uint8, normal float16 (x right, y up, z to viewer),
              depth float32 (camera z, metres), mask bool, label int8 (-1 empty)
    """
    import os
    from concurrent.futures import ThreadPoolExecutor

    import torch

    from hvg_cli.bonemap.raster import Raster, rasterise

    V, T = grid.shape
    H, W = int(grid.height), int(grid.width)
    if poses.shape[0] != T or trans.shape[0] != T:
        raise ValueError(
            f"render_bonemaps: {poses.shape[0]} poses and {trans.shape[0]} positions for a grid of {T} frames"
        )
    centers, axes, semi = posed_ellipsoids(poses, trans, skeleton, radii)  # [T, P, ...]
    palette = torch.from_numpy(PALETTE)  # [P, 3] uint8
    N = V * T
    K = grid.K.reshape(N, 3, 3)  # [N, 3, 3], N = V*T, view-major
    w2c = grid.world_to_cam.reshape(N, 4, 4)
    frame = np.tile(np.arange(T), V)  # [N] frame of each map
    chunk = int(chunk or max(1, (1 << 20) // max(H * W, 1)))
    workers = int(workers or max(1, min(2, os.cpu_count() or 1)))

    semantic = np.empty((N, H, W, 3), np.uint8)
    normal = np.empty((N, H, W, 3), np.float16)
    depth = np.empty((N, H, W), np.float32)
    label = np.empty((N, H, W), np.int8)

    def one(lo: int) -> int:
        hi = min(lo + chunk, N)
        f = frame[lo:hi]
        buffers = Raster(
            torch.from_numpy(depth[lo:hi]),
            torch.from_numpy(normal[lo:hi]),
            torch.from_numpy(label[lo:hi]),
            torch.from_numpy(semantic[lo:hi]),
        )
        rasterise(
            centers[f], axes[f], semi[f], K[lo:hi], w2c[lo:hi], W, H, out=buffers, colors=palette
        )  # fills the arrays
        return hi - lo

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with progress.task("bone maps", N, unit="maps") as task, ThreadPoolExecutor(workers) as pool:
            for done in pool.map(one, range(0, N, chunk)):  # in order; progress from this thread only
                task.advance(done)
    finally:
        torch.set_num_threads(threads)
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

        raise BadInput(
            f"unknown bone map channel(s): {', '.join(unknown) or '(none given)'}",
            hint=f"choose among {','.join(CHANNELS)}",
        )
    out = np.zeros((V, T, H, W * len(channels), 3), np.uint8)
    mask = maps.mask
    for i, name in enumerate(channels):
        view = out[..., i * W : (i + 1) * W, :]
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
