"""SMPL-24 skeleton tables and hvg's built-in rest skeleton (used when no SMPL model file is given)."""

from __future__ import annotations

import numpy as np

from hvg_cli.core.types import SMPL_JOINT_NAMES, SMPL_PARENTS, Skeleton

JOINT_INDEX = {name: i for i, name in enumerate(SMPL_JOINT_NAMES)}

# A T-pose of an adult about 1.70 m tall, pelvis at the origin, y up, facing +z, left = +x.
# Proportions follow the SMPL neutral template's joint layout (values rounded by hand).
_DEFAULT_REST = np.array(
    [
        [0.000, 0.000, 0.000],  # pelvis
        [0.070, -0.090, 0.000],  # left_hip
        [-0.070, -0.090, 0.000],  # right_hip
        [0.000, 0.110, -0.020],  # spine1
        [0.105, -0.470, 0.005],  # left_knee
        [-0.105, -0.470, 0.005],  # right_knee
        [0.000, 0.240, -0.010],  # spine2
        [0.095, -0.870, -0.035],  # left_ankle
        [-0.095, -0.870, -0.035],  # right_ankle
        [0.000, 0.300, 0.010],  # spine3
        [0.115, -0.930, 0.085],  # left_foot
        [-0.115, -0.930, 0.085],  # right_foot
        [0.000, 0.510, -0.020],  # neck
        [0.075, 0.420, -0.010],  # left_collar
        [-0.075, 0.420, -0.010],  # right_collar
        [0.000, 0.600, 0.030],  # head
        [0.170, 0.450, -0.020],  # left_shoulder
        [-0.170, 0.450, -0.020],  # right_shoulder
        [0.430, 0.440, -0.030],  # left_elbow
        [-0.430, 0.440, -0.030],  # right_elbow
        [0.680, 0.440, -0.020],  # left_wrist
        [-0.680, 0.440, -0.020],  # right_wrist
        [0.760, 0.430, -0.030],  # left_hand
        [-0.760, 0.430, -0.030],  # right_hand
    ]
)

# Height of the pelvis above the floor (y = 0) in the default skeleton: ankle depth + foot sole.
DEFAULT_PELVIS_HEIGHT = 0.93


def default_skeleton() -> Skeleton:
    """hvg's built-in SMPL-24 rest skeleton."""
    return Skeleton(rest_joints=_DEFAULT_REST.copy(), parents=SMPL_PARENTS)


def skeleton_from_lengths(lengths: np.ndarray, template: Skeleton | None = None) -> Skeleton:
    """A rest skeleton with the template's bone directions and the given bone lengths.

    lengths: [24] length of the bone from each joint's parent to the joint (root entry ignored)
    """
    template = template or default_skeleton()
    offsets = template.offsets
    dirs = offsets / np.maximum(np.linalg.norm(offsets, axis=-1, keepdims=True), 1e-9)
    rest = np.zeros((24, 3))
    for j in range(1, 24):
        rest[j] = rest[template.parents[j]] + dirs[j] * lengths[j]
    return Skeleton(rest_joints=rest, parents=template.parents)
