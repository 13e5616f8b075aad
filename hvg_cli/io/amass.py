"""AMASS/SMPL motion files (.npz): hvg's motion output and one of its motion inputs.

What hvg writes (`save_motion_npz`), readable by the AMASS/SMPL ecosystem:
  poses            [T, 72] float64 axis-angle, SMPL joint order (root orientation first)
  trans            [T, 3] float64 metres, SMPL's `trans` (see below)
  mocap_framerate  float
  gender           "neutral"
  betas            [16] zeros
plus hvg's own keys, all prefixed `hvg_`:
  hvg_fps_num, hvg_fps_den   the exact frame rate (e.g. 30000/1001)
  hvg_rest_joints  [24, 3]    the rest skeleton the rotations act on (metres, pelvis at the origin)
  hvg_up           "y"        the world's up axis (hvg's world is y up, floor y = 0)
  hvg_joints       [T, 24, 3] fitted joint positions, when known
  hvg_fit_error_deg, hvg_source_hash, hvg_name, hvg_audio_path, hvg_start_time
  hvg_<name>                  every array of `Motion.extras`

`trans` vs hvg's pelvis position: SMPL rotates the body about its pelvis joint J0 (which, for the
template, sits below the model origin), then adds `trans`. So the pelvis' world position is
`trans + J0(betas)`. hvg's `Motion.trans` is the pelvis world position; files carry
`trans = pelvis - SMPL_PELVIS_OFFSET` (the neutral template's J0, betas = 0), so an SMPL viewer puts
the body where hvg does. Reading adds the offset back (exact round trip whatever its value).

Reading (`load_amass`) accepts two layouts:
  A. `poses` [T, 72 | 66 | 156 | 165] + `trans` [T, 3] + `mocap_framerate`
     72: SMPL (24 joints). 66: the 22 body joints. 156: SMPL-H (22 body joints, then 2 x 15 finger
     joints). 165: SMPL-X (22 body joints, jaw, 2 eyes, 2 x 15 finger joints). Only the first 22
     joints (66 columns) are body joints in SMPL-H/X; SMPL's two hand joints are then set to identity.
  B. `root_orient` [T, 3] + `pose_body` [T, 63] (21 joints) + `trans` [T, 3] + `mocap_frame_rate`
     (AMASS SMPL-X "N"/"G" releases; preferred when a file holds both layouts).
Files without `hvg_up` (real AMASS is z up; other SMPL tools write y up or camera-like y down) are
turned into hvg's y-up world by the rotation that makes the body's median pelvis-to-head direction
point up (AMASS: -90 degrees about x, applied to the root orientation and the translation), and
the floor (y = 0) is put under the lowest joint over the clip.
Never unpickles: object arrays are refused.
"""

from __future__ import annotations

import os
import zipfile
from fractions import Fraction
from pathlib import Path

import numpy as np

from hvg_cli.core.errors import BadInput
from hvg_cli.io.atomic import atomic_file
from hvg_cli.core.types import NUM_JOINTS, SMPL_PARENTS, Motion, Skeleton

# Pelvis joint of SMPL's neutral template (J_regressor @ v_template, betas = 0), metres, model frame
# (y up). Only used to convert between SMPL's `trans` and the pelvis position; see the module doc.
SMPL_PELVIS_OFFSET = np.array([-0.0018, -0.2233, 0.0282])

# Rotation taking AMASS's z-up world into hvg's y-up world: -90 degrees about x, (x, y, z) -> (x, z, -y).
Z_UP_TO_Y_UP = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]])

_RESERVED = {
    "fps_num", "fps_den", "rest_joints", "up", "joints", "fit_error_deg", "source_hash", "name",
    "audio_path", "start_time", "parents",
}
_LAYOUTS = (
    "A: poses [T,72|66|156|165] + trans [T,3] + mocap_framerate; "
    "B: root_orient [T,3] + pose_body [T,63] + trans [T,3] + mocap_frame_rate"
)


