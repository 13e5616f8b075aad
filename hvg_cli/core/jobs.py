"""Settings of whole jobs (`hvg bonemap`, `hvg animate`): what the CLI builds from flags and the pipeline reads."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class CameraSpec:
    """Which camera path a job uses, before it is turned into cameras.

    preset: a preset name or a YAML / nerfstudio JSON file (None: `orbit` degrees, else the static front view).
    mode:   "moving" (one camera advancing along the path over time: the usual final video)
            or "views" (every view rendered for every frame: a views×time grid).
    """

    preset: str | None = None
    orbit: float | None = None  # degrees; shorthand for an orbit around the subject
    views: int | None = None
    elevation: float | None = None  # degrees
    radius: float | None = None  # metres
    fov: float | None = None  # vertical degrees
    mode: str = "moving"


@dataclass(frozen=True)
class RenderSpec:
    """Output size and timing shared by bonemap and animate."""

    width: int = 512
    height: int = 512
    start: float = 0.0  # seconds into the motion
    end: float | None = None  # seconds; None = to the end
    max_frames: int | None = None
    align: bool = True


@dataclass(frozen=True)
class BonemapSettings:
    camera: CameraSpec = CameraSpec()
    render: RenderSpec = RenderSpec()
    channels: tuple[str, ...] = ("semantic", "normal", "depth", "mask")
    grid: bool = False


@dataclass(frozen=True)
class AnimateSettings:
    camera: CameraSpec = CameraSpec()
    render: RenderSpec = RenderSpec()
    backend: str = "auto"  # auto | preview | diffusion
    background: str = "photo"  # photo | transparent | a colour "#rrggbb" / "r,g,b"
    grid: bool = False  # views×time grid in one video (mode "views")
    per_view: bool = False  # one file per view (mode "views")
    audio: bool = True
    seed: int = 0
    steps: int = 25
    guidance: float = 3.0
