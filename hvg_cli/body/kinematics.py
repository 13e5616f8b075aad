"""Rotation conversions and forward kinematics: small pure numpy functions with shapes.

Convention: a joint's local rotation R_j rotates its children's rest offsets, expressed in the parent's
frame; global rotation G_j = G_parent · R_j; position p_j = p_parent + G_parent · offset_j.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def axis_angle_to_matrix(aa: np.ndarray) -> np.ndarray:
    """Rodrigues' formula.

    aa:      [..., 3] axis * angle, radians
    returns: [..., 3, 3] rotation matrices
    """
    aa = np.asarray(aa, dtype=np.float64)
    theta = np.linalg.norm(aa, axis=-1, keepdims=True)  # [..., 1]
    small = theta < 1e-8
    axis = aa / np.where(small, 1.0, theta)
    x, y, z = axis[..., 0], axis[..., 1], axis[..., 2]
    zero = np.zeros_like(x)
    Kx = np.stack([zero, -z, y, z, zero, -x, -y, x, zero], axis=-1).reshape(aa.shape[:-1] + (3, 3))
    s = np.sin(theta)[..., None]  # [..., 1, 1]
    c = np.cos(theta)[..., None]
    eye = np.broadcast_to(np.eye(3), Kx.shape)
    R = eye + s * Kx + (1 - c) * (Kx @ Kx)
    # first-order for tiny angles: I + [aa]x
    ax, ay, az = aa[..., 0], aa[..., 1], aa[..., 2]
    K_small = np.stack([zero, -az, ay, az, zero, -ax, -ay, ax, zero], axis=-1).reshape(Kx.shape)
    return np.where(small[..., None], eye + K_small, R)


def matrix_to_axis_angle(R: np.ndarray) -> np.ndarray:
    """Inverse of `axis_angle_to_matrix`, stable near 0 and near pi.

    R:       [..., 3, 3]
    returns: [..., 3] with angle in [0, pi]
    """
    R = np.asarray(R, dtype=np.float64)
    return quaternion_to_axis_angle(matrix_to_quaternion(R))


def matrix_to_quaternion(R: np.ndarray) -> np.ndarray:
    """[..., 3, 3] -> [..., 4] unit quaternion (w, x, y, z) with w >= 0 (Shepperd's method)."""
    R = np.asarray(R, dtype=np.float64)
    m00, m11, m22 = R[..., 0, 0], R[..., 1, 1], R[..., 2, 2]
    tr = m00 + m11 + m22
    cands = np.stack(
        [
            np.stack(
                [1 + tr, R[..., 2, 1] - R[..., 1, 2], R[..., 0, 2] - R[..., 2, 0], R[..., 1, 0] - R[..., 0, 1]], -1
            ),
            np.stack(
                [
                    R[..., 2, 1] - R[..., 1, 2],
                    1 + m00 - m11 - m22,
                    R[..., 0, 1] + R[..., 1, 0],
                    R[..., 0, 2] + R[..., 2, 0],
                ],
                -1,
            ),
            np.stack(
                [
                    R[..., 0, 2] - R[..., 2, 0],
                    R[..., 0, 1] + R[..., 1, 0],
                    1 - m00 + m11 - m22,
                    R[..., 1, 2] + R[..., 2, 1],
                ],
                -1,
            ),
            np.stack(
                [
                    R[..., 1, 0] - R[..., 0, 1],
                    R[..., 0, 2] + R[..., 2, 0],
                    R[..., 1, 2] + R[..., 2, 1],
                    1 - m00 - m11 + m22,
                ],
                -1,
            ),
        ],
        axis=-2,
    )  # [..., 4 candidates, 4]
    pick = np.argmax(np.stack([1 + tr, 1 + m00 - m11 - m22, 1 - m00 + m11 - m22, 1 - m00 - m11 + m22], -1), axis=-1)
    q = np.take_along_axis(cands, pick[..., None, None], axis=-2)[..., 0, :]
    q = q / np.linalg.norm(q, axis=-1, keepdims=True)
    return np.where(q[..., :1] < 0, -q, q)


def quaternion_to_axis_angle(q: np.ndarray) -> np.ndarray:
    """[..., 4] (w, x, y, z) -> [..., 3]."""
    q = np.asarray(q, dtype=np.float64)
    q = np.where(q[..., :1] < 0, -q, q)
    v = q[..., 1:]
    sin_half = np.linalg.norm(v, axis=-1, keepdims=True)
    angle = 2 * np.arctan2(sin_half, q[..., :1])
    scale = np.where(sin_half < 1e-8, 2.0, angle / np.where(sin_half < 1e-8, 1.0, sin_half))
    return v * scale


def rotation_between(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The smallest rotation taking direction a to direction b (swing).

    a, b:    [..., 3] (need not be unit)
    returns: [..., 3, 3]
    """
    a = a / np.linalg.norm(a, axis=-1, keepdims=True)
    b = b / np.linalg.norm(b, axis=-1, keepdims=True)
    axis = np.cross(a, b)
    s = np.linalg.norm(axis, axis=-1, keepdims=True)
    c = np.sum(a * b, axis=-1, keepdims=True)
    angle = np.arctan2(s, c)
    # opposite vectors: rotate by pi about any axis perpendicular to a
    perp = np.cross(a, np.array([1.0, 0.0, 0.0]))
    perp2 = np.cross(a, np.array([0.0, 1.0, 0.0]))
    perp = np.where(np.linalg.norm(perp, axis=-1, keepdims=True) < 1e-6, perp2, perp)
    axis = np.where(
        s < 1e-8,
        np.where(c < 0, perp / np.linalg.norm(perp, axis=-1, keepdims=True), 0.0),
        axis / np.where(s < 1e-8, 1.0, s),
    )
    return axis_angle_to_matrix(axis * angle)


def forward_kinematics(
    local_rot: np.ndarray, offsets: np.ndarray, parents: Sequence[int], root_trans: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Global rotations and joint positions from local rotations.

    local_rot:  [T, J, 3, 3] rotation of each joint relative to its parent
    offsets:    [J, 3] rest offset of each joint from its parent, metres (root row ignored)
    parents:    [J] parent index, -1 for the root; parents come before children
    root_trans: [T, 3] world position of the root joint, metres (default: origin)
    returns:    (global_rot [T, J, 3, 3], joints [T, J, 3] metres)
    """
    T, J = local_rot.shape[:2]
    G = np.empty((T, J, 3, 3))
    P = np.empty((T, J, 3))
    G[:, 0] = local_rot[:, 0]
    P[:, 0] = 0.0 if root_trans is None else root_trans
    for j in range(1, J):
        p = parents[j]
        G[:, j] = G[:, p] @ local_rot[:, j]
        P[:, j] = P[:, p] + G[:, p] @ offsets[j]
    return G, P


def pose_joints(
    poses: np.ndarray, rest_joints: np.ndarray, parents: Sequence[int], trans: np.ndarray | None = None
) -> np.ndarray:
    """Joint positions of axis-angle poses on a rest skeleton.

    poses:       [T, J, 3] axis-angle
    rest_joints: [J, 3] rest-pose joint positions (the root's position is replaced by trans)
    trans:       [T, 3] root position (default: origin)
    returns:     [T, J, 3] metres
    """
    offsets = rest_joints - rest_joints[[max(p, 0) for p in parents]]
    _, joints = forward_kinematics(axis_angle_to_matrix(poses), offsets, parents, trans)
    return joints


def unwrap_axis_angle(aa: np.ndarray) -> np.ndarray:
    """Make a [T, ..., 3] axis-angle track continuous over T (no flips at pi) so it interpolates.

    Each frame takes, among the equivalents (angle + 2*pi*k) * axis, the one nearest the previous frame,
    for any number of turns; a rotation passing through identity at a full turn keeps the previous axis.
    """
    out = np.array(aa, dtype=np.float64, copy=True)
    for t in range(1, out.shape[0]):
        cur, prev = out[t], out[t - 1]  # [..., 3]
        theta = np.linalg.norm(cur, axis=-1, keepdims=True)  # [..., 1]
        prev_theta = np.linalg.norm(prev, axis=-1, keepdims=True)
        axis = np.where(theta > 1e-6, cur / np.maximum(theta, 1e-12), prev / np.maximum(prev_theta, 1e-12))
        base = np.sign(np.sum(axis * cur, axis=-1, keepdims=True)) * theta  # signed angle about axis
        k0 = np.round((np.sum(axis * prev, axis=-1, keepdims=True) - base) / (2 * np.pi))
        best, best_d = cur, np.linalg.norm(cur - prev, axis=-1, keepdims=True)
        for dk in (-1, 0, 1):
            alt = axis * (base + 2 * np.pi * (k0 + dk))
            d = np.linalg.norm(alt - prev, axis=-1, keepdims=True)
            best = np.where(d < best_d - 1e-12, alt, best)
            best_d = np.minimum(d, best_d)
        out[t] = best
    return out
