"""Settings of stages, as frozen dataclasses: what the CLI builds from flags and the cache keys hash."""

from __future__ import annotations

import dataclasses
import os
import sys
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class PoseSettings:
    """How `hvg pose` turns a video into a motion.

    start, end, stride: source frame indices [start, end) every `stride`-th frame (end None = to the end)
    person:   "largest" (default), "first" (MediaPipe's own pick), or "0", "1", ... counted from the left
    max_gap:  longest run of lost frames (track frames) filled by interpolation; None = half a second
    smooth:   One-Euro smoothing of the landmarks; min_cutoff (Hz) and beta (1/m) tune it
    fov_deg:  the video camera's assumed vertical field of view, for the root path's depth
    max_side: MediaPipe sees frames downscaled (never up) so their longer side is at most this many
              pixels (0 = full resolution). Its landmark model reads a 256x256 crop around the person,
              so 960 px still oversamples anyone taller than about a third of the frame; landmarks
              are reported in the video's own pixels either way.
    """

    start: int = 0
    end: int | None = None
    stride: int = 1
    person: str = "largest"
    max_gap: int | None = None
    smooth: bool = True
    min_cutoff: float = 1.0
    beta: float = 1.5
    fov_deg: float = 50.0
    max_side: int = 960

    def track_part(self) -> "PoseSettings":
        """The settings that change the landmark track (fov only changes the motion)."""
        return dataclasses.replace(self, fov_deg=50.0)


@dataclass(frozen=True)
class SubjectSettings:
    """How the subject stage reads the photo (`hvg bonemap` / `hvg animate`).

    fov_deg:    the photo camera's assumed field of view across the photo's longer side, degrees
    fit_radii:  adapt the ellipsoids' short radii to the person's silhouette (clothes, build)
    body_model: a SMPL (.pkl/.npz) or SMPL-X (.npz) model file for shape-consistent joints and radii
                (None: hvg's built-in skeleton and radii). Its bytes, never its path, enter cache keys.
    """

    fov_deg: float = 50.0
    fit_radii: bool = True
    body_model: str | None = None


PRESETS_ENV = "HVG_PRESETS_DIR"


def presets_root() -> Path:
    """The folder holding hvg's presets (`motions/`, `cameras/`).

    $HVG_PRESETS_DIR if set; else `presets/` of the source checkout the package runs from; else
    `<prefix>/share/hvg/presets`, where a non-editable install puts them (pyproject's data-files).
    """
    env = os.environ.get(PRESETS_ENV)
    if env:
        return Path(env).expanduser()
    checkout = Path(__file__).resolve().parents[2] / "presets"
    if checkout.is_dir():
        return checkout
    return Path(sys.prefix) / "share" / "hvg" / "presets"
