"""MediaPipe's 33 world landmarks -> SMPL-24 joint positions, local rotations and a root path.

The model (one place, used both ways):
  * `_LAYOUT` says where each MediaPipe landmark sits on the SMPL body: attached to one joint's segment
    at a fixed rest offset (metres on the default skeleton, scaled by the subject's torso size).
    `landmarks_from_pose` is this forward model; the tests use it as the IK's twin.
  * `joints_from_landmarks` inverts what the landmarks can tell: the pelvis at the hip midpoint, the
    pelvis frame from the hip axis and the torso's up direction, the thorax frame from the shoulder axis,
    the spine bend shared equally by spine1-3, the SMPL hips/spine/collars at their rest offsets in those
    frames, the neck at its rest offset above the shoulder midpoint, the head from the ears and eyes,
    hands from index/pinky, feet from heel/toe. MediaPipe's hip landmarks sit wider and higher than SMPL's
    hip joints; the SMPL hips are placed at their own rest offsets in the pelvis frame.
  * `fit_landmarks` is analytic IK walking the tree from the root: each joint's global rotation takes the
    rest direction of its child bone to the observed one exactly (swing) and turns about it to match a
    second observed direction where one exists (limb plane, hand plane, foot plane, ear axis).
    Every bone is then reproduced exactly except spine3 -> neck, which carries the torso-model error.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from hvg_cli.body.kinematics import (
    axis_angle_to_matrix,
    forward_kinematics,
    matrix_to_axis_angle,
    rotation_between,
    unwrap_axis_angle,
)
from hvg_cli.body.skeleton import JOINT_INDEX, default_skeleton, skeleton_from_lengths
from hvg_cli.core.errors import BadInput
from hvg_cli.core.types import SMPL_JOINT_NAMES, SMPL_PARENTS, Motion, PoseTrack, Skeleton

J = JOINT_INDEX
NUM_LANDMARKS = 33

# MediaPipe landmark -> (SMPL joint whose segment carries it, rest offset from that joint, metres on the
# default skeleton, person facing +z, left = +x). Offsets are scaled by the torso scale (see _torso_scale).
_LAYOUT: dict[int, tuple[int, tuple[float, float, float]]] = {
    0: (J["head"], (0.000, 0.020, 0.110)),  # nose
    1: (J["head"], (0.018, 0.050, 0.090)),  # left eye inner
    2: (J["head"], (0.033, 0.050, 0.088)),  # left eye
    3: (J["head"], (0.048, 0.050, 0.080)),  # left eye outer
    4: (J["head"], (-0.018, 0.050, 0.090)),  # right eye inner
    5: (J["head"], (-0.033, 0.050, 0.088)),  # right eye
    6: (J["head"], (-0.048, 0.050, 0.080)),  # right eye outer
    7: (J["head"], (0.075, 0.040, 0.000)),  # left ear
    8: (J["head"], (-0.075, 0.040, 0.000)),  # right ear
    9: (J["head"], (0.025, -0.020, 0.100)),  # mouth left
    10: (J["head"], (-0.025, -0.020, 0.100)),  # mouth right
    11: (J["left_shoulder"], (0.0, 0.0, 0.0)),
    12: (J["right_shoulder"], (0.0, 0.0, 0.0)),
    13: (J["left_elbow"], (0.0, 0.0, 0.0)),
    14: (J["right_elbow"], (0.0, 0.0, 0.0)),
    15: (J["left_wrist"], (0.0, 0.0, 0.0)),
    16: (J["right_wrist"], (0.0, 0.0, 0.0)),
    17: (J["left_hand"], (0.0, 0.0, -0.025)),  # left pinky knuckle (palm down in the T-pose)
    18: (J["right_hand"], (0.0, 0.0, -0.025)),
    19: (J["left_hand"], (0.0, 0.0, 0.025)),  # left index knuckle
    20: (J["right_hand"], (0.0, 0.0, 0.025)),
    21: (J["left_wrist"], (0.030, 0.000, 0.040)),  # left thumb
    22: (J["right_wrist"], (-0.030, 0.000, 0.040)),
    23: (J["pelvis"], (0.110, 0.0, 0.0)),  # left hip landmark: at the SMPL pelvis's height, wider than its hip
    24: (J["pelvis"], (-0.110, 0.0, 0.0)),
    25: (J["left_knee"], (0.0, 0.0, 0.0)),
    26: (J["right_knee"], (0.0, 0.0, 0.0)),
    27: (J["left_ankle"], (0.0, 0.0, 0.0)),
    28: (J["right_ankle"], (0.0, 0.0, 0.0)),
    29: (J["left_foot"], (0.0, 0.0, -0.190)),  # left heel
    30: (J["right_foot"], (0.0, 0.0, -0.190)),
    31: (J["left_foot"], (0.0, 0.0, 0.060)),  # left foot index (toe)
    32: (J["right_foot"], (0.0, 0.0, 0.060)),
}
_FOOT_AT = 0.190 / 0.250  # SMPL foot joint = heel + _FOOT_AT * (toe - heel)
_LIMB_FALLBACK = 0.25  # weight of the fallback twist direction against sin(bend) of a limb
_FEET_LANDMARKS = (29, 30, 31, 32)

_LEGS = (
    (J["left_hip"], J["left_knee"], J["left_ankle"], 29, 31),
    (J["right_hip"], J["right_knee"], J["right_ankle"], 30, 32),
)
_ARMS = (
    (J["left_collar"], J["left_shoulder"], J["left_elbow"], J["left_wrist"]),
    (J["right_collar"], J["right_shoulder"], J["right_elbow"], J["right_wrist"]),
)


@dataclass(frozen=True, eq=False)
class IKResult:
    """Local joint rotations fitted to landmarks, and how well they fit."""

    poses: np.ndarray  # [T, 24, 3] axis-angle radians, local to the parent, continuous over T
    joints: np.ndarray  # [T, 24, 3] metres: FK of poses on the skeleton, pelvis at the origin
    bone_error_deg: np.ndarray  # [T, 23] angle between fitted and observed direction of bone j (joint j+1)
    fit_error_deg: float  # mean of bone_error_deg (weighted by visibility when given)


# ------------------------------------------------------------------------------------------------
# small vector helpers
# ------------------------------------------------------------------------------------------------
def _unit(v: np.ndarray) -> np.ndarray:
    """[..., 3] -> [..., 3] unit vectors (zero vectors stay zero)."""
    n = np.linalg.norm(v, axis=-1, keepdims=True)
    return v / np.where(n < 1e-12, 1.0, n)


def _frame(primary: np.ndarray, secondary: np.ndarray) -> np.ndarray:
    """Orthonormal frame [..., 3, 3] with columns (primary, secondary made orthogonal, their cross)."""
    p = _unit(primary)
    s = _unit(secondary - np.sum(secondary * p, axis=-1, keepdims=True) * p)
    return np.stack([p, s, np.cross(p, s)], axis=-1)


def _frame_fit(rest_p: np.ndarray, rest_s: np.ndarray, obs_p: np.ndarray, obs_s: np.ndarray) -> np.ndarray:
    """Rotation R [..., 3, 3] with R·rest_p ∥ obs_p exactly and R·rest_s as near obs_s as it can be.

    rest_p, rest_s: [..., 3] or [3]; obs_p, obs_s: [..., 3] (any lengths, not parallel)
    """
    F_obs = _frame(obs_p, obs_s)  # [..., 3, 3]
    F_rest = _frame(np.broadcast_to(rest_p, obs_p.shape), np.broadcast_to(rest_s, obs_s.shape))
    return F_obs @ np.swapaxes(F_rest, -1, -2)


def _angle_deg(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """[..., 3] x [..., 3] -> [...] angle between directions, degrees (precise near 0)."""
    return np.degrees(np.arctan2(np.linalg.norm(np.cross(a, b), axis=-1), np.sum(a * b, axis=-1)))


def _mid(world: np.ndarray, i: int, k: int) -> np.ndarray:
    return 0.5 * (world[..., i, :] + world[..., k, :])


# ------------------------------------------------------------------------------------------------
# the forward model: landmarks a posed skeleton shows
# ------------------------------------------------------------------------------------------------
_DEFAULT = default_skeleton()
_REST_SHOULDER_MID = 0.5 * (_DEFAULT.rest_joints[J["left_shoulder"]] + _DEFAULT.rest_joints[J["right_shoulder"]])
_REST_TORSO = float(np.linalg.norm(_REST_SHOULDER_MID))  # pelvis -> shoulder midpoint, default skeleton


def _torso_scale(skeleton: Skeleton) -> float:
    """Size of a skeleton's torso relative to the default skeleton (pelvis -> shoulder midpoint)."""
    r = skeleton.rest_joints
    return float(np.linalg.norm(0.5 * (r[J["left_shoulder"]] + r[J["right_shoulder"]]) - r[0]) / _REST_TORSO)


