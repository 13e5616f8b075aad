"""The body's placement in a calibrated multi-view capture: a similarity that makes a fitted motion reproject
onto the 2D landmarks of every camera.

`hvg prepare` fits the motion on one camera's video (the cached pose stages: skeleton, rotations and root path
in the motion's own y-up world, metres). The cameras are known (transforms.json), so what is left is where
that body stands in the capture's world: a scale s, a rotation R and a translation t (7 unknowns), with

    x_capture = s · R · x_motion + t

  1. linear start: the landmarks are triangulated in the capture's world from every frame seen confidently by
     at least two cameras (the homogeneous DLT of Hartley & Zisserman, "Multiple View Geometry", 2nd ed.,
     section 12.2), and Umeyama's closed form (Umeyama 1991, "Least-squares estimation of transformation
     parameters between two point patterns") gives the weighted least-squares similarity between the motion's
     points and the triangulated ones;
  2. refinement: weighted non-linear least squares of the reprojection error in pixels over all cameras and
     frames, over (ln s, R as a rotation vector, t), with a soft-L1 loss as in train.camera_solve.

`Placement.body_cameras` re-expresses the cameras in the motion's world (the same projections, depth in the
motion's metres), so a multi-view clip lives in the same body-centred y-up frame as monocular and synthetic
clips and as `hvg animate`'s cameras.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hvg_cli.core.errors import BadInput


@dataclass(frozen=True, eq=False)
class Placement:
    scale: float  # s: capture units per motion metre
    rotation: np.ndarray  # [3, 3] R
    translation: np.ndarray  # [3] t, capture units
    camera_error_px: np.ndarray  # [V] mean reprojection error per camera, pixels of that camera's image
    camera_points: np.ndarray  # [V] confident correspondences each camera contributed

    def to_capture(self, points: np.ndarray) -> np.ndarray:
        """[..., 3] motion world metres -> [..., 3] capture world."""
        return self.scale * points @ self.rotation.T + self.translation

    def body_cameras(self, world_to_cam: np.ndarray) -> np.ndarray:
        """[V, 4, 4] capture cameras (OpenCV) -> [V, 4, 4] rigid cameras in the motion's world that project every
        motion point exactly where the capture camera projects its placed twin.

        E · S with S = [[sR, t], [0, 1]] is [[s·Rc·R, Rc·t + tc]]; dividing the top rows by s (a projection is
        unchanged by scaling camera coordinates) leaves [[Rc·R, (Rc·t + tc) / s]]: depth in motion metres."""
        E = np.asarray(world_to_cam, dtype=np.float64)  # [V, 4, 4]
        out = np.tile(np.eye(4), (len(E), 1, 1))
        out[:, :3, :3] = E[:, :3, :3] @ self.rotation  # [V, 3, 3]
        out[:, :3, 3] = (E[:, :3, :3] @ self.translation + E[:, :3, 3]) / self.scale  # [V, 3]
        return out


def project(K: np.ndarray, world_to_cam: np.ndarray, points: np.ndarray) -> np.ndarray:
    """points [..., 3] -> [..., 2] pixels through one camera K [3, 3], world_to_cam [4, 4] (OpenCV)."""
    pc = points @ world_to_cam[:3, :3].T + world_to_cam[:3, 3]  # [..., 3] camera space
    uv = pc @ K.T  # [..., 3]
    return uv[..., :2] / uv[..., 2:3]


def triangulate(
    pixels: np.ndarray, weights: np.ndarray, K: np.ndarray, world_to_cam: np.ndarray, min_weight: float = 0.5
) -> tuple[np.ndarray, np.ndarray]:
    """Linear (DLT) triangulation of M points seen by V cameras.

    pixels [V, M, 2]; weights [V, M] in [0, 1] (below min_weight a view does not vote); K [V, 3, 3];
    world_to_cam [V, 4, 4]. Returns (points [M, 3] capture world, ok [M]: seen by two or more cameras and in
    front of every camera that saw it).
    """
    P = K @ world_to_cam[:, :3, :]  # [V, 3, 4] projection matrices
    use = weights >= min_weight  # [V, M]
    w = np.where(use, 1.0, 0.0)[..., None]  # [V, M, 1]
    # rows u·P3 - P1 and v·P3 - P2 of each view, zeroed where the view does not see the point
    r1 = pixels[..., 0:1] * P[:, None, 2] - P[:, None, 0]  # [V, M, 4]
    r2 = pixels[..., 1:2] * P[:, None, 2] - P[:, None, 1]  # [V, M, 4]
    r1 = r1 / np.maximum(np.linalg.norm(r1, axis=-1, keepdims=True), 1e-12) * w
    r2 = r2 / np.maximum(np.linalg.norm(r2, axis=-1, keepdims=True), 1e-12) * w
    A = np.concatenate([r1, r2], axis=0).transpose(1, 0, 2)  # [M, 2V, 4]
    _, _, vt = np.linalg.svd(A)
    Xh = vt[:, -1]  # [M, 4]
    ok = use.sum(0) >= 2
    ok &= np.abs(Xh[:, 3]) > 1e-12
    X = Xh[:, :3] / np.where(ok, Xh[:, 3], 1.0)[:, None]  # [M, 3]
    z = np.einsum("vij,mj->vmi", world_to_cam[:, :3, :3], X)[..., 2] + world_to_cam[:, None, 2, 3]  # [V, M]
    ok &= np.all((z > 0) | ~use, axis=0)
    return X, ok


def umeyama(
    src: np.ndarray, dst: np.ndarray, weights: np.ndarray | None = None
) -> tuple[float, np.ndarray, np.ndarray]:
    """(s, R, t) minimising Σ w·|dst - (s·R·src + t)|²; src, dst [n, 3], weights [n] (Umeyama 1991)."""
    w = np.ones(len(src)) if weights is None else np.asarray(weights, dtype=np.float64)
    w = w / w.sum()
    mu_s, mu_d = w @ src, w @ dst  # [3]
    a, b = src - mu_s, dst - mu_d  # [n, 3]
    cov = (b * w[:, None]).T @ a  # [3, 3]
    U, D, Vt = np.linalg.svd(cov)
    S = np.eye(3)
    if np.linalg.det(U) * np.linalg.det(Vt) < 0:
        S[2, 2] = -1.0
    R = U @ S @ Vt
    var = float(w @ (a**2).sum(1))
    s = float(np.trace(np.diag(D) @ S) / max(var, 1e-12))
    return s, R, mu_d - s * R @ mu_s


def solve_placement(
    points: np.ndarray,
    pixels: np.ndarray,
    weights: np.ndarray,
    K: np.ndarray,
    world_to_cam: np.ndarray,
    min_weight: float = 0.5,
) -> Placement:
    """The similarity that places the motion's body in the capture.

    points:       [T, N, 3] the fitted body's points (e.g. its 33 landmarks) in the motion's world, metres
    pixels:       [V, T, N, 2] where camera v shows them (MediaPipe's landmarks), pixels of that camera
    weights:      [V, T, N] confidence in [0, 1]; below min_weight a correspondence is not used
    K:            [V, 3, 3] intrinsics of each camera, pixels;  world_to_cam: [V, 4, 4] OpenCV, capture world
    Raises BadInput when fewer than two cameras see the person confidently enough to triangulate a start.
    """
    from scipy.optimize import least_squares
    from scipy.spatial.transform import Rotation

    V, T, N = pixels.shape[:3]
    use = weights >= min_weight  # [V, T, N]

    # 1. linear start: triangulate every (frame, point), Umeyama between the body's points and those
    Xc, ok = triangulate(
        pixels.reshape(V, T * N, 2), weights.reshape(V, T * N), K, world_to_cam, min_weight
    )  # [T*N, 3], [T*N]
    src = points.reshape(T * N, 3)
    if ok.sum() < 6:
        raise BadInput(
            f"only {int(ok.sum())} landmarks are seen by two or more cameras: the body cannot be placed",
            "check that the cameras see the person at the same time and that transforms.json matches the videos",
        )
    w_ok = weights.reshape(V, T * N)[:, ok].clip(0).sum(0)  # [n] more views, more weight
    s0, R0, t0 = umeyama(src[ok], Xc[ok], w_ok)
    if not np.isfinite(s0) or s0 <= 0:
        raise BadInput("the body could not be placed in the capture (degenerate triangulation)")

    # 2. refinement over (ln s, rotation vector, t) of the reprojection error in every camera
    vi, ti, ni = np.nonzero(use)  # correspondences
    X = points[ti, ni]  # [n, 3] motion world
    x = pixels[vi, ti, ni]  # [n, 2]
    sw = np.sqrt(weights[vi, ti, ni])[:, None]  # [n, 1]
    Rc, tc = world_to_cam[vi, :3, :3], world_to_cam[vi, :3, 3]  # [n, 3, 3], [n, 3]
    Kn = K[vi]  # [n, 3, 3]

    def reproject(p: np.ndarray) -> np.ndarray:
        s, R = np.exp(p[0]), Rotation.from_rotvec(p[1:4]).as_matrix()
        Y = s * X @ R.T + p[4:7]  # [n, 3] capture world
        pc = np.einsum("nij,nj->ni", Rc, Y) + tc  # [n, 3] camera space
        z = np.maximum(pc[:, 2:3], 1e-6)  # behind a camera: a large residual, not a division by 0
        uv = np.einsum("nij,nj->ni", Kn, pc / z)  # [n, 3]
        return uv[:, :2]

    def residual(p: np.ndarray) -> np.ndarray:
        return ((reproject(p) - x) * sw).ravel()

    p0 = np.r_[np.log(s0), Rotation.from_matrix(R0).as_rotvec(), t0]
    # the translation's natural scale is the body's size in the capture (s0 · ~1 m), not 1 unit
    x_scale = np.r_[0.1, 0.1, 0.1, 0.1, np.full(3, 0.1 * s0)]
    fit = least_squares(residual, p0, loss="soft_l1", f_scale=2.0, x_scale=x_scale, max_nfev=200)
    err = np.linalg.norm(reproject(fit.x) - x, axis=1)  # [n] pixels
    per_cam = np.array([err[vi == v].mean() if np.any(vi == v) else np.nan for v in range(V)])
    counts = np.bincount(vi, minlength=V)
    return Placement(
        float(np.exp(fit.x[0])),
        Rotation.from_rotvec(fit.x[1:4]).as_matrix(),
        np.asarray(fit.x[4:7], dtype=np.float64),
        per_cam,
        counts,
    )
