"""What `hvg cameras show` prints of a camera path: per view azimuth, elevation, radius, position and fov."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from hvg_cli.cameras.generators import DEFAULT_TARGET, spherical_coordinates, vertical_fov
from hvg_cli.cameras.schedule import common_focus, unwrap_degrees
from hvg_cli.core.types import CameraPath


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

    def as_dict(self) -> dict:
        return asdict(self)


def look_at_point(path: CameraPath) -> np.ndarray | None:
    """The point every view looks at [3] m, or for a single camera the point of its axis nearest the default
    target; None when the views share no point (a free-flight path)."""
    c2w = np.linalg.inv(path.world_to_cam)  # [V, 4, 4]
    centres, forward = c2w[:, :3, 3], c2w[:, :3, 2]  # [V, 3] each
    if path.num_views > 1:
        return common_focus(centres, forward)
    t = float((np.asarray(DEFAULT_TARGET) - centres[0]) @ forward[0])
    return centres[0] + max(t, 1e-6) * forward[0] if t > 0 else None


def describe_path(path: CameraPath, description: str) -> CameraSummary:
    """The table of `hvg cameras show` for `path`: spherical placement of every view around its look-at point
    (or hvg's default target when the views share none), azimuth unwrapped along the path."""
    c2w = np.linalg.inv(path.world_to_cam)  # [V, 4, 4]
    centres = c2w[:, :3, 3]  # [V, 3]
    focus = look_at_point(path)
    sph = spherical_coordinates(centres, focus if focus is not None else DEFAULT_TARGET)  # [V, 3]
    sph[:, 0] = unwrap_degrees(sph[:, 0])  # azimuth continuous along the path (0..345 for an orbit)
    rows = tuple(
        CameraView(
            i,
            round(float(sph[i, 0]), 6) + 0.0,
            round(float(sph[i, 1]), 6) + 0.0,
            float(sph[i, 2]),
            (float(centres[i, 0]), float(centres[i, 1]), float(centres[i, 2])),
            vertical_fov(path.K[i], path.height),
            None if path.times is None else float(path.times[i]),
        )
        for i in range(path.num_views)
    )
    look = (
        None
        if focus is None
        else (round(float(focus[0]), 9) + 0.0, round(float(focus[1]), 9) + 0.0, round(float(focus[2]), 9) + 0.0)
    )
    return CameraSummary(path.name, description, path.num_views, path.closed, path.width, path.height, look, rows)
