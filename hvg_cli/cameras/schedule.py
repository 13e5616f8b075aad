"""From a camera path (V keyframes or fixed views) to the cameras of a job: one per output view and frame.

mode "views":  every one of the V views for every frame: a [V, T] grid by repetition.
mode "moving": one camera (V = 1) that advances along the path with time. Frame k of T sits at time
               s = k / (T - 1) in [0, 1]; keyframe i is reached at path.times[i] (evenly spaced when None).
               A closed path returns to its first keyframe at s = 1, so a 360° orbit ends at 360° on the
               last frame.

Interpolation. When every keyframe camera looks at one common point (orbits, arcs, spirals, dollies around
the subject: the usual case), the camera is interpolated in spherical coordinates around that point
(azimuth unwrapped, elevation, radius, roll about the view axis, focal length, principal point) with a
cubic Hermite spline whose tangents are centred differences (Catmull-Rom on non-uniform times). It passes
through every keyframe, has a continuous velocity, keeps the camera on the sphere, and reproduces a
constant-speed orbit exactly. Otherwise (e.g. an imported free-flight path) centres follow the same
spline in Cartesian coordinates and rotations are slerped between keyframes.
"""

from __future__ import annotations

import math

import numpy as np

from hvg_cli.cameras.generators import DEFAULT_TARGET, look_at, orbit, spherical_coordinates, static
from hvg_cli.core.errors import BadInput
from hvg_cli.core.types import CameraGrid, CameraPath

MODES = ("views", "moving")


def camera_grid(path: CameraPath, num_frames: int, mode: str = "moving") -> CameraGrid:
    """The cameras of every output view and frame.

    path:       V cameras (keyframes or fixed views)
    num_frames: T >= 1
    mode:       "views" -> K [V, T, 3, 3], world_to_cam [V, T, 4, 4]
                "moving" -> K [1, T, 3, 3], world_to_cam [1, T, 4, 4]
    """
    if mode not in MODES:
        raise BadInput(f"unknown camera mode {mode!r}", hint=f"use one of: {', '.join(MODES)}")
    if isinstance(num_frames, bool) or int(num_frames) != num_frames or num_frames < 1:
        raise BadInput(f"the number of frames must be a whole number >= 1, got {num_frames}")
    T = int(num_frames)
    V = path.num_views
    if mode == "views":
        K = np.repeat(path.K[:, None], T, axis=1)  # [V, T, 3, 3]
        w2c = np.repeat(path.world_to_cam[:, None], T, axis=1)  # [V, T, 4, 4]
        return CameraGrid(K=K, world_to_cam=w2c, width=path.width, height=path.height, mode="views", closed=path.closed)
    s = np.linspace(0.0, 1.0, T) if T > 1 else np.zeros(1)  # [T] time of each frame
    if V == 1:
        K = np.repeat(path.K[None], T, axis=1)  # [1, T, 3, 3]
        w2c = np.repeat(path.world_to_cam[None], T, axis=1)  # [1, T, 4, 4]
    else:
        K, w2c = interpolate_path(path, s)
        K, w2c = K[None], w2c[None]  # [1, T, ...]
    return CameraGrid(K=K, world_to_cam=w2c, width=path.width, height=path.height, mode="moving", closed=False)


def keyframe_times(path: CameraPath) -> np.ndarray:
    """[V (+1 when closed)] increasing times in [0, 1] of the keyframes; a closed path gets its first
    keyframe again at time 1."""
    V = path.num_views
    if path.times is not None:
        t = np.asarray(path.times, dtype=np.float64).reshape(-1)
        if t.shape != (V,) or not np.all(np.isfinite(t)) or np.any(np.diff(t) <= 0) or t[0] < 0 or t[-1] > 1:
            raise BadInput(f"camera path {path.name!r}: times must be {V} increasing values in [0, 1]")
        if path.closed:
            if t[-1] >= 1:
                raise BadInput(f"camera path {path.name!r} is closed: its last keyframe time must be < 1")
            t = np.append(t, 1.0)
        return t
    if path.closed:
        return np.arange(V + 1, dtype=np.float64) / V
    return np.linspace(0.0, 1.0, V)


