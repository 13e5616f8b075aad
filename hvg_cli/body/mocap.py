"""Motion files' content <-> `Motion`: AMASS/SMPL .npz arrays and BVH documents onto hvg's SMPL-24
world, and back. The files themselves are read and written by `io.amass` / `io.bvh` (raw content as
`core.mocap.MocapArrays` / `BvhData`); `pipeline.load_motion_npz`, `load_bvh`, ... compose the two.

AMASS / SMPL (`motion_from_amass`, `amass_arrays`)
--------------------------------------------------
`trans` vs hvg's pelvis position: SMPL rotates the body about its pelvis joint J0 (which, for the
template, sits below the model origin), then adds `trans`. So the pelvis' world position is
`trans + J0(betas)`. hvg's `Motion.trans` is the pelvis world position; files carry
`trans = pelvis - SMPL_PELVIS_OFFSET` (the neutral template's J0, betas = 0), so an SMPL viewer puts
the body where hvg does. Reading adds the offset back (exact round trip whatever its value).
SMPL-H/X files hold 22 body joints: SMPL's two hand joints are then set to identity.
Files without an up axis (`up = None`: real AMASS is z up; other SMPL tools write y up or camera-like
y down) are turned into hvg's y-up world by the rotation that makes the body's median pelvis-to-head
direction point up (AMASS: -90 degrees about x, applied to the root orientation and the translation),
and the floor (y = 0) is put under the lowest joint over the clip. The skeleton is the file's
`hvg_rest_joints`, else hvg's default.

BVH (`motion_from_bvh`, steps 2-6; step 1, parsing, is `io.bvh`'s)
------------------------------------------------------------------
2. BVH forward kinematics: world positions [T, J, 3] and global rotations [T, J, 3, 3] of every joint.
   A joint's local rotation is the product of its rotation channels in the order listed
   (`Zrotation Xrotation Yrotation` -> Rz·Rx·Ry); position channels replace its offset. All local
   rotations are identity in the BVH rest pose, so global rotations are relative to it.
3. Map joint names onto SMPL-24 (`_CANDIDATES`; the "mixamorig:" or any "xxx:" prefix is ignored,
   as are case, spaces and underscores). A candidate that sits on its SMPL parent (e.g. CMU's
   LowerBack on Hips, LeftShoulder on Spine1's end) is skipped. The spine joints are placed on the
   BVH's chain from the hips to the neck: the chain's joints themselves when it has exactly three
   (Mixamo), else at SMPL's arc-length fractions (CMU); collars missing or degenerate are put between
   the neck and the shoulder. Every SMPL joint is thus a fixed point of one BVH bone, moved by that
   bone's rotation.
4. Units: the rest pose's leg length picks metres, centimetres, millimetres or CMU's unit (1/0.45 inch,
   0.056444 m); anything else is scaled to a 0.85 m leg. Up axis: y, or z when the rest pose's spine
   points along z (converted by -90 degrees about x). Facing: the rest pose is turned about y to face
   +z with its left at +x (hvg's convention) when it faces more than 45 degrees away from that.
5. Rotations: `body.retarget.fit_rotations` swings SMPL's T-pose bones onto the BVH's joint positions
   and takes each bone's twist from the BVH joint's rotation (after a rest-pose correction).
   The Motion's skeleton has SMPL's rest directions and the BVH's bone lengths, except the branch bones
   of the pelvis and the chest (hips, spine1, neck, collars), which keep the file's rest offsets.
6. Floor: kept when the file's floor is plausible (lowest joint over the clip within [-2 cm, +15 cm]
   of y = 0), else moved under the lowest joint.

`bvh_from_motion`: SMPL joint names and tree, T-pose offsets from the motion's skeleton in
centimetres, `Xposition Yposition Zposition Zrotation Xrotation Yrotation` on the pelvis (its world
position) and `Zrotation Xrotation Yrotation` elsewhere, degrees. `motion_from_bvh` reads it back
exactly (to the printed precision).
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from hvg_cli.body.kinematics import axis_angle_to_matrix, matrix_to_axis_angle, pose_joints, unwrap_axis_angle
from hvg_cli.body.retarget import fit_rotations
from hvg_cli.body.skeleton import default_skeleton, skeleton_from_lengths
from hvg_cli.core.errors import BadInput
from hvg_cli.core.mocap import BvhData, BvhJoint, MocapArrays
from hvg_cli.core.types import NUM_JOINTS, SMPL_JOINT_NAMES, SMPL_PARENTS, Motion, Skeleton

# Pelvis joint of SMPL's neutral template (J_regressor @ v_template, betas = 0), metres, model frame
# (y up). Only used to convert between SMPL's `trans` and the pelvis position; see the module doc.
SMPL_PELVIS_OFFSET = np.array([-0.0018, -0.2233, 0.0282])

# Rotation taking AMASS's z-up world into hvg's y-up world: -90 degrees about x, (x, y, z) -> (x, z, -y).
Z_UP_TO_Y_UP = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]])


# ---------------------------------------------------------------------------------------------
# AMASS / SMPL arrays
# ---------------------------------------------------------------------------------------------
def amass_arrays(motion: Motion) -> MocapArrays:
    """The content of a motion's AMASS-compatible .npz (SMPL `trans`, hvg's keys; see the module doc)."""
    T = motion.num_frames
    pelvis = np.asarray(motion.trans, dtype=np.float64).reshape(T, 3)
    return MocapArrays(
        poses=np.asarray(motion.poses, dtype=np.float64).reshape(T, NUM_JOINTS, 3),
        trans=pelvis - SMPL_PELVIS_OFFSET,
        fps=Fraction(motion.fps),
        up="y",
        rest_joints=np.asarray(motion.skeleton.rest_joints, dtype=np.float64),
        parents=tuple(int(p) for p in motion.skeleton.parents),
        joints=None if motion.joints is None else np.asarray(motion.joints, dtype=np.float64),
        fit_error_deg=None if motion.fit_error_deg is None else float(motion.fit_error_deg),
        name=motion.name or "motion",
        source_hash=motion.source_hash or "",
        audio_path=str(motion.audio_path) if motion.audio_path else None,
        start_time=float(motion.start_time),
        extras=dict(motion.extras or {}),
    )


def _up_rotation(poses: np.ndarray, skeleton: Skeleton) -> np.ndarray:
    """The rotation taking a file's world into hvg's y-up world, from where the body's spine points.

    poses: [T, 24, 3] in the file's world. AMASS is z up (spine along +z: -90 deg about x); a file
    already y up is kept; y down (camera-like axes) is turned 180 deg about x. Decided on the median
    pelvis-to-head direction over the clip, so a clip that lies down for a while still reads right.
    """
    joints = pose_joints(poses, skeleton.rest_joints, skeleton.parents)  # [T, 24, 3] pelvis at origin
    spine = np.median(joints[:, 15] - joints[:, 0], axis=0)  # [3] pelvis -> head
    axis = int(np.argmax(np.abs(spine)))
    if axis == 2:
        return Z_UP_TO_Y_UP if spine[2] > 0 else Z_UP_TO_Y_UP.T
    if axis == 1 and spine[1] < 0:
        return np.diag([1.0, -1.0, -1.0])
    return np.eye(3)


def motion_from_amass(data: MocapArrays) -> Motion:
    """An AMASS / SMPL / hvg .npz's arrays -> a Motion in hvg's world (see the module doc).

    returns: Motion with poses [T, 24, 3] (y-up world), trans [T, 3] pelvis world positions (floor y = 0
             for files without an up axis), skeleton = the file's rest joints or hvg's default.
    """
    T = data.num_frames
    body = np.asarray(data.poses, dtype=np.float64)
    poses24 = np.zeros((T, NUM_JOINTS, 3))
    poses24[:, : body.shape[1]] = body  # SMPL-H/X: hand joints 22, 23 stay identity
    pelvis = np.asarray(data.trans, dtype=np.float64) + SMPL_PELVIS_OFFSET
    skeleton = default_skeleton()
    if data.rest_joints is not None:
        skeleton = Skeleton(rest_joints=data.rest_joints, parents=data.parents or SMPL_PARENTS)
    joints = data.joints

    # Files from elsewhere -> hvg's y-up world, floor under the lowest joint.
    if data.up is None:
        to_y_up = _up_rotation(poses24, skeleton)
        R0 = axis_angle_to_matrix(poses24[:, 0])  # [T,3,3]
        poses24[:, 0] = unwrap_axis_angle(matrix_to_axis_angle(to_y_up @ R0))
        pelvis = pelvis @ to_y_up.T  # [T,3] rows rotated
        world = pose_joints(poses24, skeleton.rest_joints, skeleton.parents, pelvis)  # [T,24,3]
        pelvis[:, 1] -= float(world[..., 1].min())
        joints = None
    elif data.up != "y":
        raise BadInput(f"{data.name}: motion up axis is '{data.up}', expected 'y'", hint="hvg's motion files are y up")

    return Motion(
        poses=poses24,
        trans=pelvis,
        fps=data.fps,
        skeleton=skeleton,
        name=data.name,
        source_hash=data.source_hash,
        joints=joints,
        fit_error_deg=data.fit_error_deg,
        audio_path=data.audio_path,
        start_time=data.start_time,
        extras=dict(data.extras),
    )


# ---------------------------------------------------------------------------------------------
# BVH: naming styles
# ---------------------------------------------------------------------------------------------
CMU_UNIT = 0.056444  # metres per unit of the CMU mocap BVH conversion (1/0.45 inch)
TYPICAL_LEG = 0.85  # metres, hip to ankle, used when a file's unit is unknown
_STYLES = (
    "CMU (Hips, LeftUpLeg, LeftLeg, LeftFoot, LeftArm, LeftForeArm, LeftHand, Neck, Head ...), "
    "Mixamo (mixamorig:Hips, mixamorig:Spine, mixamorig:LeftArm ...; prefix optional), "
    "SMPL (pelvis, left_hip, left_knee, left_ankle, left_shoulder, left_elbow, left_wrist, head ...)"
)
_EULER_CHANNELS = {"xrotation": "X", "yrotation": "Y", "zrotation": "Z"}
_POS_CHANNELS = {"xposition": 0, "yposition": 1, "zposition": 2}

# SMPL joint -> normalised BVH names to look for, in order of preference (left side; right is mirrored).
_LEFT_CANDIDATES: dict[str, tuple[str, ...]] = {
    "hip": ("leftupleg", "lupleg", "leftthigh", "lthigh", "lefthip", "lhip", "leftupperleg", "lupperleg"),
    "knee": (
        "leftleg",
        "lleg",
        "leftknee",
        "lknee",
        "leftshin",
        "lshin",
        "leftlowerleg",
        "llowerleg",
        "lcalf",
        "leftcalf",
    ),
    "ankle": ("leftfoot", "lfoot", "leftankle", "lankle"),
    "foot": (
        "lefttoebase",
        "ltoebase",
        "lefttoe",
        "ltoe",
        "lefttoes",
        "ltoes",
        "ltoe0",
        "leftfootend",
        "lfootend",
        "leftankleend",
    ),
    "collar": ("leftshoulder", "lshoulder", "leftcollar", "lcollar", "leftclavicle", "lclavicle"),
    "shoulder": ("leftarm", "larm", "leftupperarm", "lupperarm", "lshldr", "leftshldr"),
    "elbow": ("leftforearm", "lforearm", "leftelbow", "lelbow", "leftlowerarm", "llowerarm"),
    "wrist": ("lefthand", "lhand", "leftwrist", "lwrist"),
    "hand": (
        "lefthandmiddle1",
        "lefthandindex1",
        "leftfingerbase",
        "lefthandring1",
        "lfinger2",
        "lfinger1",
        "lefthandend",
        "lhandend",
        "leftwristend",
    ),
}
_CENTRE_CANDIDATES: dict[str, tuple[str, ...]] = {
    "pelvis": ("hips", "pelvis", "hip"),
    "neck": ("neck", "neck1", "necklower"),
    "head": ("head",),
}
_CORE = (
    "pelvis",
    "left_hip",
    "right_hip",
    "left_knee",
    "right_knee",
    "left_ankle",
    "right_ankle",
    "left_shoulder",
    "right_shoulder",
    "left_elbow",
    "right_elbow",
    "left_wrist",
    "right_wrist",
    "head",
)


def _mirror(name: str) -> str:
    if name.startswith("left"):
        return "right" + name[4:]
    if name.startswith("l"):
        return "r" + name[1:]
    return name


def _candidates(smpl_name: str) -> tuple[str, ...]:
    if smpl_name in _CENTRE_CANDIDATES:
        return _CENTRE_CANDIDATES[smpl_name]
    side, part = smpl_name.split("_", 1)
    left = _LEFT_CANDIDATES.get(part, ())
    return left if side == "left" else tuple(_mirror(n) for n in left)


def normalise_name(name: str) -> str:
    """'mixamorig:LeftUpLeg' -> 'leftupleg'; 'Bip01 L Thigh' -> 'lthigh'; 'left_hip' -> 'lefthip'."""
    n = name.split(":")[-1].lower()
    n = re.sub(r"[^a-z0-9]", "", n)
    for prefix in ("mixamorig", "bip01", "bip001"):
        if n.startswith(prefix) and len(n) > len(prefix):
            n = n[len(prefix) :]
    return n


# ---------------------------------------------------------------------------------------------
# BVH: forward kinematics
# ---------------------------------------------------------------------------------------------
def bvh_forward_kinematics(data: BvhData) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """World positions and rotations of every BVH joint.

    returns: (positions [T, J, 3] file units, global_rot [T, J, 3, 3], rest_positions [J, 3] file units)
    """
    from scipy.spatial.transform import Rotation

    T = data.frames.shape[0]
    J = len(data.joints)
    P = np.zeros((T, J, 3))
    G = np.zeros((T, J, 3, 3))
    rest = np.zeros((J, 3))
    for j, joint in enumerate(data.joints):
        cols = data.frames[:, joint.channel_start : joint.channel_start + len(joint.channels)]  # [T, n]
        t = np.broadcast_to(joint.offset, (T, 3)).copy()  # [T, 3] local translation
        order = ""
        angles = []
        for k, c in enumerate(joint.channels):
            if c in _POS_CHANNELS:
                t[:, _POS_CHANNELS[c]] = cols[:, k]
            else:
                order += _EULER_CHANNELS[c]
                angles.append(cols[:, k])
        if order:
            R = Rotation.from_euler(order, np.stack(angles, axis=-1), degrees=True).as_matrix()  # [T, 3, 3]
        else:
            R = np.broadcast_to(np.eye(3), (T, 3, 3))
        if joint.parent < 0:
            G[:, j] = R
            P[:, j] = t
            rest[j] = joint.offset
        else:
            G[:, j] = G[:, joint.parent] @ R
            P[:, j] = P[:, joint.parent] + np.einsum("tij,tj->ti", G[:, joint.parent], t)
            rest[j] = rest[joint.parent] + joint.offset
    return P, G, rest


# ---------------------------------------------------------------------------------------------
# BVH: mapping onto SMPL-24
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class JointMap:
    """Each SMPL joint as a fixed point of one BVH bone: lerp(P[a], P[b], u), moved by owner's rotation."""

    a: np.ndarray  # [24] int BVH joint index
    b: np.ndarray  # [24] int
    u: np.ndarray  # [24] float
    owner: np.ndarray  # [24] int BVH joint whose global rotation moves this SMPL joint's part
    observed: np.ndarray  # [24] bool
    names: tuple[str, ...]  # [24] BVH name used (or a description), "" when unobserved
    smpl_named: bool = False  # the file names all 24 SMPL joints (hvg's own BVH): its rest pose is SMPL's

    def apply(self, P: np.ndarray) -> np.ndarray:
        """[..., J, 3] BVH positions -> [..., 24, 3] SMPL joint positions."""
        u = self.u[:, None]
        return P[..., self.a, :] * (1 - u) + P[..., self.b, :] * u


