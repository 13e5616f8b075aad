"""Camera path generators: each returns a `CameraPath` (nerfstudio-style: generators return the domain type).

Conventions (DESIGN.md): world metres, y up, the subject stands on y = 0 facing +z. Cameras are OpenCV
(x right, y down, z forward); the picture is upright, i.e. the camera's image "up" (-y) is as close to
world +y as the view direction allows (no roll).

Spherical placement around `target` (default (0, 0.9, 0): pelvis height of a standing adult):

    position = target + radius * (sin(az) cos(el), sin(el), cos(az) cos(el))

azimuth 0 = camera on +z looking at the subject's front; positive azimuth moves the camera toward the
subject's left (+x); positive elevation looks down on the subject. Angles in the API are degrees.

Sweeps: a *closed* sweep (a full turn) places its views at u = i / V, so the first view is not repeated at
the end; an *open* sweep places them at u = i / (V - 1), both ends included.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np

from hvg_cli.core.errors import BadInput
from hvg_cli.core.types import CameraPath

DEFAULT_TARGET: tuple[float, float, float] = (0.0, 0.9, 0.0)
WORLD_UP = np.array([0.0, 1.0, 0.0])


# ---------------------------------------------------------------------------------------------
# Small pure functions
# ---------------------------------------------------------------------------------------------
def intrinsics(fov: float, width: int, height: int) -> np.ndarray:
    """Pinhole intrinsics from the vertical field of view; square pixels, principal point at the centre.

    fov:     vertical field of view, degrees, in (0, 180)
    returns: [3, 3] K in pixels
    """
    f = 0.5 * height / math.tan(math.radians(fov) / 2)
    return np.array([[f, 0.0, width / 2], [0.0, f, height / 2], [0.0, 0.0, 1.0]])


def vertical_fov(K: np.ndarray, height: int) -> float:
    """Inverse of `intrinsics`: vertical fov in degrees from fy and the image height."""
    return math.degrees(2 * math.atan(0.5 * height / float(K[1, 1])))


def spherical_positions(
    azimuth: np.ndarray,
    elevation: np.ndarray,
    radius: np.ndarray,
    target: Sequence[float] | np.ndarray = DEFAULT_TARGET,
) -> np.ndarray:
    """Camera centres on a sphere around the target.

    azimuth, elevation: [N] degrees;  radius: [N] metres;  target: [3] metres
    returns: [N, 3] world positions, metres
    """
    az = np.radians(np.asarray(azimuth, dtype=np.float64))
    el = np.radians(np.asarray(elevation, dtype=np.float64))
    r = np.asarray(radius, dtype=np.float64)
    offset = np.stack([np.sin(az) * np.cos(el), np.sin(el), np.cos(az) * np.cos(el)], axis=-1)  # [N, 3]
    return np.asarray(target, dtype=np.float64) + r[..., None] * offset


def look_at(position: np.ndarray, target: np.ndarray, up: np.ndarray = WORLD_UP) -> np.ndarray:
    """OpenCV world-to-camera matrices of cameras at `position` looking at `target`, upright.

    position: [N, 3] metres;  target: [3] or [N, 3] metres;  up: [3] world direction shown as image up
    returns:  [N, 4, 4] world_to_cam (rows of the rotation = camera x right, y down, z forward in world)
    """
    position = np.atleast_2d(np.asarray(position, dtype=np.float64))
    target = np.broadcast_to(np.asarray(target, dtype=np.float64), position.shape)
    z = target - position  # [N, 3] forward
    dist = np.linalg.norm(z, axis=-1, keepdims=True)
    if np.any(dist < 1e-9):
        raise BadInput("a camera sits on its target", hint="use a radius greater than 0")
    z = z / dist
    x = np.cross(-np.asarray(up, dtype=np.float64), z)  # right = down × forward (x = y × z)
    xn = np.linalg.norm(x, axis=-1, keepdims=True)
    if np.any(xn < 1e-9):
        raise BadInput(
            "a camera looks straight up or down, so 'up' in the picture is undefined",
            hint="keep the elevation strictly between -90 and 90 degrees",
        )
    x = x / xn
    y = np.cross(z, x)  # down
    R = np.stack([x, y, z], axis=-2)  # [N, 3, 3] rows: camera axes in world
    w2c = np.tile(np.eye(4), (position.shape[0], 1, 1))  # [N, 4, 4]
    w2c[:, :3, :3] = R
    w2c[:, :3, 3] = -np.einsum("nij,nj->ni", R, position)
    return w2c


def spherical_coordinates(position: np.ndarray, target: Sequence[float] | np.ndarray = DEFAULT_TARGET) -> np.ndarray:
    """Inverse of `spherical_positions`.

    position: [N, 3] metres
    returns:  [N, 3] (azimuth deg in (-180, 180], elevation deg, radius m)
    """
    d = np.atleast_2d(np.asarray(position, dtype=np.float64)) - np.asarray(target, dtype=np.float64)  # [N, 3]
    r = np.linalg.norm(d, axis=-1)
    az = np.degrees(np.arctan2(d[:, 0], d[:, 2]))
    el = np.degrees(np.arcsin(np.clip(d[:, 1] / np.maximum(r, 1e-12), -1.0, 1.0)))
    return np.stack([az, el, r], axis=-1)


def sweep(views: int, closed: bool) -> np.ndarray:
    """[V] sweep parameter u in [0, 1]: i / V when closed (no duplicate end), else i / (V - 1)."""
    if closed:
        return np.arange(views, dtype=np.float64) / views
    return np.linspace(0.0, 1.0, views) if views > 1 else np.zeros(1)


# ---------------------------------------------------------------------------------------------
# Validation of user values (generators are called with preset and flag values)
# ---------------------------------------------------------------------------------------------
def _check_common(
    views: int,
    radius: float | Sequence[float] | np.ndarray,
    fov: float,
    width: int,
    height: int,
    elevation: float | Sequence[float] | np.ndarray,
    min_views: int = 1,
) -> None:
    if isinstance(views, bool) or int(views) != views or views < min_views:
        raise BadInput(f"views must be a whole number >= {min_views}, got {views}")
    if views > 10000:
        raise BadInput(f"views must be at most 10000, got {views}")
    if np.any(np.asarray(radius) <= 0):
        raise BadInput(f"radius must be > 0 metres, got {radius}")
    if not 0 < fov < 180:
        raise BadInput(f"fov must be between 0 and 180 degrees (vertical), got {fov}")
    if int(width) != width or int(height) != height or width < 1 or height < 1:
        raise BadInput(f"width and height must be whole numbers of pixels >= 1, got {width}x{height}")
    if np.any(np.abs(np.asarray(elevation)) >= 90):
        raise BadInput(
            f"elevation must be strictly between -90 and 90 degrees, got {elevation}",
            hint="a camera straight above or below the subject has no upright picture",
        )


def _path(
    azimuth: np.ndarray,
    elevation: np.ndarray,
    radius: np.ndarray,
    fov: float,
    width: int,
    height: int,
    target: Sequence[float],
    closed: bool,
    name: str,
) -> CameraPath:
    """Assemble a CameraPath of V look-at cameras from [V] azimuth/elevation (deg) and radius (m)."""
    V = len(azimuth)
    aim = np.asarray(target, dtype=np.float64)  # [3] metres
    if aim.shape != (3,) or not np.all(np.isfinite(aim)):
        raise BadInput(f"target must be three numbers (x, y, z metres), got {aim.tolist()}")
    pos = spherical_positions(azimuth, np.broadcast_to(elevation, (V,)), np.broadcast_to(radius, (V,)), aim)
    w2c = look_at(pos, aim)  # [V, 4, 4]
    K = np.broadcast_to(intrinsics(fov, int(width), int(height)), (V, 3, 3)).copy()  # [V, 3, 3]
    return CameraPath(K=K, world_to_cam=w2c, width=int(width), height=int(height), closed=closed, name=name)


def _is_full_turn(degrees: float) -> bool:
    return abs(abs(degrees) - 360.0) < 1e-9


# ---------------------------------------------------------------------------------------------
# Generators
# ---------------------------------------------------------------------------------------------
def static(
    views: int = 1,
    azimuth: float = 0.0,
    elevation: float = 10.0,
    radius: float = 2.5,
    fov: float = 40.0,
    width: int = 512,
    height: int = 512,
    target: Sequence[float] = DEFAULT_TARGET,
) -> CameraPath:
    """A camera that does not move (`views` identical copies, 1 by default)."""
    _check_common(views, radius, fov, width, height, elevation)
    V = int(views)
    return _path(
        np.full(V, float(azimuth)),
        np.full(V, float(elevation)),
        np.full(V, float(radius)),
        fov,
        width,
        height,
        target,
        closed=False,
        name="static",
    )


def orbit(
    views: int = 21,
    degrees: float = 360.0,
    elevation: float = 10.0,
    radius: float = 2.5,
    fov: float = 40.0,
    width: int = 512,
    height: int = 512,
    target: Sequence[float] = DEFAULT_TARGET,
    start: float = 0.0,
    closed: bool | None = None,
) -> CameraPath:
    """Cameras on a horizontal circle around the subject, from azimuth `start` through `degrees`.

    A full turn (|degrees| = 360) is closed by default: V views at start + degrees * i / V, the first not
    repeated at the end. A partial arc includes both ends. Negative degrees turn toward the subject's right.
    """
    closed = _is_full_turn(degrees) if closed is None else bool(closed)
    _check_common(views, radius, fov, width, height, elevation, min_views=3 if closed else 1)
    if degrees == 0 or abs(degrees) > 360:
        raise BadInput(
            f"orbit degrees must be non-zero and within [-360, 360], got {degrees}",
            hint="use the static camera for no motion",
        )
    V = int(views)
    az = start + degrees * sweep(V, closed)  # [V] degrees
    return _path(
        az,
        np.full(V, float(elevation)),
        np.full(V, float(radius)),
        fov,
        width,
        height,
        target,
        closed=closed,
        name="orbit",
    )


def arc(
    views: int = 9,
    degrees: float = 90.0,
    center: float = 0.0,
    elevation: float = 5.0,
    rise: float = 0.0,
    radius: float = 2.5,
    fov: float = 40.0,
    width: int = 512,
    height: int = 512,
    target: Sequence[float] = DEFAULT_TARGET,
) -> CameraPath:
    """A partial sweep centred on azimuth `center`: from center - degrees/2 to center + degrees/2, the
    elevation going from `elevation` to `elevation + rise` on the way (both ends included)."""
    _check_common(views, radius, fov, width, height, [elevation, elevation + rise])
    if abs(degrees) >= 360:
        raise BadInput(f"arc degrees must be less than 360 in size, got {degrees}", hint="use orbit for a full turn")
    V = int(views)
    u = sweep(V, closed=False)  # [V]
    az = center + degrees * (u - 0.5)
    el = elevation + rise * u
    return _path(az, el, np.full(V, float(radius)), fov, width, height, target, closed=False, name="arc")


def dolly(
    views: int = 16,
    radius: float = 2.0,
    start_radius: float = 4.0,
    azimuth: float = 0.0,
    elevation: float = 5.0,
    fov: float = 40.0,
    width: int = 512,
    height: int = 512,
    target: Sequence[float] = DEFAULT_TARGET,
) -> CameraPath:
    """Move along the view axis toward (start_radius > radius: dolly in) or away from the subject.

    radius: where the move ends (the framing distance, metres); start_radius: where it starts.
    """
    _check_common(views, [radius, start_radius], fov, width, height, elevation)
    V = int(views)
    r = start_radius + (radius - start_radius) * sweep(V, closed=False)  # [V] metres
    return _path(
        np.full(V, float(azimuth)),
        np.full(V, float(elevation)),
        r,
        fov,
        width,
        height,
        target,
        closed=False,
        name="dolly",
    )


def spiral(
    views: int = 48,
    degrees: float = 360.0,
    elevation: float = 10.0,
    amplitude: float = 15.0,
    cycles: float = 2.0,
    rise: float = 0.0,
    radius: float = 2.5,
    fov: float = 40.0,
    width: int = 512,
    height: int = 512,
    target: Sequence[float] = DEFAULT_TARGET,
) -> CameraPath:
    """Orbit whose elevation moves: elevation + rise * u + amplitude * sin(2π cycles u), u in [0, 1].

    Closed (no duplicate end) when it makes a full turn, rises by 0 and oscillates a whole number of cycles.
    """
    closed = _is_full_turn(degrees) and rise == 0 and float(cycles).is_integer()
    u_chk = np.linspace(0, 1, 2001)
    el_chk = elevation + rise * u_chk + amplitude * np.sin(2 * np.pi * cycles * u_chk)
    _check_common(views, radius, fov, width, height, [el_chk.min(), el_chk.max()], min_views=3 if closed else 2)
    if degrees == 0 or abs(degrees) > 360 * 16:
        raise BadInput(f"spiral degrees must be non-zero and at most 16 turns, got {degrees}")
    V = int(views)
    u = sweep(V, closed)  # [V]
    az = degrees * u
    el = elevation + rise * u + amplitude * np.sin(2 * np.pi * cycles * u)
    return _path(az, el, np.full(V, float(radius)), fov, width, height, target, closed=closed, name="spiral")


def view_set(
    azimuths: Sequence[float],
    elevations: float | Sequence[float] = 0.0,
    radius: float = 2.5,
    fov: float = 40.0,
    width: int = 512,
    height: int = 512,
    target: Sequence[float] = DEFAULT_TARGET,
    closed: bool = False,
) -> CameraPath:
    """Fixed views at the given azimuths and elevations (degrees; one elevation for all, or one per view)."""
    az = np.asarray(azimuths, dtype=np.float64).reshape(-1)  # [V]
    el = np.asarray(elevations, dtype=np.float64)
    if el.ndim == 0:
        el = np.full(az.shape, float(el))
    if el.shape != az.shape:
        raise BadInput(f"view_set needs one elevation or one per azimuth: {len(az)} azimuths, {el.size} elevations")
    _check_common(len(az), radius, fov, width, height, el, min_views=3 if closed else 1)
    return _path(az, el, np.full(az.shape, float(radius)), fov, width, height, target, closed=closed, name="view_set")


GENERATORS: dict[str, Callable[..., CameraPath]] = {
    "static": static,
    "orbit": orbit,
    "arc": arc,
    "dolly": dolly,
    "spiral": spiral,
    "view_set": view_set,
}
