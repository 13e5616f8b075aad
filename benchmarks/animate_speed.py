"""The README main job at 512×512, timed: seconds per stage, preview frames/s, and the cached re-run beside
the first run (both measured here, in one process, on a fresh cache).

    python benchmarks/animate_speed.py [--frames N] [--photo P] [--motion M] [--orbit DEG]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--photo", default=str(DATA / "photo_woman_street.jpg"))
    ap.add_argument("--motion", default=str(DATA / "dance_red_skirt.mp4"))
    ap.add_argument("--orbit", type=float, default=360.0)
    ap.add_argument("--frames", type=int, default=None, help="at most this many frames (default: the whole motion)")
    ap.add_argument("--size", type=int, default=512)
    args = ap.parse_args()

    from hvg_cli import pipeline
    from hvg_cli.core.cache import StageCache
    from hvg_cli.core.jobs import AnimateSettings, CameraSpec, RenderSpec

    settings = AnimateSettings(camera=CameraSpec(orbit=args.orbit, width=args.size, height=args.size),
                               render=RenderSpec(max_frames=args.frames), backend="preview")
    with tempfile.TemporaryDirectory(prefix="hvg-bench-") as tmp:
        cache = StageCache(Path(tmp) / "cache")
        out = Path(tmp) / "out.mp4"
        t = time.perf_counter()
        first = pipeline.animate(Path(args.photo), args.motion, settings, out, cache=cache)
        first_s = time.perf_counter() - t
        t = time.perf_counter()
        again = pipeline.animate(Path(args.photo), args.motion, settings, out, cache=cache)
        again_s = time.perf_counter() - t
    print(f"job: {Path(args.photo).name} + {Path(args.motion).name}, orbit {args.orbit:g}°, "
          f"{args.size}x{args.size}, {first.frames} frames, backend {first.backend}, {os.cpu_count()} CPUs")
    print("first run, seconds per stage:")
    for name, s in first.stage_seconds.items():
        print(f"  {name:<10} {s:8.2f}")
    print(f"  {'total':<10} {first_s:8.2f}")
    print(f"preview renderer: {first.frames / first.stage_seconds['generate']:.2f} frames/s "
          f"({first.stage_seconds['generate'] / first.frames * 1000:.0f} ms per frame)")
    print(f"cached re-run: {again_s:.2f} s (cached={again.cached}) vs first run {first_s:.2f} s "
          f"-> {again_s / first_s * 100:.1f}% of the first run")
    return 0 if again.cached else 1


if __name__ == "__main__":
    sys.exit(main())