def interpolate_path(path: CameraPath, s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Cameras along the path at times s.

    path:    V >= 2 keyframes
    s:       [T] times in [0, 1]
    returns: K [T, 3, 3], world_to_cam [T, 4, 4]
    """
    times = keyframe_times(path)  # [N] (N = V, or V + 1 when closed)
    idx = np.arange(len(times)) % path.num_views  # keyframe index of each knot
    c2w = np.linalg.inv(path.world_to_cam)  # [V, 4, 4]
    centres, R = c2w[:, :3, 3], c2w[:, :3, :3]  # [V, 3], [V, 3, 3] (columns: camera axes in world)
    intr = np.stack([path.K[:, 0, 0], path.K[:, 1, 1], path.K[:, 0, 2], path.K[:, 1, 2]], axis=-1)  # [V, 4]

    pivot = common_focus(centres, R[:, :, 2])
    if pivot is not None:
        sph = spherical_coordinates(centres, pivot)  # [V, 3] az, el, r
        roll = _roll(R, centres, pivot)  # [V] degrees
        knots = np.concatenate([sph, roll[:, None], intr], axis=-1)[idx]  # [N, 8]
        knots[:, 0] = unwrap_degrees(knots[:, 0])
        knots[:, 3] = unwrap_degrees(knots[:, 3])
        vals = hermite(times, knots, s, closed=path.closed)  # [T, 8]
        pos = pivot + vals[:, 2:3] * np.stack(
            [
                np.sin(np.radians(vals[:, 0])) * np.cos(np.radians(vals[:, 1])),
                np.sin(np.radians(vals[:, 1])),
                np.cos(np.radians(vals[:, 0])) * np.cos(np.radians(vals[:, 1])),
            ],
            axis=-1,
        )  # [T, 3]
        w2c = look_at(pos, pivot)  # [T, 4, 4]
        w2c[:, :3, :] = _roll_matrix(vals[:, 3]) @ w2c[:, :3, :]
        intr_t = vals[:, 4:]
    else:
        knots = np.concatenate([centres, intr], axis=-1)[idx]  # [N, 7]
        vals = hermite(times, knots, s, closed=path.closed)  # [T, 7]
        Rt = _slerp_keyframes(times, R[idx], s)  # [T, 3, 3] cam-to-world rotations
        w2c = np.tile(np.eye(4), (len(s), 1, 1))  # [T, 4, 4]
        w2c[:, :3, :3] = np.swapaxes(Rt, -1, -2)
        w2c[:, :3, 3] = -np.einsum("tji,tj->ti", Rt, vals[:, :3])
        intr_t = vals[:, 3:]
    K = np.zeros((len(s), 3, 3))  # [T, 3, 3]
    K[:, 0, 0], K[:, 1, 1], K[:, 0, 2], K[:, 1, 2], K[:, 2, 2] = (
        intr_t[:, 0],
        intr_t[:, 1],
        intr_t[:, 2],
        intr_t[:, 3],
        1.0,
    )
    return K, w2c


def common_focus(centres: np.ndarray, forward: np.ndarray, tol: float = 1e-6) -> np.ndarray | None:
    """The point every camera's optical axis passes through, if there is one in front of all cameras.

    centres: [V, 3] metres;  forward: [V, 3] unit view directions
    returns: [3] metres, or None (axes all parallel, or no common point within tol * scene size)
    """
    P = np.eye(3) - forward[:, :, None] * forward[:, None, :]  # [V, 3, 3] projectors orthogonal to each axis
    A = P.sum(0)
    b = np.einsum("vij,vj->i", P, centres)
    w = np.linalg.eigvalsh(A)
    if w[0] < 1e-6 * w[-1]:  # all axes (nearly) parallel: a dolly along one axis or a still camera
        return _focus_on_shared_axis(centres, forward, tol)
    p = np.linalg.solve(A, b)
    d = p - centres  # [V, 3]
    depth = np.einsum("vi,vi->v", d, forward)
    miss = np.linalg.norm(d - depth[:, None] * forward, axis=-1)
    scale = max(1.0, float(np.abs(centres).max()))
    if np.all(depth > 1e-6) and np.all(miss < tol * scale):
        return p
    return None


def _focus_on_shared_axis(centres: np.ndarray, forward: np.ndarray, tol: float) -> np.ndarray | None:
    """For cameras sharing one optical axis (a dolly): a point on the axis ahead of every camera, chosen
    where the generators put the subject (the axis point closest to the default target) when possible."""
    f = forward[0]
    if np.any(np.linalg.norm(forward - f, axis=-1) > tol):
        return None
    d = centres - centres[0]
    if np.any(np.linalg.norm(d - (d @ f)[:, None] * f, axis=-1) > tol * max(1.0, float(np.abs(centres).max()))):
        return None
    ahead = float((d @ f).max())  # the most advanced camera, along the axis from camera 0
    t = max(float((np.asarray(DEFAULT_TARGET) - centres[0]) @ f), ahead + 1.0)
    return centres[0] + t * f


def _roll(R: np.ndarray, centres: np.ndarray, pivot: np.ndarray) -> np.ndarray:
    """[V] degrees: rotation about the view axis of each camera relative to the upright look-at camera."""
    upright = np.linalg.inv(look_at(centres, pivot))[:, :3, :3]  # [V, 3, 3] c2w
    x_up, x = upright[:, :, 0], R[:, :, 0]
    y_up = upright[:, :, 1]
    return np.degrees(np.arctan2(np.einsum("vi,vi->v", x, y_up), np.einsum("vi,vi->v", x, x_up)))


def _roll_matrix(roll_deg: np.ndarray) -> np.ndarray:
    """[T, 3, 3] camera-frame rotation about z by roll (inverse of `_roll`: w2c_rolled = Rz · w2c_upright)."""
    a = np.radians(roll_deg)
    c, s = np.cos(a), np.sin(a)
    Rz = np.zeros((len(a), 3, 3))
    Rz[:, 0, 0], Rz[:, 0, 1], Rz[:, 1, 0], Rz[:, 1, 1], Rz[:, 2, 2] = c, s, -s, c, 1.0
    return Rz


def unwrap_degrees(a: np.ndarray) -> np.ndarray:
    """Unwrap angles (degrees) so that consecutive steps are the short way round, in (-180, 180]."""
    step = np.diff(a)
    step = step - 360.0 * np.round(step / 360.0)
    return np.concatenate([a[:1], a[0] + np.cumsum(step)])


def hermite(t: np.ndarray, y: np.ndarray, s: np.ndarray, closed: bool = False) -> np.ndarray:
    """Cubic Hermite spline through knots (t_i, y_i), tangents by centred differences (Catmull-Rom on
    non-uniform knots): passes through every knot, C1, exact on linear data.

    t: [N] increasing;  y: [N, D];  s: [M] in [t_0, t_N-1];  closed: the first and last knot are the same
    point of a loop (y_N-1 = y_0 + a constant offset, e.g. 360°), so their tangents wrap round.
    returns: [M, D]
    """
    N = len(t)
    if N == 1:
        return np.repeat(y[:1], len(s), axis=0)
    m = np.empty_like(y)  # [N, D] tangents dy/dt
    m[1:-1] = (y[2:] - y[:-2]) / (t[2:] - t[:-2])[:, None]
    if closed and N > 2:
        # neighbours across the seam: knot N-2 (before the end) and knot 1 (after the start), period 1 in t
        period_y = y[-1] - y[0]
        m_seam = (y[1] + period_y - y[-2]) / ((t[1] + (t[-1] - t[0])) - t[-2])
        m[0] = m[-1] = m_seam
    else:
        m[0] = (y[1] - y[0]) / (t[1] - t[0])
        m[-1] = (y[-1] - y[-2]) / (t[-1] - t[-2])
    s = np.clip(np.asarray(s, dtype=np.float64), t[0], t[-1])
    i = np.clip(np.searchsorted(t, s, side="right") - 1, 0, N - 2)  # [M] segment of each sample
    h = (t[i + 1] - t[i])[:, None]  # [M, 1]
    u = (s[:, None] - t[i][:, None]) / h
    h00, h10 = 2 * u**3 - 3 * u**2 + 1, u**3 - 2 * u**2 + u
    h01, h11 = -2 * u**3 + 3 * u**2, u**3 - u**2
    return h00 * y[i] + h10 * h * m[i] + h01 * y[i + 1] + h11 * h * m[i + 1]


def _slerp_keyframes(t: np.ndarray, R: np.ndarray, s: np.ndarray) -> np.ndarray:
    """Piecewise slerp of rotations between keyframes.

    t: [N];  R: [N, 3, 3];  s: [M]  ->  [M, 3, 3]
    """
    from scipy.spatial.transform import Rotation, Slerp

    s = np.clip(np.asarray(s, dtype=np.float64), t[0], t[-1])
    return Slerp(t, Rotation.from_matrix(R))(s).as_matrix()


def orbit_flags(
    orbit_deg: float,
    views: int | None = None,
    elevation: float | None = None,
    radius: float | None = None,
    fov: float | None = None,
    width: int | None = None,
    height: int | None = None,
) -> CameraPath:
    """The path of the `--orbit DEG` shorthand: an orbit through DEG degrees starting at the front.

    orbit_deg: 0 -> a static front camera; ±360 -> a closed full turn; otherwise a partial arc.
    views:     keyframes (default: one per ~17°, 21 for a full turn, as SV3D).
    The others, None = the shorthand's default: elevation 10°, radius 3 m, fov 40°, 512x512 px.
    """
    elevation = 10.0 if elevation is None else elevation
    radius = 3.0 if radius is None else radius
    fov = 40.0 if fov is None else fov
    width = 512 if width is None else width
    height = 512 if height is None else height
    if orbit_deg == 0:
        return static(views=views or 1, elevation=elevation, radius=radius, fov=fov, width=width, height=height)
    if views is None:
        views = max(2, int(math.ceil(abs(orbit_deg) / 360.0 * 21)))  # a full turn: 21 (a closed orbit needs 3)
    return orbit(
        views=views, degrees=orbit_deg, elevation=elevation, radius=radius, fov=fov, width=width, height=height
    )
