"""How fast is `hvg pose` next to raw MediaPipe on the same video, in the same process?

    .venv/bin/python benchmarks/pose_speed.py [VIDEO] [--frames N]

1. decode the video once into memory (not timed as part of either rate);
2. raw: MediaPipe Pose, the same settings hvg uses (full model, tracking mode, no segmentation),
   over the decoded frames: the baseline;
3. hvg: `pipeline.run_pose` with the cache disabled, on the same video: decode, person selection,
   pose, gap filling, smoothing, IK fit, root path, .npz write;
prints both rates in frames/s and their ratio (target >= 0.7). Run it on an idle machine for
absolute figures; the ratio is meaningful under load because both run in the same conditions.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

DEFAULT_VIDEO = Path(__file__).resolve().parents[2] / "shared" / "data" / "dance_red_skirt.mp4"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("video", nargs="?", type=Path, default=DEFAULT_VIDEO)
    ap.add_argument("--frames", type=int, default=None, help="only the first N frames")
    ap.add_argument("--repeat", type=int, default=1, help="alternate raw/hvg this many times, report the best of each")
    args = ap.parse_args()

    from hvg_cli import pipeline
    from hvg_cli.core.cache import StageCache
    from hvg_cli.core.settings import PoseSettings
    from hvg_cli.io.video import read_frames
    from hvg_cli.pose.video_pose import new_tracker

    frames = list(read_frames(args.video, 0, args.frames))
    n = len(frames)
    settings = PoseSettings(end=args.frames)
    raw_best = hvg_best = float("inf")
    for _ in range(args.repeat):
        with new_tracker() as pose:  # warm-up outside the timing: graph start and first detection
            pose.process(frames[0])
        t0 = time.perf_counter()
        with new_tracker() as pose:
            found = sum(pose.process(f).pose_landmarks is not None for f in frames)
        raw_best = min(raw_best, time.perf_counter() - t0)
        with tempfile.TemporaryDirectory() as d:
            t0 = time.perf_counter()
            result = pipeline.run_pose(args.video, Path(d) / "m.npz", settings, cache=StageCache(enabled=False))
            hvg_best = min(hvg_best, time.perf_counter() - t0)
    raw_fps, hvg_fps = n / raw_best, result.frames / hvg_best
    print(f"video: {args.video.name}, {n} frames, person found in {found}")
    print(f"raw MediaPipe (decoded frames): {raw_fps:6.1f} frames/s")
    print(f"hvg pose, end to end (no cache): {hvg_fps:6.1f} frames/s  (fit error {result.fit_error_deg:.1f} deg)")
    print(f"ratio hvg / raw: {hvg_fps / raw_fps:.2f}  (target >= 0.70)")


if __name__ == "__main__":
    main()
