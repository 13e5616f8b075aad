"""Built-in motions: small readable YAML files in presets/motions/, turned into a Motion by interpolation.

A preset file (every key below is required unless marked optional; unknown keys are errors):

    name: wave                       # must match the file name (wave.yaml)
    description: One line for `hvg pose --list-presets`.
    fps: 30                          # integer, or "30000/1001"
    duration: 3.0                    # seconds
    loop: false                      # true: the motion repeats (the first key follows the last)
    interpolation: catmull-rom       # or "linear"
    rotations: xyz-degrees           # the only convention: intrinsic XYZ Euler angles in degrees,
                                     #   R = Rx(x) · Ry(y) · Rz(z), local to the parent joint (SMPL)
    base:                            # (optional) a pose every key starts from
      left_shoulder: [0, 0, -72]
    keys:
      - t: 0.0                       # seconds, increasing, first key at 0, within [0, duration]
        pose: {right_shoulder: [0, 0, -50]}   # (optional) joints set in this key (others: base, or 0)
        root: [0.0, 0.0, 0.0]        # (optional) pelvis x, lift, z in metres (default 0, 0, 0)

The skeleton is hvg's default (`body.skeleton.default_skeleton`), facing +z, left = +x. Root: x and z
move the pelvis on the floor; the pelvis height is the one that puts the lowest joint of that frame's
pose on the floor (y = 0), plus `lift` (jumps), so feet never go through the floor. Euler angles are
interpolated per channel (Catmull-Rom with centred tangents over the key times; zero velocity at the
ends of a non-looping motion), so turns beyond 180 degrees (turn-around: 0 -> 360 about y) work.
"""

from __future__ import annotations

import hashlib
from fractions import Fraction
from pathlib import Path

import numpy as np

from hvg_cli.core.errors import BadInput
from hvg_cli.core.settings import presets_root
from hvg_cli.core.types import SMPL_JOINT_NAMES, Motion

_TOP_KEYS = {"name", "description", "fps", "duration", "loop", "interpolation", "rotations", "base", "keys"}
_REQUIRED = _TOP_KEYS - {"base"}
_KEY_KEYS = {"t", "pose", "root"}


def presets_dir() -> Path:
    """The presets folder (`core.settings.presets_root()`: $HVG_PRESETS_DIR, the checkout's, or the installed one)."""
    return presets_root()


def _motions_dir() -> Path:
    return presets_dir() / "motions"


def _preset_files() -> dict[str, Path]:
    d = _motions_dir()
    if not d.is_dir():
        return {}
    return {p.stem: p for p in sorted(d.glob("*.yaml"))}


# ---------------------------------------------------------------------------------------------
# parsing
# ---------------------------------------------------------------------------------------------
def _parse_fps(value, where: str) -> Fraction:
    try:
        fps = Fraction(str(value))
    except (ValueError, ZeroDivisionError) as e:
        raise BadInput(f"{where}: fps '{value}' is not a number", hint="write e.g. fps: 30 or fps: 30000/1001") from e
    if fps <= 0:
        raise BadInput(f"{where}: fps must be positive", hint="write e.g. fps: 30")
    return fps


def _vec3(value, where: str) -> np.ndarray:
    arr = np.asarray(value, dtype=np.float64) if isinstance(value, (list, tuple)) else None
    if arr is None or arr.shape != (3,) or not np.all(np.isfinite(arr)):
        raise BadInput(f"{where}: expected three numbers, got {value!r}", hint="write [x, y, z]")
    return arr


