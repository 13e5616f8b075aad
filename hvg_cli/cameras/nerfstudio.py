"""nerfstudio camera_path JSON: export and import.

The file (as written by nerfstudio's viewer and read by `ns-render camera-path`):

    {"camera_type": "perspective", "render_width": W, "render_height": H, "fps": 24, "seconds": 4,
     "is_cycle": false,
     "camera_path": [{"camera_to_world": [16 floats, row-major 4x4], "fov": vertical degrees,
                      "aspect": W / H, "render_time": 0..1 (optional)}, ...]}

Axes: nerfstudio cameras are OpenGL-style (x right, y up, z backward, looking down -z); hvg cameras are
OpenCV (x right, y down, z forward). The same camera's camera-to-world matrices differ by flipping the y and
z columns of the rotation: c2w_ns = c2w_cv · diag(1, -1, -1, 1). The world frame is passed through as is
(hvg: metres, y up; a nerfstudio scene's world is whatever its dataparser made it).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from hvg_cli.cameras.generators import intrinsics, vertical_fov
from hvg_cli.core.atomic import atomic_file
from hvg_cli.core.errors import BadInput
from hvg_cli.core.types import CameraPath

FLIP_YZ = np.diag([1.0, -1.0, -1.0, 1.0])  # OpenCV <-> OpenGL camera axes (its own inverse)


def to_nerfstudio(path: CameraPath, fps: float = 24.0, seconds: float | None = None) -> dict[str, Any]:
    """A nerfstudio camera_path document for the path (one entry per view / keyframe).

    seconds: duration of the render (default: one view per frame at `fps`).
    render_time is written when the path has keyframe times.
    """
    V = path.num_views
    c2w_cv = np.linalg.inv(path.world_to_cam)  # [V, 4, 4]
    c2w_ns = c2w_cv @ FLIP_YZ  # [V, 4, 4] flips the y and z columns
    entries = []
    for i in range(V):
        entry: dict[str, Any] = {
            "camera_to_world": [float(x) for x in c2w_ns[i].reshape(16)],  # row-major
            "fov": vertical_fov(path.K[i], path.height),
            "aspect": path.width / path.height,
        }
        if path.times is not None:
            entry["render_time"] = float(path.times[i])
        entries.append(entry)
    return {
        "camera_type": "perspective",
        "render_width": int(path.width),
        "render_height": int(path.height),
        "fps": float(fps),
        "seconds": float(seconds) if seconds is not None else V / float(fps),
        "is_cycle": bool(path.closed),
        "camera_path": entries,
        "hvg_name": path.name,
    }


def from_nerfstudio(doc: dict[str, Any], source: str = "camera_path json") -> CameraPath:
    """A CameraPath from a nerfstudio camera_path document (see module docstring).

    K is rebuilt from each entry's vertical fov and the render size, principal point at the centre.
    `source` names the file in error messages.
    """
    if not isinstance(doc, dict) or not isinstance(doc.get("camera_path"), list) or not doc["camera_path"]:
        raise BadInput(
            f"{source}: not a nerfstudio camera path (no non-empty 'camera_path' list)",
            hint="export one from the nerfstudio viewer's Render tab, or `hvg cameras export`",
        )
    if doc.get("camera_type", "perspective") != "perspective":
        raise BadInput(
            f"{source}: camera_type {doc.get('camera_type')!r} is not supported",
            hint="hvg renders perspective cameras only",
        )
    width, height = _size(doc, source)
    K, w2c, times = [], [], []
    for i, cam in enumerate(doc["camera_path"]):
        where = f"{source}: camera_path[{i}]"
        if not isinstance(cam, dict) or "camera_to_world" not in cam:
            raise BadInput(f"{where} has no 'camera_to_world'")
        m = cam["camera_to_world"]
        try:
            c2w = np.asarray(m, dtype=np.float64)
        except (TypeError, ValueError):
            raise BadInput(f"{where}.camera_to_world is not a list of numbers") from None
        if c2w.size == 12:  # 3x4 without the last row
            c2w = np.concatenate([c2w.reshape(-1)[:12], [0.0, 0.0, 0.0, 1.0]])
        if c2w.size != 16 or not np.all(np.isfinite(c2w)):
            raise BadInput(f"{where}.camera_to_world must hold 16 finite numbers (4x4 row-major), got {c2w.size}")
        c2w = c2w.reshape(4, 4)
        R = c2w[:3, :3]
        if abs(np.linalg.det(R) - 1) > 1e-3 or np.abs(R.T @ R - np.eye(3)).max() > 1e-3:
            raise BadInput(
                f"{where}.camera_to_world has no pure rotation (scaled or skewed)",
                hint="hvg reads rigid camera poses only",
            )
        fov = cam.get("fov", doc.get("default_fov", 50.0))
        if isinstance(fov, bool) or not isinstance(fov, (int, float)) or not 0 < fov < 180:
            raise BadInput(f"{where}.fov must be a vertical field of view in degrees in (0, 180), got {fov!r}")
        K.append(intrinsics(float(fov), width, height))
        w2c.append(np.linalg.inv(c2w @ FLIP_YZ))
        times.append(cam.get("render_time"))
    if all(isinstance(t, (int, float)) and not isinstance(t, bool) for t in times):
        t = np.asarray(times, dtype=np.float64)
        if len(t) > 1 and not (np.all(np.diff(t) > 0) and t[0] >= 0 and t[-1] <= 1):
            raise BadInput(f"{source}: render_time values must increase within [0, 1]")
        times_arr: np.ndarray | None = t
    else:
        times_arr = None
    closed = bool(doc.get("is_cycle", False))
    if closed and times_arr is not None and times_arr[-1] >= 1:
        closed = False  # the file already repeats the first pose at the end
    if closed and len(K) < 3:
        closed = False
    hvg_name = doc.get("hvg_name")
    name = hvg_name if isinstance(hvg_name, str) else Path(str(source)).stem
    return CameraPath(
        K=np.stack(K), world_to_cam=np.stack(w2c), width=width, height=height, closed=closed, name=name, times=times_arr
    )


def _size(doc: dict[str, Any], source: str) -> tuple[int, int]:
    w, h = doc.get("render_width"), doc.get("render_height")
    if h is None or isinstance(h, bool) or not isinstance(h, (int, float)) or not 1 <= h <= 65536:
        raise BadInput(f"{source}: 'render_height' must be a positive number of pixels, got {h!r}")
    if w is None:  # older files: width from the first camera's aspect
        aspect = doc["camera_path"][0].get("aspect", 1.0) if isinstance(doc["camera_path"][0], dict) else 1.0
        w = round(h * float(aspect))
    if isinstance(w, bool) or not isinstance(w, (int, float)) or not 1 <= w <= 65536:
        raise BadInput(f"{source}: 'render_width' must be a positive number of pixels, got {w!r}")
    return int(round(w)), int(round(h))


def save_nerfstudio(path: CameraPath, out: Path, fps: float = 24.0, seconds: float | None = None) -> Path:
    """Write the path as a nerfstudio camera_path .json (atomic: temp file, then rename)."""
    out = Path(out)
    doc = to_nerfstudio(path, fps=fps, seconds=seconds)
    with atomic_file(out, "w", encoding="utf-8") as f:
        f.write(json.dumps(doc, indent=2) + "\n")
    return out


def load_nerfstudio(file: Path) -> CameraPath:
    """Read a nerfstudio camera_path .json file."""
    file = Path(file)
    try:
        doc = json.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BadInput(f"camera path file not found: {file}") from None
    except (OSError, UnicodeDecodeError) as e:
        raise BadInput(f"cannot read {file}: {e}") from None
    except json.JSONDecodeError as e:
        raise BadInput(f"{file}: not valid JSON (line {e.lineno})") from None
    return from_nerfstudio(doc, source=str(file))