def landmarks_from_pose(poses: np.ndarray, skeleton: Skeleton) -> np.ndarray:
    """The 33 world landmarks the IK model expects of a posed skeleton (its forward twin).

    poses:   [T, 24, 3] axis-angle, local to the parent
    returns: [T, 33, 3] metres, hvg axes (y up, +z towards the camera), hip-centred (pelvis at the origin)
    """
    G, P = forward_kinematics(axis_angle_to_matrix(poses), skeleton.offsets, skeleton.parents)
    s = _torso_scale(skeleton)
    out = np.empty(P.shape[:1] + (NUM_LANDMARKS, 3))
    for i, (seg, off) in _LAYOUT.items():
        out[:, i] = P[:, seg] + s * (G[:, seg] @ np.asarray(off))
    return out


# ------------------------------------------------------------------------------------------------
# observation: what the landmarks say about joints and frames
# ------------------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class _Observation:
    joints: np.ndarray  # [T, 24, 3] observed joint positions
    pelvis: np.ndarray  # [T, 3, 3] global rotation of the pelvis
    thorax: np.ndarray  # [T, 3, 3] global rotation of spine3
    spine_step: np.ndarray  # [T, 3, 3] local rotation of each of spine1, spine2, spine3
    head: np.ndarray  # [T, 3, 3] global rotation of the head
    foot_lateral: np.ndarray  # [T, 2, 3] (left, right) normal of the ankle-heel-toe plane, towards the left
    foot_forward: np.ndarray  # [T, 2, 3] heel -> toe
    hand_across: np.ndarray  # [T, 2, 3] pinky -> index
    ear_axis: np.ndarray  # [T, 3] right ear -> left ear


