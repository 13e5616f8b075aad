"""Peak memory and time of the tiled sampler vs the video's length (tiny random pipeline, CPU).

    .venv/bin/python benchmarks/sampler_memory.py [--frames 8 32 96] [--size 32] [--steps 2]

Each job runs in a fresh subprocess (so one job's allocations never hide another's). Memory is the
peak resident set during the job (sampled every 2 ms from /proc/self/status) minus the resident set
just before it, i.e. the job's working memory on top of the loaded model (glibc is told to serve large blocks from mmap
and give them back on free, so the resident set follows live memory). The same tile settings are
used for every length; the baseline beside it is mode "full" (one UNet call over all frames, as a
plain SVD pipeline would run), whose memory grows with the number of frames.
Expected: the tiled modes' memory flat within ~15 %, their time growing with the tile evaluations.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

TILES = dict(tile_views=1, tile_frames=8, overlap_views=0, overlap_frames=2, anchor_stride=4)


def rss_mb() -> float:
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def child(frames: int, size: int, steps: int, mode: str) -> dict:
    import torch

    torch.set_num_threads(1)
    import test_diffusion as td  # the synthetic job builder of the tests

    from hvg_cli.backends.diffusion import DiffusionSettings

    td.H = td.W = size
    photo, maps, grid = td.synthetic_job(1, frames)
    pipe = td.tiny_pipe()
    settings = DiffusionSettings(steps=steps, guidance_max=2.5, sampling=mode, decode_chunk=8, **TILES)
    plan = pipe.plan(maps, grid, settings)

    base = rss_mb()
    peak = [base]
    stop = threading.Event()

    def poll() -> None:
        while not stop.is_set():
            peak[0] = max(peak[0], rss_mb())
            time.sleep(0.002)

    th = threading.Thread(target=poll, daemon=True)
    th.start()
    t0 = time.perf_counter()
    latents = pipe(photo, maps, grid, settings, output_type="latent").frames  # as backends.diffusion.generate
    frames_out = pipe.decode(latents, settings.decode_chunk, "uint8")  # [V, T, H, W, 3] uint8
    seconds = time.perf_counter() - t0
    stop.set()
    th.join()
    assert frames_out.shape == (1, frames, size, size, 3)
    return {
        "frames": frames,
        "mode": mode,
        "tile_evaluations": plan.tile_evaluations,
        "unet_frames": plan.unet_frames,
        "seconds": seconds,
        "peak_delta_mb": peak[0] - base,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, nargs="+", default=[8, 32, 96])
    ap.add_argument("--size", type=int, default=32)
    ap.add_argument("--steps", type=int, default=2)
    ap.add_argument("--modes", nargs="+", default=["progressive", "onepass", "full"])
    ap.add_argument("--child", nargs=2, metavar=("FRAMES", "MODE"))
    a = ap.parse_args()
    if a.child:
        print(json.dumps(child(int(a.child[0]), a.size, a.steps, a.child[1])))
        return

    from hvg_cli.backends.diffusion import DiffusionSettings
    from hvg_cli.backends.diffusion.plan import make_plan

    print(f"tiny HVG pipeline, {a.size} px, {a.steps} steps, 1 view, tiles {TILES}")
    # large blocks straight from mmap and back to the OS on free, so the resident set follows live memory
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "65536", "MALLOC_TRIM_THRESHOLD_": "65536"}
    rows = []
    for mode in a.modes:
        for n in a.frames:
            out = subprocess.run(
                [sys.executable, __file__, "--child", str(n), mode, "--size", str(a.size), "--steps", str(a.steps)],
                capture_output=True,
                text=True,
                check=True,
                env=env,
            )
            r = json.loads(out.stdout.strip().splitlines()[-1])
            rows.append(r)
            print(
                f"{mode:12s} {n:4d} frames  {r['tile_evaluations']:4d} tile evals  {r['unet_frames']:5d} unet frames"
                f"  {r['seconds']:7.2f} s  {r['seconds'] / r['tile_evaluations']:6.3f} s/eval"
                f"  peak +{r['peak_delta_mb']:7.1f} MB  (process peak {r['peak_rss_mb']:.0f} MB)",
                flush=True,
            )
    print()
    for mode in a.modes:
        mem = [r["peak_delta_mb"] for r in rows if r["mode"] == mode]
        if len(mem) > 1 and min(mem) > 0:
            print(
                f"{mode:12s} memory max/min over lengths: {max(mem) / min(mem):.2f}  "
                f"({'flat within 15%' if max(mem) / min(mem) <= 1.15 else 'NOT flat'})"
            )
    print()
    print("UNet evaluations of the same job, progressive vs one-pass (25 steps, 4 views closed, 512 px, defaults):")
    for n in a.frames:
        counts = {
            m: make_plan(4, n, 64, 64, DiffusionSettings(sampling=m), closed=True).tile_evaluations
            for m in ("progressive", "onepass")
        }
        print(f"  {n:4d} frames: progressive {counts['progressive']:5d}  one-pass {counts['onepass']:5d}")


if __name__ == "__main__":
    main()