# ---------------------------------------------------------------------------------------------
# writing
# ---------------------------------------------------------------------------------------------
def motion_to_arrays(motion: Motion) -> dict[str, np.ndarray]:
    """The npz content of a motion (see the module doc), as a dict of arrays."""
    T = motion.num_frames
    poses = np.asarray(motion.poses, dtype=np.float64).reshape(T, NUM_JOINTS * 3)  # [T,24,3] -> [T,72]
    pelvis = np.asarray(motion.trans, dtype=np.float64).reshape(T, 3)
    fps = Fraction(motion.fps)
    out: dict[str, np.ndarray] = {}
    for name, value in (motion.extras or {}).items():
        arr = np.asarray(value)
        if arr.dtype == object:
            continue  # cannot be stored without pickle
        out[f"hvg_{name}"] = arr
    out.update(
        poses=poses,
        trans=pelvis - SMPL_PELVIS_OFFSET,
        mocap_framerate=np.array(float(fps)),
        gender=np.array("neutral"),
        betas=np.zeros(16),
        hvg_fps_num=np.array(fps.numerator, dtype=np.int64),
        hvg_fps_den=np.array(fps.denominator, dtype=np.int64),
        hvg_rest_joints=np.asarray(motion.skeleton.rest_joints, dtype=np.float64),
        hvg_parents=np.asarray(motion.skeleton.parents, dtype=np.int64),
        hvg_up=np.array("y"),
        hvg_source_hash=np.array(motion.source_hash or ""),
        hvg_name=np.array(motion.name or "motion"),
        hvg_start_time=np.array(float(motion.start_time)),
    )
    if motion.joints is not None:
        out["hvg_joints"] = np.asarray(motion.joints, dtype=np.float64)
    if motion.fit_error_deg is not None:
        out["hvg_fit_error_deg"] = np.array(float(motion.fit_error_deg))
    if motion.audio_path:
        out["hvg_audio_path"] = np.array(str(motion.audio_path))
    return out


def save_motion_npz(motion: Motion, path: str | os.PathLike) -> Path:
    """Write `motion` as an AMASS-compatible .npz at `path` (atomically: temp file, then rename).

    An existing file at `path` is only replaced once the new one is complete. Returns the path.
    Raises OutputError if the folder cannot be written.
    """
    path = Path(path)
    arrays = motion_to_arrays(motion)
    with atomic_file(path, "wb") as f:
        np.savez(f, **arrays)
    return path



# ---------------------------------------------------------------------------------------------
# reading
# ---------------------------------------------------------------------------------------------
def fps_from_float(rate: float) -> Fraction:
    """A frame rate stored as a float -> an exact Fraction.

    Integral rates stay integral (120.0 -> 120); NTSC rates become n*1000/1001 (59.94 -> 60000/1001);
    anything else is the nearest fraction with a denominator up to 1001.
    """
    rate = float(rate)
    if not np.isfinite(rate) or rate <= 0:
        raise ValueError(f"frame rate {rate}")
    if abs(rate - round(rate)) < 1e-6:
        return Fraction(int(round(rate)))
    ntsc = round(rate * 1.001)
    if ntsc > 0 and abs(rate - ntsc * 1000 / 1001) < 5e-3 * max(1.0, rate / 30):
        return Fraction(ntsc * 1000, 1001)
    return Fraction(rate).limit_denominator(1001)


def _bad(path: Path, found: list[str], why: str) -> BadInput:
    return BadInput(
        f"{path}: not a motion file hvg can read ({why}); keys found: {', '.join(found) or 'none'}",
        hint=f"layouts accepted: {_LAYOUTS}",
    )


def _float_array(data, key: str, path: Path, found: list[str]) -> np.ndarray:
    try:
        arr = np.asarray(data[key])
    except ValueError as e:  # object arrays need pickle, which hvg never enables
        raise _bad(path, found, f"'{key}' holds Python objects") from e
    if not np.issubdtype(arr.dtype, np.number):
        raise _bad(path, found, f"'{key}' is not numeric")
    return arr.astype(np.float64)


def _scalar(data, key: str, path: Path, found: list[str]) -> float:
    arr = _float_array(data, key, path, found)
    if arr.size < 1:
        raise _bad(path, found, f"'{key}' is empty")
    return float(arr.reshape(-1)[0])