def _hip_axis(w):
    return w[..., 23, :] - w[..., 24, :]


def _shoulder_axis(w):
    return w[..., 11, :] - w[..., 12, :]


def _torso_up(w):
    return _mid(w, 11, 12) - _mid(w, 23, 24)


def _head_axes(w):
    """(ear axis right->left, forward = eye midpoint - ear midpoint), each [..., 3]."""
    return w[..., 7, :] - w[..., 8, :], _mid(w, 2, 5) - _mid(w, 7, 8)


def _foot_axes(w, heel, toe, ankle):
    """(heel -> toe, lateral normal of the ankle-heel-toe plane), each [..., 3]."""
    fwd = w[..., toe, :] - w[..., heel, :]
    return fwd, np.cross(w[..., ankle, :] - w[..., heel, :], fwd)


@lru_cache(maxsize=1)
def _rest_refs() -> dict[str, np.ndarray]:
    """The observation directions measured on the default skeleton's rest landmarks."""
    w = landmarks_from_pose(np.zeros((1, 24, 3)), _DEFAULT)[0]  # [33, 3]
    ear, fwd = _head_axes(w)
    lf_fwd, lf_lat = _foot_axes(w, 29, 31, 27)
    rf_fwd, rf_lat = _foot_axes(w, 30, 32, 28)
    off = _DEFAULT.offsets
    arm_sec = [_unit(np.cross(off[J[f"{s}_elbow"]], [0.0, 0.0, 1.0])) for s in ("left", "right")]  # elbow flexes to +z
    leg_sec = [
        _unit(np.cross(-off[J[f"{s}_knee"]], f)) for s, f in (("left", lf_fwd), ("right", rf_fwd))
    ]  # as observed
    return {
        "hip_axis": _hip_axis(w),
        "shoulder_axis": _shoulder_axis(w),
        "up": _torso_up(w),
        "ear": ear,
        "face_fwd": fwd,
        "head_joint": _DEFAULT.rest_joints[J["head"]] - _mid(w, 7, 8),
        "foot_fwd": np.stack([lf_fwd, rf_fwd]),
        "foot_lat": np.stack([lf_lat, rf_lat]),
        "hand_across": w[19] - w[17],
        "arm_sec": np.stack(arm_sec),
        "leg_sec": np.stack(leg_sec),
    }