def _unknown_skeleton(source: str, joints: tuple[BvhJoint, ...], missing: list[str]) -> BadInput:
    names = [j.name for j in joints if not j.is_end]
    return BadInput(
        f"{source}: unknown BVH skeleton, cannot find SMPL joints {', '.join(missing)}; "
        f"joints found: {', '.join(names)}",
        hint=f"supported naming styles: {_STYLES}",
    )


def map_joints(joints: tuple[BvhJoint, ...], rest: np.ndarray, source: str) -> JointMap:
    """Find the SMPL-24 joints in a BVH hierarchy (see the module doc, step 3).

    rest: [J, 3] rest positions in any unit. Raises BadInput if a core joint is missing.
    """
    J = len(joints)
    norm = [normalise_name(j.name) for j in joints]
    raw = [j.name.split(":")[-1].lower() for j in joints]
    parent = [j.parent for j in joints]
    a = np.zeros(NUM_JOINTS, dtype=np.int64)
    b = np.zeros(NUM_JOINTS, dtype=np.int64)
    u = np.zeros(NUM_JOINTS)
    owner = np.zeros(NUM_JOINTS, dtype=np.int64)
    observed = np.zeros(NUM_JOINTS, dtype=bool)
    names = [""] * NUM_JOINTS

    def set_joint(k: int, idx: int) -> None:
        a[k] = b[k] = owner[k] = idx
        u[k] = 0.0
        observed[k] = True
        names[k] = joints[idx].name

    # SMPL-named files (hvg's own BVH): exact names.
    smpl_hits = {n: i for i, n in enumerate(raw) if n in SMPL_JOINT_NAMES and not joints[i].is_end}
    if len(smpl_hits) >= 12:
        for k, n in enumerate(SMPL_JOINT_NAMES):
            if n in smpl_hits:
                set_joint(k, smpl_hits[n])
        missing = [SMPL_JOINT_NAMES[k] for k in range(NUM_JOINTS) if not observed[k] and SMPL_JOINT_NAMES[k] in _CORE]
        if missing:
            raise _unknown_skeleton(source, joints, missing)
        return JointMap(a, b, u, owner, observed, tuple(names), smpl_named=bool(observed.all()))

    scale = np.linalg.norm(rest.max(0) - rest.min(0)) + 1e-12
    eps = 0.01 * scale  # a joint closer than this to its SMPL parent is degenerate

    def lookup(k: int, near: int | None) -> int | None:
        for cand in _candidates(SMPL_JOINT_NAMES[k]):
            for i in range(J):
                if norm[i] == cand and (near is None or np.linalg.norm(rest[i] - rest[near]) > eps):
                    return i
        return None

    # 1. Named joints, parents first (spine and collars are placed afterwards).
    found: dict[int, int] = {}
    for k in range(NUM_JOINTS):
        name = SMPL_JOINT_NAMES[k]
        if name.startswith("spine") or name.endswith("collar"):
            continue
        p = SMPL_PARENTS[k]
        near = found.get(p) if p >= 0 and not SMPL_JOINT_NAMES[p].startswith("spine") else None
        idx = lookup(k, near)
        if idx is not None:
            found[k] = idx
            set_joint(k, idx)
    missing = [n for n in _CORE if SMPL_JOINT_NAMES.index(n) not in found]
    if missing:
        raise _unknown_skeleton(source, joints, missing)
    pelvis = found[0]
    neck = found.get(12)
    if neck is None:  # no neck joint: the head's BVH parent
        neck = parent[found[15]]
        set_joint(12, neck)

    # 2. Spine: the BVH chain from the hips to the neck.
    chain = [neck]
    while chain[-1] != pelvis:
        chain.append(parent[chain[-1]])
        if chain[-1] < 0:
            raise _unknown_skeleton(source, joints, ["a spine from the hips to the neck"])
    chain = chain[::-1]  # pelvis ... neck
    inner = [
        i
        for i in chain[1:-1]
        if np.linalg.norm(rest[i] - rest[pelvis]) > eps and np.linalg.norm(rest[i] - rest[neck]) > eps
    ]
    inner_distinct = [i for n_, i in enumerate(inner) if n_ == 0 or np.linalg.norm(rest[i] - rest[inner[n_ - 1]]) > eps]
    if len(inner_distinct) == 3:
        for k, idx in zip((3, 6, 9), inner_distinct):
            set_joint(k, idx)
    else:
        off = default_skeleton().offsets
        smpl_len = np.cumsum([np.linalg.norm(off[k]) for k in (3, 6, 9, 12)])  # pelvis->spine1..neck
        frac = smpl_len[:3] / smpl_len[3]
        seg = np.array([np.linalg.norm(rest[chain[i + 1]] - rest[chain[i]]) for i in range(len(chain) - 1)])
        cum = np.concatenate([[0.0], np.cumsum(seg)])
        total = cum[-1]
        for k, f in zip((3, 6, 9), frac):
            s = f * total
            i = int(np.clip(np.searchsorted(cum, s, side="right") - 1, 0, len(seg) - 1))
            while seg[i] <= 1e-12 and i + 1 < len(seg):
                i += 1
            a[k], b[k] = chain[i], chain[i + 1]
            u[k] = float(np.clip((s - cum[i]) / max(seg[i], 1e-12), 0.0, 1.0))
            owner[k] = chain[i]
            observed[k] = True
            names[k] = f"{joints[chain[i]].name}..{joints[chain[i + 1]].name}@{u[k]:.2f}"

    # 3. Collars: a named, non-degenerate collar joint, else between the neck and the shoulder.
    for k, sh in ((13, 16), (14, 17)):
        idx = lookup(k, None)
        shoulder = found[sh]
        if (
            idx is not None
            and min(np.linalg.norm(rest[idx] - rest[neck]), np.linalg.norm(rest[idx] - rest[shoulder])) > eps
        ):
            set_joint(k, idx)
        else:
            a[k], b[k], u[k] = neck, shoulder, 0.45
            owner[k] = idx if idx is not None else parent[shoulder]
            observed[k] = True
            names[k] = f"{joints[neck].name}..{joints[shoulder].name}@0.45"
    return JointMap(a, b, u, owner, observed, tuple(names))


