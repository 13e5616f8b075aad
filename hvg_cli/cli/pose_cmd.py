"""`hvg pose`: 3D motion from a video (or an AMASS .npz, a .bvh, a built-in motion) into a .npz."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from hvg_cli import pipeline
from hvg_cli.cli.common import (
    CacheDirOpt,
    JsonOpt,
    NoCacheOpt,
    QuietOpt,
    RichReporter,
    emit_json,
    err_console,
    maps_errors,
)
from hvg_cli.core.cache import StageCache
from hvg_cli.core.settings import pose_from_flags

HELP = """Turn the person in SOURCE into a 3D motion file (.npz) that hvg and the AMASS/SMPL tools read.

SOURCE is a video (any file ffmpeg reads: mp4, mov, mkv, webm...), an AMASS/SMPL .npz, a .bvh
file, or the name of a built-in motion (see --list-presets).

What happens to a video: MediaPipe Pose finds the person's 33 landmarks in every frame (tracking
mode), frames where the person is lost for a moment are filled in, the landmarks are smoothed,
and a skeleton of 24 SMPL joints is fitted to them: joint rotations (axis-angle), a root path,
and bone lengths measured on the video. The fit error printed at the end is the mean angle, in
degrees, between the fitted bones and the bones the landmarks show.

The output is chosen by suffix: -o motion.bvh writes a BVH (SMPL joint names, centimetres); -o motion.npz
writes an .npz that holds `poses` (T, 72), `trans` (T, 3) metres and `mocap_framerate` (AMASS
layout), plus hvg's keys: hvg_joints, hvg_landmarks, hvg_visibility, hvg_fit_error_deg,
hvg_source_hash, hvg_fps_num / hvg_fps_den (the exact frame rate, e.g. 30000/1001).

Results are cached by the video's content: running the same command again is instant.

Examples:

\b
  hvg pose dance.mp4 -o dance.motion.npz
  hvg pose dance.mp4 -o dance.motion.npz --preview dance.fit.mp4   (see the fitted skeleton)
  hvg pose dance.mp4 -o part.npz --start 48 --end 144 --stride 2   (frames 48..143, every 2nd)
  hvg pose group.mp4 -o left.npz --person 0                        (leftmost of several people)
  hvg pose wave -o wave.npz                                        (a built-in motion to a file)

Exit codes: 0 ok, 3 bad input (missing or unreadable file), 5 no person found or person lost for
longer than --max-gap, 6 output cannot be written.
"""


def register(app: typer.Typer) -> None:
    @app.command(help=HELP)
    @maps_errors
    def pose(
        source: Annotated[
            Optional[str],
            typer.Argument(help="Video, AMASS .npz, .bvh file, or built-in motion name.", show_default=False),
        ] = None,
        out: Annotated[
            Optional[Path],
            typer.Option(
                "--out",
                "-o",
                help="Motion file to write, by suffix: .npz (AMASS layout + hvg keys) or .bvh. Default: SOURCE's name + .motion.npz.",
                show_default=False,
            ),
        ] = None,
        start: Annotated[int, typer.Option("--start", min=0, help="First video frame to use (0-based index).")] = 0,
        end: Annotated[
            Optional[int],
            typer.Option(
                "--end", min=1, help="Stop before this frame index (default: the last frame).", show_default=False
            ),
        ] = None,
        stride: Annotated[
            int, typer.Option("--stride", min=1, help="Use every N-th frame (the motion's fps is the video's / N).")
        ] = 1,
        person: Annotated[
            str,
            typer.Option(
                "--person",
                help="Whom to follow when several people are in the first frame: 'largest', 'first' (MediaPipe's own pick), or 0, 1, ... counted from the left.",
            ),
        ] = "largest",
        max_gap: Annotated[
            Optional[int],
            typer.Option(
                "--max-gap",
                min=0,
                help="Longest run of frames where the person may be lost and is filled in (default: half a second of frames). Longer gaps are an error (exit 5).",
                show_default=False,
            ),
        ] = None,
        smooth: Annotated[
            bool, typer.Option("--smooth/--no-smooth", help="One-Euro smoothing of the landmarks before fitting.")
        ] = True,
        min_cutoff: Annotated[
            float,
            typer.Option(
                "--min-cutoff", min=0.001, help="Smoothing: cutoff (Hz) when still; lower = smoother, more lag."
            ),
        ] = 1.0,
        beta: Annotated[
            float,
            typer.Option(
                "--beta",
                min=0.0,
                help="Smoothing: how fast the cutoff rises with speed (per m/s); higher = less lag on fast moves.",
            ),
        ] = 1.5,
        fov: Annotated[
            float,
            typer.Option(
                "--fov",
                min=5.0,
                max=150.0,
                help="The video camera's vertical field of view in degrees (for the depth of the root path).",
            ),
        ] = 50.0,
        max_side: Annotated[
            int,
            typer.Option(
                "--max-side",
                min=0,
                help="MediaPipe sees the video downscaled to this longer side in pixels (0 = full resolution; landmarks are in the video's pixels either way). Raise it for people far from the camera.",
            ),
        ] = 960,
        preview: Annotated[
            Optional[Path],
            typer.Option(
                "--preview",
                help="Also write the video with the fitted skeleton drawn over it (.mp4 or .gif).",
                show_default=False,
            ),
        ] = None,
        list_presets: Annotated[
            bool, typer.Option("--list-presets", help="List the built-in motions and exit.")
        ] = False,
        cache_dir: CacheDirOpt = None,
        no_cache: NoCacheOpt = False,
        as_json: JsonOpt = False,
        quiet: QuietOpt = False,
    ) -> None:
        if list_presets:
            rows = pipeline.list_motion_presets()
            if as_json:
                emit_json([{"name": n, "description": d, "frames": f, "fps": fps} for n, d, f, fps in rows])
            else:
                for n, d, f, fps in rows:
                    typer.echo(f"{n:<16} {f:>4} frames @ {float(fps):g} fps  {d}")
            return
        if source is None:
            raise typer.BadParameter(
                "give a video, an .npz/.bvh file or a built-in motion name (or --list-presets)", param_hint="SOURCE"
            )
        if out is None:
            out = Path(Path(source).name.split(".")[0] + ".motion.npz")
        settings = pose_from_flags(
            start=start,
            end=end,
            stride=stride,
            person=person,
            max_gap=max_gap,
            no_smooth=not smooth,
            min_cutoff=min_cutoff,
            beta=beta,
            fov=fov,
            max_side=max_side,
        )
        report = RichReporter(quiet=quiet)
        result = pipeline.pose_job(
            source,
            out,
            settings,
            preview_path=preview,
            cache=StageCache(cache_dir, enabled=not no_cache),
            progress=report,
        )
        if as_json:
            emit_json(result.as_dict())
            return
        fit = f", fit error {result.fit_error_deg:.1f}°" if result.fit_error_deg is not None else ""
        how = "from cache" if result.cached else f"{result.seconds:.1f} s"
        extra = f", preview {result.preview}" if result.preview else ""
        err_console.print(
            f"wrote {result.out}: {result.frames} frames at {_fps(result.fps)} fps{fit} ({result.source}, {how}){extra}",
            markup=False,
            soft_wrap=True,
        )


def _fps(fps) -> str:
    return str(fps.numerator) if fps.denominator == 1 else f"{fps.numerator}/{fps.denominator} (≈{float(fps):.3f})"