def _limb_bend(
    upper: np.ndarray, lower: np.ndarray, G_swing: np.ndarray, rest_upper: np.ndarray, rest_lower: np.ndarray
) -> np.ndarray:
    """The hinge direction of a limb's bend beyond its rest bend, length sin(bend) (zero at rest).

    upper, lower: [T, 3] observed bones; G_swing: [T, 3, 3] a global rotation putting rest_upper on upper
    (the swing without twist), which carries the rest pose's own slight bend into the world.
    """
    observed = np.cross(_unit(upper), _unit(lower))  # [T, 3]
    at_rest = G_swing @ np.cross(_unit(rest_upper), _unit(rest_lower))  # [T, 3]
    return observed - at_rest


def _check_world(world: np.ndarray, name: str = "world landmarks") -> np.ndarray:
    world = np.asarray(world, dtype=np.float64)
    if world.ndim != 3 or world.shape[1:] != (NUM_LANDMARKS, 3) or world.shape[0] == 0:
        raise BadInput(
            f"{name} must have shape [T, 33, 3], got {list(world.shape)}",
            hint="pass MediaPipe pose world landmarks of at least one frame",
        )
    if not np.all(np.isfinite(world)):
        raise BadInput(f"{name} contain NaN or infinite values", hint="fill gaps in the pose track before fitting")
    return world


def _observe(world: np.ndarray) -> _Observation:
    """Observed SMPL joints and segment frames from world landmarks [T, 33, 3]."""
    ref = _rest_refs()
    w = world
    T = w.shape[0]
    off = _DEFAULT.offsets  # [24, 3] default rest offsets: the layout of the derived joints
    s = (np.linalg.norm(_torso_up(w), axis=-1) / _REST_TORSO)[:, None]  # [T, 1] torso scale

    # 1. Torso frames: the pelvis from the hip axis, the thorax from the shoulder axis, both with the torso's up
    Gp = _frame_fit(ref["hip_axis"], ref["up"], _hip_axis(w), _torso_up(w))  # [T, 3, 3]
    Gt = _frame_fit(ref["shoulder_axis"], ref["up"], _shoulder_axis(w), _torso_up(w))
    step = axis_angle_to_matrix(matrix_to_axis_angle(np.swapaxes(Gp, -1, -2) @ Gt) / 3.0)  # [T, 3, 3]

    X = np.zeros((T, 24, 3))
    X[:, 0] = _mid(w, 23, 24)
    rot = lambda R, v: np.einsum("tij,j->ti", R, v)  # noqa: E731  [T,3,3] x [3] -> [T, 3]

    # 2. Derived joints at their rest offsets in the torso frames
    G1, G2 = Gp @ step, Gp @ step @ step
    X[:, J["left_hip"]] = X[:, 0] + s * rot(Gp, off[J["left_hip"]])
    X[:, J["right_hip"]] = X[:, 0] + s * rot(Gp, off[J["right_hip"]])
    X[:, J["spine1"]] = X[:, 0] + s * rot(Gp, off[J["spine1"]])
    X[:, J["spine2"]] = X[:, J["spine1"]] + s * rot(G1, off[J["spine2"]])
    X[:, J["spine3"]] = X[:, J["spine2"]] + s * rot(G2, off[J["spine3"]])
    for side in ("left_collar", "right_collar"):
        X[:, J[side]] = X[:, J["spine3"]] + s * rot(Gt, off[J[side]])
    X[:, J["neck"]] = _mid(w, 11, 12) + s * rot(Gt, _DEFAULT.rest_joints[J["neck"]] - _REST_SHOULDER_MID)

    # 3. Joints MediaPipe sees directly
    for lm, name in (
        (11, "left_shoulder"),
        (12, "right_shoulder"),
        (13, "left_elbow"),
        (14, "right_elbow"),
        (15, "left_wrist"),
        (16, "right_wrist"),
        (25, "left_knee"),
        (26, "right_knee"),
        (27, "left_ankle"),
        (28, "right_ankle"),
    ):
        X[:, J[name]] = w[:, lm]

    # 4. Leaves: head from ears and eyes, hands from index/pinky, feet from heel/toe
    ear, face_fwd = _head_axes(w)
    Gh = _frame_fit(ref["ear"], ref["face_fwd"], ear, face_fwd)
    X[:, J["head"]] = _mid(w, 7, 8) + s * rot(Gh, ref["head_joint"])
    X[:, J["left_hand"]] = _mid(w, 17, 19)
    X[:, J["right_hand"]] = _mid(w, 18, 20)
    feet = [_foot_axes(w, 29, 31, 27), _foot_axes(w, 30, 32, 28)]
    X[:, J["left_foot"]] = w[:, 29] + _FOOT_AT * feet[0][0]
    X[:, J["right_foot"]] = w[:, 30] + _FOOT_AT * feet[1][0]

    return _Observation(
        joints=X,
        pelvis=Gp,
        thorax=Gt,
        spine_step=step,
        head=Gh,
        foot_forward=np.stack([feet[0][0], feet[1][0]], axis=1),
        foot_lateral=np.stack([feet[0][1], feet[1][1]], axis=1),
        hand_across=np.stack([w[:, 19] - w[:, 17], w[:, 20] - w[:, 18]], axis=1),
        ear_axis=ear,
    )