def parse_preset(doc: dict, where: str) -> dict:
    """Validate a preset document. Returns the fields with arrays:
    times [K], euler [K, 24, 3] degrees, root [K, 3] (x, lift, z), fps Fraction, duration, loop, ...
    """
    if not isinstance(doc, dict):
        raise BadInput(f"{where}: a motion preset must be a YAML mapping", hint="see presets/motions/wave.yaml")
    unknown = sorted(set(doc) - _TOP_KEYS)
    if unknown:
        raise BadInput(
            f"{where}: unknown keys {', '.join(unknown)}", hint=f"allowed keys: {', '.join(sorted(_TOP_KEYS))}"
        )
    missing = sorted(_REQUIRED - set(doc))
    if missing:
        raise BadInput(f"{where}: missing keys {', '.join(missing)}", hint="see presets/motions/wave.yaml")
    if doc["rotations"] != "xyz-degrees":
        raise BadInput(f"{where}: rotations '{doc['rotations']}' unknown", hint="use rotations: xyz-degrees")
    if doc["interpolation"] not in ("catmull-rom", "linear"):
        raise BadInput(f"{where}: interpolation '{doc['interpolation']}' unknown", hint="use catmull-rom or linear")
    fps = _parse_fps(doc["fps"], where)
    duration = float(doc["duration"])
    if not np.isfinite(duration) or duration <= 0:
        raise BadInput(f"{where}: duration must be positive seconds", hint="write e.g. duration: 3.0")

    def pose_of(mapping, at: str) -> dict[int, np.ndarray]:
        out: dict[int, np.ndarray] = {}
        for joint, value in (mapping or {}).items():
            if joint not in SMPL_JOINT_NAMES:
                raise BadInput(f"{where}: {at}: unknown joint '{joint}'", hint=f"joints: {', '.join(SMPL_JOINT_NAMES)}")
            out[SMPL_JOINT_NAMES.index(joint)] = _vec3(value, f"{where}: {at}: {joint}")
        return out

    base = np.zeros((24, 3))
    for j, v in pose_of(doc.get("base"), "base").items():
        base[j] = v
    keys = doc["keys"]
    if not isinstance(keys, list) or len(keys) < 1:
        raise BadInput(f"{where}: keys must be a list of at least one key", hint="see presets/motions/wave.yaml")
    times, euler, root = [], [], []
    for i, key in enumerate(keys):
        at = f"key {i}"
        if not isinstance(key, dict) or "t" not in key:
            raise BadInput(f"{where}: {at} needs a time t", hint="write - t: 0.0")
        bad = sorted(set(key) - _KEY_KEYS)
        if bad:
            raise BadInput(f"{where}: {at}: unknown keys {', '.join(bad)}", hint="a key has t, pose, root")
        e = base.copy()
        for j, v in pose_of(key.get("pose"), at).items():
            e[j] = v
        times.append(float(key["t"]))
        euler.append(e)
        root.append(_vec3(key.get("root", [0.0, 0.0, 0.0]), f"{where}: {at}: root"))
    times_a = np.array(times)
    if times_a[0] != 0.0 or np.any(np.diff(times_a) <= 0) or times_a[-1] > duration + 1e-9:
        raise BadInput(
            f"{where}: key times must start at 0, increase and stay within the duration", hint=f"times: {times}"
        )
    if bool(doc["loop"]) and times_a[-1] >= duration:
        raise BadInput(
            f"{where}: a looping motion's last key must come before the duration (key 0 follows it)",
            hint=f"drop the key at t = {times_a[-1]} or lengthen the duration",
        )
    return {
        "name": str(doc["name"]),
        "description": str(doc["description"]),
        "fps": fps,
        "duration": duration,
        "loop": bool(doc["loop"]),
        "interpolation": doc["interpolation"],
        "times": times_a,
        "euler": np.array(euler),  # [K, 24, 3] degrees
        "root": np.array(root),  # [K, 3] metres (x, lift, z)
    }


# ---------------------------------------------------------------------------------------------
# interpolation
# ---------------------------------------------------------------------------------------------
def interpolate_keys(
    times: np.ndarray, values: np.ndarray, t: np.ndarray, duration: float, loop: bool, kind: str
) -> np.ndarray:
    """Piecewise-cubic Hermite (Catmull-Rom tangents) or linear interpolation of key values.

    times:  [K] key times, seconds (increasing, first 0)
    values: [K, ...] key values
    t:      [N] sample times, seconds
    loop:   the motion repeats with period `duration` (key 0 follows the last key)
    returns [N, ...]
    """
    K = len(times)
    if K == 1:
        return np.broadcast_to(values[0], (len(t),) + values.shape[1:]).copy()
    if loop:  # one key of each neighbouring period on both sides
        tt = np.concatenate([times[-1:] - duration, times, times[:1] + duration, times[1:2] + duration])
        vv = np.concatenate([values[-1:], values, values[:1], values[1:2]])
        t = np.mod(t, duration)
    else:
        tt, vv = times, values
        t = np.clip(t, times[0], times[-1])
    n = len(tt)
    seg = np.clip(np.searchsorted(tt, t, side="right") - 1, 0, n - 2)  # [N]
    t0, t1 = tt[seg], tt[seg + 1]
    h = t1 - t0
    s = ((t - t0) / h).reshape((-1,) + (1,) * (values.ndim - 1))  # [N, 1...]
    p0, p1 = vv[seg], vv[seg + 1]
    if kind == "linear":
        return p0 + (p1 - p0) * s
    # centred tangents (values per second); zero at the ends of a non-looping track
    tangent = np.zeros_like(vv)
    tangent[1:-1] = (vv[2:] - vv[:-2]) / (tt[2:] - tt[:-2]).reshape((-1,) + (1,) * (values.ndim - 1))
    hh = h.reshape((-1,) + (1,) * (values.ndim - 1))
    m0, m1 = tangent[seg] * hh, tangent[seg + 1] * hh
    s2, s3 = s * s, s * s * s
    return (2 * s3 - 3 * s2 + 1) * p0 + (s3 - 2 * s2 + s) * m0 + (-2 * s3 + 3 * s2) * p1 + (s3 - s2) * m1


