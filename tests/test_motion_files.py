"""Motion files and presets: AMASS .npz and BVH round trips, BVH skeleton mapping, built-in presets.

The BVH skeletons here are written by the tests themselves (CMU- and Mixamo-style hierarchies with a
known motion); the expected joint positions come from an independent forward kinematics in this file.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from hvg_cli.body.kinematics import axis_angle_to_matrix, pose_joints
from hvg_cli.body.skeleton import JOINT_INDEX, default_skeleton
from hvg_cli.core.errors import BadInput
from hvg_cli.core.types import Motion

J = JOINT_INDEX


def _standing_motion(T: int = 12, seed: int = 0) -> Motion:
    """A plausible motion on the default skeleton: small random joint bends, arms and legs swinging."""
    rng = np.random.default_rng(seed)
    t = np.linspace(0, 1, T)
    poses = rng.normal(size=(T, 24, 3)) * 0.05
    poses[:, J["left_shoulder"], 2] = -1.0 + 0.5 * np.sin(2 * np.pi * t)  # arms down-ish and swinging
    poses[:, J["right_shoulder"], 2] = 1.0 - 0.5 * np.sin(2 * np.pi * t)
    poses[:, J["left_elbow"], 1] = 0.6
    poses[:, J["left_hip"], 0] = -0.4 * np.sin(2 * np.pi * t)
    poses[:, J["left_knee"], 0] = 0.5 + 0.3 * np.sin(2 * np.pi * t)
    poses[:, 0, 1] = np.linspace(0, 1.0, T)  # turning about y
    trans = np.stack([np.linspace(0, 0.5, T), np.full(T, 0.95), np.linspace(0, 0.2, T)], axis=1)
    return Motion(poses=poses, trans=trans, fps=Fraction(30000, 1001), skeleton=default_skeleton(), name="test")


# ---------------------------------------------------------------------------------------------
# AMASS .npz
# ---------------------------------------------------------------------------------------------
def test_npz_round_trip_keeps_everything(tmp_path: Path) -> None:
    from hvg_cli.pipeline import load_motion_npz, save_motion_npz

    m = _standing_motion()
    joints = pose_joints(m.poses, m.skeleton.rest_joints, m.skeleton.parents, m.trans)
    vis = np.random.default_rng(1).random((m.num_frames, 33)).astype(np.float32)
    from dataclasses import replace

    m = replace(m, joints=joints, fit_error_deg=4.5, source_hash="abc", extras={"visibility": vis})
    out = save_motion_npz(m, tmp_path / "m.motion.npz")
    raw = np.load(out, allow_pickle=False)
    assert raw["poses"].shape == (12, 72) and raw["trans"].shape == (12, 3)
    assert float(raw["mocap_framerate"]) == pytest.approx(30000 / 1001)
    assert raw["betas"].shape == (16,) and str(raw["gender"]) == "neutral" and str(raw["hvg_up"]) == "y"
    back = load_motion_npz(out)
    np.testing.assert_allclose(back.poses, m.poses, atol=1e-12)
    np.testing.assert_allclose(back.trans, m.trans, atol=1e-12)
    np.testing.assert_allclose(back.skeleton.rest_joints, m.skeleton.rest_joints)
    np.testing.assert_allclose(back.joints, joints)
    np.testing.assert_array_equal(back.extras["visibility"], vis)
    assert back.fps == Fraction(30000, 1001) and back.fit_error_deg == 4.5 and back.source_hash == "abc"


def test_npz_write_is_atomic_and_keeps_old_file_on_failure(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from hvg_cli.core.errors import OutputError
    from hvg_cli.pipeline import load_motion_npz, save_motion_npz

    target = tmp_path / "m.npz"
    save_motion_npz(_standing_motion(T=3), target)
    before = target.read_bytes()

    def disk_full(f, **arrays):  # writes half a file, then the disk is full
        f.write(b"PK\x03\x04 partial")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(np, "savez", disk_full)
    with pytest.raises(OutputError, match="m.npz"):
        save_motion_npz(_standing_motion(T=5), target)
    monkeypatch.undo()
    assert target.read_bytes() == before and load_motion_npz(target).num_frames == 3
    assert [p.name for p in tmp_path.iterdir()] == ["m.npz"]  # no temp file left behind


def _z_up_amass(T: int, layout: str, path: Path) -> np.ndarray:
    """A real-AMASS-like z-up file: a person standing (SMPL's +90 deg about x root), walking along x."""
    body = np.zeros((T, 21, 3))
    body[:, J["left_knee"] - 1, 0] = 0.3
    root = np.tile([np.pi / 2, 0.0, 0.0], (T, 1))  # y-up model frame -> z-up world
    trans = np.stack([np.linspace(0, 1, T), np.zeros(T), np.full(T, 0.9)], axis=1)  # z up
    if layout == "A":
        hands = np.zeros((T, 90))
        poses = np.concatenate([root, body.reshape(T, 63), hands], axis=1)  # [T, 156] SMPL-H
        np.savez(
            path,
            poses=poses,
            trans=trans,
            mocap_framerate=np.array(59.94),
            gender=np.array("female"),
            betas=np.zeros(16),
        )
    else:
        np.savez(
            path,
            root_orient=root,
            pose_body=body.reshape(T, 63),
            pose_hand=np.zeros((T, 90)),
            trans=trans,
            mocap_frame_rate=np.array(120.0),
            betas=np.zeros(16),
        )
    return trans


@pytest.mark.parametrize("layout", ["A", "B"])
def test_z_up_amass_stands_up_in_hvg_world(tmp_path: Path, layout: str) -> None:
    from hvg_cli.pipeline import load_motion_npz

    p = tmp_path / f"amass_{layout}.npz"
    trans = _z_up_amass(8, layout, p)
    m = load_motion_npz(p)
    assert m.poses.shape == (8, 24, 3) and m.trans.shape == (8, 3)
    assert m.fps == (Fraction(60000, 1001) if layout == "A" else Fraction(120))
    joints = pose_joints(m.poses, m.skeleton.rest_joints, m.skeleton.parents, m.trans)
    # head above the pelvis by most of the pelvis-head rest distance: the person stands up in y
    rest_h = m.skeleton.rest_joints[J["head"], 1]
    assert np.all(joints[:, J["head"], 1] - joints[:, 0, 1] > 0.95 * rest_h)
    assert np.all(joints[:, J["left_wrist"], 0] > joints[:, J["right_wrist"], 0])  # left stays +x
    # the floor is under the lowest joint, and z-up x motion stays x motion
    assert joints[..., 1].min() == pytest.approx(0.0, abs=1e-9)
    np.testing.assert_allclose(m.trans[:, 0] - m.trans[0, 0], trans[:, 0] - trans[0, 0], atol=1e-9)
    # the bent knee of the file (about model x) bends the leg backwards (-z) in hvg's world
    assert np.all(joints[:, J["left_ankle"], 2] < joints[:, J["left_knee"], 2])


@pytest.mark.parametrize("root", [[0.0, 0.0, 0.0], [np.pi, 0.0, 0.0]], ids=["y-up", "y-down"])
def test_npz_from_other_smpl_tools_stands_up(tmp_path: Path, root: list[float]) -> None:
    from hvg_cli.pipeline import load_motion_npz

    T = 5
    poses = np.zeros((T, 72))
    poses[:, :3] = root
    p = tmp_path / "other.npz"
    np.savez(p, poses=poses, trans=np.zeros((T, 3)), mocap_framerate=np.array(25.0))
    m = load_motion_npz(p)
    j = pose_joints(m.poses, m.skeleton.rest_joints, m.skeleton.parents, m.trans)
    assert np.all(j[:, J["head"], 1] - j[:, 0, 1] > 0.5) and j[..., 1].min() == pytest.approx(0.0, abs=1e-9)
    assert m.fps == 25


def test_bad_npz_lists_keys_and_layouts(tmp_path: Path) -> None:
    from hvg_cli.pipeline import load_motion_npz

    p = tmp_path / "weird.npz"
    np.savez(p, foo=np.zeros(3), bar=np.ones((2, 2)))
    with pytest.raises(BadInput) as e:
        load_motion_npz(p)
    msg = str(e.value)
    assert "weird.npz" in msg and "bar, foo" in msg and "root_orient" in msg and "mocap_framerate" in msg
    p2 = tmp_path / "short.npz"
    np.savez(p2, poses=np.zeros((4, 50)), trans=np.zeros((4, 3)), mocap_framerate=30.0)
    with pytest.raises(BadInput, match="poses has shape"):
        load_motion_npz(p2)
    p3 = tmp_path / "pickled.npz"
    np.savez(p3, poses=np.array([None, 1], dtype=object), trans=np.zeros((2, 3)), mocap_framerate=30.0)
    with pytest.raises(BadInput, match="Python objects"):
        load_motion_npz(p3)
    p4 = tmp_path / "text.npz"
    p4.write_text("hello")
    with pytest.raises(BadInput):
        load_motion_npz(p4)


# ---------------------------------------------------------------------------------------------
# BVH
# ---------------------------------------------------------------------------------------------
# (name, parent, offset, is_end). Offsets in the file's units.
CMU = [  # CMU mocap conversion: legs spread in rest, LowerBack/Neck/Shoulders sit on their parents
    ("Hips", None, (0, 0, 0)),
    ("LHipJoint", "Hips", (0, 0, 0)),
    ("LeftUpLeg", "LHipJoint", (1.86, -1.74, 0.85)),
    ("LeftLeg", "LeftUpLeg", (2.37, -6.51, 0)),
    ("LeftFoot", "LeftLeg", (2.53, -6.96, 0)),
    ("LeftToeBase", "LeftFoot", (0.16, -0.44, 1.95)),
    ("RHipJoint", "Hips", (0, 0, 0)),
    ("RightUpLeg", "RHipJoint", (-1.77, -1.74, 0.85)),
    ("RightLeg", "RightUpLeg", (-2.47, -6.78, 0)),
    ("RightFoot", "RightLeg", (-2.55, -7.02, 0)),
    ("RightToeBase", "RightFoot", (-0.13, -0.35, 2.0)),
    ("LowerBack", "Hips", (0, 0, 0)),
    ("Spine", "LowerBack", (-0.02, 2.24, -0.04)),
    ("Spine1", "Spine", (0.05, 2.19, -0.19)),
    ("Neck", "Spine1", (0, 0, 0)),
    ("Neck1", "Neck", (-0.12, 1.43, 0.28)),
    ("Head", "Neck1", (0.18, 1.46, -0.33)),
    ("LeftShoulder", "Spine1", (0, 0, 0)),
    ("LeftArm", "LeftShoulder", (3.28, 0.86, 0.05)),
    ("LeftForeArm", "LeftArm", (4.97, 0, 0)),
    ("LeftHand", "LeftForeArm", (3.36, 0, 0)),
    ("LeftFingerBase", "LeftHand", (0, 0, 0)),
    ("LeftHandIndex1", "LeftFingerBase", (0.8, 0, 0)),
    ("LThumb", "LeftHand", (0, 0, 0)),
    ("RightShoulder", "Spine1", (0, 0, 0)),
    ("RightArm", "RightShoulder", (-3.24, 1.02, 0.35)),
    ("RightForeArm", "RightArm", (-5.22, 0, 0)),
    ("RightHand", "RightForeArm", (-3.37, 0, 0)),
    ("RightFingerBase", "RightHand", (0, 0, 0)),
    ("RightHandIndex1", "RightFingerBase", (-0.62, 0, 0)),
    ("RThumb", "RightHand", (0, 0, 0)),
]
_C45 = np.cos(np.pi / 4)
MIXAMO = [  # centimetres, arms in an A-pose (45 degrees down): the rest pose is not SMPL's T-pose
    ("mixamorig:Hips", None, (0, 0, 0)),
    ("mixamorig:Spine", "mixamorig:Hips", (0, 10, 0.5)),
    ("mixamorig:Spine1", "mixamorig:Spine", (0, 12, 0)),
    ("mixamorig:Spine2", "mixamorig:Spine1", (0, 14, -0.5)),
    ("mixamorig:Neck", "mixamorig:Spine2", (0, 16, 0)),
    ("mixamorig:Head", "mixamorig:Neck", (0, 10, 1.5)),
    ("mixamorig:HeadTop_End", "mixamorig:Head", (0, 18, 0)),
    ("mixamorig:LeftShoulder", "mixamorig:Spine2", (6, 12, 0)),
    ("mixamorig:LeftArm", "mixamorig:LeftShoulder", (12 * _C45, -12 * _C45, 0)),
    ("mixamorig:LeftForeArm", "mixamorig:LeftArm", (27 * _C45, -27 * _C45, 0)),
    ("mixamorig:LeftHand", "mixamorig:LeftForeArm", (26 * _C45, -26 * _C45, 0)),
    ("mixamorig:LeftHandMiddle1", "mixamorig:LeftHand", (9 * _C45, -9 * _C45, 0)),
    ("mixamorig:RightShoulder", "mixamorig:Spine2", (-6, 12, 0)),
    ("mixamorig:RightArm", "mixamorig:RightShoulder", (-12 * _C45, -12 * _C45, 0)),
    ("mixamorig:RightForeArm", "mixamorig:RightArm", (-27 * _C45, -27 * _C45, 0)),
    ("mixamorig:RightHand", "mixamorig:RightForeArm", (-26 * _C45, -26 * _C45, 0)),
    ("mixamorig:RightHandMiddle1", "mixamorig:RightHand", (-9 * _C45, -9 * _C45, 0)),
    ("mixamorig:LeftUpLeg", "mixamorig:Hips", (9, -7, 0)),
    ("mixamorig:LeftLeg", "mixamorig:LeftUpLeg", (0, -42, 0)),
    ("mixamorig:LeftFoot", "mixamorig:LeftLeg", (0, -41, -1)),
    ("mixamorig:LeftToeBase", "mixamorig:LeftFoot", (0, -6, 13)),
    ("mixamorig:RightUpLeg", "mixamorig:Hips", (-9, -7, 0)),
    ("mixamorig:RightLeg", "mixamorig:RightUpLeg", (0, -42, 0)),
    ("mixamorig:RightFoot", "mixamorig:RightLeg", (0, -41, -1)),
    ("mixamorig:RightToeBase", "mixamorig:RightFoot", (0, -6, 13)),
]


def _write_bvh(path: Path, skel, order: str, frames: np.ndarray, root_pos: np.ndarray, fps: float) -> None:
    """A BVH file: root with 6 channels, every other joint 3 rotation channels in `order`, degrees."""
    names = [s[0] for s in skel]
    kids = {n: [s[0] for s in skel if s[1] == n] for n in names}
    chan = " ".join(f"{a}rotation" for a in order)
    lines = ["HIERARCHY"]

    def emit(n: str, depth: int) -> None:
        ind = "\t" * depth
        off = dict((s[0], s[2]) for s in skel)[n]
        lines.append(f"{ind}{'ROOT' if depth == 0 else 'JOINT'} {n}\n{ind}{{\n{ind}\tOFFSET {off[0]} {off[1]} {off[2]}")
        lines.append(
            f"{ind}\tCHANNELS 6 Xposition Yposition Zposition {chan}" if depth == 0 else f"{ind}\tCHANNELS 3 {chan}"
        )
        for k in kids[n]:
            emit(k, depth + 1)
        if not kids[n]:
            lines.append(f"{ind}\tEnd Site\n{ind}\t{{\n{ind}\t\tOFFSET 0 1 0\n{ind}\t}}")
        lines.append(f"{ind}}}")

    emit(names[0], 0)
    order_emitted = []

    def walk(n: str) -> None:
        order_emitted.append(names.index(n))
        for k in kids[n]:
            walk(k)

    walk(names[0])
    T = frames.shape[0]
    lines += ["MOTION", f"Frames: {T}", f"Frame Time: {1.0 / fps:.8f}"]
    for t in range(T):
        vals = list(root_pos[t]) + [v for j in order_emitted for v in frames[t, j]]
        lines.append(" ".join(f"{v:.6f}" for v in vals))
    path.write_text("\n".join(lines) + "\n")


def _reference_fk(skel, order: str, frames: np.ndarray, root_pos: np.ndarray, rotations: bool = False):
    """Independent BVH FK: world position [T, 3] of every joint, in file units (+ global rotations)."""
    G: dict[str, np.ndarray] = {}
    P: dict[str, np.ndarray] = {}
    for j, (n, parent, off) in enumerate(skel):
        R = Rotation.from_euler(order, frames[:, j], degrees=True).as_matrix()  # [T, 3, 3]
        if parent is None:
            G[n], P[n] = R, root_pos.copy()
        else:
            G[n] = G[parent] @ R
            P[n] = P[parent] + G[parent] @ np.asarray(off, dtype=float)
    return (P, G) if rotations else P


# Joints that carry no motion in real files (CMU's ASF has no degrees of freedom for them) and the
# clavicles, which real capture moves by a few degrees only.
_STILL = ("LHipJoint", "RHipJoint", "LeftFingerBase", "RightFingerBase", "LThumb", "RThumb")
_CLAVICLES = ("LeftShoulder", "RightShoulder")
_SPINE = ("LowerBack", "Spine", "Spine1", "Spine2", "Neck", "Neck1")  # real spines bend ~15 deg per joint


def _known_bvh_motion(skel, T: int, seed: int) -> np.ndarray:
    """[T, J, 3] Euler angles (degrees): smooth bends of every joint (limbs up to 35 deg, spine 15, clavicles 10)."""
    rng = np.random.default_rng(seed)
    amp = rng.uniform(-35, 35, size=(len(skel), 3))
    for j, (name, _, _) in enumerate(skel):
        base = name.split(":")[-1]
        amp[j] *= 0.0 if base in _STILL else (10 / 35 if base in _CLAVICLES else (15 / 35 if base in _SPINE else 1.0))
    phase = rng.uniform(0, 2 * np.pi, size=(len(skel), 3))
    t = np.linspace(0, 1, T)[:, None, None]
    return amp[None] * np.sin(2 * np.pi * t + phase[None])


SMPL_OF = {  # SMPL joint -> the BVH joint whose position it must match
    "CMU": {
        "pelvis": "Hips",
        "left_knee": "LeftLeg",
        "right_knee": "RightLeg",
        "left_ankle": "LeftFoot",
        "right_ankle": "RightFoot",
        "left_shoulder": "LeftArm",
        "right_shoulder": "RightArm",
        "left_elbow": "LeftForeArm",
        "right_elbow": "RightForeArm",
        "left_wrist": "LeftHand",
        "right_wrist": "RightHand",
        "head": "Head",
        "left_hip": "LeftUpLeg",
        "right_hip": "RightUpLeg",
    },
}
SMPL_OF["Mixamo"] = {k: "mixamorig:" + v for k, v in SMPL_OF["CMU"].items()}


Y_UP_TO_Z_UP = np.array([[1.0, 0, 0], [0, 0, -1], [0, 1, 0]])  # (x, y, z) -> (x, -z, y)
FACING_BACK = np.diag([-1.0, 1.0, -1.0])  # 180 degrees about y: the rest pose faces -z


def _turn_world(skel, order: str, frames: np.ndarray, root: np.ndarray, A: np.ndarray):
    """The same rig and motion written in a world turned by A: offsets, root path and rotations conjugated."""
    skel_a = [(n, p, tuple(A @ np.asarray(o, dtype=float))) for n, p, o in skel]
    R = Rotation.from_euler(order, frames.reshape(-1, 3), degrees=True).as_matrix()  # [T*J, 3, 3]
    frames_a = Rotation.from_matrix(A @ R @ A.T).as_euler(order, degrees=True).reshape(frames.shape)
    return skel_a, frames_a, root @ A.T


@pytest.mark.parametrize("style", ["CMU", "Mixamo", "Mixamo-z-up", "Mixamo-facing-back"])
def test_bvh_skeletons_are_retargeted_onto_smpl(tmp_path: Path, style: str) -> None:
    """Recovered joints match the BVH's own joints.

    Bone lengths are the file's, the pelvis and chest keep the file's rest offsets, and every
    single-child bone is swung exactly onto the BVH bone, so a Mixamo rig (every SMPL joint named)
    comes back to the printed precision (1 mm bound). CMU's rig differs from SMPL's where no rotation
    can make up for it: its lower back bends at a joint sitting on the hips (LowerBack) while SMPL's
    spine1 sits 11 cm up on a bone rigid with the pelvis, and its spine has two bending joints where
    SMPL has three, so the chest, and the arms and head hanging from it, are displaced by about
    0.11 m x the lower-back angle (15 deg here: ~1-2 cm). Hence a 2.5 cm bound for CMU's upper body,
    1 cm for its legs. The directions of the limb bones themselves must match to 1 degree.
    """
    from hvg_cli.body.mocap import CMU_UNIT
    from hvg_cli.pipeline import load_bvh

    skel, order, unit = (CMU, "ZYX", CMU_UNIT) if style == "CMU" else (MIXAMO, "ZXY", 0.01)
    T = 20
    frames = _known_bvh_motion(skel, T, seed=3)
    frames[:, 0] *= 0.5
    hip_h = 16.5 if style == "CMU" else 95.0
    root = np.stack([np.linspace(0, 10, T) * (1 / unit) * 0.05, np.full(T, hip_h), np.zeros(T)], axis=1)
    path = tmp_path / f"{style}.bvh"
    A = Y_UP_TO_Z_UP if style.endswith("z-up") else (FACING_BACK if style.endswith("back") else np.eye(3))
    skel_w, frames_w, root_w = _turn_world(skel, order, frames, root, A)
    _write_bvh(path, skel_w, order, frames_w, root_w, fps=120.0)
    ref = _reference_fk(skel, order, frames, root)  # y up, facing +z: where the loader must put the body
    style = style.split("-")[0]

    m = load_bvh(path)
    assert m.poses.shape == (T, 24, 3) and m.fps == 120
    assert np.all(np.isfinite(m.poses))
    joints = pose_joints(m.poses, m.skeleton.rest_joints, m.skeleton.parents, m.trans)
    np.testing.assert_allclose(joints, m.joints, atol=1e-9)
    floor_shift = m.trans[0, 1] - ref[skel[0][0]][0, 1] * unit  # the loader may move the floor, never x/z
    for smpl, bvh in SMPL_OF[style].items():
        want = ref[bvh] * unit + np.array([0, floor_shift, 0])
        err = np.linalg.norm(joints[:, J[smpl]] - want, axis=-1).max()
        tol = 0.001 if style == "Mixamo" else (0.01 if "hip" in smpl or "knee" in smpl or "ankle" in smpl else 0.025)
        assert err < tol, f"{smpl} ({bvh}) off by {err:.4f} m"
    for a, b in (
        ("left_shoulder", "left_elbow"),
        ("left_elbow", "left_wrist"),
        ("right_hip", "right_knee"),
        ("right_knee", "right_ankle"),
    ):
        got = joints[:, J[b]] - joints[:, J[a]]
        want = ref[SMPL_OF[style][b]] - ref[SMPL_OF[style][a]]
        cos = np.sum(got * want, -1) / np.linalg.norm(got, axis=-1) / np.linalg.norm(want, axis=-1)
        assert np.degrees(np.arccos(np.clip(cos, -1, 1))).max() < 1.0
    # the file's proportions: its thigh length in metres
    thigh = np.linalg.norm(ref[SMPL_OF[style]["left_knee"]][0] - ref[SMPL_OF[style]["left_hip"]][0]) * unit
    assert m.skeleton.bone_lengths[J["left_knee"]] == pytest.approx(thigh, rel=1e-6)


def test_bvh_twist_follows_the_file_through_the_rest_pose_correction(tmp_path: Path) -> None:
    """Positions fix each bone's direction, not its twist: the twist must come from the BVH joint's own
    rotation, corrected for the rest pose (the file's forearm hangs 45 degrees down in its A-pose, SMPL's
    points along +x). So SMPL's global rotation of a bone = the BVH joint's global rotation · C, where C
    is the smallest rotation from SMPL's rest bone to the file's rest bone (a leaf uses its parent's)."""
    from hvg_cli.body.kinematics import rotation_between
    from hvg_cli.body.retarget import global_rotations
    from hvg_cli.pipeline import load_bvh

    T = 10
    frames = _known_bvh_motion(MIXAMO, T, seed=5)
    root = np.stack([np.zeros(T), np.full(T, 95.0), np.zeros(T)], axis=1)
    path = tmp_path / "twist.bvh"
    _write_bvh(path, MIXAMO, "ZXY", frames, root, fps=30.0)
    _, G_bvh = _reference_fk(MIXAMO, "ZXY", frames, root, rotations=True)
    rest = _reference_fk(MIXAMO, "ZXY", np.zeros((1, len(MIXAMO), 3)), np.zeros((1, 3)))
    m = load_bvh(path)
    G = global_rotations(m.poses, m.skeleton.parents)  # [T, 24, 3, 3]
    off = m.skeleton.offsets
    for smpl, bvh, smpl_child, bvh_a, bvh_b in (
        ("left_elbow", "LeftForeArm", "left_wrist", "LeftForeArm", "LeftHand"),
        ("right_wrist", "RightHand", "right_hand", "RightHand", "RightHandMiddle1"),
        ("left_knee", "LeftLeg", "left_ankle", "LeftLeg", "LeftFoot"),
        ("head", "Head", "head", "Neck", "Head"),  # a leaf: its parent's correction
    ):
        file_dir = rest["mixamorig:" + bvh_b][0] - rest["mixamorig:" + bvh_a][0]
        C = rotation_between(off[J[smpl_child]], file_dir)
        want = G_bvh["mixamorig:" + bvh] @ C
        np.testing.assert_allclose(G[:, J[smpl]], want, atol=1e-5, err_msg=smpl)
    # the A-pose correction is what it should be: about 45 degrees about z for the forearm
    C = rotation_between(off[J["left_wrist"]], np.array([1.0, -1.0, 0.0]))
    assert np.degrees(np.arccos((np.trace(C) - 1) / 2)) == pytest.approx(45, abs=3)


def test_bvh_round_trip_is_exact(tmp_path: Path) -> None:
    from hvg_cli.pipeline import load_bvh, save_bvh

    m = _standing_motion(T=15)
    m.poses[3, J["left_elbow"]] = [np.pi / 2, 0, 0]  # gimbal lock of the ZXY channels (X = 90 deg)
    m.poses[4, J["right_knee"]] = [-np.pi / 2, 0, 0]
    p = save_bvh(m, tmp_path / "m.bvh")
    assert p.read_text().startswith("HIERARCHY\nROOT pelvis")
    back = load_bvh(p)
    assert back.fps == Fraction(30000, 1001) and back.num_frames == 15
    np.testing.assert_allclose(back.skeleton.rest_joints, m.skeleton.rest_joints, atol=1e-7)
    np.testing.assert_allclose(back.trans, m.trans, atol=1e-7)
    # rotations as matrices (axis-angle may differ by 2*pi wraps); 1e-6 deg printed precision
    np.testing.assert_allclose(axis_angle_to_matrix(back.poses), axis_angle_to_matrix(m.poses), atol=1e-6)
    assert back.fit_error_deg < 1e-3


def test_unknown_bvh_skeleton_lists_the_names_found(tmp_path: Path) -> None:
    from hvg_cli.pipeline import load_bvh

    skel = [
        ("Root", None, (0, 0, 0)),
        ("Torso", "Root", (0, 10, 0)),
        ("ArmA", "Torso", (5, 0, 0)),
        ("ArmB", "Torso", (-5, 0, 0)),
        ("LegA", "Root", (2, -10, 0)),
        ("LegB", "Root", (-2, -10, 0)),
    ]
    frames = np.zeros((3, len(skel), 3))
    path = tmp_path / "robot.bvh"
    _write_bvh(path, skel, "ZXY", frames, np.zeros((3, 3)), fps=30)
    with pytest.raises(BadInput) as e:
        load_bvh(path)
    msg = str(e.value)
    assert "robot.bvh" in msg
    for name in ("Root", "Torso", "ArmA", "ArmB", "LegA", "LegB"):
        assert name in msg
    assert "Mixamo" in msg and "CMU" in msg

    broken = tmp_path / "broken.bvh"
    broken.write_text("HIERARCHY\nROOT Hips\n{\nOFFSET 0 0\n")
    with pytest.raises(BadInput, match="broken.bvh"):
        load_bvh(broken)


# ---------------------------------------------------------------------------------------------
# presets and retargeting
# ---------------------------------------------------------------------------------------------
PRESETS = ("idle", "wave", "walk-in-place", "turn-around", "jumping-jacks", "dance")


def _fk(m: Motion) -> np.ndarray:
    return pose_joints(m.poses, m.skeleton.rest_joints, m.skeleton.parents, m.trans)  # [T, 24, 3]


def test_preset_list() -> None:
    from hvg_cli.body.presets import list_motion_presets

    listed = {name: (desc, frames, fps) for name, desc, frames, fps in list_motion_presets()}
    assert set(PRESETS) <= set(listed)
    for desc, frames, fps in listed.values():
        assert len(desc) > 20 and fps in (24, 30) and frames / fps > 1.0


@pytest.mark.parametrize("name", PRESETS)
def test_every_preset_is_a_sound_motion(name: str) -> None:
    from hvg_cli.body.presets import load_motion_preset

    m = load_motion_preset(name)
    assert m.poses.shape == (m.num_frames, 24, 3) and m.trans.shape == (m.num_frames, 3)
    assert np.all(np.isfinite(m.poses)) and np.all(np.isfinite(m.trans))
    assert m.num_frames / float(m.fps) > 1.0 and m.fps in (24, 30) and m.name == name
    joints = _fk(m)
    assert joints[..., 1].min() > -0.02  # nothing goes through the floor
    feet = joints[:, [J["left_foot"], J["right_foot"], J["left_ankle"], J["right_ankle"]], 1]
    assert feet.min(axis=1).max() < 0.25 or name == "jumping-jacks"  # some foot near the floor in every frame
    # no glitches between frames (a flipped rotation, a spin in one frame): nothing moves faster than
    # 6 m/s (a jumping jack's hands reach ~4.5 m/s)
    speed = np.linalg.norm(np.diff(joints, axis=0), axis=-1).max() * float(m.fps)
    assert speed < 6.0
    assert np.abs(joints[:, J["head"], 1] - joints[:, 0, 1]).min() > 0.4  # upright throughout


def test_wave_raises_the_right_hand_above_the_shoulder() -> None:
    from hvg_cli.body.presets import load_motion_preset

    m = load_motion_preset("wave")
    j = _fk(m)
    above = j[:, J["right_wrist"], 1] > j[:, J["right_shoulder"], 1] + 0.1
    assert above.sum() / float(m.fps) > 1.0  # for more than a second
    # and it waves: the wrist swings side to side (x) by more than 15 cm while up
    x = j[above, J["right_wrist"], 0]
    assert x.max() - x.min() > 0.15
    assert np.all(j[:, J["left_wrist"], 1] < j[:, J["left_shoulder"], 1])  # the other arm stays down


def test_turn_around_turns_once_about_y() -> None:
    from hvg_cli.body.presets import load_motion_preset

    m = load_motion_preset("turn-around")
    R = axis_angle_to_matrix(m.poses[:, 0])  # [T, 3, 3] pelvis
    facing = R[:, :, 2]  # where the pelvis' +z points
    yaw = np.unwrap(np.arctan2(facing[:, 0], facing[:, 2]))
    assert np.degrees(yaw[-1] - yaw[0]) == pytest.approx(360.0, abs=2.0)
    assert np.all(np.abs(facing[:, 1]) < 0.1)  # about the vertical
    assert np.linalg.norm(m.trans[:, [0, 2]] - m.trans[0, [0, 2]], axis=1).max() < 0.05  # on the spot


def test_jumping_jacks_jump_and_open() -> None:
    from hvg_cli.body.presets import load_motion_preset

    m = load_motion_preset("jumping-jacks")
    j = _fk(m)
    lowest = j[..., 1].min(axis=1)  # [T]
    assert lowest.max() > 0.08 and lowest.min() == pytest.approx(0.0, abs=1e-6)  # airborne, and lands
    hands_up = np.minimum(j[:, J["left_wrist"], 1], j[:, J["right_wrist"], 1]) > j[:, J["head"], 1]
    stance = np.abs(j[:, J["left_ankle"], 0] - j[:, J["right_ankle"], 0])
    assert hands_up.any() and stance[hands_up].mean() > stance[~hands_up].min() + 0.25


def test_preset_keys_are_hit_and_bad_presets_are_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from hvg_cli.body.presets import load_motion_preset

    (tmp_path / "motions").mkdir()
    (tmp_path / "motions" / "bow.yaml").write_text(
        "name: bow\ndescription: A bow from the waist, held, and back up.\nfps: 24\nduration: 2\nloop: false\n"
        "interpolation: catmull-rom\nrotations: xyz-degrees\nkeys:\n  - t: 0\n  - t: 1\n    pose: {spine1: [40, 0, 0]}\n"
        "    root: [0.1, 0, 0]\n  - t: 2\n"
    )
    (tmp_path / "motions" / "typo.yaml").write_text(
        "name: typo\ndescription: x\nfps: 24\nduration: 2\nloop: false\ninterpolation: linear\n"
        "rotations: xyz-degrees\nkeys:\n  - t: 0\n    pose: {left_elbw: [0, 0, 10]}\n"
    )
    monkeypatch.setenv("HVG_PRESETS_DIR", str(tmp_path))
    m = load_motion_preset("bow")
    assert m.num_frames == 49 and m.fps == 24
    np.testing.assert_allclose(m.poses[24, J["spine1"]], [np.radians(40), 0, 0], atol=1e-9)  # key at t = 1 s
    assert m.trans[24, 0] == pytest.approx(0.1)
    np.testing.assert_allclose(m.poses[[0, 48]], 0.0, atol=1e-12)
    with pytest.raises(BadInput, match="left_elbw"):
        load_motion_preset("typo")
    assert load_motion_preset(str(tmp_path / "motions" / "bow.yaml")).num_frames == 49  # a preset file by path
    with pytest.raises(BadInput) as e:
        load_motion_preset("moonwalk")
    assert "moonwalk" in str(e.value) and "bow" in str(e.value) and "typo" in str(e.value)


def test_retarget_scales_root_path_with_leg_length() -> None:
    from hvg_cli.body.presets import load_motion_preset
    from hvg_cli.body.retarget import retarget
    from hvg_cli.body.skeleton import skeleton_from_lengths

    m = load_motion_preset("jumping-jacks")
    tall = skeleton_from_lengths(m.skeleton.bone_lengths * 1.2)
    r = retarget(m, tall)
    np.testing.assert_array_equal(r.poses, m.poses)
    np.testing.assert_allclose(r.trans[:, 1], m.trans[:, 1] * 1.2)  # pelvis height and jump height
    jr = _fk(r)
    assert jr[..., 1].min() == pytest.approx(0.0, abs=1e-9)  # still standing on the floor
    np.testing.assert_allclose(r.joints, jr)
    np.testing.assert_allclose(
        np.linalg.norm(jr[:, J["left_knee"]] - jr[:, J["left_hip"]], axis=-1), tall.bone_lengths[J["left_knee"]]
    )
