"""Retargeting: rotations from one body, proportions from another; rotations fitted to joint positions.

Two jobs:
- `retarget(motion, skeleton)`: keep the motion's local rotations, swap its rest skeleton (bone lengths)
  for `skeleton`'s and scale the root path by the ratio of leg lengths, so strides and jump heights
  fit the new legs.
- `fit_rotations(...)`: SMPL-24 local rotations that put the rest skeleton's bones along observed
  joint positions (swing, per bone, walking the tree from the root), with the twist about each bone
  taken from an observed orientation of that body part (e.g. a BVH joint's global rotation). Used by
  body/mocap.py to read mocap (BVH) skeletons whose rest pose is not SMPL's T-pose.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from hvg_cli.body.kinematics import (
    axis_angle_to_matrix,
    matrix_to_axis_angle,
    pose_joints,
    rotation_between,
    unwrap_axis_angle,
)
from hvg_cli.core.types import NUM_JOINTS, Motion, Skeleton

# Weight of a child bone in its parent's least-squares rotation (default 1). The pelvis' orientation is
# set by its hips; the lower spine bends, in many rigs, at a joint sitting on the hips (CMU's LowerBack),
# so spine1's direction only breaks ties.
KABSCH_WEIGHT = {3: 0.1}


def leg_length(skeleton: Skeleton) -> float:
    """Mean of the left and right hip-knee-ankle lengths of a rest skeleton, metres."""
    L = skeleton.bone_lengths
    return float((L[4] + L[7] + L[5] + L[8]) / 2.0)


def retarget(motion: Motion, skeleton: Skeleton) -> Motion:
    """The same motion performed by a body with `skeleton`'s proportions.

    Rotations are kept (they are local to the parent, so they transfer between SMPL-24 skeletons with
    the same rest directions). The root path is scaled by new_leg / old_leg, about the floor (y = 0) and
    about the first frame's ground position, so the pelvis height and the stride length both follow the
    new leg length. Joint positions (`joints`) are recomputed by FK; the fit error is kept.

    returns: Motion with poses [T, 24, 3] unchanged, trans [T, 3] scaled, skeleton = `skeleton`
    """
    s = leg_length(skeleton) / max(leg_length(motion.skeleton), 1e-9)
    trans = np.asarray(motion.trans, dtype=np.float64)  # [T, 3] pelvis, metres
    origin = np.array([trans[0, 0], 0.0, trans[0, 2]])  # ground point under the first frame's pelvis
    new_trans = origin + (trans - origin) * s
    joints = pose_joints(motion.poses, skeleton.rest_joints, skeleton.parents, new_trans)  # [T, 24, 3]
    return replace(motion, trans=new_trans, skeleton=skeleton, joints=joints)


def wahba(src: np.ndarray, dst: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    """Best rotation R (least squares) with R @ src_k ≈ dst_k for every k (Kabsch, via SVD).

    src, dst: [..., K, 3] directions (any length; they are used as given)
    weights:  [K] or None
    returns:  [..., 3, 3] proper rotations (det +1)
    """
    w = np.ones(src.shape[-2]) if weights is None else np.asarray(weights, dtype=np.float64)
    B = np.einsum("k,...ki,...kj->...ij", w, dst, src)  # [..., 3, 3] = sum_k w dst_k src_k^T
    U, _, Vt = np.linalg.svd(B)
    d = np.sign(np.linalg.det(U @ Vt))  # [...]
    D = np.zeros(B.shape)
    D[..., 0, 0] = 1.0
    D[..., 1, 1] = 1.0
    D[..., 2, 2] = np.where(d == 0, 1.0, d)
    return U @ D @ Vt


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), 1e-12)


def fit_rotations(
    positions: np.ndarray,
    observed: np.ndarray,
    part_rot: np.ndarray,
    source_rest: np.ndarray,
    skeleton: Skeleton,
) -> np.ndarray:
    """SMPL-24 local rotations whose FK on `skeleton` follows observed joint positions.

    positions:   [T, 24, 3] observed world positions of the SMPL joints, metres (rows of unobserved
                 joints are ignored)
    observed:    [24] bool, which joints have a position
    part_rot:    [T, 24, 3, 3] an observed global rotation of each joint's body part, relative to the
                 source's own rest pose (for a BVH joint: its global rotation; identity in the rest pose)
    source_rest: [24, 3] the same joints in the source's rest pose (rows of unobserved joints ignored)
    skeleton:    the SMPL-24 rest skeleton the rotations are for (T-pose, facing +z)
    returns:     [T, 24, 3] axis-angle, local to the parent, continuous over T

    Per joint j, walking from the root: C_j, the rotation taking the SMPL rest directions of j's
    observed child bones onto the source's rest directions (rest-pose correction, least squares), gives
    a first guess G_j = part_rot_j · C_j. Then the bones are made to point where observed: with one
    observed child, the smallest rotation that swings the guessed bone onto the observed bone (the
    twist about the bone stays the source's); with two or more (pelvis, chest), the least-squares
    rotation taking the source's rest child directions onto the observed ones (Kabsch): the rotation of
    that rigid part relative to the source's rest pose, so a source standing straight in a rest pose
    whose hips or collars sit differently from SMPL's still gives an upright SMPL pelvis and chest (give
    `skeleton` the source's offsets for those branch bones to put the child joints exactly on the
    source's; with SMPL's template offsets they sit where the template puts them). A joint
    with no observed child keeps its guess, with its parent's rest correction.
    """
    T = positions.shape[0]
    parents = skeleton.parents
    children: list[list[int]] = [[] for _ in range(NUM_JOINTS)]
    for j in range(1, NUM_JOINTS):
        if observed[j] and observed[parents[j]]:
            children[parents[j]].append(j)
    rest_dirs = skeleton.offsets  # [24, 3] SMPL rest bone vectors (parent -> joint)

    C = np.tile(np.eye(3), (NUM_JOINTS, 1, 1))  # [24, 3, 3] rest corrections
    G = np.empty((T, NUM_JOINTS, 3, 3))
    for j in range(NUM_JOINTS):
        kids = children[j]
        if kids:
            src = _unit(rest_dirs[kids])  # [K, 3] SMPL rest directions
            dst = _unit(source_rest[kids] - source_rest[j])  # [K, 3] source rest directions
            C[j] = rotation_between(src[0], dst[0]) if len(kids) == 1 else wahba(src, dst)
        elif j > 0:
            C[j] = C[parents[j]]
        guess = part_rot[:, j] @ C[j]  # [T, 3, 3]
        if not kids:
            G[:, j] = guess
            continue
        obs = _unit(positions[:, kids] - positions[:, j : j + 1])  # [T, K, 3] observed bone directions
        if len(kids) == 1:
            guessed = guess @ _unit(rest_dirs[kids[0]])  # [T, 3]
            G[:, j] = rotation_between(guessed, obs[:, 0]) @ guess
        else:
            src = _unit(source_rest[kids] - source_rest[j])  # [K, 3] the source's own rest directions
            w = np.array([KABSCH_WEIGHT.get(k, 1.0) for k in kids])
            G[:, j] = wahba(np.broadcast_to(src, obs.shape), obs, w)
    local = np.empty_like(G)
    local[:, 0] = G[:, 0]
    for j in range(1, NUM_JOINTS):
        local[:, j] = np.swapaxes(G[:, parents[j]], -1, -2) @ G[:, j]
    return unwrap_axis_angle(matrix_to_axis_angle(local))  # [T, 24, 3]


def global_rotations(poses: np.ndarray, parents) -> np.ndarray:
    """[T, 24, 3] axis-angle local rotations -> [T, 24, 3, 3] global rotations."""
    R = axis_angle_to_matrix(poses)
    G = np.empty_like(R)
    G[:, 0] = R[:, 0]
    for j in range(1, R.shape[1]):
        G[:, j] = G[:, parents[j]] @ R[:, j]
    return G
