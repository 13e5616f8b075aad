"""The README main job at 512×512, timed, and the preview renderer against the old one in the same run.

1. The job as `hvg animate` runs it (fresh cache): seconds per stage, then the cached re-run beside it.
2. The renderer alone on the job's motion and cameras: the fast engine (compiled kernels, frames on worker
   threads) and the legacy engine (the torch renderer it replaced), each in its own process so that each
   peak memory (max RSS) is its own. Printed: frames/s by the wall clock, frames per CPU-second (what the
   renderer costs whatever else the machine runs; "person only" renders with a transparent background, i.e.
   without the photo background's per-frame cost), the first frame's start-up (numba's kernels loaded or
   compiled) apart, and peak memory while rendering (the process' resident memory before it beside the
   peak during it: what the render adds on top of the job), new beside old.

    python benchmarks/animate_speed.py [--frames N] [--photo P] [--motion M] [--orbit DEG] [--size PX]
                                       [--skip-job] [--workers N]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"


def _settings(args):
    from hvg_cli.core.settings import animate_from_flags

    return animate_from_flags(orbit=args.orbit, resolution=args.size, frames=args.frames, backend="preview")


def _status_mb(field: str) -> float:
    """VmRSS / VmHWM (peak) of this process from /proc, MB (Linux)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024.0
    raise RuntimeError(f"no {field} in /proc/self/status")


def _reset_peak() -> None:
    """Start a new peak-memory window (Linux: writing 5 to clear_refs resets VmHWM to the current RSS)."""
    Path("/proc/self/clear_refs").write_text("5")


