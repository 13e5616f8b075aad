"""Flags shared by the jobs that render a photo + motion through cameras (`hvg bonemap`, `hvg animate`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from hvg_cli.core.jobs import CameraSpec, RenderSpec

PhotoArg = Annotated[Path, typer.Argument(metavar="PHOTO", help="Photo of ONE person, whole body visible (jpg/png).", show_default=False)]
MotionOpt = Annotated[
    str,
    typer.Option(
        "--motion", "-m",
        help="Driving motion: a video (mp4/mov/...), an AMASS .npz, a .bvh, an `hvg pose` .npz, or a preset name "
        "(see `hvg pose --list-presets`: idle, wave, walk-in-place, turn-around, jumping-jacks, dance).",
        show_default=False,
    ),
]
OrbitOpt = Annotated[Optional[float], typer.Option("--orbit", help="Orbit through DEG degrees around the subject (360: a full turn; 0: static front).", show_default=False)]
CameraOpt = Annotated[Optional[str], typer.Option("--camera", help="Camera preset name (see `hvg cameras list`), a preset YAML, or a nerfstudio camera_path JSON.", show_default=False)]
ViewsOpt = Annotated[Optional[int], typer.Option("--views", min=1, help="Number of views (keyframes) on the path.", show_default=False)]
ElevationOpt = Annotated[Optional[float], typer.Option("--elevation", help="Camera elevation in degrees.", show_default=False)]
RadiusOpt = Annotated[Optional[float], typer.Option("--radius", min=0.1, help="Camera distance from the subject in metres.", show_default=False)]
FovOpt = Annotated[Optional[float], typer.Option("--fov", min=1.0, max=170.0, help="Vertical field of view in degrees.", show_default=False)]
ResolutionOpt = Annotated[str, typer.Option("--resolution", "-r", help="Output size WxH (or one number for a square).")]
StartOpt = Annotated[int, typer.Option("--start", min=0, help="First frame of the motion to use (0-based index, as in `hvg pose`).")]
EndOpt = Annotated[Optional[int], typer.Option("--end", min=1, help="Stop before this frame of the motion (default: its last frame).", show_default=False)]
FramesOpt = Annotated[Optional[int], typer.Option("--frames", min=1, help="At most this many frames.", show_default=False)]
NoAlignOpt = Annotated[bool, typer.Option("--no-align", help="Render in the camera's own frame instead of re-centring the subject in every view and frame.")]
GridOpt = Annotated[bool, typer.Option("--grid", help="Render every view for every frame and lay the views out as a grid in one video.")]
BodyModelOpt = Annotated[Optional[Path], typer.Option("--body-model", help="Your SMPL (.pkl/.npz) or SMPL-X (.npz) model file, for shape-consistent joints and radii (default: hvg's built-in body).", show_default=False)]
OutOpt = Annotated[Path, typer.Option("--out", "-o", help="Output: .mp4/.mov/.mkv (H.264), .gif, or a folder name without suffix for PNG frames.")]


def parse_resolution(text: str) -> tuple[int, int]:
    """'512' -> (512, 512); '640x360' -> (640, 360)."""
    parts = text.lower().replace("×", "x").split("x")
    try:
        nums = [int(p) for p in parts]
    except ValueError:
        raise typer.BadParameter(f"{text!r} is not WxH (for example 512x512)", param_hint="--resolution") from None
    if len(nums) == 1:
        nums = nums * 2
    if len(nums) != 2 or min(nums) < 16 or max(nums) > 8192:
        raise typer.BadParameter(f"{text!r}: need WxH between 16 and 8192 pixels", param_hint="--resolution")
    return nums[0], nums[1]


def camera_spec(orbit: float | None, camera: str | None, views: int | None, elevation: float | None,
                radius: float | None, fov: float | None, resolution: str) -> CameraSpec:
    if orbit is not None and camera is not None:
        raise typer.BadParameter("give either --orbit or --camera, not both", param_hint="--orbit/--camera")
    w, h = parse_resolution(resolution)
    return CameraSpec(camera=camera, orbit=orbit, views=views, elevation=elevation, radius=radius, fov=fov, width=w, height=h)


def render_spec(start: int, end: int | None, frames: int | None, no_align: bool, body_model: Path | None) -> RenderSpec:
    if end is not None and end <= start:
        raise typer.BadParameter(f"--end ({end}) must be after --start ({start})", param_hint="--end")
    return RenderSpec(start=start, end=end, max_frames=frames, align=not no_align,
                      body_model=str(body_model) if body_model else None)