def _string(data, key: str) -> str | None:
    try:
        arr = np.asarray(data[key])
    except (ValueError, KeyError):
        return None
    if arr.dtype.kind in "US":
        v = arr.reshape(-1)[0] if arr.size else ""
        return v.decode() if isinstance(v, bytes) else str(v)
    return None


def _up_rotation(poses: np.ndarray, skeleton: Skeleton) -> np.ndarray:
    """The rotation taking a file's world into hvg's y-up world, from where the body's spine points.

    poses: [T, 24, 3] in the file's world. AMASS is z up (spine along +z: -90 deg about x); a file
    already y up is kept; y down (camera-like axes) is turned 180 deg about x. Decided on the median
    pelvis-to-head direction over the clip, so a clip that lies down for a while still reads right.
    """
    from hvg_cli.body.kinematics import pose_joints

    joints = pose_joints(poses, skeleton.rest_joints, skeleton.parents)  # [T, 24, 3] pelvis at origin
    spine = np.median(joints[:, 15] - joints[:, 0], axis=0)  # [3] pelvis -> head
    axis = int(np.argmax(np.abs(spine)))
    if axis == 2:
        return Z_UP_TO_Y_UP if spine[2] > 0 else Z_UP_TO_Y_UP.T
    if axis == 1 and spine[1] < 0:
        return np.diag([1.0, -1.0, -1.0])
    return np.eye(3)


