"""Bone maps per second at 512x512: the fast rasteriser against its plain reference twin, same run.

    .venv/bin/python benchmarks/bonemap_speed.py [--size 512] [--views 8] [--frames 6] [--ref-maps 3] [--job]

Scene: hvg's default skeleton (26 ellipsoids) in a few poses, seen by an orbit of views at 2.5 m.
"Bone map" = all channels (semantic, normal, depth, mask, label) through `render_bonemaps`.
The reference twin is timed on the rasteriser alone (its outputs would then be formatted the same way),
so the ratio slightly favours the reference. The machine's load average is printed: other processes
sharing the CPU lower both figures.
"""

from __future__ import annotations

import argparse
import math
import os
import time

import numpy as np


def look_at_orbit(
    views: int,
    width: int,
    height: int,
    radius: float = 2.5,
    elevation: float = 10.0,
    fov: float = 40.0,
    target: tuple[float, float, float] = (0.0, 0.9, 0.0),
) -> tuple[np.ndarray, np.ndarray]:
    """[V, 3, 3] K and [V, 4, 4] OpenCV world_to_cam of an orbit around target (azimuth 0 on +z)."""
    f = 0.5 * height / math.tan(math.radians(fov) / 2)
    K = np.array([[f, 0, width / 2], [0, f, height / 2], [0, 0, 1.0]])
    Ks, Ms = [], []
    t = np.asarray(target)
    for i in range(views):
        az, el = 2 * math.pi * i / views, math.radians(elevation)
        pos = t + radius * np.array([math.sin(az) * math.cos(el), math.sin(el), math.cos(az) * math.cos(el)])
        z = (t - pos) / np.linalg.norm(t - pos)
        x = np.cross(np.array([0.0, -1.0, 0.0]), z)
        x /= np.linalg.norm(x)
        y = np.cross(z, x)
        M = np.eye(4)
        M[:3, :3] = np.stack([x, y, z])
        M[:3, 3] = -M[:3, :3] @ pos
        Ks.append(K)
        Ms.append(M)
    return np.stack(Ks), np.stack(Ms)


def demo_poses(frames: int) -> np.ndarray:
    """[T, 24, 3] a few poses: arms swinging down and forward, legs stepping, torso twisting."""
    poses = np.zeros((frames, 24, 3))
    for t in range(frames):
        ph = 2 * math.pi * t / max(frames, 1)
        poses[t, 16] = [0.0, 0.3 * math.sin(ph), -1.1]  # left shoulder: arm down
        poses[t, 17] = [0.0, -0.3 * math.sin(ph), 1.1]
        poses[t, 18] = [0.0, 0.8 + 0.4 * math.sin(ph), 0.0]  # elbows bent
        poses[t, 19] = [0.0, -0.8, 0.0]
        poses[t, 1] = [-0.5 * math.sin(ph), 0.0, 0.0]  # hips: stepping
        poses[t, 2] = [0.5 * math.sin(ph), 0.0, 0.0]
        poses[t, 4] = [0.6 * max(math.sin(ph), 0.0), 0.0, 0.0]
        poses[t, 5] = [0.6 * max(-math.sin(ph), 0.0), 0.0, 0.0]
        poses[t, 3] = [0.0, 0.3 * math.sin(ph), 0.0]  # spine twist
    return poses


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--views", type=int, default=8)
    ap.add_argument("--frames", type=int, default=6)
    ap.add_argument("--fov", type=float, default=40.0, help="vertical degrees (40: the cameras' default)")
    ap.add_argument("--radius", type=float, default=2.5)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--ref-maps", type=int, default=3)
    ap.add_argument("--job", action="store_true", help="also time a 21-view x 48-frame job (1008 maps)")
    args = ap.parse_args()

    import torch

    from hvg_cli.body.skeleton import DEFAULT_PELVIS_HEIGHT, default_skeleton
    from hvg_cli.bonemap.parts import NUM_PARTS, default_radii
    from hvg_cli.bonemap.raster import rasterise_reference
    from hvg_cli.bonemap.render import posed_ellipsoids, render_bonemaps
    from hvg_cli.core.types import CameraGrid

    S, V, T = args.size, args.views, args.frames
    skel = default_skeleton()
    radii = default_radii(skel)
    poses = demo_poses(T)
    trans = np.tile([0.0, DEFAULT_PELVIS_HEIGHT, 0.0], (T, 1))

    def grid_for(V: int, T: int) -> CameraGrid:
        K, M = look_at_orbit(V, S, S, radius=args.radius, fov=args.fov)
        return CameraGrid(np.repeat(K[:, None], T, 1), np.repeat(M[:, None], T, 1), S, S, "views", closed=True)

    grid = grid_for(V, T)
    print(
        f"torch {torch.__version__}, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}; "
        f"{NUM_PARTS} ellipsoids, {S}x{S}, orbit radius {args.radius} m, fov {args.fov} deg"
    )
    render_bonemaps(poses[:1], trans[:1], skel, radii, grid_for(1, 1))  # warm-up
    rates = []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        maps = render_bonemaps(poses, trans, skel, radii, grid)
        rates.append(V * T / (time.perf_counter() - t0))
    fast_rate = float(np.median(rates))
    print(
        f"fast      : {V * T} maps x {args.repeats} runs: "
        + ", ".join(f"{r:.1f}" for r in rates)
        + f" maps/s; median {fast_rate:.1f} maps/s (coverage {maps.mask.mean():.1%})"
    )

    # the reference twin, rasterisation only, one map at a time, on one thread like the fast path's workers
    n = args.ref_maps
    c, a, s = posed_ellipsoids(poses, trans, skel, radii)
    f = np.arange(n) % T
    K = grid.K.reshape(-1, 3, 3)[:n]
    M = grid.world_to_cam.reshape(-1, 4, 4)[:n]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    t0 = time.perf_counter()
    for i in range(n):
        rasterise_reference(
            c[f[i : i + 1]], a[f[i : i + 1]], s[f[i : i + 1]], K[i : i + 1], M[i : i + 1], S, S, dtype=torch.float32
        )
    ref_rate = n / (time.perf_counter() - t0)
    torch.set_num_threads(threads)
    print(f"reference : {n} maps = {ref_rate:.2f} maps/s (float32, 1 thread)")
    print(f"ratio     : fast / reference = {fast_rate / ref_rate:.0f}x   (aim: fast >= 30 maps/s)")

    if args.job:
        V2, T2 = 21, 48
        poses2 = demo_poses(T2)
        trans2 = np.tile([0.0, DEFAULT_PELVIS_HEIGHT, 0.0], (T2, 1))
        t0 = time.perf_counter()
        render_bonemaps(poses2, trans2, skel, radii, grid_for(V2, T2))
        job_s = time.perf_counter() - t0
        print(f"job       : 21 views x 48 frames = 1008 maps in {job_s:.1f} s ({1008 / job_s:.1f} maps/s)")


if __name__ == "__main__":
    main()
