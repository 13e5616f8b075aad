"""AMASS/SMPL motion files (.npz): reading them into their raw arrays and writing them. Pure file work:
turning the arrays into hvg's `Motion` (and back) is `body.mocap`'s; `pipeline` composes the two.

What hvg writes (`write_motion_npz`), readable by the AMASS/SMPL ecosystem:
  poses            [T, 72] float64 axis-angle, SMPL joint order (root orientation first)
  trans            [T, 3] float64 metres, SMPL's `trans` (the pelvis minus SMPL's pelvis offset, see
                   `body.mocap`)
  mocap_framerate  float
  gender           "neutral"
  betas            [16] zeros
plus hvg's own keys, all prefixed `hvg_`:
  hvg_fps_num, hvg_fps_den   the exact frame rate (e.g. 30000/1001)
  hvg_rest_joints  [24, 3]    the rest skeleton the rotations act on (metres, pelvis at the origin)
  hvg_parents      [24]       its joint tree
  hvg_up           "y"        the world's up axis (hvg's world is y up, floor y = 0)
  hvg_joints       [T, 24, 3] fitted joint positions, when known
  hvg_fit_error_deg, hvg_source_hash, hvg_name, hvg_audio_path, hvg_start_time
  hvg_<name>                  every array of `MocapArrays.extras`

Reading (`read_motion_npz`) accepts two layouts:
  A. `poses` [T, 72 | 66 | 156 | 165] + `trans` [T, 3] + `mocap_framerate`
     72: SMPL (24 joints). 66: the 22 body joints. 156: SMPL-H (22 body joints, then 2 x 15 finger
     joints). 165: SMPL-X (22 body joints, jaw, 2 eyes, 2 x 15 finger joints). Only the first 22
     joints (66 columns) are body joints in SMPL-H/X: `MocapArrays.poses` then holds those 22.
  B. `root_orient` [T, 3] + `pose_body` [T, 63] (21 joints) + `trans` [T, 3] + `mocap_frame_rate`
     (AMASS SMPL-X "N"/"G" releases; preferred when a file holds both layouts).
Files without `hvg_up` (real AMASS is z up) are read with `up = None`; a file whose `hvg_up` is not
"y" is refused.
Never unpickles: object arrays are refused.
"""

from __future__ import annotations

import os
import zipfile
from fractions import Fraction
from pathlib import Path

import numpy as np

from hvg_cli.core.atomic import atomic_file
from hvg_cli.core.cache import file_hash
from hvg_cli.core.errors import BadInput
from hvg_cli.core.mocap import MocapArrays, fps_from_float
from hvg_cli.core.types import NUM_JOINTS

_RESERVED = {
    "fps_num",
    "fps_den",
    "rest_joints",
    "up",
    "joints",
    "fit_error_deg",
    "source_hash",
    "name",
    "audio_path",
    "start_time",
    "parents",
}
_LAYOUTS = (
    "A: poses [T,72|66|156|165] + trans [T,3] + mocap_framerate; "
    "B: root_orient [T,3] + pose_body [T,63] + trans [T,3] + mocap_frame_rate"
)


# ---------------------------------------------------------------------------------------------
# writing
# ---------------------------------------------------------------------------------------------
def npz_arrays(data: MocapArrays) -> dict[str, np.ndarray]:
    """The npz content of `data` (see the module doc), as a dict of arrays."""
    T = data.num_frames
    poses = np.asarray(data.poses, dtype=np.float64).reshape(T, -1)  # [T,24,3] -> [T,72]
    fps = Fraction(data.fps)
    out: dict[str, np.ndarray] = {}
    for name, value in (data.extras or {}).items():
        arr = np.asarray(value)
        if arr.dtype == object:
            continue  # cannot be stored without pickle
        out[f"hvg_{name}"] = arr
    out.update(
        poses=poses,
        trans=np.asarray(data.trans, dtype=np.float64).reshape(T, 3),
        mocap_framerate=np.array(float(fps)),
        gender=np.array("neutral"),
        betas=np.zeros(16),
        hvg_fps_num=np.array(fps.numerator, dtype=np.int64),
        hvg_fps_den=np.array(fps.denominator, dtype=np.int64),
    )
    if data.rest_joints is not None:
        out["hvg_rest_joints"] = np.asarray(data.rest_joints, dtype=np.float64)
    if data.parents is not None:
        out["hvg_parents"] = np.asarray(data.parents, dtype=np.int64)
    if data.up is not None:
        out["hvg_up"] = np.array(data.up)
    out.update(
        hvg_source_hash=np.array(data.source_hash or ""),
        hvg_name=np.array(data.name or "motion"),
        hvg_start_time=np.array(float(data.start_time)),
    )
    if data.joints is not None:
        out["hvg_joints"] = np.asarray(data.joints, dtype=np.float64)
    if data.fit_error_deg is not None:
        out["hvg_fit_error_deg"] = np.array(float(data.fit_error_deg))
    if data.audio_path:
        out["hvg_audio_path"] = np.array(str(data.audio_path))
    return out


