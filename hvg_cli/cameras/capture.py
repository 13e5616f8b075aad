"""Calibrated multi-view captures: a nerfstudio-style `transforms.json` naming one video per camera.

The file (nerfstudio's dataset format, https://docs.nerf.studio/quickstart/data_conventions.html, with one
entry per camera whose `file_path` is that camera's video instead of an image):

    {"fl_x": 1000.0, "fl_y": 1000.0, "cx": 960.0, "cy": 540.0, "w": 1920, "h": 1080,   shared intrinsics
     "camera_model": "OPENCV",                                                          optional
     "frames": [{"file_path": "cam0.mp4",
                 "transform_matrix": [[r, r, r, x], [r, r, r, y], [r, r, r, z], [0, 0, 0, 1]],
                 "fl_x": ..., "fl_y": ..., "cx": ..., "cy": ..., "w": ..., "h": ...},    optional per camera
                ...]}

transform_matrix is camera-to-world, nested rows (a 3x4 without the last row is accepted), with nerfstudio's
OpenGL/Blender camera axes (x right, y up, z back: the camera looks down -z). hvg cameras are OpenCV (x right,
y down, z forward): world_to_cam = inverse(c2w · diag(1, -1, -1, 1)), converted here, once. Intrinsics are in
pixels of a w × h image; when w/h are absent they are taken to be the video's own size (the pipeline rescales
K when the video's size differs from w × h). The world frame is passed through as is (nerfstudio's worlds are
z-up, COLMAP's arbitrary): `hvg prepare` solves the body's placement in it and re-expresses the cameras in the
body's y-up frame, so its orientation and units do not matter. Lens distortion (k1, k2, p1, p2, ...) is not
modelled: undistort the videos first; the reprojection check refuses captures whose landmarks miss the body.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hvg_cli.cameras.nerfstudio import FLIP_YZ
from hvg_cli.core.atomic import atomic_file
from hvg_cli.core.errors import BadInput

TRANSFORMS = "transforms.json"
PINHOLE_MODELS = ("OPENCV", "PINHOLE", "SIMPLE_PINHOLE")
DISTORTION_KEYS = ("k1", "k2", "k3", "k4", "p1", "p2")
_HINT = "see README, 'Training data layouts': one entry per camera with file_path and transform_matrix"


@dataclass(frozen=True, eq=False)
class CaptureCamera:
    """One calibrated camera of a capture (OpenCV axes)."""

    file: str  # the video's path relative to the capture folder, as written in transforms.json
    K: np.ndarray  # [3, 3] intrinsics, pixels of a width × height image
    world_to_cam: np.ndarray  # [4, 4] OpenCV, the capture's world
    width: int | None  # size the intrinsics refer to (None: the video's own size)
    height: int | None
    distorted: bool = False  # non-zero distortion coefficients were given (and are ignored)


def _number(doc: dict, key: str, where: str, positive: bool = False) -> float | None:
    v = doc.get(key)
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not np.isfinite(v) or (positive and v <= 0):
        raise BadInput(f"{where}: {key!r} must be a {'positive ' if positive else ''}number, got {v!r}", _HINT)
    return float(v)


def read_transforms(file: Path) -> list[CaptureCamera]:
    """The cameras of a capture's transforms.json (see module docstring); BadInput naming the file otherwise."""
    file = Path(file)
    try:
        doc = json.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BadInput(f"{file}: not found", _HINT) from None
    except (OSError, UnicodeDecodeError) as e:
        raise BadInput(f"cannot read {file}: {e}") from None
    except json.JSONDecodeError as e:
        raise BadInput(f"{file}: not valid JSON (line {e.lineno})", _HINT) from None
    return cameras_from_transforms(doc, str(file))


