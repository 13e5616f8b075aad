"""How fast is `hvg pose` next to raw MediaPipe on the same video, in the same process?

    .venv/bin/python benchmarks/pose_speed.py [VIDEO] [--frames N] [--repeat R]

1. decode the video once into memory, at its own resolution and at hvg's working size
   (PoseSettings.max_side, 960 px on the longer side by default); decoding is not timed here;
2. raw: MediaPipe Pose with hvg's settings (full model, tracking mode, no segmentation) over the
   decoded frames at the video's own resolution: the baseline;
   raw@work: the same over the frames at hvg's working size (what hvg gives MediaPipe);
3. hvg: `pipeline.pose_job` with the cache disabled, on the same video: decode, person selection,
   pose, gap filling, smoothing, IK fit, root path, .npz write;
prints frames/s of each and the ratios (target: hvg / raw >= 0.7). With --repeat, the three runs
alternate R times and the best time of each is kept, which damps the noise of a shared machine.
CPU seconds per frame (this process + ffmpeg children) are printed too: unlike wall time, they
hardly depend on what else the machine is doing.
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

DEFAULT_VIDEO = Path(__file__).resolve().parents[2] / "shared" / "data" / "dance_red_skirt.mp4"


def _cpu() -> float:
    s, c = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return s.ru_utime + s.ru_stime + c.ru_utime + c.ru_stime


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("video", nargs="?", type=Path, default=DEFAULT_VIDEO)
    ap.add_argument("--frames", type=int, default=None, help="only the first N frames")
    ap.add_argument("--repeat", type=int, default=1, help="alternate the runs this many times, keep the best of each")
    args = ap.parse_args()

    from hvg_cli import pipeline
    from hvg_cli.core.cache import StageCache
    from hvg_cli.core.settings import PoseSettings
    from hvg_cli.io.video import fit_size, probe_video, read_frames
    from hvg_cli.pose.video_pose import new_tracker

    settings = PoseSettings(end=args.frames)
    info = probe_video(args.video)
    work = fit_size(info.width, info.height, settings.max_side)
    native = list(read_frames(args.video, 0, args.frames))
    small = list(read_frames(args.video, 0, args.frames, size=work))
    n = len(native)

    def raw(frames) -> tuple[float, float, int]:
        with new_tracker() as pose:  # warm-up outside the timing: graph start, model load
            pose.process(frames[0])
        c0, t0 = _cpu(), time.perf_counter()
        with new_tracker() as pose:
            found = sum(pose.process(f).pose_landmarks is not None for f in frames)
        return time.perf_counter() - t0, _cpu() - c0, found

    best = {"raw": (float("inf"), 0.0), "raw@work": (float("inf"), 0.0), "hvg": (float("inf"), 0.0)}
    for _ in range(args.repeat):
        for name, frames in (("raw", native), ("raw@work", small)):
            wall, cpu, found = raw(frames)
            best[name] = min(best[name], (wall, cpu))
        with tempfile.TemporaryDirectory() as d:
            c0, t0 = _cpu(), time.perf_counter()
            result = pipeline.pose_job(args.video, Path(d) / "m.npz", settings, cache=StageCache(enabled=False))
            best["hvg"] = min(best["hvg"], (time.perf_counter() - t0, _cpu() - c0))
    fps = {k: n / v[0] for k, v in best.items()}
    cpu = {k: 1000 * v[1] / n for k, v in best.items()}
    print(
        f"video: {args.video.name}, {n} frames {info.width}x{info.height}, working size {work[0]}x{work[1]}, "
        f"person found by raw in {found}; best of {args.repeat}"
    )
    print(
        f"raw MediaPipe, frames at {info.width}x{info.height}: {fps['raw']:6.1f} frames/s  {cpu['raw']:5.1f} ms CPU/frame  (baseline)"
    )
    print(
        f"raw MediaPipe, frames at {work[0]}x{work[1]}:  {fps['raw@work']:6.1f} frames/s  {cpu['raw@work']:5.1f} ms CPU/frame"
    )
    print(
        f"hvg pose end to end (no cache):  {fps['hvg']:6.1f} frames/s  {cpu['hvg']:5.1f} ms CPU/frame  "
        f"(decode + pose + smoothing + IK + write; fit error {result.fit_error_deg:.2f} deg)"
    )
    print(f"ratio hvg / raw:      {fps['hvg'] / fps['raw']:.2f}  (target >= 0.70)")
    print(f"ratio hvg / raw@work: {fps['hvg'] / fps['raw@work']:.2f}  (hvg's own overhead at equal MediaPipe input)")


if __name__ == "__main__":
    main()
