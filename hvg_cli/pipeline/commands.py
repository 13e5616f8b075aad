"""The commands around the jobs: `hvg doctor`, `hvg cameras`, `hvg weights` (and the weights folder lookup
that `animate` shares with them)."""

from __future__ import annotations

import importlib.metadata
import platform
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from hvg_cli.core.cache import StageCache
from hvg_cli.core.errors import UsageError
from hvg_cli.core.settings import CameraSpec, ExportFormat
from hvg_cli.core.types import CameraGrid, CameraPath

if TYPE_CHECKING:
    from hvg_cli.backends.diffusion.weights import WeightsReport
    from hvg_cli.cameras.describe import CameraSummary

DEFAULT_WEIGHTS = Path(__file__).resolve().parents[2] / "weights"  # the project's weights/ folder


def find_weights(weights: Path | None) -> Path | None:
    """An explicit --weights folder, else the project's `weights/`, if it holds a model (model_index.json)."""
    folder = Path(weights) if weights is not None else DEFAULT_WEIGHTS
    return folder if (folder / "model_index.json").exists() else None


# --- doctor ---------------------------------------------------------------------------------------------------
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

    def as_dict(self) -> dict:
        return asdict(self)


_PACKAGES = (
    "torch",
    "mediapipe",
    "numpy",
    "diffusers",
    "transformers",
    "smplx",
    "typer",
    "imageio-ffmpeg",
    "safetensors",
)


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

        from hvg_cli.backends.diffusion.weights import pick_device

        picked = pick_device("auto")
        device = {"cuda": lambda: f"cuda ({torch.cuda.get_device_name(0)})", "mps": lambda: "mps"}.get(
            picked, lambda: f"cpu ({torch.get_num_threads()} threads)"
        )()

    from hvg_cli.io.video import find_ffmpeg

    ffmpeg = find_ffmpeg()
    pose_model = None
    if versions["mediapipe"]:
        from hvg_cli.pose import mediapipe_model_path

        pose_model = mediapipe_model_path()

    weights_dir = find_weights(weights)
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


# --- cameras ----------------------------------------------------------------------------------------------------
# Camera paths from presets, files or flags; what `hvg cameras` shows, exports and plots. The cameras room is
# imported inside the functions (it pulls numpy and yaml) so `hvg --help` stays fast.
@dataclass(frozen=True)
class CameraPresetInfo:
    name: str
    generator: str
    views: int
    closed: bool
    description: str
    file: str

    def as_dict(self) -> dict:
        return asdict(self)


def camera_presets() -> list[CameraPresetInfo]:
    """Every camera preset (validated) with its generator, number of views and description."""
    from hvg_cli.cameras.presets import build_preset, list_camera_presets

    out = []
    for p in list_camera_presets():
        path = build_preset(p, {})
        out.append(CameraPresetInfo(p.name, p.generator, path.num_views, path.closed, p.description, p.source))
    return out


def camera_path(spec: CameraSpec) -> CameraPath:
    """The CameraPath a spec names (the spec itself has checked its flags)."""
    from hvg_cli.cameras.presets import load_camera
    from hvg_cli.cameras.schedule import orbit_flags

    if spec.orbit is not None:
        return orbit_flags(
            spec.orbit,
            views=spec.views,
            elevation=spec.elevation,
            radius=spec.radius,
            fov=spec.fov,
            width=spec.width,
            height=spec.height,
        )
    return load_camera(
        spec.camera or CameraSpec.DEFAULT_CAMERA,
        views=spec.views,
        elevation=spec.elevation,
        radius=spec.radius,
        fov=spec.fov,
        width=spec.width,
        height=spec.height,
        degrees=spec.degrees,
    )


def camera_grid(spec: CameraSpec, num_frames: int, camera_mode: str = "moving") -> CameraGrid:
    """The per-view, per-frame cameras of a job [V, T], from a spec."""
    from hvg_cli.cameras.schedule import camera_grid as _grid

    return _grid(camera_path(spec), num_frames, camera_mode)


def describe_camera_path(spec: CameraSpec) -> CameraSummary:
    """The table of `hvg cameras show` (-> cameras.describe.CameraSummary)."""
    from hvg_cli.cameras.describe import describe_path
    from hvg_cli.cameras.presets import presets_dir, read_preset

    path = camera_path(spec)  # an unknown preset fails here, with the list of presets
    if spec.orbit is not None:
        description = f"--orbit {spec.orbit:g}: orbit through {spec.orbit:g} degrees starting in front"
    else:
        name = spec.camera or CameraSpec.DEFAULT_CAMERA
        if name.endswith(".json"):
            description = f"nerfstudio camera path {name}"
        else:
            file = Path(name) if name.endswith((".yaml", ".yml")) else presets_dir() / f"{name}.yaml"
            description = read_preset(file).description
    return describe_path(path, description)


def export_camera_path(
    spec: CameraSpec,
    out: Path,
    format: ExportFormat = ExportFormat.NERFSTUDIO,
    fps: float = 24.0,
    seconds: float | None = None,
) -> Path:
    """Write the camera path to a file (format: nerfstudio camera_path .json)."""
    from hvg_cli.cameras.nerfstudio import save_nerfstudio
    from hvg_cli.core.settings import check_number

    check_number("--fps", fps, 0, 1000, open_low=True)
    check_number("--seconds", seconds, 0, 1e6, open_low=True)
    return save_nerfstudio(camera_path(spec), Path(out), fps=fps, seconds=seconds)


def plot_camera_path(spec: CameraSpec, out_png: Path) -> Path:
    """A PNG of the cameras around the subject: top-down and side views."""
    from hvg_cli.cameras.plot import plot_cameras

    return plot_cameras(camera_path(spec), Path(out_png))


# --- weights ----------------------------------------------------------------------------------------------------
def weights_check(path: Path) -> WeightsReport:
    """`hvg weights check PATH`: files, configs, shapes, safetensors only -> WeightsReport."""
    from hvg_cli.backends.diffusion.weights import check_weights

    return check_weights(path)


def weights_init(
    out: Path, tiny: bool = False, base: Path | None = None, link: bool = True, seed: int = 0
) -> WeightsReport:
    """`hvg weights init --tiny | --base SVD_FOLDER --out DIR` -> WeightsReport of the new folder."""
    from hvg_cli.backends.diffusion.weights import init_from_base, init_tiny

    if tiny == (base is not None):
        raise UsageError(
            "give exactly one of --tiny or --base SVD_FOLDER", "e.g. hvg weights init --tiny --out tiny-weights"
        )
    return init_tiny(out, seed=seed) if base is None else init_from_base(base, out, link=link)
