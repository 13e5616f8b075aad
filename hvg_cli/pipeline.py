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