def cameras_from_transforms(doc: Any, source: str = TRANSFORMS) -> list[CaptureCamera]:
    """Parse a transforms.json document; `source` names the file in error messages."""
    if not isinstance(doc, dict) or not isinstance(doc.get("frames"), list) or not doc["frames"]:
        raise BadInput(f"{source}: no non-empty 'frames' list", _HINT)
    model = doc.get("camera_model", "OPENCV")
    if model not in PINHOLE_MODELS:
        raise BadInput(f"{source}: camera_model {model!r} is not supported", "undistort to a pinhole (OPENCV) first")
    out: list[CaptureCamera] = []
    seen: set[str] = set()
    for i, fr in enumerate(doc["frames"]):
        where = f"{source}: frames[{i}]"
        if not isinstance(fr, dict):
            raise BadInput(f"{where} is not an object", _HINT)
        name = fr.get("file_path")
        if not isinstance(name, str) or not name.strip():
            raise BadInput(f"{where} has no 'file_path' (the camera's video)", _HINT)
        if name in seen:
            raise BadInput(f"{where}: {name} is listed twice", "one entry per camera")
        seen.add(name)
        if fr.get("camera_model", model) not in PINHOLE_MODELS:
            raise BadInput(f"{where}: camera_model {fr.get('camera_model')!r} is not supported")
        try:
            c2w = np.asarray(fr.get("transform_matrix"), dtype=np.float64)
        except (TypeError, ValueError):
            raise BadInput(f"{where}.transform_matrix is not a 4x4 list of numbers", _HINT) from None
        if c2w.shape == (3, 4):
            c2w = np.vstack([c2w, [0.0, 0.0, 0.0, 1.0]])
        if c2w.shape != (4, 4) or not np.all(np.isfinite(c2w)):
            raise BadInput(f"{where}.transform_matrix must be 4x4 finite numbers, got shape {list(c2w.shape)}", _HINT)
        R = c2w[:3, :3]
        if abs(np.linalg.det(R) - 1) > 1e-3 or np.abs(R.T @ R - np.eye(3)).max() > 1e-3:
            raise BadInput(f"{where}.transform_matrix has no pure rotation (scaled or skewed)", "give rigid poses")

        def get(key: str, positive: bool = False, fr: dict = fr, where: str = where) -> float | None:
            v = _number(fr, key, where, positive)
            return v if v is not None else _number(doc, key, source, positive)

        fx, fy = get("fl_x", True), get("fl_y", True)
        if fx is None and fy is None:
            raise BadInput(f"{where}: no focal length (fl_x / fl_y, shared or per camera)", _HINT)
        fx = fx if fx is not None else fy
        fy = fy if fy is not None else fx
        w, h = get("w", True), get("h", True)
        cx, cy = get("cx"), get("cy")
        if (cx is None or cy is None) and (w is None or h is None):
            raise BadInput(f"{where}: no principal point (cx, cy) and no image size (w, h)", _HINT)
        cx = cx if cx is not None else w / 2.0  # type: ignore[operator]
        cy = cy if cy is not None else h / 2.0  # type: ignore[operator]
        K = np.array([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]])
        distorted = any(abs(get(k) or 0.0) > 0 for k in DISTORTION_KEYS)
        w2c = np.linalg.inv(c2w @ FLIP_YZ)  # OpenGL camera axes -> OpenCV, then world -> camera
        out.append(CaptureCamera(name, K, w2c, None if w is None else int(w), None if h is None else int(h), distorted))
    return out


def to_transforms(cameras: list[CaptureCamera]) -> dict[str, Any]:
    """The transforms.json document of cameras (per-camera intrinsics; the inverse of cameras_from_transforms)."""
    frames = []
    for c in cameras:
        c2w = np.linalg.inv(c.world_to_cam) @ FLIP_YZ  # OpenCV -> OpenGL camera axes
        entry: dict[str, Any] = {
            "file_path": c.file,
            "transform_matrix": [[float(x) for x in row] for row in c2w],
            "fl_x": float(c.K[0, 0]),
            "fl_y": float(c.K[1, 1]),
            "cx": float(c.K[0, 2]),
            "cy": float(c.K[1, 2]),
        }
        if c.width is not None and c.height is not None:
            entry.update(w=int(c.width), h=int(c.height))
        frames.append(entry)
    return {"camera_model": "OPENCV", "frames": frames}


def write_transforms(cameras: list[CaptureCamera], folder: Path) -> Path:
    """Write FOLDER/transforms.json (atomic)."""
    out = Path(folder) / TRANSFORMS
    with atomic_file(out, "w", encoding="utf-8") as f:
        f.write(json.dumps(to_transforms(cameras), indent=2) + "\n")
    return out
