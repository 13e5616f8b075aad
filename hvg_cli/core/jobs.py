"""Settings of whole jobs (`hvg bonemap`, `hvg animate`): what the CLI builds from flags and the pipeline reads."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class CameraSpec:
    """How the user chose the camera: a preset name or file (--camera), or the --orbit DEG shorthand, plus
    overrides (None = the preset's own value)."""

    camera: str | None = None  # preset name, preset .yaml, or nerfstudio camera_path .json
    orbit: float | None = None  # --orbit DEG: an orbit through DEG degrees starting in front (0 = static)
    views: int | None = None
    elevation: float | None = None
    radius: float | None = None
    fov: float | None = None
    width: int | None = None
    height: int | None = None
    degrees: float | None = None

    DEFAULT_CAMERA = "static"


@dataclass(frozen=True)
class RenderSpec:
    """Timing, framing and body shared by bonemap and animate (the output size is the camera's)."""

    start: int = 0  # first frame of the motion
    end: int | None = None  # stop before this frame; None = to the end
    max_frames: int | None = None
    align: bool = True
    body_model: str | None = None  # a SMPL / SMPL-X model file for the subject's body (None: built-in)


@dataclass(frozen=True)
class BonemapSettings:
    camera: CameraSpec = CameraSpec()
    mode: str = "moving"  # "moving": one camera along the path; "views": every view for every frame
    render: RenderSpec = RenderSpec()
    channels: tuple[str, ...] = ("semantic", "normal", "depth", "mask")
    grid: bool = False


@dataclass(frozen=True)
class AnimateSettings:
    camera: CameraSpec = CameraSpec()
    mode: str = "moving"
    render: RenderSpec = RenderSpec()
    backend: str = "auto"  # auto | preview | diffusion
    background: str = "photo"  # photo | transparent | a colour "#rrggbb" / "r,g,b"
    grid: bool = False  # views×time grid in one video (mode "views")
    per_view: bool = False  # one file per view (mode "views")
    audio: bool = True
    seed: int = 0
    steps: int = 25
    guidance: float = 3.0
    # diffusion sampling (see backends/diffusion/settings.py)
    sampling: str = "progressive"  # progressive | onepass | full
    tile_views: int = 2
    tile_frames: int = 8
    anchor_stride: int = 4
    device: str = "auto"  # auto | cpu | cuda | cuda:N | mps
    dtype: str = "auto"  # auto | fp32 | fp16 | bf16
    offload: bool = False