def detect_unit(rest24: np.ndarray, observed: np.ndarray) -> float:
    """Metres per file unit, from the rest pose's leg length (hip-knee-ankle, both sides).

    rest24: [24, 3] SMPL joints in the BVH rest pose, file units
    """
    legs = []
    for hip, knee, ankle in ((1, 4, 7), (2, 5, 8)):
        if observed[[hip, knee, ankle]].all():
            legs.append(np.linalg.norm(rest24[knee] - rest24[hip]) + np.linalg.norm(rest24[ankle] - rest24[knee]))
    L = float(np.mean(legs))
    if L <= 0:
        return 1.0
    for unit, lo, hi in ((1.0, 0.3, 1.6), (0.01, 30.0, 160.0), (0.001, 300.0, 1600.0), (CMU_UNIT, 8.0, 28.0)):
        if lo <= L <= hi:
            return unit
    return TYPICAL_LEG / L


# ---------------------------------------------------------------------------------------------
# BVH <-> Motion
# ---------------------------------------------------------------------------------------------
def motion_from_bvh(data: BvhData) -> Motion:
    """A parsed BVH onto the SMPL-24 skeleton (module doc, steps 2-6).

    returns: Motion with poses [T, 24, 3] axis-angle, trans [T, 3] pelvis world positions in metres
             (y up), joints [T, 24, 3] FK of the fit, fit_error_deg = mean angle between fitted and
             BVH bone directions, extras["bvh_joints"] [T, 24, 3] the BVH's own SMPL joint positions.
    Raises BadInput (naming data.source) if the skeleton's SMPL joints cannot be found.
    """
    # 2. BVH FK; 3. SMPL joints as points of BVH bones.
    P, G, rest = bvh_forward_kinematics(data)  # [T, J, 3], [T, J, 3, 3], [J, 3]
    jm = map_joints(data.joints, rest, data.source)
    pos = jm.apply(P)  # [T, 24, 3] file units
    rest24 = jm.apply(rest)  # [24, 3]
    part_rot = G[:, jm.owner]  # [T, 24, 3, 3]

    # 4. Units and up axis.
    unit = detect_unit(rest24, jm.observed)
    pos = pos * unit
    rest24 = rest24 * unit
    spine = rest24[15] - rest24[0]
    A = np.eye(3)
    if abs(spine[2]) > abs(spine[1]) and spine[2] > 0:  # z-up file
        A = Z_UP_TO_Y_UP
    # a rest pose facing elsewhere than +z: turn the file's world about y so that it faces +z
    left = A @ ((rest24[1] - rest24[2]) + (rest24[16] - rest24[17]))  # [3] the body's left in the rest pose
    yaw = np.arctan2(-left[2], left[0])  # rotation about y taking `left` onto +x
    if abs(yaw) > np.radians(45):
        c, s_ = np.cos(yaw), np.sin(yaw)
        A = np.array([[c, 0.0, s_], [0.0, 1.0, 0.0], [-s_, 0.0, c]]) @ A
    if not np.allclose(A, np.eye(3)):
        pos = pos @ A.T
        rest24 = rest24 @ A.T
        part_rot = A @ part_rot @ A.T

    # 5. Skeleton (SMPL directions, the file's bone lengths) and rotations.
    template = default_skeleton()
    lengths = template.bone_lengths.copy()
    for j in range(1, NUM_JOINTS):
        p = SMPL_PARENTS[j]
        if jm.observed[j] and jm.observed[p]:
            lengths[j] = np.linalg.norm(rest24[j] - rest24[p])
    if jm.smpl_named:  # an SMPL T-pose already: keep it exactly
        skeleton = Skeleton(rest_joints=rest24 - rest24[0], parents=SMPL_PARENTS)
    else:
        skeleton = skeleton_from_lengths(lengths, template)
        # Branch bones (pelvis -> hips/spine1, spine3 -> neck/collars) keep the file's rest offsets: the
        # pelvis and chest are rigid parts whose shape differs between rigs (CMU's hips sit 5 cm further
        # forward than SMPL's); limbs and spine keep SMPL's T-pose directions with the file's lengths.
        offsets = skeleton.offsets
        for j in range(1, NUM_JOINTS):
            p = SMPL_PARENTS[j]
            if p in (0, 9) and jm.observed[j] and jm.observed[p]:
                offsets[j] = rest24[j] - rest24[p]
        rest_joints = np.zeros((NUM_JOINTS, 3))
        for j in range(1, NUM_JOINTS):
            rest_joints[j] = rest_joints[SMPL_PARENTS[j]] + offsets[j]
        skeleton = Skeleton(rest_joints=rest_joints, parents=SMPL_PARENTS)
    poses = fit_rotations(pos, jm.observed, part_rot, rest24, skeleton)
    trans = pos[:, 0].copy()  # [T, 3] pelvis

    # 6. Floor.
    joints = pose_joints(poses, skeleton.rest_joints, skeleton.parents, trans)  # [T, 24, 3]
    low = float(joints[..., 1].min())
    if not (-0.02 <= low <= 0.15):
        trans[:, 1] -= low
        pos[..., 1] -= low
        joints[..., 1] -= low

    err = []
    for j in range(1, NUM_JOINTS):
        p = SMPL_PARENTS[j]
        if jm.observed[j] and jm.observed[p]:
            d1 = joints[:, j] - joints[:, p]
            d2 = pos[:, j] - pos[:, p]
            c = np.sum(d1 * d2, -1) / np.maximum(np.linalg.norm(d1, axis=-1) * np.linalg.norm(d2, axis=-1), 1e-12)
            err.append(np.degrees(np.arccos(np.clip(c, -1, 1))))
    fit_error = float(np.mean(err)) if err else None

    return Motion(
        poses=poses,
        trans=trans,
        fps=data.fps,
        skeleton=skeleton,
        name=data.name,
        source_hash=data.source_hash,
        joints=joints,
        fit_error_deg=fit_error,
        extras={"bvh_joints": pos},
    )


