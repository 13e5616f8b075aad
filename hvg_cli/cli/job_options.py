"""Flags shared by the jobs that render a photo + motion through cameras (`hvg bonemap`, `hvg animate`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from hvg_cli.core.errors import UsageError
from hvg_cli.core.settings import Background, check_device

PhotoArg = Annotated[
    Path, typer.Argument(metavar="PHOTO", help="Photo of ONE person, whole body visible (jpg/png).", show_default=False)
]
MotionOpt = Annotated[
    str,
    typer.Option(
        "--motion",
        "-m",
        help="Driving motion: a video (mp4/mov/...), an AMASS .npz, a .bvh, an `hvg pose` .npz, or a preset name "
        "(see `hvg pose --list-presets`: idle, wave, walk-in-place, turn-around, jumping-jacks, dance).",
        show_default=False,
    ),
]
OrbitOpt = Annotated[
    Optional[float],
    typer.Option(
        "--orbit",
        help="Orbit through DEG degrees around the subject (360: a full turn; 0: static front).",
        show_default=False,
    ),
]
CameraOpt = Annotated[
    Optional[str],
    typer.Option(
        "--camera",
        help="Camera preset name (see `hvg cameras list`), a preset YAML, or a nerfstudio camera_path JSON.",
        show_default=False,
    ),
]
ViewsOpt = Annotated[
    Optional[int], typer.Option("--views", min=1, help="Number of views (keyframes) on the path.", show_default=False)
]
ElevationOpt = Annotated[
    Optional[float], typer.Option("--elevation", help="Camera elevation in degrees.", show_default=False)
]
RadiusOpt = Annotated[
    Optional[float],
    typer.Option("--radius", min=0.1, help="Camera distance from the subject in metres.", show_default=False),
]
FovOpt = Annotated[
    Optional[float],
    typer.Option("--fov", min=1.0, max=170.0, help="Vertical field of view in degrees.", show_default=False),
]
ResolutionOpt = Annotated[str, typer.Option("--resolution", "-r", help="Output size WxH (or one number for a square).")]
StartOpt = Annotated[
    int, typer.Option("--start", min=0, help="First frame of the motion to use (0-based index, as in `hvg pose`).")
]
EndOpt = Annotated[
    Optional[int],
    typer.Option(
        "--end",
        min=1,
        help="Stop before this frame of the motion (default: its last frame); a video is tracked only up to it.",
        show_default=False,
    ),
]
FramesOpt = Annotated[
    Optional[int], typer.Option("--frames", min=1, help="At most this many frames.", show_default=False)
]
MaxGapOpt = Annotated[
    Optional[int],
    typer.Option(
        "--max-gap",
        min=0,
        help="A video motion: longest run of frames where the person may be lost and is filled in (default: half a second). Longer gaps are an error (exit 5).",
        show_default=False,
    ),
]
NoAlignOpt = Annotated[
    bool,
    typer.Option(
        "--no-align",
        help="Render in the camera's own frame instead of re-centring the subject in every view and frame.",
    ),
]
GridOpt = Annotated[
    bool, typer.Option("--grid", help="Render every view for every frame and lay the views out as a grid in one video.")
]
BodyModelOpt = Annotated[
    Optional[Path],
    typer.Option(
        "--body-model",
        help="Your SMPL (.pkl/.npz) or SMPL-X (.npz) model file, for shape-consistent joints and radii (default: hvg's built-in body).",
        show_default=False,
    ),
]
OutOpt = Annotated[
    Path,
    typer.Option(
        "--out", "-o", help="Output: .mp4/.mov/.mkv (H.264), .gif, or a folder name without suffix for PNG frames."
    ),
]


def _checked(parse):
    """A Typer callback that runs a core parser at parse time: its UsageError becomes Typer's exit 2."""

    def callback(value):
        if value is None:
            return value
        try:
            return parse(value)
        except UsageError as e:
            raise typer.BadParameter(str(e)) from None

    return callback


DeviceOpt = Annotated[
    str,
    typer.Option(
        "--device", callback=_checked(check_device), help="auto (cuda, then mps, then cpu), cpu, cuda, cuda:N, mps."
    ),
]
BackgroundOpt = Annotated[
    str,
    typer.Option(
        "--background",
        callback=_checked(lambda t: Background.parse(t) and t),
        help="photo (the photo with the person removed), transparent (PNG frames with alpha), or a colour like '#202020' or '32,32,32'.",
    ),
]
