"""Camera presets: YAML files in presets/cameras/ that name a generator and its arguments.

    description: One full turn around the subject ...
    generator: orbit
    args: {views: 21, degrees: 360, elevation: 10, radius: 3.0}

Validation is strict: an unknown key, a wrong type or a bad value is a BadInput naming the file and the key.
`load_camera` also accepts a path to such a YAML file, or to a nerfstudio camera_path .json file.
The presets folder is $HVG_PRESETS_DIR/cameras if set, else <repo>/presets/cameras.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from hvg_cli.cameras import generators as gen
from hvg_cli.core.errors import BadInput
from hvg_cli.core.settings import presets_root
from hvg_cli.core.types import CameraPath

# Argument kinds of every generator: "int", "float", "bool", "vec3" (three numbers), "floats" (a list of
# numbers), "float|floats" (one number or a list).
_COMMON = {"fov": "float", "width": "int", "height": "int", "target": "vec3"}
SCHEMA: dict[str, dict[str, str]] = {
    "static": {"views": "int", "azimuth": "float", "elevation": "float", "radius": "float", **_COMMON},
    "orbit": {
        "views": "int",
        "degrees": "float",
        "elevation": "float",
        "radius": "float",
        "start": "float",
        "closed": "bool",
        **_COMMON,
    },
    "arc": {
        "views": "int",
        "degrees": "float",
        "center": "float",
        "elevation": "float",
        "rise": "float",
        "radius": "float",
        **_COMMON,
    },
    "dolly": {
        "views": "int",
        "radius": "float",
        "start_radius": "float",
        "azimuth": "float",
        "elevation": "float",
        **_COMMON,
    },
    "spiral": {
        "views": "int",
        "degrees": "float",
        "elevation": "float",
        "amplitude": "float",
        "cycles": "float",
        "rise": "float",
        "radius": "float",
        **_COMMON,
    },
    "view_set": {"azimuths": "floats", "elevations": "float|floats", "radius": "float", "closed": "bool", **_COMMON},
}
TOP_KEYS = {"description": str, "generator": str, "args": dict}
OVERRIDES = ("views", "elevation", "radius", "fov", "width", "height", "degrees")


@dataclass(frozen=True)
class CameraPreset:
    name: str
    description: str
    generator: str
    args: dict[str, Any]
    source: str  # the YAML file it came from


def presets_dir() -> Path:
    """The folder of camera presets: `cameras/` of `core.settings.presets_root()`."""
    return presets_root() / "cameras"


def list_camera_presets() -> list[CameraPreset]:
    """Every preset in the presets folder, validated, sorted by name."""
    folder = presets_dir()
    if not folder.is_dir():
        return []
    return [read_preset(p) for p in _preset_files(folder)]


def _preset_files(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.yaml"), key=lambda f: f.name[:-5])


def read_preset(file: Path) -> CameraPreset:
    """Read and validate one preset YAML file (strict: unknown keys and wrong types are BadInput)."""
    import yaml

    file = Path(file)
    try:
        data = yaml.safe_load(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BadInput(f"camera preset file not found: {file}") from None
    except (OSError, UnicodeDecodeError) as e:
        raise BadInput(f"cannot read camera preset {file}: {e}") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise BadInput(f"{file}: not valid YAML{where}", hint="check indentation and colons") from None
    if not isinstance(data, dict):
        raise BadInput(f"{file}: a camera preset must be a mapping with keys generator, args, description")
    for key in data:
        if key not in TOP_KEYS:
            raise BadInput(f"{file}: unknown key {key!r}", hint=f"allowed keys: {', '.join(TOP_KEYS)}")
    for key, typ in TOP_KEYS.items():
        if key == "args" and key not in data:
            continue
        if key not in data:
            raise BadInput(f"{file}: missing key {key!r}")
        if not isinstance(data[key], typ):
            raise BadInput(f"{file}: key {key!r} must be a {typ.__name__}, got {type(data[key]).__name__}")
    generator = data["generator"]
    if generator not in SCHEMA:
        raise BadInput(f"{file}: unknown generator {generator!r}", hint=f"use one of: {', '.join(SCHEMA)}")
    args = dict(data.get("args") or {})
    for key, value in args.items():
        if key not in SCHEMA[generator]:
            raise BadInput(
                f"{file}: unknown key 'args.{key}' for generator {generator}",
                hint=f"allowed: {', '.join(SCHEMA[generator])}",
            )
        args[key] = _coerce(value, SCHEMA[generator][key], f"{file}: key 'args.{key}'")
    name = file.name[:-5] if file.name.endswith(".yaml") else file.stem
    preset = CameraPreset(
        name=name, description=data["description"].strip(), generator=generator, args=args, source=str(file)
    )
    build_preset(preset, {})  # value errors (negative radius ...) surface when the file is read
    return preset


def _coerce(value: Any, kind: str, where: str) -> Any:
    """Check a YAML value against its kind; ints are accepted where floats are, bools never as numbers."""

    def number(v: Any) -> bool:  # a finite number: YAML's .nan and .inf are refused where they enter
        return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)

    if kind == "int":
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise BadInput(f"{where} must be a whole number, got {value!r}")
    if kind == "float":
        if number(value):
            return float(value)
        raise BadInput(f"{where} must be a finite number, got {value!r}")
    if kind == "bool":
        if isinstance(value, bool):
            return value
        raise BadInput(f"{where} must be true or false, got {value!r}")
    if kind == "vec3":
        if isinstance(value, list) and len(value) == 3 and all(number(v) for v in value):
            return tuple(float(v) for v in value)
        raise BadInput(f"{where} must be a list of three numbers [x, y, z], got {value!r}")
    if kind == "floats":
        if isinstance(value, list) and value and all(number(v) for v in value):
            return [float(v) for v in value]
        raise BadInput(f"{where} must be a non-empty list of numbers, got {value!r}")
    if kind == "float|floats":
        if number(value):
            return float(value)
        return _coerce(value, "floats", where)
    raise AssertionError(kind)


def build_preset(preset: CameraPreset, overrides: dict[str, Any]) -> CameraPath:
    """Call the preset's generator with its args and the overrides; errors name the preset's file."""
    args = dict(preset.args)
    schema = SCHEMA[preset.generator]
    for key, value in overrides.items():
        if value is None:
            continue
        if key not in OVERRIDES:
            raise BadInput(f"unknown camera override {key!r}", hint=f"use one of: {', '.join(OVERRIDES)}")
        if key == "elevation" and preset.generator == "view_set":
            args["elevations"] = float(value)
        elif key not in schema:
            raise BadInput(
                f"camera preset {preset.name!r} ({preset.generator}) has no setting {key!r}",
                hint=f"it takes: {', '.join(k for k in schema if k in OVERRIDES) or 'none of the overrides'}",
            )
        else:
            args[key] = value
    try:
        path = gen.GENERATORS[preset.generator](**args)
    except BadInput as e:
        raise BadInput(f"{preset.source}: {e.message}", hint=e.hint) from None
    return replace(path, name=preset.name)


def load_camera(name_or_file: str | Path, **overrides: Any) -> CameraPath:
    """A camera path from a preset name, a preset .yaml file or a nerfstudio camera_path .json file.

    overrides: views, elevation, radius, fov, width, height, degrees (None = keep the preset's value).
    For a nerfstudio file only width/height/fov are accepted (they re-render the same poses).
    """
    text = str(name_or_file)
    p = Path(text)
    if text.endswith(".json"):
        from hvg_cli.cameras.nerfstudio import load_nerfstudio

        return _override_json(load_nerfstudio(p), overrides, p)
    if text.endswith((".yaml", ".yml")) or (os.sep in text and p.exists()):
        return build_preset(read_preset(p), overrides)
    file = presets_dir() / f"{text}.yaml"
    if not file.is_file():
        names = [f.name[:-5] for f in _preset_files(presets_dir())]
        raise BadInput(
            f"unknown camera preset {text!r}",
            hint=f"known presets: {', '.join(names) or '(none found in ' + str(presets_dir()) + ')'}"
            "; or give a .yaml preset file or a nerfstudio camera_path .json",
        )
    return build_preset(read_preset(file), overrides)


def _override_json(path: CameraPath, overrides: dict[str, Any], file: Path) -> CameraPath:
    """Apply width/height/fov overrides to an imported path (poses are kept; K is rebuilt)."""
    import numpy as np

    given = {k: v for k, v in overrides.items() if v is not None}
    bad = [k for k in given if k not in ("width", "height", "fov")]
    if bad:
        raise BadInput(
            f"{file}: a nerfstudio camera path has fixed poses; cannot override {', '.join(bad)}",
            hint="only width, height and fov can be changed",
        )
    if not given:
        return path
    width, height = int(given.get("width", path.width)), int(given.get("height", path.height))
    if width < 1 or height < 1:
        raise BadInput(f"width and height must be >= 1, got {width}x{height}")
    if "fov" in given:
        if not 0 < given["fov"] < 180:
            raise BadInput(f"fov must be between 0 and 180 degrees, got {given['fov']}")
        K = np.broadcast_to(gen.intrinsics(given["fov"], width, height), path.K.shape).copy()
    else:  # keep each keyframe's fov, rescale to the new size
        fovs = [gen.vertical_fov(k, path.height) for k in path.K]
        K = np.stack([gen.intrinsics(f, width, height) for f in fovs])
    return replace(path, K=K, width=width, height=height)