# ------------------------------------------------------------------------------------------------
# public API
# ------------------------------------------------------------------------------------------------
def joints_from_landmarks(world: np.ndarray) -> np.ndarray:
    """SMPL-24 joint positions from MediaPipe world landmarks.

    world:   [T, 33, 3] metres, hvg axes (y up, +z towards the camera), hip-centred
    returns: [T, 24, 3] metres, SMPL joint order (pelvis at the hip midpoint)
    """
    return _observe(_check_world(world)).joints


def _weights(visibility: np.ndarray | None, T: int) -> np.ndarray | None:
    """Per-frame, per-joint confidence [T, 24] from landmark visibility [T, 33] (None: no weighting)."""
    if visibility is None:
        return None
    v = np.asarray(visibility, dtype=np.float64)
    if v.shape != (T, NUM_LANDMARKS):
        raise BadInput(
            f"visibility must have shape [{T}, 33], got {list(v.shape)}", hint="pass one value per landmark and frame"
        )
    out = np.ones((T, 24))
    for lm, (seg, _) in _LAYOUT.items():
        out[:, seg] = np.minimum(out[:, seg], v[:, lm])
    hips, shoulders = np.minimum(v[:, 23], v[:, 24]), np.minimum(v[:, 11], v[:, 12])
    torso = np.minimum(hips, shoulders)
    for name in (
        "pelvis",
        "left_hip",
        "right_hip",
        "spine1",
        "spine2",
        "spine3",
        "neck",
        "left_collar",
        "right_collar",
    ):
        out[:, J[name]] = torso
    return out


