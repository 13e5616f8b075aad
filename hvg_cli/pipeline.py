"""The only module that knows every room: one cached function per stage, and the jobs the CLI runs.

Data flows one way (DESIGN.md): photo ─► subject; motion source ─► pose ─► body; preset ─► cameras;
then bonemap ─► align ─► generate ─► video. Each stage is cached under a content-hash key.
"""

from __future__ import annotations

import importlib.metadata
import platform
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from hvg_cli.core.cache import StageCache
from hvg_cli.core.progress import SILENT, Reporter


# ---------------------------------------------------------------------------------------------
# doctor
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class DoctorReport:
    python: str
    versions: dict[str, str | None]
    device: str
    ffmpeg: str | None
    pose_model: str | None
    weights: str | None
    backends: dict[str, str]  # backend -> "ok" or why it cannot run
    cache_dir: str


_PACKAGES = ("torch", "mediapipe", "numpy", "diffusers", "transformers", "smplx", "typer", "imageio-ffmpeg", "safetensors")


def doctor(weights: Path | None = None, cache: StageCache | None = None) -> DoctorReport:
    """What is installed and which backends can run."""
    versions: dict[str, str | None] = {}
    for name in _PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None

    device = "unavailable (torch not installed)"
    if versions["torch"]:
        import torch

        if torch.cuda.is_available():
            device = f"cuda ({torch.cuda.get_device_name(0)})"
        elif getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            device = "mps"
        else:
            device = f"cpu ({torch.get_num_threads()} threads)"

    ffmpeg = None
    try:
        import imageio_ffmpeg

        ffmpeg = imageio_ffmpeg.get_ffmpeg_exe()
    except Exception:
        ffmpeg = shutil.which("ffmpeg")

    pose_model = None
    if versions["mediapipe"]:
        from hvg_cli.pose import mediapipe_model_path

        pose_model = mediapipe_model_path()

    weights_dir = _find_weights(weights)
    backends: dict[str, str] = {}
    preview_missing = [n for n in ("torch", "mediapipe") if not versions[n]] + ([] if ffmpeg else ["ffmpeg"])
    backends["preview"] = "ok" if not preview_missing else "needs " + ", ".join(preview_missing)
    if not versions["diffusers"]:
        backends["diffusion"] = "needs diffusers"
    elif weights_dir is None:
        backends["diffusion"] = "no weights (see weights/README.md)"
    else:
        backends["diffusion"] = "ok"
    return DoctorReport(
        python=platform.python_version(),
        versions=versions,
        device=device,
        ffmpeg=ffmpeg,
        pose_model=pose_model,
        weights=str(weights_dir) if weights_dir else None,
        backends=backends,
        cache_dir=str((cache or StageCache()).root),
    )


def _find_weights(weights: Path | None) -> Path | None:
    """An explicit --weights folder, else `weights/` beside the package if it holds a model."""
    candidates = [weights] if weights else [Path(__file__).resolve().parent.parent / "weights"]
    for c in candidates:
        if c is not None and (Path(c) / "model_index.json").exists():
            return Path(c)
    return None


# --- cameras ---
# Camera paths from presets, files or flags; what `hvg cameras` shows, exports and plots. The cameras room is
# imported inside the functions (it pulls numpy and yaml) so `hvg --help` stays fast.
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
class CameraPresetInfo:
    name: str
    generator: str
    views: int
    closed: bool
    description: str
    file: str


@dataclass(frozen=True)
class CameraView:
    """One row of `hvg cameras show`: a view's placement around the point the cameras look at."""

    index: int
    azimuth: float  # degrees, 0 = in front (+z), positive toward the subject's left (+x)
    elevation: float  # degrees
    radius: float  # metres from the look-at point
    position: tuple[float, float, float]  # metres, world
    fov: float  # vertical, degrees
    time: float | None  # keyframe time in [0, 1] when the path has times


@dataclass(frozen=True)
class CameraSummary:
    name: str
    description: str
    num_views: int
    closed: bool
    width: int
    height: int
    look_at: tuple[float, float, float] | None  # the common point the views look at, when there is one
    views: tuple[CameraView, ...]


def camera_presets() -> list[CameraPresetInfo]:
    """Every camera preset (validated) with its generator, number of views and description."""
    from hvg_cli.cameras.presets import build_preset, list_camera_presets

    out = []
    for p in list_camera_presets():
        path = build_preset(p, {})
        out.append(CameraPresetInfo(p.name, p.generator, path.num_views, path.closed, p.description, p.source))
    return out