def write_motion_npz(data: MocapArrays, path: str | os.PathLike) -> Path:
    """Write `data` as an AMASS-compatible .npz at `path` (atomically: temp file, then rename).

    An existing file at `path` is only replaced once the new one is complete. Returns the path.
    Raises OutputError if the folder cannot be written.
    """
    path = Path(path)
    arrays = npz_arrays(data)
    with atomic_file(path, "wb") as f:
        np.savez(f, allow_pickle=True, **arrays)  # numpy's default, named: mypy cannot tell a splat from it
    return path


# ---------------------------------------------------------------------------------------------
# reading
# ---------------------------------------------------------------------------------------------
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
    value = float(arr.reshape(-1)[0])
    if not np.isfinite(value):
        raise _bad(path, found, f"'{key}' is {value}")
    return value


def _string(data, key: str) -> str | None:
    try:
        arr = np.asarray(data[key])
    except (ValueError, KeyError):
        return None
    if arr.dtype.kind in "US":
        v = arr.reshape(-1)[0] if arr.size else ""
        return v.decode() if isinstance(v, bytes) else str(v)
    return None


def read_motion_npz(path: str | os.PathLike) -> MocapArrays:
    """Read an AMASS / SMPL / hvg motion .npz (layouts in the module doc) into its raw arrays.

    returns: MocapArrays with poses [T, 24 | 22, 3] and trans [T, 3] as stored, fps as a Fraction,
             hvg's own keys when present; name defaults to the file's name, source_hash to its hash.
    Raises BadInput (file named, keys found, layouts accepted) for anything else.
    """
    path = Path(path)
    if not path.is_file():
        raise BadInput(
            f"motion file not found: {path}", hint="check the path, or use a built-in motion (hvg pose --list-presets)"
        )
    try:
        data = np.load(path, allow_pickle=False)
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as e:
        raise BadInput(f"{path}: not a readable .npz file ({e})", hint=f"layouts accepted: {_LAYOUTS}") from e
    if not hasattr(data, "files"):
        raise BadInput(
            f"{path}: holds a single array, not an .npz archive of named arrays", hint=f"layouts accepted: {_LAYOUTS}"
        )
    with data:
        found = sorted(data.files)
        keys = set(found)
        # 1. Body rotations [T, 22 | 24, 3] and frame rate, from whichever layout is there.
        if {"root_orient", "pose_body", "trans"} <= keys:
            root = _float_array(data, "root_orient", path, found)
            body = _float_array(data, "pose_body", path, found)
            if (
                root.ndim != 2
                or root.shape[1] != 3
                or body.ndim != 2
                or body.shape[1] != 63
                or body.shape[0] != root.shape[0]
            ):
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
            num, den = int(_scalar(data, "hvg_fps_num", path, found)), int(_scalar(data, "hvg_fps_den", path, found))
            if num <= 0 or den <= 0:
                raise _bad(path, found, f"invalid frame rate {num}/{den}")
            fps = Fraction(num, den)
        elif rate_key in keys:
            try:
                fps = fps_from_float(_scalar(data, rate_key, path, found))
            except ValueError as e:
                raise _bad(path, found, f"invalid frame rate ({e})") from e
        else:
            raise _bad(path, found, "no frame rate (mocap_framerate / mocap_frame_rate)")
        if not (np.all(np.isfinite(body22)) and np.all(np.isfinite(trans))):
            raise _bad(path, found, "poses or trans hold NaN/inf")

        # 2. hvg's own keys.
        rest = parents = None
        if "hvg_rest_joints" in keys:
            rest = _float_array(data, "hvg_rest_joints", path, found)
            if rest.shape != (NUM_JOINTS, 3):
                raise _bad(path, found, f"hvg_rest_joints has shape {rest.shape}, expected [24, 3]")
            if "hvg_parents" in keys:
                parents = tuple(int(p) for p in _float_array(data, "hvg_parents", path, found).astype(np.int64))
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

    if up is not None and up != "y":
        raise _bad(path, found, f"hvg_up is '{up}', expected 'y'")
    return MocapArrays(
        poses=body22,
        trans=trans,
        fps=fps,
        up=up,
        rest_joints=rest,
        parents=parents,
        joints=joints,
        fit_error_deg=fit_error,
        name=name,
        source_hash=source_hash or file_hash(path),
        audio_path=audio,
        start_time=start,
        extras=extras,
    )