def render_worker(args) -> int:
    """One engine over the whole job in this process; prints one JSON line."""
    from hvg_cli import pipeline
    from hvg_cli.backends.preview.render import render_preview
    from hvg_cli.core.cache import StageCache
    from hvg_cli.pipeline import stages

    settings = _settings(args)
    cache = StageCache(Path(args.cache))
    job = pipeline.assemble_job(Path(args.photo), args.motion, settings, cache)
    model = stages.preview_model(job.subject, cache)
    g = job.grid
    # 1. Start-up: the first frame alone (numba loads its compiled kernels from the cache, or compiles them)
    t = time.perf_counter()
    one = dataclasses.replace(g, K=g.K[:, :1], world_to_cam=g.world_to_cam[:, :1])
    render_preview(
        job.subject, job.motion.poses[:1], job.motion.trans[:1], one, args.background, model=model, engine=args.worker
    )
    startup = time.perf_counter() - t
    # 2. The whole job, with its own peak-memory window
    import gc

    gc.collect()
    before = _status_mb("VmRSS")
    _reset_peak()
    t, c = time.perf_counter(), time.process_time()
    frames = render_preview(
        job.subject, job.motion.poses, job.motion.trans, g, args.background, model=model, engine=args.worker
    )
    wall, cpu = time.perf_counter() - t, time.process_time() - c
    n = int(frames.shape[0] * frames.shape[1])
    print(
        json.dumps(
            {
                "engine": args.worker,
                "frames": n,
                "wall_s": wall,
                "cpu_s": cpu,
                "startup_s": startup,
                "peak_mb": _status_mb("VmHWM"),
                "before_mb": before,
                "workers": os.environ.get("HVG_PREVIEW_WORKERS", "auto"),
            }
        )
    )
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--photo", default=str(DATA / "photo_woman_street.jpg"))
    ap.add_argument("--motion", default=str(DATA / "dance_red_skirt.mp4"))
    ap.add_argument("--orbit", type=float, default=360.0)
    ap.add_argument("--frames", type=int, default=None, help="at most this many frames (default: the whole motion)")
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--skip-job", action="store_true", help="only the renderer comparison (part 2)")
    ap.add_argument("--workers", type=int, default=None, help="worker threads of the fast engine (default: the cores)")
    ap.add_argument("--worker", choices=("fast", "legacy"), help=argparse.SUPPRESS)
    ap.add_argument("--cache", help=argparse.SUPPRESS)
    ap.add_argument("--background", default="photo", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        return render_worker(args)

    from hvg_cli import pipeline
    from hvg_cli.core.cache import StageCache
    from hvg_cli.pipeline import stages

    settings = _settings(args)
    ok = True
    with tempfile.TemporaryDirectory(prefix="hvg-bench-") as tmp:
        cache = StageCache(Path(tmp) / "cache")
        # 1. The README job, first run and cached re-run
        if not args.skip_job:
            out = Path(tmp) / "out.mp4"
            t = time.perf_counter()
            first = pipeline.animate_job(Path(args.photo), args.motion, settings, out, cache=cache)
            first_s = time.perf_counter() - t
            t = time.perf_counter()
            again = pipeline.animate_job(Path(args.photo), args.motion, settings, out, cache=cache)
            again_s = time.perf_counter() - t
            ok = again.cached
            print(
                f"job: {Path(args.photo).name} + {Path(args.motion).name}, orbit {args.orbit:g}°, "
                f"{args.size}x{args.size}, {first.frames} frames, backend {first.backend}, {os.cpu_count()} CPUs"
            )
            print("first run, seconds per stage:")
            for name, s in first.stage_seconds.items():
                print(f"  {name:<10} {s:8.2f}")
            print(f"  {'total':<10} {first_s:8.2f}")
            print(
                f"generate stage (photo mesh + render): {first.frames / first.stage_seconds['generate']:.2f} frames/s"
            )
            print(
                f"cached re-run: {again_s:.2f} s (cached={again.cached}) vs first run {first_s:.2f} s "
                f"-> {again_s / first_s * 100:.1f}% of the first run"
            )
        else:  # the motion, subject and photo mesh into the cache for the workers
            job = pipeline.assemble_job(Path(args.photo), args.motion, settings, cache)
            stages.preview_model(job.subject, cache)
        # 2. The renderer alone, new and old, each in a fresh process (its own peak memory)
        cmd = [
            sys.executable,
            str(Path(__file__).resolve()),
            "--photo",
            args.photo,
            "--motion",
            args.motion,
            "--orbit",
            str(args.orbit),
            "--size",
            str(args.size),
            "--cache",
            str(cache.root),
        ]
        if args.frames:
            cmd += ["--frames", str(args.frames)]
        env = dict(os.environ)
        if args.workers:
            env["HVG_PREVIEW_WORKERS"] = str(args.workers)
        res = {}
        for name, extra in (
            ("fast", ["--worker", "fast"]),
            ("legacy", ["--worker", "legacy"]),
            ("person", ["--worker", "fast", "--background", "transparent"]),
        ):
            run = subprocess.run(cmd + extra, env=env, capture_output=True, text=True)
            if run.returncode != 0:
                print(run.stderr, file=sys.stderr)
                return 1
            res[name] = json.loads(run.stdout.strip().splitlines()[-1])
    load = os.getloadavg()[0]
    print(
        f"preview renderer, {res['fast']['frames']} frames at {args.size}x{args.size} over the photo background "
        f"(load average {load:.1f} on {os.cpu_count()} CPUs):"
    )
    print(
        f"  {'':<24} {'frames/s (wall)':>15} {'frames/CPU-s':>13} {'ms CPU/frame':>13} {'start-up s':>11} "
        f"{'RSS before MB':>14} {'peak MB':>8}"
    )
    rows = (
        ("new (fast, workers " + res["fast"]["workers"] + ")", "fast"),
        ("old (legacy torch)", "legacy"),
        ("new, person only", "person"),
    )
    for name, engine in rows:
        r = res[engine]
        print(
            f"  {name:<24} {r['frames'] / r['wall_s']:>15.2f} {r['frames'] / r['cpu_s']:>13.2f} "
            f"{r['cpu_s'] / r['frames'] * 1000:>13.1f} {r['startup_s']:>11.2f} {r['before_mb']:>14.0f} {r['peak_mb']:>8.0f}"
        )
    f, o = res["fast"], res["legacy"]
    print(
        f"  speed-up: {o['wall_s'] / o['frames'] / (f['wall_s'] / f['frames']):.1f}x wall, "
        f"{o['cpu_s'] / o['frames'] / (f['cpu_s'] / f['frames']):.1f}x CPU; "
        f"peak memory while rendering {f['peak_mb']:.0f} MB vs {o['peak_mb']:.0f} MB "
        f"(+{f['peak_mb'] - f['before_mb']:.0f} vs +{o['peak_mb'] - o['before_mb']:.0f} MB over the job before it)"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