def camera_path(spec: CameraSpec):
    """The CameraPath a spec names (-> hvg_cli.core.types.CameraPath)."""
    from hvg_cli.cameras.presets import load_camera
    from hvg_cli.cameras.schedule import orbit_flags
    from hvg_cli.core.errors import BadInput

    if spec.orbit is not None:
        if spec.camera is not None:
            raise BadInput("--orbit and --camera both choose the camera path", hint="give only one of them")
        if spec.degrees is not None:
            raise BadInput("--orbit already gives the degrees", hint="drop --degrees")
        kw = {k: v for k, v in dict(elevation=spec.elevation, radius=spec.radius, fov=spec.fov, width=spec.width,
                                    height=spec.height).items() if v is not None}
        return orbit_flags(spec.orbit, views=spec.views, **kw)
    return load_camera(spec.camera or CameraSpec.DEFAULT_CAMERA, views=spec.views, elevation=spec.elevation,
                       radius=spec.radius, fov=spec.fov, width=spec.width, height=spec.height, degrees=spec.degrees)


def camera_grid(spec: CameraSpec, num_frames: int, mode: str = "moving"):
    """The per-view, per-frame cameras of a job (-> CameraGrid), from a spec."""
    from hvg_cli.cameras.schedule import camera_grid as _grid

    return _grid(camera_path(spec), num_frames, mode)


def describe_camera_path(spec: CameraSpec) -> CameraSummary:
    """The table of `hvg cameras show`: per view azimuth, elevation, radius, position and fov."""
    import numpy as np

    from hvg_cli.cameras.generators import DEFAULT_TARGET, spherical_coordinates, vertical_fov
    from hvg_cli.cameras.presets import presets_dir, read_preset
    from hvg_cli.cameras.schedule import common_focus, unwrap_degrees

    path = camera_path(spec)
    c2w = np.linalg.inv(path.world_to_cam)  # [V, 4, 4]
    centres, forward = c2w[:, :3, 3], c2w[:, :3, 2]
    focus = common_focus(centres, forward) if path.num_views > 1 else None
    if focus is None and path.num_views == 1:  # one camera: the point of its axis nearest the default target
        t = float((np.asarray(DEFAULT_TARGET) - centres[0]) @ forward[0])
        focus = centres[0] + max(t, 1e-6) * forward[0] if t > 0 else None
    sph = spherical_coordinates(centres, focus if focus is not None else DEFAULT_TARGET)  # [V, 3]
    sph[:, 0] = unwrap_degrees(sph[:, 0])  # azimuth continuous along the path (0..345 for an orbit)
    rows = tuple(
        CameraView(i, round(float(sph[i, 0]), 6) + 0.0, round(float(sph[i, 1]), 6) + 0.0, float(sph[i, 2]),
                   tuple(float(x) for x in centres[i]), vertical_fov(path.K[i], path.height),
                   None if path.times is None else float(path.times[i]))
        for i in range(path.num_views)
    )
    description = ""
    if spec.orbit is not None:
        description = f"--orbit {spec.orbit:g}: orbit through {spec.orbit:g} degrees starting in front"
    else:
        name = spec.camera or CameraSpec.DEFAULT_CAMERA
        if name.endswith(".json"):
            description = f"nerfstudio camera path {name}"
        else:
            file = Path(name) if name.endswith((".yaml", ".yml")) else presets_dir() / f"{name}.yaml"
            description = read_preset(file).description
    return CameraSummary(path.name, description, path.num_views, path.closed, path.width, path.height,
                         None if focus is None else tuple(round(float(x), 9) + 0.0 for x in focus), rows)


def export_camera_path(spec: CameraSpec, out: Path, format: str = "nerfstudio", fps: float = 24.0,
                       seconds: float | None = None) -> Path:
    """Write the camera path to a file (format: nerfstudio camera_path .json)."""
    from hvg_cli.cameras.nerfstudio import save_nerfstudio
    from hvg_cli.core.errors import BadInput

    if format != "nerfstudio":
        raise BadInput(f"unknown camera export format {format!r}", hint="use --format nerfstudio")
    if fps <= 0 or (seconds is not None and seconds <= 0):
        raise BadInput(f"fps and seconds must be > 0, got fps={fps}, seconds={seconds}")
    return save_nerfstudio(camera_path(spec), Path(out), fps=fps, seconds=seconds)


def plot_camera_path(spec: CameraSpec, out_png: Path) -> Path:
    """A PNG of the cameras around the subject: top-down and side views."""
    from hvg_cli.cameras.plot import plot_cameras

    return plot_cameras(camera_path(spec), Path(out_png))