def _num_frames(spec: dict) -> int:
    """Frames of a parsed preset: duration * fps, plus the closing frame of a motion that does not loop."""
    return int(round(spec["duration"] * spec["fps"])) + (0 if spec["loop"] else 1)


def motion_from_preset(spec: dict, source_hash: str = "") -> Motion:
    """A Motion on the default skeleton from a parsed preset (see `parse_preset`)."""
    from scipy.spatial.transform import Rotation

    from hvg_cli.body.kinematics import matrix_to_axis_angle, pose_joints, unwrap_axis_angle
    from hvg_cli.body.skeleton import default_skeleton

    fps, duration, loop = spec["fps"], spec["duration"], spec["loop"]
    T = _num_frames(spec)
    t = np.arange(T) / float(fps)  # [T] seconds
    euler = interpolate_keys(spec["times"], spec["euler"], t, duration, loop, spec["interpolation"])  # [T, 24, 3]
    root = interpolate_keys(spec["times"], spec["root"], t, duration, loop, spec["interpolation"])  # [T, 3]
    R = Rotation.from_euler("XYZ", euler.reshape(-1, 3), degrees=True).as_matrix()  # [T*24, 3] -> [T*24, 3, 3]
    poses = unwrap_axis_angle(matrix_to_axis_angle(R).reshape(T, 24, 3))  # [T*24, 3] -> [T, 24, 3]
    skeleton = default_skeleton()
    # pelvis height: the lowest joint of each frame on the floor, plus the key's lift
    local = pose_joints(poses, skeleton.rest_joints, skeleton.parents)  # [T, 24, 3] pelvis at origin
    trans = np.stack([root[:, 0], -local[..., 1].min(axis=1) + np.maximum(root[:, 1], 0.0), root[:, 2]], axis=1)
    joints = local + trans[:, None, :]
    return Motion(
        poses=poses,
        trans=trans,
        fps=fps,
        skeleton=skeleton,
        name=spec["name"],
        source_hash=source_hash,
        joints=joints,
        extras={},
    )


# ---------------------------------------------------------------------------------------------
# public API
# ---------------------------------------------------------------------------------------------
def _read(name: str) -> tuple[dict, str]:
    import yaml

    files = _preset_files()
    if name.endswith((".yaml", ".yml")):  # a preset file of the user's own
        user = Path(name).expanduser()
        if not user.is_file():
            raise BadInput(f"motion preset file not found: {name}", hint="check the path")
        files = {user.stem: user}
        name = user.stem
    if name not in files:
        available = ", ".join(files) or f"none (no presets in {_motions_dir()})"
        raise BadInput(
            f"unknown motion preset '{name}'", hint=f"built-in motions: {available}; or give a video, .npz or .bvh file"
        )
    path = files[name]
    raw = path.read_bytes()
    try:
        doc = yaml.safe_load(raw)
    except yaml.YAMLError as e:
        raise BadInput(f"{path}: not valid YAML ({e})", hint="fix the preset file") from e
    spec = parse_preset(doc, str(path))
    if spec["name"] != name:
        raise BadInput(f"{path}: its name '{spec['name']}' differs from the file name", hint=f"write name: {name}")
    return spec, hashlib.sha256(raw).hexdigest()


def load_motion_preset(name: str) -> Motion:
    """The built-in motion `name` (presets/motions/<name>.yaml), or a preset file of the same format
    given by its path (ending in .yaml/.yml). Unknown name -> BadInput listing the built-in ones."""
    spec, digest = _read(name)
    return motion_from_preset(spec, source_hash=digest)


def list_motion_presets() -> list[tuple[str, str, int, Fraction]]:
    """(name, description, frames, fps) of every built-in motion, sorted by name."""
    out = []
    for name in _preset_files():
        spec, _ = _read(name)
        out.append((name, spec["description"], _num_frames(spec), spec["fps"]))
    return out
