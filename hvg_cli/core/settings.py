"""Settings of stages, as frozen dataclasses: what the CLI builds from flags and the cache keys hash."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import numbers
import os
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import TypeVar

from hvg_cli.core.errors import BadInput, UsageError


@dataclass(frozen=True)
class PoseSettings:
    """How `hvg pose` turns a video into a motion.

    start, end, stride: source frame indices [start, end) every `stride`-th frame (end None = to the end)
    person:   "largest" (default), "first" (MediaPipe's own pick), or "0", "1", ... counted from the left
    max_gap:  longest run of lost frames (track frames) filled by interpolation; None = half a second
    smooth:   One-Euro smoothing of the landmarks; min_cutoff (Hz) and beta (1/m) tune it
    fov_deg:  the video camera's assumed vertical field of view, for the root path's depth
    max_side: MediaPipe sees frames downscaled (never up) so their longer side is at most this many
              pixels (0 = full resolution). Its landmark model reads a 256x256 crop around the person,
              so 960 px still oversamples anyone taller than about a third of the frame; landmarks
              are reported in the video's own pixels either way.
    """

    start: int = 0
    end: int | None = None
    stride: int = 1
    person: str = "largest"
    max_gap: int | None = None
    smooth: bool = True
    min_cutoff: float = 1.0
    beta: float = 1.5
    fov_deg: float = 50.0
    max_side: int = 960

    def track_part(self) -> PoseSettings:
        """The settings that change the landmark track (fov only changes the motion)."""
        return dataclasses.replace(self, fov_deg=50.0)


@dataclass(frozen=True)
class SubjectSettings:
    """How the subject stage reads the photo (`hvg bonemap` / `hvg animate`).

    fov_deg:    the photo camera's assumed field of view across the photo's longer side, degrees
    fit_radii:  adapt the ellipsoids' short radii to the person's silhouette (clothes, build)
    body_model: a SMPL (.pkl/.npz) or SMPL-X (.npz) model file for shape-consistent joints and radii
                (None: hvg's built-in skeleton and radii). Its bytes, never its path, enter cache keys.
    """

    fov_deg: float = 50.0
    fit_radii: bool = True
    body_model: str | None = None


PRESETS_ENV = "HVG_PRESETS_DIR"


def presets_root() -> Path:
    """The folder holding hvg's presets (`motions/`, `cameras/`).

    $HVG_PRESETS_DIR if set; else `presets/` of the source checkout the package runs from; else
    `<prefix>/share/hvg/presets`, where a non-editable install puts them (pyproject's data-files).
    """
    env = os.environ.get(PRESETS_ENV)
    if env:
        return Path(env).expanduser()
    checkout = Path(__file__).resolve().parents[2] / "presets"
    if checkout.is_dir():
        return checkout
    return Path(sys.prefix) / "share" / "hvg" / "presets"


# --- settings of whole jobs (`hvg bonemap`, `hvg animate`): what the CLI builds from flags -----------------
# Every value is checked here, where it enters: a number must be finite and in range, a choice one of its enum,
# a combination of flags allowed. A violation is a UsageError (exit 2), raised once, for the CLI and for
# library callers alike.


class Backend(str, Enum):
    AUTO = "auto"  # diffusion when a weights folder is found, else preview
    PREVIEW = "preview"
    DIFFUSION = "diffusion"


class Sampling(str, Enum):
    PROGRESSIVE = "progressive"  # anchor frames first, then the frames between them
    ONEPASS = "onepass"  # overlapping tiles blended at every step
    FULL = "full"  # no tiles (small jobs)


class Dtype(str, Enum):
    AUTO = "auto"  # fp16 on a GPU, fp32 on the CPU
    FP32 = "fp32"
    FP16 = "fp16"
    BF16 = "bf16"


class GuidanceRamp(str, Enum):
    FLAT = "flat"  # every frame at --guidance: HVG's frames are all generated, none is the photo
    SVD = "svd"  # SVD's ramp from 1 at a view's first frame to --guidance at its last


class ExportFormat(str, Enum):
    NERFSTUDIO = "nerfstudio"


_DEVICE = re.compile(r"auto|cpu|mps|cuda(:\d+)?")


def check_device(name: str) -> str:
    """'auto' | 'cpu' | 'cuda' | 'cuda:N' | 'mps', else UsageError."""
    if not _DEVICE.fullmatch(name):
        raise UsageError(f"--device {name!r} is not auto, cpu, cuda, cuda:N or mps", "for example --device cuda:0")
    return name


# Typed reads of one flag value (flags arrive as `object`: from Typer, or from a jobs file's YAML). A value of the
# wrong type raises TypeError/ValueError, which `_flag_errors` reports as a UsageError.
def _as_float(value: object) -> float:
    if isinstance(value, (numbers.Real, str)):  # Real: int, float, Fraction, numpy scalars
        return float(value)
    raise TypeError(f"{value!r} is not a number")


def _as_int(value: object) -> int:
    if isinstance(value, (numbers.Integral, str)):
        return int(value)
    if isinstance(value, numbers.Real) and float(value).is_integer():  # 3.0 is 3; 2.5 is an error
        return int(float(value))
    raise (ValueError if isinstance(value, numbers.Real) else TypeError)(f"{value!r} is not a whole number")


def _opt_float(value: object) -> float | None:
    return None if value is None else _as_float(value)


def _opt_int(value: object) -> int | None:
    return None if value is None else _as_int(value)


def _opt_str(value: object) -> str | None:
    return None if value is None else str(value)


def check_number(flag: str, value: object, low: float, high: float, *, open_low: bool = False) -> None:
    """UsageError unless `value` is None or a finite number in [low, high] ((low, high] with open_low).
    A value that is no number at all (a jobs file's "many") raises TypeError/ValueError."""
    if value is None:
        return
    v = _as_float(value)
    ok = math.isfinite(v) and (low < v if open_low else low <= v) and v <= high
    if not ok:
        bound = f"{'(' if open_low else '['}{low:g}, {high:g}]"
        raise UsageError(f"{flag} {value!r} must be a finite number in {bound}")


@dataclass(frozen=True)
class Background:
    """What is behind the person: the photo with the person removed, nothing (PNG alpha) or a colour."""

    kind: str = "photo"  # "photo" | "transparent" | "colour"
    rgb: tuple[int, int, int] | None = None

    @classmethod
    def parse(cls, text: str) -> Background:
        """'photo' | 'transparent' | '#rrggbb' | 'r,g,b' -> Background, else UsageError."""
        t = text.strip().lower()
        if t in ("photo", "transparent"):
            return cls(t)
        try:
            if t.startswith("#") and len(t) == 7:
                return cls("colour", (int(t[1:3], 16), int(t[3:5], 16), int(t[5:7], 16)))
            rgb = tuple(int(x) for x in t.split(","))
            if len(rgb) == 3 and all(0 <= c <= 255 for c in rgb):
                return cls("colour", (rgb[0], rgb[1], rgb[2]))
        except ValueError:
            pass
        raise UsageError(
            f"--background {text!r} is not photo, transparent, #rrggbb or r,g,b", "for example --background '#202020'"
        )

    @property
    def value(self) -> str | tuple[int, int, int]:
        """'photo' | 'transparent' | (r, g, b): what the renderers take (and what render cache keys hold)."""
        return self.rgb if self.kind == "colour" and self.rgb is not None else self.kind


@dataclass(frozen=True)
class CameraSpec:
    """How the user chose the camera: a preset name or file (--camera), or the --orbit DEG shorthand, plus
    overrides (None = the preset's own value)."""

    camera: str | None = None  # preset name, preset .yaml, or nerfstudio camera_path .json
    orbit: float | None = None  # --orbit DEG: an orbit through DEG degrees starting in front (0 = static)
    views: int | None = None
    elevation: float | None = None
    radius: float | None = None
    fov: float | None = None
    width: int | None = None
    height: int | None = None
    degrees: float | None = None

    DEFAULT_CAMERA = "static"

    def __post_init__(self) -> None:
        if self.orbit is not None and self.camera is not None:
            raise UsageError("--orbit and --camera both choose the camera path", "give only one of them")
        if self.orbit is not None and self.degrees is not None:
            raise UsageError("--orbit already gives the degrees", "drop --degrees")
        check_number("--orbit", self.orbit, -3600, 3600)
        check_number("--degrees", self.degrees, -3600, 3600)
        check_number("--views", self.views, 1, 1000)
        check_number("--elevation", self.elevation, -89.9, 89.9)
        check_number("--radius", self.radius, 0.1, 1000)
        check_number("--fov", self.fov, 1, 170)
        check_number("width", self.width, 16, 8192)
        check_number("height", self.height, 16, 8192)


@dataclass(frozen=True)
class Timing:
    """Which frames of the motion a job uses: [start, end), at most max_frames of them."""

    start: int = 0  # first frame of the motion
    end: int | None = None  # stop before this frame; None = to the end
    max_frames: int | None = None

    def __post_init__(self) -> None:
        check_number("--start", self.start, 0, 10**9)
        check_number("--end", self.end, 1, 10**9)
        check_number("--frames", self.max_frames, 1, 10**9)
        if self.end is not None and self.end <= self.start:
            raise UsageError(f"--end ({self.end}) must be after --start ({self.start})")


@dataclass(frozen=True)
class BonemapSettings:
    camera: CameraSpec = CameraSpec()
    camera_mode: str = "moving"  # "moving": one camera along the path; "views": every view for every frame
    timing: Timing = Timing()
    align: bool = True  # re-centre the subject in every view and frame
    body_model: str | None = None  # a SMPL / SMPL-X model file for the subject's body (None: built-in)
    max_gap: int | None = None  # a video motion: longest run of lost frames filled in (None: half a second)
    channels: tuple[str, ...] = ("semantic", "normal", "depth", "mask")
    grid: bool = False


@dataclass(frozen=True)
class AnimateSettings:
    camera: CameraSpec = CameraSpec()
    camera_mode: str = "moving"
    timing: Timing = Timing()
    align: bool = True
    body_model: str | None = None
    max_gap: int | None = None  # a video motion: longest run of lost frames filled in (None: half a second)
    backend: Backend = Backend.AUTO
    background: Background = Background()
    grid: bool = False  # views×time grid in one video (camera mode "views")
    per_view: bool = False  # one file per view (camera mode "views")
    audio: bool = True
    seed: int = 0
    steps: int = 25
    guidance: float = 3.0
    guidance_ramp: GuidanceRamp = GuidanceRamp.FLAT
    motion_bucket: int = 127  # SVD's motion micro-conditioning
    noise_aug: float = 0.02  # noise added to the photo before VAE encoding (SVD's cond_aug)
    # diffusion sampling (see backends/diffusion/settings.py)
    sampling: Sampling = Sampling.PROGRESSIVE
    tile_views: int = 2
    tile_frames: int = 8
    anchor_stride: int = 4
    device: str = "auto"  # auto | cpu | cuda | cuda:N | mps
    dtype: Dtype = Dtype.AUTO
    offload: bool = False

    def __post_init__(self) -> None:
        if self.grid and self.per_view:
            raise UsageError("give either --grid or --per-view")
        check_device(self.device)
        check_number("--steps", self.steps, 1, 10_000)
        check_number("--guidance", self.guidance, 0, 100)
        check_number("--motion-bucket", self.motion_bucket, 0, 1023)
        check_number("--noise-aug", self.noise_aug, 0, 1)
        check_number("--tile-views", self.tile_views, 1, 1000)
        check_number("--tile-frames", self.tile_frames, 1, 10_000)
        check_number("--anchor-stride", self.anchor_stride, 1, 10_000)


# --- from flags: the one translation of command-line flags (or a jobs file's keys) into settings ---------------
def parse_resolution(text: str | int) -> tuple[int, int]:
    """'512' -> (512, 512); '640x360' -> (640, 360); UsageError otherwise."""
    parts = str(text).lower().replace("×", "x").split("x")
    try:
        nums = [int(p) for p in parts]
    except ValueError:
        raise UsageError(f"--resolution {text!r} is not WxH (for example 512x512)") from None
    if len(nums) == 1:
        nums = nums * 2
    if len(nums) != 2 or min(nums) < 16 or max(nums) > 8192:
        raise UsageError(f"--resolution {text!r}: need WxH between 16 and 8192 pixels")
    return nums[0], nums[1]


_E = TypeVar("_E", bound=Enum)
_S = TypeVar("_S")


def _choice(enum: type[_E], value: object, flag: str) -> _E:
    try:
        return enum(value.value if isinstance(value, Enum) else value)
    except ValueError:
        allowed = ", ".join(str(m.value) for m in enum)
        raise UsageError(f"{flag} {value!r} is not one of {allowed}") from None


def _camera_flags(f: dict[str, object]) -> CameraSpec:
    """The camera flags among a command's flags (None or absent = not given) as a CameraSpec."""
    resolution = f.get("resolution")
    return camera_from_flags(
        orbit=_opt_float(f.get("orbit")),
        camera=_opt_str(f.get("camera")),
        views=_opt_int(f.get("views")),
        elevation=_opt_float(f.get("elevation")),
        radius=_opt_float(f.get("radius")),
        fov=_opt_float(f.get("fov")),
        resolution="512" if resolution is None else str(resolution),
    )


def camera_from_flags(
    orbit: float | None = None,
    camera: str | None = None,
    views: int | None = None,
    elevation: float | None = None,
    radius: float | None = None,
    fov: float | None = None,
    resolution: str | int | None = "512",
    degrees: float | None = None,
) -> CameraSpec:
    """The camera flags of `hvg animate | bonemap | cameras` as a CameraSpec (which checks them); resolution None
    keeps the preset's own size."""
    w, h = parse_resolution(resolution) if resolution is not None else (None, None)
    return CameraSpec(
        camera=camera,
        orbit=orbit,
        views=views,
        elevation=elevation,
        radius=radius,
        fov=fov,
        width=w,
        height=h,
        degrees=degrees,
    )


_CAMERA_FLAGS = ("orbit", "camera", "views", "elevation", "radius", "fov", "resolution")
BONEMAP_FLAGS = _CAMERA_FLAGS + ("start", "end", "frames", "max_gap", "no_align", "body_model", "grid", "channels")
ANIMATE_FLAGS = _CAMERA_FLAGS + (
    "start",
    "end",
    "frames",
    "max_gap",
    "no_align",
    "body_model",
    "grid",
    "per_view",
    "backend",
    "background",
    "no_audio",
    "seed",
    "steps",
    "guidance",
    "guidance_ramp",
    "motion_bucket",
    "noise_aug",
    "sampling",
    "tile_views",
    "tile_frames",
    "anchor_stride",
    "device",
    "dtype",
    "offload",
)
CHANNELS = ("semantic", "normal", "depth", "mask")


def _check_flags(given: dict[str, object], allowed: tuple[str, ...], command: str) -> None:
    unknown = sorted(set(given) - set(allowed))
    if unknown:
        raise UsageError(
            f"`hvg {command}` has no option {', '.join('--' + k.replace('_', '-') for k in unknown)}",
            f"options: {', '.join('--' + k.replace('_', '-') for k in allowed)}",
        )


def _flag_errors(fn: Callable[..., _S]) -> Callable[..., _S]:
    """A flag value of the wrong type (a jobs file's steps: "many") is a UsageError, as on the command line."""
    import functools

    @functools.wraps(fn)
    def wrapper(**flags: object) -> _S:
        try:
            return fn(**flags)
        except (TypeError, ValueError) as e:
            raise UsageError(f"a flag has a value of the wrong type: {e}") from None

    return wrapper


@_flag_errors
def bonemap_from_flags(**flags: object) -> BonemapSettings:
    """`hvg bonemap`'s flags (python names, e.g. no_align=True) -> BonemapSettings; UsageError for a bad one."""
    _check_flags(flags, BONEMAP_FLAGS, "bonemap")
    f = dict(flags)
    channels = f.get("channels") or ",".join(CHANNELS)
    if isinstance(channels, str):
        names = channels.split(",")
    elif isinstance(channels, (list, tuple)):  # a jobs file's YAML list
        names = [str(c) for c in channels]
    else:
        raise TypeError(f"channels {channels!r} is neither a comma-separated string nor a list")
    chosen = tuple(c.strip() for c in names if c.strip())
    unknown = [c for c in chosen if c not in CHANNELS]
    if unknown or not chosen:
        raise UsageError(
            f"--channels: unknown channel(s) {', '.join(unknown) or '(none)'}; choose from {', '.join(CHANNELS)}"
        )
    grid = bool(f.get("grid", False))
    return BonemapSettings(
        camera=_camera_flags(f),
        camera_mode="views" if grid else "moving",
        timing=Timing(
            start=_as_int(f.get("start") or 0), end=_opt_int(f.get("end")), max_frames=_opt_int(f.get("frames"))
        ),
        align=not f.get("no_align", False),
        body_model=str(f["body_model"]) if f.get("body_model") else None,
        max_gap=_opt_int(f.get("max_gap")),
        channels=chosen,
        grid=grid,
    )


@_flag_errors
def animate_from_flags(**flags: object) -> AnimateSettings:
    """`hvg animate`'s flags (python names, e.g. per_view=True) -> AnimateSettings; UsageError for a bad one."""
    _check_flags(flags, ANIMATE_FLAGS, "animate")
    f = {k: v for k, v in flags.items() if v is not None}
    grid, per_view = bool(f.get("grid", False)), bool(f.get("per_view", False))
    d = AnimateSettings()
    return AnimateSettings(
        camera=_camera_flags(f),
        camera_mode="views" if (grid or per_view) else "moving",
        timing=Timing(
            start=_as_int(f.get("start", 0)), end=_opt_int(f.get("end")), max_frames=_opt_int(f.get("frames"))
        ),
        align=not f.get("no_align", False),
        body_model=str(f["body_model"]) if f.get("body_model") else None,
        max_gap=_opt_int(f.get("max_gap")),
        grid=grid,
        per_view=per_view,
        audio=not f.get("no_audio", False),
        backend=_choice(Backend, f.get("backend", d.backend), "--backend"),
        background=Background.parse(str(f.get("background", "photo"))),
        seed=_as_int(f.get("seed", d.seed)),
        steps=_as_int(f.get("steps", d.steps)),
        guidance=_as_float(f.get("guidance", d.guidance)),
        guidance_ramp=_choice(GuidanceRamp, f.get("guidance_ramp", d.guidance_ramp), "--guidance-ramp"),
        motion_bucket=_as_int(f.get("motion_bucket", d.motion_bucket)),
        noise_aug=_as_float(f.get("noise_aug", d.noise_aug)),
        sampling=_choice(Sampling, f.get("sampling", d.sampling), "--sampling"),
        tile_views=_as_int(f.get("tile_views", d.tile_views)),
        tile_frames=_as_int(f.get("tile_frames", d.tile_frames)),
        anchor_stride=_as_int(f.get("anchor_stride", d.anchor_stride)),
        device=check_device(str(f.get("device", d.device))),
        dtype=_choice(Dtype, f.get("dtype", d.dtype), "--dtype"),
        offload=bool(f.get("offload", False)),
    )


POSE_FLAGS = ("start", "end", "stride", "person", "max_gap", "no_smooth", "min_cutoff", "beta", "fov", "max_side")


@_flag_errors
def pose_from_flags(**flags: object) -> PoseSettings:
    """`hvg pose`'s flags (python names, e.g. no_smooth=True) -> PoseSettings; UsageError for a bad one."""
    _check_flags(flags, POSE_FLAGS, "pose")
    f = {k: v for k, v in flags.items() if v is not None}
    d = PoseSettings()
    check_number("--start", f.get("start"), 0, 10**9)
    check_number("--end", f.get("end"), 1, 10**9)
    check_number("--stride", f.get("stride"), 1, 10**6)
    check_number("--max-gap", f.get("max_gap"), 0, 10**9)
    check_number("--min-cutoff", f.get("min_cutoff"), 0, 1e6, open_low=True)
    check_number("--beta", f.get("beta"), 0, 1e6)
    check_number("--fov", f.get("fov"), 5, 150)
    check_number("--max-side", f.get("max_side"), 0, 10**5)
    if f.get("end") is not None and _as_int(f["end"]) <= _as_int(f.get("start", 0)):
        raise UsageError(f"--end ({f['end']}) must be after --start ({f.get('start', 0)})")
    return PoseSettings(
        start=_as_int(f.get("start", d.start)),
        end=_opt_int(f.get("end")),
        stride=_as_int(f.get("stride", d.stride)),
        person=str(f.get("person", d.person)),
        max_gap=_opt_int(f.get("max_gap")),
        smooth=not f.get("no_smooth", False),
        min_cutoff=_as_float(f.get("min_cutoff", d.min_cutoff)),
        beta=_as_float(f.get("beta", d.beta)),
        fov_deg=_as_float(f.get("fov", d.fov_deg)),
        max_side=_as_int(f.get("max_side", d.max_side)),
    )


# --- hvg prepare ------------------------------------------------------------------------------------------------
SYNTHETIC_TARGETS = ("preview", "bonemap")


@dataclass(frozen=True)
class PrepareSettings:
    """What `hvg prepare` makes of its sources (all clips of one dataset share the sizes).

    width, height: training pixels (multiples of the VAE factor × the UNet's); length: frames per window;
    stride: track frames between window starts; frame_step: take every n-th frame; gap: least distance of the
    reference frame from the window; cameras: camera preset of synthetic clips (views mode), views: override
    its number of views; target: "preview" (renders) or "bonemap" (silhouettes in the bone-map colours);
    background: plain RGB 0-255; max_frames: use at most this many frames of each motion (None: all).
    """

    width: int = 64
    height: int = 64
    length: int = 4
    stride: int = 8
    frame_step: int = 1
    gap: int = 8
    cameras: str = "orbit-360"
    views: int | None = 4
    target: str = "preview"
    background: tuple[int, int, int] = (127, 127, 127)
    max_frames: int | None = None
    clips_per_shard: int = 16
    seed: int = 0
    licence: str = ""

    def __post_init__(self) -> None:
        if self.target not in SYNTHETIC_TARGETS:
            raise BadInput(f"unknown synthetic target {self.target!r}", f"use one of {', '.join(SYNTHETIC_TARGETS)}")
        for name in ("width", "height"):
            if not 16 <= getattr(self, name) <= 4096:
                raise BadInput(f"{name} must be 16-4096 px, got {getattr(self, name)}")
        for name in ("length", "stride", "frame_step", "gap", "clips_per_shard"):
            if getattr(self, name) < 1:
                raise BadInput(f"--{name.replace('_', '-')} must be at least 1, got {getattr(self, name)}")
        if self.views is not None and self.views < 1:
            raise BadInput(f"--views must be at least 1, got {self.views}")
        if len(self.background) != 3 or not all(0 <= c <= 255 for c in self.background):
            raise BadInput(f"background must be three values 0-255, got {self.background}")

    def camera_spec(self) -> CameraSpec:
        return CameraSpec(camera=self.cameras, views=self.views, width=self.width, height=self.height)

    def content_key(self) -> str:
        """What changes a clip's pixels (part of every clip id, so a re-run with other settings adds new clips)."""
        d = dataclasses.asdict(self)
        for k in ("stride", "clips_per_shard", "licence", "max_frames"):
            d.pop(k)
        return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:8]
