"""The video camera of a monocular clip, solved so that the fitted skeleton reprojects onto the 2D landmarks.

`hvg prepare` renders a clip's bone maps from this camera, so they lie on the video's own pixels. The
camera is fixed over the clip (a tripod shot), a pinhole with square pixels, no skew and the principal
point at the image centre: 7 unknowns (focal length, rotation, translation) for 2·T·N observations.

  1. linear start: the direct linear transform (Hartley & Zisserman, "Multiple View Geometry", 2nd ed.,
     algorithm 7.1, with their point normalisation) gives P = K [R | t]; an RQ decomposition splits it and K
     is projected onto the constrained form. Inside RANSAC (8-point samples, a fixed seed) so that wrong
     landmarks do not decide the start, then once more on the best sample's inliers;
  2. refinement: weighted non-linear least squares of the reprojection error in pixels over (ln f, R as a
     rotation vector, t), with a soft-L1 loss so a few wrong landmarks do not pull the camera.
The result carries the mean reprojection error in pixels; `max_error_px` says what a clip may have.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hvg_cli.core.errors import BadInput
from hvg_cli.core.types import Camera


@dataclass(frozen=True, eq=False)
class CameraSolve:
    camera: Camera
    mean_error_px: float  # mean over confident correspondences, pixels of the video
    median_error_px: float  # median of the same (wrong landmarks move the mean, hardly the median)
    frame_error_px: np.ndarray  # [T] mean per frame (nan where a frame had no confident point)
    inliers: float  # fraction of confident correspondences within 3 × the mean error


def max_error_px(vae_factor: int = 8, scale: float = 1.0) -> float:
    """The largest mean reprojection error a training clip may have, in pixels of the video.

    The UNet sees the pose encoder's output on the latent grid, one cell per vae_factor pixels of the
    training image; bone maps off by half a cell or more start to name the wrong cell. So: half a cell at
    the training resolution, i.e. 0.5 · vae_factor training pixels, times `scale` = video pixels per
    training pixel (e.g. 1920 / 512).
    """
    return 0.5 * vae_factor * scale


def project(camera_K: np.ndarray, world_to_cam: np.ndarray, points: np.ndarray) -> np.ndarray:
    """points [..., 3] world metres -> [..., 2] pixels (OpenCV)."""
    pc = points @ world_to_cam[:3, :3].T + world_to_cam[:3, 3]  # [..., 3] camera space
    uv = pc @ camera_K.T  # [..., 3]
    return uv[..., :2] / uv[..., 2:3]


def _normaliser(x: np.ndarray) -> np.ndarray:
    """Similarity T with T·x centred at 0 and mean distance √d (Hartley's normalisation). x: [n, d]."""
    d = x.shape[1]
    c = x.mean(0)
    s = np.sqrt(d) / max(np.linalg.norm(x - c, axis=1).mean(), 1e-12)
    T = np.eye(d + 1)
    T[:d, :d] *= s
    T[:d, d] = -s * c
    return T


def _dlt(X: np.ndarray, x: np.ndarray) -> np.ndarray:
    """P [3, 4] from world points X [n, 3] and pixels x [n, 2] (n ≥ 6, not all on one plane)."""
    Tx, TX = _normaliser(x), _normaliser(X)
    xh = np.c_[x, np.ones(len(x))] @ Tx.T  # [n, 3]
    Xh = np.c_[X, np.ones(len(X))] @ TX.T  # [n, 4]
    A = np.zeros((2 * len(X), 12))
    A[0::2, 4:8] = -xh[:, 2:3] * Xh
    A[0::2, 8:12] = xh[:, 1:2] * Xh
    A[1::2, 0:4] = xh[:, 2:3] * Xh
    A[1::2, 8:12] = -xh[:, 0:1] * Xh
    _, sv, vt = np.linalg.svd(A)
    P = vt[-1].reshape(3, 4)
    return np.linalg.inv(Tx) @ P @ TX


def _decompose(P: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """P = K [R | t] with K upper triangular, positive diagonal, det R = +1."""
    from scipy.linalg import rq

    M = P[:, :3]
    if np.linalg.det(M) < 0:  # P is defined up to sign: pick the one with points in front (det R = +1)
        P = -P
        M = -M
    K, R = rq(M)
    D = np.diag(np.sign(np.diag(K)))
    K, R = K @ D, D @ R
    t = np.linalg.solve(K, P[:, 3])
    return K / K[2, 2], R, t


def _constrained(P: np.ndarray, cx: float, cy: float):
    """(f, R, t) of P with K forced to square pixels and the principal point (cx, cy); None if degenerate."""
    try:
        K, R, t = _decompose(P)
    except (np.linalg.LinAlgError, ValueError):
        return None
    f = float(K[0, 0] + K[1, 1]) / 2.0
    if not np.isfinite(f) or f <= 0:
        return None
    # keep the rays of the DLT camera's own principal point: t absorbs the shift of the centre
    Kc = np.array([[f, 0, cx], [0, f, cy], [0, 0, 1.0]])
    t = np.linalg.solve(Kc, K @ t)
    R = np.linalg.solve(Kc, K @ R)
    u, _, vt = np.linalg.svd(R)  # nearest rotation
    R = u @ vt
    if np.linalg.det(R) < 0:
        return None
    return f, R, t


def _reproject(f: float, R: np.ndarray, t: np.ndarray, X: np.ndarray, cx: float, cy: float) -> np.ndarray:
    pc = X @ R.T + t  # [n, 3]
    z = pc[:, 2:3]
    uv = pc[:, :2] / np.where(np.abs(z) < 1e-9, 1e-9, z) * f + np.array([cx, cy])
    return np.where(z > 0, uv, np.inf)  # behind the camera: never an inlier


def _ransac_start(X: np.ndarray, x: np.ndarray, cx: float, cy: float, thresh: float, iters: int = 300):
    rng = np.random.default_rng(0)  # fixed: the solve is a pure function of its inputs
    best, best_count = None, -1
    for _ in range(iters):
        pick = rng.choice(len(X), size=8, replace=False)
        cam = _constrained(_dlt(X[pick], x[pick]), cx, cy)
        if cam is None:
            continue
        f, R, t = cam
        count = int((np.linalg.norm(_reproject(f, R, t, X, cx, cy) - x, axis=1) < thresh).sum())
        if count > best_count:
            best, best_count = cam, count
    if best is not None and best_count >= 8:
        inl = np.linalg.norm(_reproject(best[0], best[1], best[2], X, cx, cy) - x, axis=1) < thresh
        again = _constrained(_dlt(X[inl], x[inl]), cx, cy)
        if again is not None:
            best = again
    if best is None:
        raise BadInput(
            "the video camera could not be solved from the landmarks",
            "use a clip where the person is clearly visible and moves",
        )
    return best


def solve_camera(
    points: np.ndarray, pixels: np.ndarray, weights: np.ndarray, width: int, height: int, min_weight: float = 0.5
) -> CameraSolve:
    """A fixed camera for a clip.

    points:  [T, N, 3] world positions of N skeleton points per frame, metres (the fitted motion's joints)
    pixels:  [T, N, 2] where the video shows them (e.g. MediaPipe landmarks matched to those joints), pixels
    weights: [T, N] confidence in [0, 1] (landmark visibility); below min_weight a point is not used
    """
    from scipy.optimize import least_squares
    from scipy.spatial.transform import Rotation

    T, N = points.shape[:2]
    use = weights >= min_weight  # [T, N]
    X, x, w = points[use].astype(np.float64), pixels[use].astype(np.float64), weights[use].astype(np.float64)
    if len(X) < 12:
        raise BadInput(
            f"only {len(X)} confident landmarks to solve the video camera from (12 needed)",
            "use a clip where the person is clearly visible",
        )
    spread = np.linalg.svd(X - X.mean(0), compute_uv=False)
    if spread[-1] < 1e-3 * spread[0]:
        raise BadInput(
            "the skeleton points lie on one plane over the whole clip: the camera cannot be solved",
            "use a longer clip with more movement",
        )
    cx, cy = width / 2.0, height / 2.0

    # 1. linear start, robust: RANSAC over 8-point DLTs, each scored with its constrained camera
    #    (square pixels, centred principal point); then one DLT on the best sample's inliers
    f0, R0, t0 = _ransac_start(X, x, cx, cy, thresh=0.01 * float(np.hypot(width, height)))

    # 2. refinement over (ln f, rotation vector, t)
    def unpack(p):
        K = np.array([[np.exp(p[0]), 0, cx], [0, np.exp(p[0]), cy], [0, 0, 1.0]])
        R = Rotation.from_rotvec(p[1:4]).as_matrix()
        return K, R, p[4:7]

    sw = np.sqrt(w)[:, None]

    def residual(p):
        K, R, t = unpack(p)
        pc = X @ R.T + t  # [n, 3]
        z = np.maximum(pc[:, 2:3], 1e-6)  # points behind the camera get a large residual, not a division by 0
        uv = (pc[:, :2] / z) * K[0, 0] + np.array([cx, cy])
        return ((uv - x) * sw).ravel()

    p0 = np.r_[np.log(f0), Rotation.from_matrix(R0).as_rotvec(), t0]
    fit = least_squares(residual, p0, loss="soft_l1", f_scale=2.0, x_scale="jac", max_nfev=200)
    K, R, t = unpack(fit.x)
    E = np.eye(4)
    E[:3, :3], E[:3, 3] = R, t
    cam = Camera(K=K, world_to_cam=E, width=int(width), height=int(height))

    err_all = np.full((T, N), np.nan)
    err_all[use] = np.linalg.norm(project(K, E, X) - x, axis=1)
    mean = float(np.nanmean(err_all[use]))
    with np.errstate(invalid="ignore"), _quiet_nanmean():
        per_frame = np.nanmean(err_all, axis=1)  # [T]
    inl = float(np.mean(err_all[use] <= 3 * mean)) if mean > 0 else 1.0
    return CameraSolve(cam, mean, float(np.median(err_all[use])), per_frame, inl)


class _quiet_nanmean:
    """np.nanmean warns on all-nan rows (frames without confident points): their nan is the answer."""

    def __enter__(self):
        import warnings

        self._w = warnings.catch_warnings()
        self._w.__enter__()
        warnings.simplefilter("ignore", RuntimeWarning)

    def __exit__(self, *exc):
        return self._w.__exit__(*exc)
