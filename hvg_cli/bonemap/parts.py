"""The ellipsoid body of the bone map: one ellipsoid per part, a fixed colour per part.

Each part is an ellipsoid attached to one SMPL joint and turning with that joint's global rotation:

- a *bone* part (``child`` set) has its long axis along the bone from ``joint`` to ``child`` and spans
  ``span = (s0, s1)`` bone lengths along it (s0 < 0 and s1 > 1 overlap the neighbours at the joints);
- a *leaf* part (``child`` None: head, fingers, feet, toes) has its long axis along ``direction``, a unit
  vector in the joint's rest frame (the world frame of the T-pose), rotated by the joint's global
  rotation; its length unit is the distance between the joints of ``scale_bone``.

Every part has three semi-axes, the columns of its axes matrix in this order:

0. long:  half the span, from the posed joints (so it follows the subject's bone lengths);
1. width: ``radii[p, 0]``, across the bone in the frontal plane of the T-pose (what a front photo shows);
2. depth: ``radii[p, 1]``, along ``front`` (the rest +z, i.e. front/back; feet and toes: rest +y, their
   thickness), made perpendicular to the long axis.

The width and depth axes are the joint's global rotation applied to rest directions, so twist shows: the
flattened torso pieces turn with the body, a hand's flat palm turns with the wrist.

Palette: every part its own colour; the subject's left side (+x) in warm hues (reds, oranges, yellows,
pinks, browns), the right side in cool hues (blues, cyans, greens, violets), the midline in neutrals and
olives, so left and right are never confused, front or back.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hvg_cli.body.skeleton import JOINT_INDEX, default_skeleton
from hvg_cli.core.types import Skeleton

_J = JOINT_INDEX


@dataclass(frozen=True)
class Part:
    """One ellipsoid of the body.

    name:      e.g. "left_forearm"
    joint:     SMPL joint index whose global rotation the ellipsoid follows
    child:     the joint at the bone's far end, or None for a leaf part
    color:     (r, g, b) uint8 colour in the semantic map
    span:      (s0, s1) extent along the long axis in length units from the joint (bone: bone lengths)
    direction: leaf only: long axis in the joint's rest frame (unit)
    scale_bone: leaf only: (a, b) joints whose distance is the leaf's length unit
    offset:    extra shift of the centre in the joint's rest frame, in length units
    front:     rest direction of the depth axis (made perpendicular to the long axis)
    """

    name: str
    joint: int
    child: int | None
    color: tuple[int, int, int]
    span: tuple[float, float] = (-0.1, 1.1)
    direction: tuple[float, float, float] = (0.0, 1.0, 0.0)
    scale_bone: tuple[int, int] | None = None
    offset: tuple[float, float, float] = (0.0, 0.0, 0.0)
    front: tuple[float, float, float] = (0.0, 0.0, 1.0)


_UP = (0.0, 1.0, 0.0)
_FWD = (0.0, 0.0, 1.0)


def _side(side: str) -> list[Part]:
    """The ten parts of one side; `side` is "left" or "right" (joint names and colours)."""
    s = side
    warm = side == "left"
    c = {  # left: warm hues; right: cool hues (never mirror colours)
        "hip": (255, 0, 200) if warm else (130, 0, 255),
        "thigh": (230, 90, 0) if warm else (0, 140, 70),
        "shin": (255, 120, 170) if warm else (60, 255, 110),
        "foot": (140, 80, 0) if warm else (0, 100, 140),
        "toes": (255, 235, 150) if warm else (60, 170, 170),
        "collar": (150, 0, 30) if warm else (20, 30, 150),
        "upper_arm": (255, 30, 30) if warm else (40, 90, 255),
        "forearm": (255, 160, 0) if warm else (0, 210, 255),
        "palm": (240, 240, 0) if warm else (0, 255, 190),
        "fingers": (170, 40, 110) if warm else (150, 215, 255),
    }
    j = lambda name: _J[f"{s}_{name}"]  # noqa: E731
    return [
        # the side of the hips: from the pelvis joint out to the hip joint, overlapping the thigh's top
        Part(f"{s}_hip", _J["pelvis"], j("hip"), c["hip"], span=(0.25, 1.35)),
        Part(f"{s}_thigh", j("hip"), j("knee"), c["thigh"], span=(-0.05, 1.05)),
        Part(f"{s}_shin", j("knee"), j("ankle"), c["shin"], span=(-0.04, 1.04)),
        # heel to ball of the foot, along the foot's forward axis, a little below the ankle
        Part(
            f"{s}_foot",
            j("ankle"),
            None,
            c["foot"],
            span=(-0.45, 1.0),
            direction=_FWD,
            scale_bone=(j("ankle"), j("foot")),
            offset=(0.0, -0.2, 0.0),
            front=_UP,
        ),
        Part(
            f"{s}_toes",
            j("foot"),
            None,
            c["toes"],
            span=(-0.2, 0.6),
            direction=_FWD,
            scale_bone=(j("ankle"), j("foot")),
            offset=(0.0, 0.13, 0.0),
            front=_UP,
        ),
        Part(f"{s}_collar", j("collar"), j("shoulder"), c["collar"], span=(-0.3, 1.15)),
        Part(f"{s}_upper_arm", j("shoulder"), j("elbow"), c["upper_arm"], span=(-0.08, 1.05)),
        Part(f"{s}_forearm", j("elbow"), j("wrist"), c["forearm"], span=(-0.05, 1.05)),
        Part(f"{s}_palm", j("wrist"), j("hand"), c["palm"], span=(-0.1, 1.15)),
        # fingers: a leaf on the hand joint, continuing the wrist->hand bone of the T-pose
        Part(
            f"{s}_fingers",
            j("hand"),
            None,
            c["fingers"],
            span=(-0.1, 1.1),
            direction=(1.0 if warm else -1.0, 0.0, 0.0),
            scale_bone=(j("wrist"), j("hand")),
        ),
    ]


PARTS: tuple[Part, ...] = (
    # torso: pelvis, belly, ribs and chest overlap into one closed volume from the hips to the shoulders
    Part("pelvis", _J["pelvis"], _J["spine1"], (120, 120, 120), span=(-1.3, 0.75)),
    Part("belly", _J["spine1"], _J["spine2"], (190, 190, 100), span=(-0.25, 1.25)),
    Part("ribs", _J["spine2"], _J["spine3"], (120, 130, 40), span=(-0.9, 2.0)),
    Part("chest", _J["spine3"], _J["neck"], (170, 170, 215), span=(-0.4, 1.0)),
    Part("neck", _J["neck"], _J["head"], (55, 55, 55), span=(-0.3, 1.1)),
    # head: from the chin to the crown above the head joint, a little forward
    Part(
        "head",
        _J["head"],
        None,
        (255, 255, 255),
        span=(-0.45, 1.9),
        direction=_UP,
        scale_bone=(_J["neck"], _J["head"]),
        offset=(0.0, 0.0, 0.2),
    ),
    *_side("left"),
    *_side("right"),
)
NUM_PARTS = len(PARTS)
PART_INDEX = {p.name: i for i, p in enumerate(PARTS)}

# [P, 3] uint8 colours in PARTS order; index -1 (empty) maps to black through `palette_with_background`.
PALETTE = np.array([p.color for p in PARTS], dtype=np.uint8)
# [P] int: the SMPL joint each part follows, in PARTS order
PART_JOINT = np.array([p.joint for p in PARTS])

# Short semi-axes (width, depth) in metres for the default skeleton (an adult of about 1.70 m).
_DEFAULT_RADII = {
    "pelvis": (0.155, 0.105),
    "belly": (0.135, 0.095),
    "ribs": (0.145, 0.100),
    "chest": (0.165, 0.105),
    "neck": (0.052, 0.055),
    "head": (0.080, 0.098),
    "hip": (0.080, 0.085),
    "thigh": (0.078, 0.080),
    "shin": (0.052, 0.058),
    "foot": (0.045, 0.035),
    "toes": (0.042, 0.025),
    "collar": (0.055, 0.055),
    "upper_arm": (0.050, 0.052),
    "forearm": (0.040, 0.043),
    "palm": (0.018, 0.044),  # the T-pose palm faces down: thin in the frontal plane, wide front to back
    "fingers": (0.014, 0.040),
}


def default_radii(skeleton: Skeleton | None = None) -> np.ndarray:
    """Plausible short semi-axes of every part for a skeleton.

    Each part's default (width, depth) for an adult of about 1.70 m is scaled by the body's size (the
    skeleton's pelvis-to-neck plus leg length against the default's) and, half as strongly, by how much
    the part's own length unit differs from the default's, clipped to stay near the body scale.

    skeleton: rest skeleton (None: the default one)
    returns:  [P, 2] metres (width, depth), PARTS order
    """
    ref = default_skeleton()
    skel = skeleton or ref

    def size(s: Skeleton) -> float:
        L = s.bone_lengths
        spine = L[[3, 6, 9, 12]].sum()
        leg = 0.5 * (L[[1, 4, 7]].sum() + L[[2, 5, 8]].sum())
        return float(spine + leg)

    def units(s: Skeleton) -> np.ndarray:  # [P] length unit of every part, metres
        return np.linalg.norm(s.rest_joints[_T["b"]] - s.rest_joints[_T["a"]], axis=-1)

    body = size(skel) / size(ref)
    local = units(skel) / np.maximum(units(ref), 1e-9)  # [P]
    scale = np.clip(body * np.sqrt(local / body), 0.75 * body, 1.33 * body)  # [P]
    base = np.array(
        [_DEFAULT_RADII[p.name.split("_", 1)[1] if p.name.startswith(("left_", "right_")) else p.name] for p in PARTS]
    )  # [P, 2]
    return base * scale[:, None]


def _tables() -> dict[str, np.ndarray]:
    """Per-part arrays for vectorised ellipsoid building."""
    # [P] each: the joints whose distance is the part's length unit (its bone, or the leaf's scale bone)
    a, b = np.array([(p.joint, p.child) if p.child is not None else p.scale_bone for p in PARTS]).T
    return {
        "joint": PART_JOINT,
        "is_bone": np.array([p.child is not None for p in PARTS]),
        "a": a,
        "b": b,
        "span": np.array([p.span for p in PARTS], dtype=np.float64),  # [P, 2]
        "direction": np.array([p.direction for p in PARTS], dtype=np.float64),  # [P, 3]
        "offset": np.array([p.offset for p in PARTS], dtype=np.float64),
        "front": np.array([p.front for p in PARTS], dtype=np.float64),
    }


_T = _tables()


def part_ellipsoids(
    joints: np.ndarray, global_rot: np.ndarray, radii: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The posed ellipsoids of every part.

    joints:     [N, 24, 3] world joint positions, metres
    global_rot: [N, 24, 3, 3] world rotation of each joint (FK's G; identity in the T-pose)
    radii:      [P, 2] short semi-axes (width, depth), metres
    returns:    centers [N, P, 3] world metres;
                axes [N, P, 3, 3] world, columns = unit axes (long, width, depth), right-handed;
                semi [N, P, 3] metres along those axes
    """
    joints = np.asarray(joints, dtype=np.float64)
    G = np.asarray(global_rot, dtype=np.float64)
    radii = np.asarray(radii, dtype=np.float64)
    t = _T
    N = joints.shape[0]
    Gj = G[:, t["joint"]]  # [N, P, 3, 3]
    pa = joints[:, t["a"]]  # [N, P, 3]
    pb = joints[:, t["b"]]
    unit = np.linalg.norm(pb - pa, axis=-1)  # [N, P] length unit, metres
    # long axis: along the posed bone, or the rotated rest direction for leaves (and degenerate bones)
    leaf_dir = np.einsum("npij,pj->npi", Gj, t["direction"])  # [N, P, 3]
    bone_dir = (pb - pa) / np.maximum(unit, 1e-9)[..., None]
    use_bone = t["is_bone"][None, :] & (unit > 1e-6)
    long = np.where(use_bone[..., None], bone_dir, leaf_dir)
    long /= np.linalg.norm(long, axis=-1, keepdims=True)
    # depth axis: the rotated rest `front`, made perpendicular to the long axis (fallback: rotated rest x)
    front = np.einsum("npij,pj->npi", Gj, t["front"])
    front = front - np.sum(front * long, -1, keepdims=True) * long
    fn = np.linalg.norm(front, axis=-1, keepdims=True)
    alt = Gj[..., :, 0] - np.sum(Gj[..., :, 0] * long, -1, keepdims=True) * long
    front = np.where(
        fn > 1e-6, front / np.maximum(fn, 1e-12), alt / np.maximum(np.linalg.norm(alt, axis=-1, keepdims=True), 1e-12)
    )
    width = np.cross(front, long)  # [N, P, 3]: (long, width, depth) is right-handed
    axes = np.stack([long, width, front], axis=-1)  # [N, P, 3, 3] columns
    s0, s1 = t["span"][:, 0], t["span"][:, 1]  # [P]
    origin = joints[:, t["joint"]]  # [N, P, 3]
    shift = np.einsum("npij,pj->npi", Gj, t["offset"]) * unit[..., None]
    centers = origin + long * (0.5 * (s0 + s1) * unit)[..., None] + shift
    semi = np.empty((N, NUM_PARTS, 3))
    semi[..., 0] = 0.5 * (s1 - s0) * unit
    semi[..., 1:] = radii[None]
    return centers, axes, semi