def estimate_skeleton(world: np.ndarray, visibility: np.ndarray | None = None) -> Skeleton:
    """Bone lengths of the person (median over frames, left/right symmetrised) on the default directions.

    world:      [T, 33, 3] metres, hvg axes, hip-centred
    visibility: [T, 33] in [0, 1]; frames where a bone's landmarks are poorly seen (< 0.5) are left out
                of that bone's median when enough others remain
    """
    world = _check_world(world)
    X = _observe(world).joints  # [T, 24, 3]
    par = np.array(SMPL_PARENTS[1:])
    lengths_t = np.linalg.norm(X[:, 1:] - X[:, par], axis=-1)  # [T, 23]
    w = _weights(visibility, world.shape[0])
    lengths = np.zeros(24)
    for j in range(1, 24):
        vals = lengths_t[:, j - 1]
        if w is not None:
            good = np.minimum(w[:, j], w[:, SMPL_PARENTS[j]]) >= 0.5
            if good.sum() >= max(1, len(vals) // 10):
                vals = vals[good]
        lengths[j] = np.median(vals)
    for j, name in enumerate(SMPL_JOINT_NAMES):
        if name.startswith("left_"):
            k = J["right_" + name[5:]]
            lengths[j] = lengths[k] = 0.5 * (lengths[j] + lengths[k])
    return skeleton_from_lengths(lengths)


def fit_landmarks(world: np.ndarray, skeleton: Skeleton, visibility: np.ndarray | None = None) -> IKResult:
    """Analytic IK: local SMPL rotations whose bones point where the landmarks say.

    world:      [T, 33, 3] metres, hvg axes, hip-centred
    skeleton:   rest pose whose rotations are fitted (bone directions as the default skeleton's)
    visibility: [T, 33] in [0, 1], weights the mean fit error only
    returns:    IKResult (poses [T, 24, 3], joints [T, 24, 3], bone_error_deg [T, 23], fit_error_deg)
    """
    world = _check_world(world)
    with np.errstate(invalid="ignore", divide="ignore"):  # degenerate frames are reported below as BadInput
        return _fit(world, skeleton, visibility)


def _fit(world: np.ndarray, skeleton: Skeleton, visibility: np.ndarray | None) -> IKResult:
    T = world.shape[0]
    ref = _rest_refs()
    obs = _observe(world)
    X = obs.joints
    off = skeleton.offsets  # [24, 3]
    par = SMPL_PARENTS
    G = np.zeros((T, 24, 3, 3))
    Gt_ = lambda R: np.swapaxes(R, -1, -2)  # noqa: E731

    def swing(j: int, child: int) -> np.ndarray:
        """Global rotation of j: its parent's, then the smallest turn putting the child bone on the observation."""
        Gp = G[:, par[j]]
        d_local = np.einsum("tji,tj->ti", Gp, X[:, child] - X[:, j])  # [T, 3] in the parent's frame
        return Gp @ rotation_between(np.broadcast_to(off[child], d_local.shape), d_local)

    # 1. Torso: pelvis, the spine sharing the bend, thorax
    G[:, 0] = obs.pelvis
    G[:, J["spine1"]] = obs.pelvis @ obs.spine_step
    G[:, J["spine2"]] = G[:, J["spine1"]] @ obs.spine_step
    G[:, J["spine3"]] = obs.thorax

    # 2. Legs: hip and knee turn about the leg's plane (knee bend, or the foot's direction when straight)
    for side, (hip, knee, ankle, _heel, _toe) in enumerate(_LEGS):
        foot = J["left_foot"] if side == 0 else J["right_foot"]
        thigh, shin = X[:, knee] - X[:, hip], X[:, ankle] - X[:, knee]
        G_swing = swing(hip, knee)  # [T, 3, 3]
        # where the toes point (length sin of the thigh-foot angle), and the swing's own twist when the foot
        # lies along the thigh; both are the rest hinge axis in the rest pose
        toes = np.cross(_unit(-thigh), _unit(obs.foot_forward[:, side]))  # [T, 3]
        fallback = toes + 0.2 * (G_swing @ ref["leg_sec"][side])
        sec = _limb_bend(thigh, shin, G_swing, off[knee], off[ankle]) + _LIMB_FALLBACK * _unit(fallback)  # [T, 3]
        G[:, hip] = _frame_fit(off[knee], ref["leg_sec"][side], thigh, sec)
        G[:, knee] = _frame_fit(off[ankle], ref["leg_sec"][side], shin, sec)
        G[:, ankle] = _frame_fit(off[foot], ref["foot_lat"][side], X[:, foot] - X[:, ankle], obs.foot_lateral[:, side])
        G[:, foot] = _frame_fit(
            ref["foot_fwd"][side], ref["foot_lat"][side], obs.foot_forward[:, side], obs.foot_lateral[:, side]
        )

    # 3. Neck and head: the neck swings to the head joint and twists with the ears; the head from the face
    G[:, J["neck"]] = _frame_fit(off[J["head"]], ref["ear"], X[:, J["head"]] - X[:, J["neck"]], obs.ear_axis)
    G[:, J["head"]] = obs.head

    # 4. Arms: collar swings; shoulder and elbow turn about the arm's plane (or keep the swing's twist when
    #    straight); the wrist from the hand plane; the hand has nothing more to say (identity)
    for side, (collar, shoulder, elbow, wrist) in enumerate(_ARMS):
        hand = J["left_hand"] if side == 0 else J["right_hand"]
        G[:, collar] = swing(collar, shoulder)
        upper, fore = X[:, elbow] - X[:, shoulder], X[:, wrist] - X[:, elbow]
        G_swing = swing(shoulder, elbow)  # [T, 3, 3]
        fallback = G_swing @ ref["arm_sec"][side]  # [T, 3]
        sec = _limb_bend(upper, fore, G_swing, off[elbow], off[wrist]) + _LIMB_FALLBACK * fallback
        G[:, shoulder] = _frame_fit(off[elbow], ref["arm_sec"][side], upper, sec)
        G[:, elbow] = _frame_fit(off[wrist], ref["arm_sec"][side], fore, sec)
        G[:, wrist] = _frame_fit(off[hand], ref["hand_across"], X[:, hand] - X[:, wrist], obs.hand_across[:, side])
        G[:, hand] = G[:, wrist]

    # 5. Local rotations, continuous axis-angle, and the fitted joints
    local = np.empty_like(G)
    local[:, 0] = G[:, 0]
    for j in range(1, 24):
        local[:, j] = Gt_(G[:, par[j]]) @ G[:, j]
    bad = ~np.all(np.isfinite(local.reshape(T, -1)), axis=-1) | (np.abs(np.linalg.det(local) - 1.0) > 1e-6).any(
        -1
    )  # [T]
    if bad.any():
        frames = np.flatnonzero(bad)
        raise BadInput(
            f"degenerate landmarks (coincident points) in {len(frames)} frame(s), first {frames[:5].tolist()}",
            hint="fill or drop frames where the person was not detected before fitting",
        )
    poses = unwrap_axis_angle(matrix_to_axis_angle(local))  # [T, 24, 3]
    Gfk, joints = forward_kinematics(axis_angle_to_matrix(poses), off, skeleton.parents)  # [T, 24, 3, 3], [T, 24, 3]

    # 6. Fit error: fitted bone direction (FK of the stored poses) against the observed one
    pidx = list(par[1:])
    fitted = np.einsum("tjab,jb->tja", Gfk[:, pidx], off[1:])  # [T, 23, 3]
    bone_err = _angle_deg(fitted, X[:, 1:] - X[:, pidx])  # [T, 23]
    w = _weights(visibility, T)
    if w is None:
        fit_err = float(bone_err.mean())
    else:
        wb = np.minimum(w[:, 1:], w[:, pidx]) + 1e-9  # [T, 23]
        fit_err = float((bone_err * wb).sum() / wb.sum())
    return IKResult(poses=poses, joints=joints, bone_error_deg=bone_err, fit_error_deg=fit_err)


def root_trajectory(image: np.ndarray, world: np.ndarray, width: int, height: int, fov_deg: float = 50.0) -> np.ndarray:
    """Pelvis path in the world from the 2D landmarks and their metric 3D shape, under a pinhole camera.

    Per frame, the translation t (camera frame) that projects the world landmarks (rotation known: MediaPipe's
    world axes are the camera's) onto their pixels is a linear least-squares problem:
        f (X_i + t_x) = (u_i - c_x)(Z_i + t_z),   f (Y_i + t_y) = (v_i - c_y)(Z_i + t_z).
    image:   [T, 33, 2] pixels (x right, y down)
    world:   [T, 33, 3] metres, hvg axes, hip-centred
    fov_deg: vertical field of view of the video's camera
    returns: [T, 3] metres: the video camera sits on +z looking at -z, the floor y = 0 lies under the lowest
             foot landmark of the clip, x and z are relative to the first frame's pelvis
    """
    world = _check_world(world)
    image = np.asarray(image, dtype=np.float64)
    T = world.shape[0]
    if image.shape != (T, NUM_LANDMARKS, 2) or not np.all(np.isfinite(image)):
        raise BadInput(
            f"image landmarks must be finite with shape [{T}, 33, 2], got {list(image.shape)}",
            hint="pass the pixel landmarks of the same frames as the world landmarks",
        )
    if width <= 0 or height <= 0 or not 1.0 < fov_deg < 179.0:
        raise BadInput(
            f"bad camera: {width}x{height} px, fov {fov_deg} deg", hint="use the video's size and a fov in (1, 179)"
        )
    f = 0.5 * height / np.tan(np.radians(fov_deg) / 2)
    cx, cy = 0.5 * width, 0.5 * height
    cam = world * np.array([1.0, -1.0, -1.0])  # [T, 33, 3] OpenCV axes, pelvis at the origin
    du = image[..., 0] - cx  # [T, 33]
    dv = image[..., 1] - cy
    zeros, ones = np.zeros_like(du), np.full_like(du, f)
    # rows [T, 66, 3] and right-hand side [T, 66] of the linear system in t = (t_x, t_y, t_z)
    A = np.concatenate([np.stack([ones, zeros, -du], -1), np.stack([zeros, ones, -dv], -1)], axis=1)
    b = np.concatenate([du * cam[..., 2] - f * cam[..., 0], dv * cam[..., 2] - f * cam[..., 1]], axis=1)
    t = np.linalg.solve(np.einsum("tki,tkj->tij", A, A), np.einsum("tki,tk->ti", A, b)[..., None])[..., 0]  # [T, 3]
    if np.any(t[:, 2] <= 0):
        raise BadInput(
            "the person's landmarks put them behind the camera in some frames",
            hint="check that image and world landmarks belong to the same frames",
        )
    # camera frame -> hvg world (camera on +z looking at -z)
    pelvis = np.stack([t[:, 0] - t[0, 0], -t[:, 1], -(t[:, 2] - t[0, 2])], axis=-1)  # [T, 3]
    lowest = np.min(pelvis[:, 1:2] + world[:, _FEET_LANDMARKS, 1])
    pelvis[:, 1] -= lowest
    return pelvis


def fit_track(track: PoseTrack, fov_deg: float, stride: int, name: str = "") -> Motion:
    """A landmark track -> an SMPL-24 Motion: skeleton from the track, IK per frame, root path.

    track:   MediaPipe landmarks of one person, T frames (image [T, 33, 2] px, world [T, 33, 3] m)
    fov_deg: the video camera's assumed vertical field of view, for the root path's depth
    stride:  the track's frame step in the source video (its start time is frame_indices[0] / source fps)
    returns: Motion with poses [T, 24, 3], trans [T, 3], joints [T, 24, 3] world, and the track's arrays in extras
    """
    skeleton = estimate_skeleton(track.world, track.visibility)
    fit = fit_landmarks(track.world, skeleton, track.visibility)
    trans = root_trajectory(track.image, track.world, track.width, track.height, fov_deg=fov_deg)  # [T, 3]
    source_fps = track.fps * stride
    return Motion(
        poses=np.asarray(fit.poses, dtype=np.float64),
        trans=np.asarray(trans, dtype=np.float64),
        fps=track.fps,
        skeleton=skeleton,
        name=name,
        source_hash=track.source_hash,
        joints=np.asarray(fit.joints) + trans[:, None, :],  # [T, 24, 3] world
        fit_error_deg=float(fit.fit_error_deg),
        start_time=float(track.frame_indices[0] / source_fps),
        extras={
            "landmarks": track.image,
            "visibility": track.visibility,
            "world": track.world,
            "detected": track.detected,
            "frame_indices": track.frame_indices,
            "bone_error_deg": np.asarray(fit.bone_error_deg),
        },
    )