def load_amass(path: str | os.PathLike) -> Motion:
    """Read an AMASS / SMPL / hvg motion .npz (layouts in the module doc) into a Motion.

    returns: Motion with poses [T, 24, 3] (y-up world), trans [T, 3] pelvis world positions (floor y = 0
             for z-up AMASS files), fps as a Fraction, skeleton = hvg_rest_joints or hvg's default.
    Raises BadInput (file named, keys found, layouts accepted) for anything else.
    """
    from hvg_cli.body.kinematics import axis_angle_to_matrix, matrix_to_axis_angle, pose_joints, unwrap_axis_angle
    from hvg_cli.body.skeleton import default_skeleton
    from hvg_cli.core.cache import file_hash

    path = Path(path)
    if not path.is_file():
        raise BadInput(f"motion file not found: {path}", hint="check the path, or use a built-in motion (hvg pose --list-presets)")
    try:
        data = np.load(path, allow_pickle=False)
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as e:
        raise BadInput(f"{path}: not a readable .npz file ({e})", hint=f"layouts accepted: {_LAYOUTS}") from e
    if not hasattr(data, "files"):
        raise BadInput(f"{path}: holds a single array, not an .npz archive of named arrays", hint=f"layouts accepted: {_LAYOUTS}")
    with data:
        found = sorted(data.files)
        keys = set(found)
        # 1. Body rotations [T, 22, 3] and frame rate, from whichever layout is there.
        if {"root_orient", "pose_body", "trans"} <= keys:
            root = _float_array(data, "root_orient", path, found)
            body = _float_array(data, "pose_body", path, found)
            if root.ndim != 2 or root.shape[1] != 3 or body.ndim != 2 or body.shape[1] != 63 or body.shape[0] != root.shape[0]:
                raise _bad(path, found, f"root_orient {root.shape} / pose_body {body.shape}, expected [T,3] / [T,63]")
            body22 = np.concatenate([root, body], axis=1).reshape(-1, 22, 3)  # [T,66] -> [T,22,3]
            rate_key = "mocap_frame_rate" if "mocap_frame_rate" in keys else "mocap_framerate"
        elif {"poses", "trans"} <= keys:
            poses = _float_array(data, "poses", path, found)
            if poses.ndim != 2 or poses.shape[1] not in (66, 72, 156, 165):
                raise _bad(path, found, f"poses has shape {poses.shape}, expected [T, 72|66|156|165]")
            if poses.shape[1] == 72:
                body22 = poses.reshape(-1, 24, 3)  # [T,72] -> [T,24,3]
            else:
                body22 = poses[:, :66].reshape(-1, 22, 3)  # first 22 joints are the body in SMPL-H/X
            rate_key = "mocap_framerate" if "mocap_framerate" in keys else "mocap_frame_rate"
        else:
            raise _bad(path, found, "no known layout")
        T = body22.shape[0]
        if T < 1:
            raise _bad(path, found, "zero frames")
        trans = _float_array(data, "trans", path, found)
        if trans.shape != (T, 3):
            raise _bad(path, found, f"trans has shape {trans.shape}, expected [{T}, 3]")
        if "hvg_fps_num" in keys and "hvg_fps_den" in keys:
            fps = Fraction(int(_scalar(data, "hvg_fps_num", path, found)), int(_scalar(data, "hvg_fps_den", path, found)))
        elif rate_key in keys:
            try:
                fps = fps_from_float(_scalar(data, rate_key, path, found))
            except ValueError as e:
                raise _bad(path, found, f"invalid frame rate ({e})") from e
        else:
            raise _bad(path, found, "no frame rate (mocap_framerate / mocap_frame_rate)")
        if not (np.all(np.isfinite(body22)) and np.all(np.isfinite(trans))):
            raise _bad(path, found, "poses or trans hold NaN/inf")

        poses24 = np.zeros((T, NUM_JOINTS, 3))
        poses24[:, : body22.shape[1]] = body22  # SMPL-H/X: hand joints 22, 23 stay identity
        pelvis = trans + SMPL_PELVIS_OFFSET

        # 2. hvg's own keys.
        skeleton = default_skeleton()
        if "hvg_rest_joints" in keys:
            rest = _float_array(data, "hvg_rest_joints", path, found)
            if rest.shape != (NUM_JOINTS, 3):
                raise _bad(path, found, f"hvg_rest_joints has shape {rest.shape}, expected [24, 3]")
            parents = SMPL_PARENTS
            if "hvg_parents" in keys:
                parents = tuple(int(p) for p in _float_array(data, "hvg_parents", path, found).astype(np.int64))
            skeleton = Skeleton(rest_joints=rest, parents=parents)
        joints = None
        if "hvg_joints" in keys:
            joints = _float_array(data, "hvg_joints", path, found)
            if joints.shape != (T, NUM_JOINTS, 3):
                joints = None
        fit_error = _scalar(data, "hvg_fit_error_deg", path, found) if "hvg_fit_error_deg" in keys else None
        up = (_string(data, "hvg_up") or "").lower() or None
        name = _string(data, "hvg_name") or path.name.split(".")[0]
        source_hash = _string(data, "hvg_source_hash") or ""
        audio = _string(data, "hvg_audio_path") or None
        start = _scalar(data, "hvg_start_time", path, found) if "hvg_start_time" in keys else 0.0
        extras: dict = {}
        for k in found:
            if k.startswith("hvg_") and k[4:] not in _RESERVED:
                try:
                    extras[k[4:]] = np.asarray(data[k])
                except ValueError:
                    continue

    # 3. Files from elsewhere -> hvg's y-up world, floor under the lowest joint.
    if up is None:
        to_y_up = _up_rotation(poses24, skeleton)
        R0 = axis_angle_to_matrix(poses24[:, 0])  # [T,3,3]
        poses24[:, 0] = unwrap_axis_angle(matrix_to_axis_angle(to_y_up @ R0))
        pelvis = pelvis @ to_y_up.T  # [T,3] rows rotated
        world = pose_joints(poses24, skeleton.rest_joints, skeleton.parents, pelvis)  # [T,24,3]
        pelvis[:, 1] -= float(world[..., 1].min())
        joints = None
    elif up != "y":
        raise _bad(path, found, f"hvg_up is '{up}', expected 'y'")

    return Motion(
        poses=poses24,
        trans=pelvis,
        fps=fps,
        skeleton=skeleton,
        name=name,
        source_hash=source_hash or file_hash(path),
        joints=joints,
        fit_error_deg=fit_error,
        audio_path=audio,
        start_time=start,
        extras=extras,
    )


load_motion_npz = load_amass