_LEAF_END = {15: (0.0, 1.0, 0.0), 10: (0.0, 0.0, 1.0), 11: (0.0, 0.0, 1.0)}


def bvh_from_motion(motion: Motion) -> BvhData:
    """The SMPL-named BVH of a motion (see the module doc): hierarchy in centimetres, ZXY degrees."""
    from scipy.spatial.transform import Rotation

    sk = motion.skeleton
    offsets = sk.offsets * 100.0  # [24, 3] cm
    lengths = sk.bone_lengths * 100.0
    children: list[list[int]] = [[] for _ in range(NUM_JOINTS)]
    for j in range(1, NUM_JOINTS):
        children[sk.parents[j]].append(j)

    joints: list[BvhJoint] = []
    order: list[int] = []  # SMPL joints in BVH (depth-first) order
    n_channels = 0

    def emit(j: int, parent: int) -> None:
        nonlocal n_channels
        idx = len(joints)
        position: tuple[str, ...] = ("xposition", "yposition", "zposition") if j == 0 else ()
        channels = position + ("zrotation", "xrotation", "yrotation")
        joints.append(
            BvhJoint(
                name=SMPL_JOINT_NAMES[j],
                parent=parent,
                offset=np.zeros(3) if j == 0 else offsets[j],
                channels=channels,
                channel_start=n_channels,
            )
        )
        n_channels += len(channels)
        order.append(j)
        for c in children[j]:
            emit(c, idx)
        if not children[j]:
            if j in _LEAF_END:
                end = np.array(_LEAF_END[j]) * max(lengths[j] * 0.5, 5.0)
            else:  # hands: continue the forearm-to-hand direction
                end = offsets[j] * 0.8
            joints.append(BvhJoint(name=f"{SMPL_JOINT_NAMES[j]}_End", parent=idx, offset=end, is_end=True))

    emit(0, -1)
    T = motion.num_frames
    R = axis_angle_to_matrix(np.asarray(motion.poses, dtype=np.float64))  # [T, 24, 3, 3]
    with warnings.catch_warnings():  # at gimbal lock scipy picks one of the equivalent angle sets: exact anyway
        warnings.simplefilter("ignore", UserWarning)
        euler = Rotation.from_matrix(R.reshape(-1, 3, 3)).as_euler("ZXY", degrees=True)  # [T*24, 3]
    euler = euler.reshape(T, NUM_JOINTS, 3)  # [T*24, 3] -> [T, 24, 3]
    cols = [np.asarray(motion.trans, dtype=np.float64) * 100.0] + [euler[:, j] for j in order]
    frames = np.concatenate(cols, axis=1)  # [T, 3 + 72]
    return BvhData(
        joints=tuple(joints),
        frames=frames,
        frame_time=1.0 / float(motion.fps),
        name=motion.name or "motion",
        source_hash=motion.source_hash or "",
    )
