"""The only module that knows every room: one cached function per stage, and the jobs the CLI runs.

Data flows one way (DESIGN.md): photo ─► subject; motion source ─► pose ─► body; preset ─► cameras;
then bonemap ─► align ─► generate ─► video. Each stage is cached under a content-hash key.
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
import os
import platform
import shutil
import tempfile
import time
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from hvg_cli.core.cache import StageCache, array_hash, file_hash
from hvg_cli.core.errors import BadInput, MissingWeights, OutputError
from hvg_cli.core.jobs import AnimateSettings, BonemapSettings, CameraSpec, RenderSpec
from hvg_cli.core.progress import SILENT, Reporter
from hvg_cli.core.settings import PoseSettings, SubjectSettings
from hvg_cli.core.types import Alignment, Camera, CameraGrid, Motion, PoseTrack, Skeleton, Subject
from hvg_cli.io.outputs import FRAMES_MARKER, check_outputs, is_hvg_frames_folder


# Every cached stage, in data-flow order (`hvg cache clear --stage NAME` accepts these)
STAGE_NAMES = ("pose_track", "motion_video", "subject", "preview_model", "bonemap_video", "sampler", "render")


# --- doctor ---
@dataclass(frozen=True)
class DoctorReport:
    python: str
    versions: dict[str, str | None]
    device: str
    ffmpeg: str | None
    pose_model: str | None
    weights: str | None
    backends: dict[str, str]  # backend -> "ok" or why it cannot run
    cache_dir: str


_PACKAGES = ("torch", "mediapipe", "numpy", "diffusers", "transformers", "smplx", "typer", "imageio-ffmpeg", "safetensors")


def doctor(weights: Path | None = None, cache: StageCache | None = None) -> DoctorReport:
    """What is installed and which backends can run."""
    versions: dict[str, str | None] = {}
    for name in _PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None

    device = "unavailable (torch not installed)"
    if versions["torch"]:
        import torch

        if torch.cuda.is_available():
            device = f"cuda ({torch.cuda.get_device_name(0)})"
        elif getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            device = "mps"
        else:
            device = f"cpu ({torch.get_num_threads()} threads)"

    ffmpeg = None
    try:
        import imageio_ffmpeg

        ffmpeg = imageio_ffmpeg.get_ffmpeg_exe()
    except Exception:
        ffmpeg = shutil.which("ffmpeg")

    pose_model = None
    if versions["mediapipe"]:
        from hvg_cli.pose import mediapipe_model_path

        pose_model = mediapipe_model_path()

    weights_dir = _find_weights(weights)
    backends: dict[str, str] = {}
    preview_missing = [n for n in ("torch", "mediapipe") if not versions[n]] + ([] if ffmpeg else ["ffmpeg"])
    backends["preview"] = "ok" if not preview_missing else "needs " + ", ".join(preview_missing)
    if not versions["diffusers"]:
        backends["diffusion"] = "needs diffusers"
    elif weights_dir is None:
        backends["diffusion"] = "no weights (see weights/README.md)"
    else:
        backends["diffusion"] = "ok"
    return DoctorReport(
        python=platform.python_version(),
        versions=versions,
        device=device,
        ffmpeg=ffmpeg,
        pose_model=pose_model,
        weights=str(weights_dir) if weights_dir else None,
        backends=backends,
        cache_dir=str((cache or StageCache()).root),
    )


def _find_weights(weights: Path | None) -> Path | None:
    """An explicit --weights folder, else `weights/` beside the package if it holds a model."""
    candidates = [weights] if weights else [Path(__file__).resolve().parent.parent / "weights"]
    for c in candidates:
        if c is not None and (Path(c) / "model_index.json").exists():
            return Path(c)
    return None


# --- cameras ---
# Camera paths from presets, files or flags; what `hvg cameras` shows, exports and plots. The cameras room is
# imported inside the functions (it pulls numpy and yaml) so `hvg --help` stays fast.


@dataclass(frozen=True)
class CameraPresetInfo:
    name: str
    generator: str
    views: int
    closed: bool
    description: str
    file: str


@dataclass(frozen=True)
class CameraView:
    """One row of `hvg cameras show`: a view's placement around the point the cameras look at."""

    index: int
    azimuth: float  # degrees, 0 = in front (+z), positive toward the subject's left (+x)
    elevation: float  # degrees
    radius: float  # metres from the look-at point
    position: tuple[float, float, float]  # metres, world
    fov: float  # vertical, degrees
    time: float | None  # keyframe time in [0, 1] when the path has times


@dataclass(frozen=True)
class CameraSummary:
    name: str
    description: str
    num_views: int
    closed: bool
    width: int
    height: int
    look_at: tuple[float, float, float] | None  # the common point the views look at, when there is one
    views: tuple[CameraView, ...]


def camera_presets() -> list[CameraPresetInfo]:
    """Every camera preset (validated) with its generator, number of views and description."""
    from hvg_cli.cameras.presets import build_preset, list_camera_presets

    out = []
    for p in list_camera_presets():
        path = build_preset(p, {})
        out.append(CameraPresetInfo(p.name, p.generator, path.num_views, path.closed, p.description, p.source))
    return out


def camera_path(spec: CameraSpec):
    """The CameraPath a spec names (-> hvg_cli.core.types.CameraPath)."""
    from hvg_cli.cameras.presets import load_camera
    from hvg_cli.cameras.schedule import orbit_flags

    if spec.orbit is not None:
        if spec.camera is not None:
            raise BadInput("--orbit and --camera both choose the camera path", hint="give only one of them")
        if spec.degrees is not None:
            raise BadInput("--orbit already gives the degrees", hint="drop --degrees")
        kw = {k: v for k, v in dict(elevation=spec.elevation, radius=spec.radius, fov=spec.fov, width=spec.width,
                                    height=spec.height).items() if v is not None}
        return orbit_flags(spec.orbit, views=spec.views, **kw)
    return load_camera(spec.camera or CameraSpec.DEFAULT_CAMERA, views=spec.views, elevation=spec.elevation,
                       radius=spec.radius, fov=spec.fov, width=spec.width, height=spec.height, degrees=spec.degrees)


def camera_grid(spec: CameraSpec, num_frames: int, mode: str = "moving"):
    """The per-view, per-frame cameras of a job (-> CameraGrid), from a spec."""
    from hvg_cli.cameras.schedule import camera_grid as _grid

    return _grid(camera_path(spec), num_frames, mode)


def describe_camera_path(spec: CameraSpec) -> CameraSummary:
    """The table of `hvg cameras show`: per view azimuth, elevation, radius, position and fov."""

    from hvg_cli.cameras.generators import DEFAULT_TARGET, spherical_coordinates, vertical_fov
    from hvg_cli.cameras.presets import presets_dir, read_preset
    from hvg_cli.cameras.schedule import common_focus, unwrap_degrees

    path = camera_path(spec)
    c2w = np.linalg.inv(path.world_to_cam)  # [V, 4, 4]
    centres, forward = c2w[:, :3, 3], c2w[:, :3, 2]
    focus = common_focus(centres, forward) if path.num_views > 1 else None
    if focus is None and path.num_views == 1:  # one camera: the point of its axis nearest the default target
        t = float((np.asarray(DEFAULT_TARGET) - centres[0]) @ forward[0])
        focus = centres[0] + max(t, 1e-6) * forward[0] if t > 0 else None
    sph = spherical_coordinates(centres, focus if focus is not None else DEFAULT_TARGET)  # [V, 3]
    sph[:, 0] = unwrap_degrees(sph[:, 0])  # azimuth continuous along the path (0..345 for an orbit)
    rows = tuple(
        CameraView(i, round(float(sph[i, 0]), 6) + 0.0, round(float(sph[i, 1]), 6) + 0.0, float(sph[i, 2]),
                   tuple(float(x) for x in centres[i]), vertical_fov(path.K[i], path.height),
                   None if path.times is None else float(path.times[i]))
        for i in range(path.num_views)
    )
    description = ""
    if spec.orbit is not None:
        description = f"--orbit {spec.orbit:g}: orbit through {spec.orbit:g} degrees starting in front"
    else:
        name = spec.camera or CameraSpec.DEFAULT_CAMERA
        if name.endswith(".json"):
            description = f"nerfstudio camera path {name}"
        else:
            file = Path(name) if name.endswith((".yaml", ".yml")) else presets_dir() / f"{name}.yaml"
            description = read_preset(file).description
    return CameraSummary(path.name, description, path.num_views, path.closed, path.width, path.height,
                         None if focus is None else tuple(round(float(x), 9) + 0.0 for x in focus), rows)


def export_camera_path(spec: CameraSpec, out: Path, format: str = "nerfstudio", fps: float = 24.0,
                       seconds: float | None = None) -> Path:
    """Write the camera path to a file (format: nerfstudio camera_path .json)."""
    from hvg_cli.cameras.nerfstudio import save_nerfstudio

    if format != "nerfstudio":
        raise BadInput(f"unknown camera export format {format!r}", hint="use --format nerfstudio")
    if fps <= 0 or (seconds is not None and seconds <= 0):
        raise BadInput(f"fps and seconds must be > 0, got fps={fps}, seconds={seconds}")
    return save_nerfstudio(camera_path(spec), Path(out), fps=fps, seconds=seconds)


def plot_camera_path(spec: CameraSpec, out_png: Path) -> Path:
    """A PNG of the cameras around the subject: top-down and side views."""
    from hvg_cli.cameras.plot import plot_cameras

    return plot_cameras(camera_path(spec), Path(out_png))


# --- pose ---
# `hvg pose`: video -> landmarks (cached) -> SMPL-24 motion (cached) -> .npz (+ overlay preview).
# Other motion sources (AMASS .npz, .bvh, preset names) become the same Motion via `motion_from_source`.



POSE_TRACK_VERSION = 1  # bump when the landmark track's meaning changes
MOTION_VIDEO_VERSION = 1  # bump when the fitted motion's meaning changes (IK, root path)


@dataclass(frozen=True)
class PoseResult:
    out: Path  # the .npz written
    frames: int
    fps: Fraction
    fit_error_deg: float | None  # None for motion sources that were not fitted (AMASS, BVH, presets)
    cached: bool  # the motion came from the stage cache
    seconds: float  # wall time of the whole job
    source: str = ""  # "video" | "amass" | "bvh" | "preset"
    preview: Path | None = None


def default_max_gap(fps: Fraction) -> int:
    """Half a second of track frames (at least 1)."""
    return max(1, int(round(0.5 * float(fps))))


def _track_range(video: Path, settings: PoseSettings):
    from hvg_cli.io.video import frame_range, probe_video

    info = probe_video(video)
    if settings.start >= info.frame_count:
        raise BadInput(f"--start {settings.start} is past the end of {video} ({info.frame_count} frames)", "give a smaller --start")
    idx = frame_range(info, settings.start, settings.end, settings.stride)
    if len(idx) == 0:
        raise BadInput(f"no frames of {video} in --start {settings.start} --end {settings.end}", "make --end larger than --start")
    return info, idx


def pose_track(video: Path, settings: PoseSettings, cache: StageCache, progress: Reporter = SILENT) -> PoseTrack:
    """MediaPipe landmarks of one person over a video (cached stage `pose_track`).

    Key: the video's bytes + the track settings. Raises BadInput for an unreadable video and NoPerson
    when nobody is found or the person is lost longer than `max_gap`; no cache entry is left then.
    """
    from hvg_cli.io.video import fit_size, read_frames
    from hvg_cli.pose.tracking import parse_person
    from hvg_cli.pose.video_pose import detect_frames, finish_track

    video = Path(video)
    info, idx = _track_range(video, settings)
    person = parse_person(settings.person)
    source_hash = file_hash(video)
    key = cache.key("pose_track", POSE_TRACK_VERSION, source_hash, settings.track_part())
    fps = info.fps / settings.stride
    max_gap = settings.max_gap if settings.max_gap is not None else default_max_gap(fps)
    made: dict[str, PoseTrack] = {}

    def produce(folder: Path) -> None:
        # MediaPipe's working size: the video downscaled to settings.max_side (see PoseSettings)
        w, h = fit_size(info.width, info.height, settings.max_side)
        frames = read_frames(video, idx.start, idx.stop, idx.step, threads=1, size=(w, h))
        try:
            with progress.task("pose", total=len(idx), unit="frames") as task:
                raw = detect_frames(frames, len(idx), person=person, source=str(video), task=task,
                                    to_source=(info.width / w, info.height / h))
        finally:
            close = getattr(frames, "close", None)
            if close:
                close()
        if len(raw.detected) < len(idx):
            raise BadInput(f"{video}: only {len(raw.detected)} of {len(idx)} frames could be decoded", "re-encode the video")
        track = finish_track(
            raw, np.asarray(idx), fps, info.fps, info.width, info.height, source_hash, str(video),
            max_gap, settings.smooth, settings.min_cutoff, settings.beta,
        )
        if raw.people > 1:
            progress.note(f"pose: {raw.people} people on the first frame; following --person {settings.person}")
        _save_track(track, folder / "track.npz")
        made["track"] = track

    with cache.entry(key, produce) as (entry, cached):
        if not cached:
            return made["track"]
        track = _load_track(entry / "track.npz")
    progress.note(f"pose: cached landmarks ({track.image.shape[0]} frames, {key.short})")
    return track


def _save_track(track: PoseTrack, path: Path) -> None:
    np.savez(
        path, image=track.image, visibility=track.visibility, world=track.world, detected=track.detected,
        frame_indices=track.frame_indices, fps_num=track.fps.numerator, fps_den=track.fps.denominator,
        width=track.width, height=track.height, source_hash=np.array(track.source_hash),
    )


def _load_track(path: Path) -> PoseTrack:
    with np.load(path, allow_pickle=False) as d:
        return PoseTrack(
            image=d["image"], visibility=d["visibility"], world=d["world"], detected=d["detected"],
            frame_indices=d["frame_indices"], fps=Fraction(int(d["fps_num"]), int(d["fps_den"])),
            width=int(d["width"]), height=int(d["height"]), source_hash=str(d["source_hash"]),
        )


def motion_from_video(video: Path, settings: PoseSettings, cache: StageCache, progress: Reporter = SILENT) -> Motion:
    """The SMPL-24 motion of the person in a video (cached stage `motion_video`; uses `pose_track`).

    Motion: fps of the track, poses [T, 24, 3], trans [T, 3] pelvis path, joints [T, 24, 3] world
    positions (pelvis-relative fit + trans), fit_error_deg, audio_path = the video, start_time = the
    first frame's time, extras: landmarks [T, 33, 2] px, visibility [T, 33], world [T, 33, 3] m,
    detected [T], frame_indices [T].
    """
    return _motion_from_video(video, settings, cache, progress)[0]


def load_motion_npz(path: str | os.PathLike) -> Motion:
    """An AMASS / SMPL / hvg motion .npz -> Motion in hvg's y-up world (io.amass reads, body.mocap converts).

    Raises BadInput (file named, keys found, layouts accepted) for anything hvg cannot read.
    """
    from hvg_cli.body.mocap import motion_from_amass
    from hvg_cli.io.amass import read_motion_npz

    return motion_from_amass(read_motion_npz(path))


def save_motion_npz(motion: Motion, path: str | os.PathLike) -> Path:
    """Write `motion` as an AMASS-compatible .npz at `path`, atomically. Returns the path."""
    from hvg_cli.body.mocap import amass_arrays
    from hvg_cli.io.amass import write_motion_npz

    return write_motion_npz(amass_arrays(motion), path)


def load_bvh(path: str | os.PathLike) -> Motion:
    """A BVH file (CMU, Mixamo or SMPL names) retargeted onto SMPL-24 (io.bvh parses, body.mocap fits)."""
    from hvg_cli.body.mocap import motion_from_bvh
    from hvg_cli.io.bvh import read_bvh

    return motion_from_bvh(read_bvh(path))


def save_bvh(motion: Motion, path: str | os.PathLike) -> Path:
    """Write `motion` as an SMPL-named BVH in centimetres, atomically. Returns the path."""
    from hvg_cli.body.mocap import bvh_from_motion
    from hvg_cli.io.bvh import write_bvh

    return write_bvh(bvh_from_motion(motion), path)


def _motion_from_video(video: Path, settings: PoseSettings, cache: StageCache, progress: Reporter) -> tuple[Motion, bool]:
    """`motion_from_video` and whether it came from the cache."""
    video = Path(video)
    _track_range(video, settings)  # bad input fails before any cache work
    key = cache.key("motion_video", MOTION_VIDEO_VERSION, file_hash(video), settings)
    hit = cache.lookup(key)
    if hit is not None:
        motion = load_motion_npz(hit / "motion.npz")
        progress.note(f"pose: cached motion ({motion.num_frames} frames, {key.short}), no MediaPipe run")
        return _with_audio(motion, video), True

    def produce(folder: Path) -> None:
        track = pose_track(video, settings, cache, progress)
        save_motion_npz(fit_track(track, video, settings), folder / "motion.npz")

    with cache.entry(key, produce) as (entry, cached):
        # both the fresh and the cached path return what the entry holds: identical outputs
        motion = _with_audio(load_motion_npz(entry / "motion.npz"), video)
    return motion, cached


def _with_audio(motion: Motion, video: Path) -> Motion:

    return dataclasses.replace(motion, audio_path=str(video), name=video.stem)


def fit_track(track: PoseTrack, video: Path, settings: PoseSettings) -> Motion:
    """IK of a landmark track onto the SMPL-24 skeleton, and the root path."""
    from hvg_cli.body.ik import estimate_skeleton, fit_landmarks, root_trajectory

    skeleton = estimate_skeleton(track.world, track.visibility)
    fit = fit_landmarks(track.world, skeleton, track.visibility)
    trans = root_trajectory(track.image, track.world, track.width, track.height, fov_deg=settings.fov_deg)  # [T, 3]
    source_fps = track.fps * settings.stride
    return Motion(
        poses=np.asarray(fit.poses, dtype=np.float64),
        trans=np.asarray(trans, dtype=np.float64),
        fps=track.fps,
        skeleton=skeleton,
        name=Path(video).stem,
        source_hash=track.source_hash,
        joints=np.asarray(fit.joints) + trans[:, None, :],  # [T, 24, 3] world
        fit_error_deg=float(fit.fit_error_deg),
        audio_path=str(video),
        start_time=float(track.frame_indices[0] / source_fps),
        extras={
            "landmarks": track.image, "visibility": track.visibility, "world": track.world,
            "detected": track.detected, "frame_indices": track.frame_indices,
            "bone_error_deg": np.asarray(fit.bone_error_deg),
        },
    )


def motion_from_source(source: str | Path, settings: PoseSettings = PoseSettings(), cache: StageCache | None = None,
                       progress: Reporter = SILENT) -> Motion:
    """Any motion source -> Motion: a video (cached stages), an AMASS/hvg .npz, a .bvh, or a preset name."""
    return _motion_source(source, settings, cache or StageCache(), progress)[0]


def motion_source_kind(source: str | Path) -> str:
    """"amass" (.npz), "bvh", "video" (any other existing file or suffix), else "preset"."""
    p = Path(source)
    suffix = p.suffix.lower()
    if suffix == ".npz":
        return "amass"
    if suffix == ".bvh":
        return "bvh"
    return "video" if (p.exists() or suffix) else "preset"


def _motion_source(source: str | Path, settings: PoseSettings, cache: StageCache, progress: Reporter) -> tuple[Motion, str, bool]:
    p = Path(source)
    kind = motion_source_kind(source)
    if kind == "amass":
        return load_motion_npz(p), kind, False
    if kind == "bvh":
        return load_bvh(p), kind, False
    if kind == "video":
        motion, cached = _motion_from_video(p, settings, cache, progress)
        return motion, kind, cached
    try:
        from hvg_cli.body.presets import list_motion_presets, load_motion_preset
    except ImportError:
        raise BadInput(f"{source}: no such file", "give a video, an AMASS .npz or a .bvh file") from None
    names = [row[0] for row in list_motion_presets()]
    if str(source) not in names:
        raise BadInput(f"{source}: no such file or motion preset", "motion presets: " + ", ".join(names))
    return load_motion_preset(str(source)), kind, False


def run_pose(source: str | Path, out: Path, settings: PoseSettings = PoseSettings(), preview_path: Path | None = None,
             cache: StageCache | None = None, progress: Reporter = SILENT) -> PoseResult:
    """`hvg pose`: a motion source -> an AMASS-compatible .npz at `out` (+ an overlay video for videos).

    Nothing is written to `out` unless the whole motion was made (the .npz is written atomically).
    """
    t0 = time.perf_counter()
    cache = cache or StageCache()
    out = Path(out)
    if out.suffix.lower() != ".npz":
        raise OutputError(f"{out}: the motion file must end in .npz", "e.g. -o dance.motion.npz")
    outs = [(out, "file")]
    if preview_path is not None:
        from hvg_cli.io.video import output_kind

        outs.append((preview_path, _out_kind(output_kind(preview_path))))  # an unusable suffix fails now
    check_outputs(outs, [source])
    p = Path(source)
    if preview_path is not None and motion_source_kind(source) != "video":
        raise BadInput(f"--preview needs a video source, got {source}", "drop --preview, or give the video")
    motion, kind, cached = _motion_source(source, settings, cache, progress)
    save_motion_npz(motion, out)
    if preview_path is not None:
        write_pose_overlay(p, motion, Path(preview_path), progress)
    return PoseResult(
        out=out, frames=motion.num_frames, fps=motion.fps, fit_error_deg=motion.fit_error_deg, cached=cached,
        seconds=time.perf_counter() - t0, source=kind, preview=Path(preview_path) if preview_path else None,
    )


def list_motion_presets() -> list[tuple[str, str, int, Fraction]]:
    """The built-in motions: (name, description, frames, fps)."""
    try:
        from hvg_cli.body.presets import list_motion_presets as _list
    except ImportError:
        return []
    return list(_list())


def write_pose_overlay(video: Path, motion: Motion, out: Path, progress: Reporter = SILENT, max_side: int = 960) -> Path:
    """The video with the fitted skeleton drawn over each frame (audio kept).

    The 24 fitted joints (pelvis-relative) are placed on each frame by a weak-perspective camera
    (scale + offset, least squares) fitted to the 2D joints implied by that frame's image landmarks,
    so what is drawn is the fitted pose's shape: where it departs from the person, the fit is off.
    """
    from hvg_cli.body.ik import joints_from_landmarks
    from hvg_cli.io.video import read_frames, write_video
    from hvg_cli.pose.overlay import draw_skeleton

    lm = np.asarray(motion.extras["landmarks"], dtype=np.float64)  # [T, 33, 2] px
    frame_indices = np.asarray(motion.extras["frame_indices"])
    # the 2D joints: joints_from_landmarks is built from affine combinations of landmarks, so it
    # applies to image points lifted to 3D (x, -y, 0)
    lifted = np.concatenate([lm[..., :1], -lm[..., 1:2], np.zeros_like(lm[..., :1])], axis=-1)  # [T, 33, 3]
    target = joints_from_landmarks(lifted)[..., :2] * np.array([1.0, -1.0])  # [T, 24, 2] px
    rel = np.asarray(motion.joints) - np.asarray(motion.trans)[:, None, :]  # [T, 24, 3] m, pelvis-relative
    src = rel[..., :2] * np.array([1.0, -1.0])  # orthographic view, image y down
    sc = src - src.mean(axis=1, keepdims=True)  # [T, 24, 2]
    tc = target - target.mean(axis=1, keepdims=True)
    scale = (sc * tc).sum(axis=(1, 2)) / np.maximum((sc * sc).sum(axis=(1, 2)), 1e-12)  # [T]
    pts2d = scale[:, None, None] * sc + target.mean(axis=1, keepdims=True)  # [T, 24, 2] px
    step = int(frame_indices[1] - frame_indices[0]) if len(frame_indices) > 1 else 1
    T = len(frame_indices)

    def frames():
        with progress.task("preview", total=T, unit="frames") as task:
            for t, frame in enumerate(read_frames(video, int(frame_indices[0]), int(frame_indices[-1]) + 1, step)):
                yield draw_skeleton(frame, pts2d[t], max_side=max_side)
                task.advance(1)

    return write_video(out, frames(), motion.fps, audio_from=video, audio_start=motion.start_time,
                       audio_duration=T / float(motion.fps))


# --- subject ---
# photo -> MediaPipe (landmarks, world landmarks, mask) -> skeleton, photo pose, photo camera, radii = Subject,
# cached by the photo's bytes (+ the body model file's bytes) and SubjectSettings. `align_job` is the
# view-temporal alignment of a job's cameras (pelvis to the centre, one scale per view).

SUBJECT_VERSION = 1  # bump when the subject's meaning changes (fit, radii, storage)
_SUBJECT_ARRAYS = ("image", "mask", "landmarks", "visibility", "photo_pose", "photo_trans", "radii")


def _save_subject(subject: Subject, folder: Path, report: dict) -> None:
    import json

    arrays = {k: getattr(subject, k) for k in _SUBJECT_ARRAYS}
    arrays.update(rest_joints=subject.skeleton.rest_joints, K=subject.camera.K, world_to_cam=subject.camera.world_to_cam)
    np.savez(folder / "subject.npz", **arrays)
    meta = {"width": subject.camera.width, "height": subject.camera.height, "source_hash": subject.source_hash,
            "legs_guessed": subject.legs_guessed, "parents": list(subject.skeleton.parents), "report": report}
    (folder / "subject.json").write_text(json.dumps(meta, indent=1))


def _load_subject(folder: Path) -> Subject:
    import json


    meta = json.loads((folder / "subject.json").read_text())
    with np.load(folder / "subject.npz", allow_pickle=False) as z:
        a = {k: z[k] for k in z.files}
    camera = Camera(K=a["K"], world_to_cam=a["world_to_cam"], width=int(meta["width"]), height=int(meta["height"]))
    return Subject(
        image=a["image"], mask=a["mask"], landmarks=a["landmarks"], visibility=a["visibility"],
        skeleton=Skeleton(rest_joints=a["rest_joints"], parents=tuple(meta["parents"])),
        photo_pose=a["photo_pose"], photo_trans=a["photo_trans"], camera=camera, radii=a["radii"],
        source_hash=meta["source_hash"], legs_guessed=bool(meta["legs_guessed"]),
    )


def subject_report(photo: Path, settings: SubjectSettings, cache: StageCache) -> dict | None:
    """The fit figures stored with a cached subject (reprojection error, tilt, ...), or None if not cached."""
    import json

    hit = cache.lookup(_subject_key(Path(photo), settings))
    return json.loads((hit / "subject.json").read_text())["report"] if hit else None


def _subject_key(photo: Path, settings: SubjectSettings):


    model_hash = None
    if settings.body_model:
        model = Path(settings.body_model)
        if not model.is_file():
            raise BadInput(f"body model file not found: {model}", "pass the path of SMPL_NEUTRAL.pkl or SMPLX_NEUTRAL.npz")
        model_hash = file_hash(model)
    return cache_key_subject(file_hash(photo), model_hash, dataclasses.replace(settings, body_model=None))


def cache_key_subject(photo_hash: str, model_hash: str | None, settings: SubjectSettings):
    return StageCache.key("subject", SUBJECT_VERSION, photo_hash, model_hash, settings)


def compute_subject(image: np.ndarray, source: str, source_hash: str, settings: SubjectSettings,
                    progress: Reporter = SILENT) -> tuple[Subject, dict]:
    """The subject of a photo (not cached): detection, fit, radii. Returns (Subject, report)."""
    from hvg_cli.body.subject import fit_photo
    from hvg_cli.bonemap.parts import default_radii
    from hvg_cli.bonemap.radii import fit_radii
    from hvg_cli.pose.photo import detect_photo

    H, W = image.shape[:2]
    with progress.task("subject", total=3, unit="steps") as task:
        # 1. MediaPipe: landmarks [33, 2] px, world [33, 3] m (hvg axes), mask [H, W]
        det = detect_photo(image, source)
        if det.other_people:
            progress.note(f"{source}: more than one person; hvg animates the one MediaPipe picked (crop the photo to choose)")
        task.advance()
        # 2. Skeleton, photo pose, camera (with a body model: its proportions, scaled to the photo's size)
        fit = fit_photo(det, W, H, fov_deg=settings.fov_deg)
        base = None
        if settings.body_model:
            from hvg_cli.body.smpl_model import fit_body_model
            from hvg_cli.bonemap.radii import radii_from_mesh

            model, _ = fit_body_model(settings.body_model, fit.skeleton)  # betas for the photo's proportions
            fit = fit_photo(det, W, H, skeleton=model.skeleton, fov_deg=settings.fov_deg)
            base = radii_from_mesh(model.vertices, model.weights, model.joints, default_radii(model.skeleton))
        if base is None:
            base = default_radii(fit.skeleton)
        task.advance()
        # 3. Radii [P, 2] from the silhouette
        radii = fit_radii(fit.skeleton, fit.photo_pose, fit.photo_trans, fit.camera, det.mask, base) if settings.fit_radii else base
        task.advance()
    rel = fit.reprojection_error_px / max(fit.body_height_px, 1.0)
    if rel > 0.03:
        progress.note(f"{source}: the body fits the photo loosely ({fit.reprojection_error_px:.0f} px mean joint error, "
                      f"{rel:.1%} of the person's height)")
    subject = Subject(image=image, mask=det.mask, landmarks=det.landmarks, visibility=det.visibility,
                       skeleton=fit.skeleton, photo_pose=fit.photo_pose, photo_trans=fit.photo_trans,
                       camera=fit.camera, radii=radii, source_hash=source_hash, legs_guessed=fit.legs_guessed)
    report = {"reprojection_error_px": fit.reprojection_error_px, "landmark_error_px": fit.landmark_error_px,
              "body_height_px": fit.body_height_px, "tilt_deg": fit.tilt_deg, "ik_error_deg": fit.ik_error_deg,
              "legs_guessed": fit.legs_guessed, "other_people": det.other_people, "body_model": bool(settings.body_model)}
    return subject, report


def subject_stage(photo: Path, settings: SubjectSettings, cache: StageCache, progress: Reporter = SILENT) -> Subject:
    """The person in the photo, cached by the photo's bytes (+ the body model's) and the settings."""
    from hvg_cli.io.image import read_image

    photo = Path(photo)
    image = read_image(photo)  # raises BadInput naming the file
    key = _subject_key(photo, settings)

    def produce(folder: Path) -> None:
        subject, report = compute_subject(image, str(photo), file_hash(photo), settings, progress)
        _save_subject(subject, folder, report)

    with cache.entry(key, produce) as (folder, _):
        return _load_subject(folder)


def align_job(subject: Subject, poses: np.ndarray, trans: np.ndarray, skeleton, grid: CameraGrid,
              fill: float = 0.75, smooth: str | float = "median") -> tuple[Alignment, CameraGrid]:
    """View-temporal alignment of a job: the pelvis at the image centre in every view and frame.

    poses [T, 24, 3], trans [T, 3] on `skeleton`; grid [V, T]. One scale per view (the median box fills
    `fill` of the height), lowered where needed so the body stays inside the frame in every frame.
    Returns (Alignment [V, T], the grid with aligned intrinsics S @ K, which render the aligned images
    exactly). `photo_alignment` (above) aligns
    the subject's photo from its own camera the same way, so the reference and the bone maps line up.
    """

    from hvg_cli.align import aligned_intrinsics, compute_alignment, project_points, subject_box, subject_extent
    from hvg_cli.body.kinematics import pose_joints

    joints = pose_joints(poses, skeleton.rest_joints, skeleton.parents, trans)  # [T, 24, 3]
    V, T = grid.shape
    px = project_points(np.broadcast_to(joints, (V,) + joints.shape), grid.K, grid.world_to_cam)  # [V, T, 24, 2]
    alignment = compute_alignment(px[:, :, 0], subject_box(px), grid.width, grid.height, fill=fill, smooth=smooth,
                                  extent_px=subject_extent(px))  # [V, T]: never leaves the frame
    return alignment, dataclasses.replace(grid, K=aligned_intrinsics(grid.K, alignment))


# --- diffusion ---
# Weights folders (check / init) and the dry-run plan of the diffusion backend. The backend itself
# is called from `_generate_diffusion` (jobs section) through `backends.diffusion.generate`.
def weights_check(path: Path):
    """`hvg weights check PATH`: files, configs, shapes, safetensors only -> WeightsReport."""
    from hvg_cli.backends.diffusion.weights import check_weights

    return check_weights(path)


def weights_init(out: Path, tiny: bool = False, base: Path | None = None, link: bool = True, seed: int = 0):
    """`hvg weights init --tiny | --base SVD_FOLDER --out DIR` -> WeightsReport of the new folder."""
    from hvg_cli.backends.diffusion.weights import init_from_base, init_tiny

    if tiny == (base is not None):
        raise BadInput("give exactly one of --tiny or --base SVD_FOLDER", "e.g. hvg weights init --tiny --out tiny-weights")
    return init_tiny(out, seed=seed) if tiny else init_from_base(base, out, link=link)


def diffusion_dry_run(views: int, frames: int, width: int, height: int, settings, closed: bool = False,
                      weights: Path | None = None) -> dict:
    """The diffusion backend's tile plan, UNet evaluation counts and per-tile memory estimate (no weights loaded)."""
    from hvg_cli.backends.diffusion import dry_run

    return dry_run(views, frames, width, height, settings, closed=closed, weights_dir=weights)


# --- jobs: bonemap and animate (photo + motion + cameras -> pictures) ---
# Both jobs share `prepare_job`: 1. motion from its source, trimmed, 2. subject from the photo,
# 3. retargeted onto the subject, 4. cameras per view and frame, 5. view-temporal alignment.
# Their outputs are cached as finished files (stage `bonemap_video`, `render`), so an unchanged re-run
# copies them, and a run that changes only the camera re-uses the subject and the motion.

BONEMAP_VIDEO_VERSION = 1
RENDER_VERSION = 2


@dataclass(frozen=True)
class Job:
    """Everything a renderer needs, with the motion already on the subject's body."""

    subject: Subject
    motion: Motion  # retargeted onto subject.skeleton and placed where the subject stands
    grid: CameraGrid  # final cameras [V, T] (aligned intrinsics unless --no-align)
    alignment: Alignment | None  # None with --no-align
    key_parts: tuple  # what identifies the job's pictures, for cache keys


def trim_motion(motion: Motion, render: RenderSpec) -> Motion:
    """Frames [render.start, render.end) of a motion, at most render.max_frames of them."""

    fps = float(motion.fps)
    T = motion.num_frames
    i0 = render.start
    i1 = T if render.end is None else min(T, render.end)
    if render.max_frames is not None:
        i1 = min(i1, i0 + render.max_frames)
    if i0 >= T or i1 <= i0:
        raise BadInput(f"--start {render.start} is past the end of the motion {motion.name!r} ({T} frames)",
                        "give a smaller --start")
    if (i0, i1) == (0, T):
        return motion
    cut = {k: v[i0:i1] for k, v in motion.extras.items() if isinstance(v, np.ndarray) and v.shape[:1] == (T,)}
    return dataclasses.replace(
        motion, poses=motion.poses[i0:i1], trans=motion.trans[i0:i1],
        joints=None if motion.joints is None else motion.joints[i0:i1],
        start_time=motion.start_time + i0 / fps, extras={**motion.extras, **cut},
    )


def place_motion(motion: Motion, subject: Subject) -> Motion:
    """The motion on the subject's body: proportions from the photo, rotations from the motion, and the
    first frame's pelvis above the spot where the subject stands in the photo (floor y = 0 kept)."""
    from hvg_cli.body.retarget import retarget

    moved = retarget(motion, subject.skeleton)  # joints [T, 24, 3] already by FK on the subject's skeleton
    shift = np.array([subject.photo_trans[0] - moved.trans[0, 0], 0.0, subject.photo_trans[2] - moved.trans[0, 2]])
    # a pure translation: the joints move with the root, no second FK needed
    return dataclasses.replace(moved, trans=moved.trans + shift, joints=moved.joints + shift)


def prepare_job(photo: Path, motion_source: str, camera: CameraSpec, mode: str, render: RenderSpec,
                cache: StageCache, progress: Reporter = SILENT, stages: dict | None = None) -> Job:
    """Steps 1-5 shared by `bonemap_job` and `animate`; wall time per step goes into `stages`."""

    stages = {} if stages is None else stages
    # 1. The motion from its source (a video's pose and fit are cached), trimmed to --start/--end/--frames
    t = time.perf_counter()
    motion = trim_motion(motion_from_source(motion_source, PoseSettings(), cache, progress), render)
    stages["motion"] = time.perf_counter() - t
    # 2. The subject: appearance, proportions, photo pose and camera (cached by the photo's bytes)
    t = time.perf_counter()
    subject = subject_stage(Path(photo), SubjectSettings(body_model=render.body_model), cache, progress)
    stages["subject"] = time.perf_counter() - t
    if subject.legs_guessed:
        progress.note(f"{photo}: the legs are not visible; hvg guessed them (a full-body photo works best)")
    # 3. On the subject's body
    t = time.perf_counter()
    motion = place_motion(motion, subject)
    T = motion.num_frames
    # 4. Cameras: K [V, T, 3, 3], world_to_cam [V, T, 4, 4]
    grid = camera_grid(camera, T, mode)
    # 5. View-temporal alignment: the subject's pelvis at the centre of every view and frame, steady scale
    alignment = None
    if render.align:
        alignment, grid = align_job(subject, motion.poses, motion.trans, motion.skeleton, grid)
    stages["cameras"] = time.perf_counter() - t
    key_parts = (subject.source_hash, array_hash(motion.poses, motion.trans, motion.skeleton.rest_joints),
                 array_hash(grid.K, grid.world_to_cam), grid.width, grid.height, grid.mode, str(motion.fps))
    return Job(subject=subject, motion=motion, grid=grid, alignment=alignment, key_parts=key_parts)


@dataclass(frozen=True)
class BonemapResult:
    out: Path
    export: Path | None
    views: int
    frames: int
    fps: Fraction
    cached: bool
    seconds: float

    def as_dict(self) -> dict:
        return {"out": str(self.out), "export": str(self.export) if self.export else None, "views": self.views,
                "frames": self.frames, "fps": float(self.fps), "fps_exact": f"{self.fps.numerator}/{self.fps.denominator}",
                "cached": self.cached, "seconds": round(self.seconds, 3)}


def bonemap_job(photo: Path, motion_source: str, settings: BonemapSettings, out: Path, export: Path | None = None,
                cache: StageCache | None = None, progress: Reporter = SILENT) -> BonemapResult:
    """`hvg bonemap`: render the bone maps of a job as a video (channels side by side, views in a grid)."""
    from hvg_cli.bonemap.render import grid_images, render_bonemaps, to_images
    from hvg_cli.io.video import output_kind, write_video

    t0 = time.perf_counter()
    cache = cache or StageCache()
    kind = output_kind(out)  # a bad suffix fails before any work
    outs = [(out, _out_kind(kind))] + ([(export, "file")] if export is not None else [])
    check_outputs(outs, _job_inputs(photo, motion_source, settings.camera, settings.render))
    job = prepare_job(photo, motion_source, settings.camera, settings.mode, settings.render, cache, progress)
    V, T = job.grid.shape
    key = cache.key("bonemap_video", BONEMAP_VIDEO_VERSION, *job.key_parts, job.subject.radii, settings.channels,
                    settings.grid, Path(out).suffix.lower(), export is not None)

    def produce(folder: Path) -> None:
        m = job.motion
        maps = render_bonemaps(m.poses, m.trans, m.skeleton, job.subject.radii, job.grid, progress)
        images = to_images(maps, settings.channels)  # [V, T, H, W * C, 3]
        frames = grid_images(images) if V > 1 else images[0]  # [T, H', W', 3]
        write_video(folder / ("bones" + Path(out).suffix), iter(frames), m.fps)
        if export is not None:
            np.savez(folder / "maps.npz", semantic=maps.semantic, normal=maps.normal, depth=maps.depth,
                      mask=maps.mask, label=maps.label, K=job.grid.K, world_to_cam=job.grid.world_to_cam,
                      fps=np.array([m.fps.numerator, m.fps.denominator]))

    with cache.entry(key, produce) as (entry, cached):
        if cached:
            progress.note(f"bonemap: cached ({key.short})")
        _copy_out(entry / ("bones" + Path(out).suffix), Path(out))
        if export is not None:
            _copy_out(entry / "maps.npz", Path(export))
    return BonemapResult(out=Path(out), export=export, views=V, frames=T, fps=job.motion.fps, cached=cached,
                         seconds=time.perf_counter() - t0)


def _out_kind(video_kind: str) -> str:
    """io.video's output kind ("video" | "gif" | "frames") -> check_outputs' ("file" | "frames")."""
    return "frames" if video_kind == "frames" else "file"


def _job_inputs(photo: Path, motion_source: str, camera: CameraSpec, render: RenderSpec,
                weights_dir: Path | None = None) -> list:
    """Every file or folder a bonemap/animate job reads (preset names are not paths and drop out)."""
    return [photo, motion_source, camera.camera, render.body_model, weights_dir]


def _copy_out(src: Path, dst: Path) -> None:
    """Copy a finished file or PNG folder to the user's path atomically (a failure keeps the old output)."""


    dst = Path(dst)
    try:
        dst.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{dst.name}.tmp-", dir=dst.parent))
    except OSError as e:
        raise OutputError(f"cannot write {dst}: {e.strerror}", "choose another output path") from None
    try:
        staged = tmp / dst.name
        if src.is_dir():
            shutil.copytree(src, staged)
            (staged / FRAMES_MARKER).touch()
        else:
            shutil.copy2(src, staged)
        if dst.is_dir() and not dst.is_symlink():
            if any(dst.iterdir()) and not is_hvg_frames_folder(dst):  # never replace a folder hvg did not write
                raise OutputError(f"{dst} is a folder that is not empty and was not written by hvg",
                                  "give a new or empty folder")
            old = tmp / "old"
            os.rename(dst, old)
        os.replace(staged, dst)
    except OSError as e:
        raise OutputError(f"cannot write {dst}: {e.strerror}", "choose another output path") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


@dataclass(frozen=True)
class AnimateResult:
    outputs: tuple[Path, ...]
    views: int
    frames: int
    fps: Fraction
    backend: str
    cached: bool  # the pictures came from the stage cache
    seconds: float
    stage_seconds: dict  # wall time per stage of this run

    def as_dict(self) -> dict:
        return {"outputs": [str(p) for p in self.outputs], "views": self.views, "frames": self.frames,
                "fps": float(self.fps), "fps_exact": f"{self.fps.numerator}/{self.fps.denominator}",
                "backend": self.backend, "cached": self.cached, "seconds": round(self.seconds, 3),
                "stage_seconds": {k: round(v, 3) for k, v in self.stage_seconds.items()}}


def choose_backend(requested: str, weights: Path | None, progress: Reporter = SILENT) -> tuple[str, Path | None]:
    """`auto` -> diffusion when a weights folder is found, else preview (said on stderr)."""

    found = _find_weights(weights)
    if requested == "preview":
        return "preview", None
    if requested == "diffusion":
        if found is None:
            where = weights or Path(__file__).resolve().parent.parent / "weights"
            raise MissingWeights(f"no diffusion weights in {where}",
                                 "give --weights DIR, build a folder with `hvg weights init`, or use --backend preview")
        return "diffusion", found
    if found is None:
        progress.note("backend: preview (no diffusion weights found; see weights/README.md)")
        return "preview", None
    progress.note(f"backend: diffusion (weights {found})")
    return "diffusion", found


def parse_background(text: str) -> str | tuple[int, int, int]:
    """'photo' | 'transparent' | '#rrggbb' | 'r,g,b' -> 'photo' | 'transparent' | (r, g, b)."""
    t = text.strip().lower()
    if t in ("photo", "transparent"):
        return t
    try:
        if t.startswith("#") and len(t) == 7:
            return tuple(int(t[i:i + 2], 16) for i in (1, 3, 5))  # type: ignore[return-value]
        rgb = tuple(int(x) for x in t.split(","))
        if len(rgb) == 3 and all(0 <= c <= 255 for c in rgb):
            return rgb  # type: ignore[return-value]
    except ValueError:
        pass
    raise BadInput(f"--background {text!r} is not photo, transparent, #rrggbb or r,g,b", "for example --background '#202020'")


def output_paths(out: Path, views: int, per_view: bool) -> list[Path]:
    """Where each output goes: OUT, or OUT_view00.ext, OUT_view01.ext ... with --per-view."""
    out = Path(out)
    if not per_view:
        return [out]
    return [out.with_name(f"{out.stem}_view{v:02d}{out.suffix}") for v in range(views)]


def animate(photo: Path, motion_source: str, settings: AnimateSettings, out: Path, weights: Path | None = None,
            cache: StageCache | None = None, progress: Reporter = SILENT) -> AnimateResult:
    """`hvg animate`: the person in the photo performs the motion while the camera follows the path."""
    from hvg_cli.bonemap.render import grid_images
    from hvg_cli.io.video import output_kind, write_video

    t0 = time.perf_counter()
    cache = cache or StageCache()
    stages: dict[str, float] = {}
    # 0. Check what can be checked before any work: output kind, background, backend and weights
    kind = output_kind(out)
    background = parse_background(settings.background)
    if background == "transparent" and kind != "frames":
        raise BadInput(f"{out}: transparent output needs PNG frames", "give -o a folder name without a suffix, e.g. -o frames/")
    backend, weights_dir = choose_backend(settings.backend, weights, progress)
    views = camera_path(settings.camera).num_views if settings.per_view else 1
    check_outputs([(p, _out_kind(kind)) for p in output_paths(Path(out), views, settings.per_view)],
                  _job_inputs(photo, motion_source, settings.camera, settings.render, weights_dir))
    # 1-5. Subject, motion, retargeting, cameras, alignment
    job = prepare_job(photo, motion_source, settings.camera, settings.mode, settings.render, cache, progress, stages)
    V, T = job.grid.shape
    motion = job.motion
    suffix = Path(out).suffix.lower()
    identity = (backend, _weights_key(weights_dir), background, settings.grid, settings.per_view, suffix,
                settings.audio, settings.seed, settings.steps, settings.guidance)
    key = cache.key("render", RENDER_VERSION, *job.key_parts, job.subject.radii, *identity)
    names = [f"out{v:02d}{suffix}" for v in range(V if settings.per_view else 1)]

    def produce(folder: Path) -> None:
        # 6. Generate every view and frame: [V, T, H, W, 3|4] uint8
        t = time.perf_counter()
        if backend == "preview":
            from hvg_cli.backends.preview.render import render_preview

            model = preview_model_stage(job.subject, cache, progress)
            frames = render_preview(job.subject, motion.poses, motion.trans, job.grid, background, progress, model=model)
            if background != "transparent":
                frames = frames[..., :3]
        else:
            frames = _generate_diffusion(job, weights_dir, settings, cache, progress, stages)
        stages["generate"] = time.perf_counter() - t
        # 7. Write: one video, one per view, or the views as a grid
        t = time.perf_counter()
        audio = motion.audio_path if settings.audio else None
        streams = [frames[v] for v in range(V)] if settings.per_view else [grid_images(frames) if V > 1 else frames[0]]
        for name, stream in zip(names, streams):
            write_video(folder / name, iter(stream), motion.fps, audio_from=audio, audio_start=motion.start_time,
                        audio_duration=T / float(motion.fps))
        stages["write"] = time.perf_counter() - t

    with cache.entry(key, produce) as (entry, cached):
        if cached:
            progress.note(f"render: cached ({key.short}), copying the finished video")
        t = time.perf_counter()
        outputs = output_paths(Path(out), V, settings.per_view)
        for name, dst in zip(names, outputs):
            _copy_out(entry / name, dst)
    stages["copy"] = time.perf_counter() - t
    return AnimateResult(outputs=tuple(outputs), views=V, frames=T, fps=motion.fps, backend=backend, cached=cached,
                         seconds=time.perf_counter() - t0, stage_seconds=stages)


PREVIEW_MODEL_VERSION = 2  # 2: the back sheet shows hair, not a second face


def preview_model_stage(subject: Subject, cache: StageCache, progress: Reporter = SILENT):
    """The preview backend's model of the subject (photo mesh, skinning, texture, background), cached:
    a job that changes only the motion or the camera skips its 5-10 s build."""
    from hvg_cli.backends.preview.render import build_preview_model, load_preview_model, save_preview_model

    sk = subject.skeleton
    key = cache.key("preview_model", PREVIEW_MODEL_VERSION, subject.source_hash,
                    array_hash(subject.mask, sk.rest_joints, subject.photo_pose, subject.photo_trans, subject.radii,
                               subject.camera.K, subject.camera.world_to_cam, subject.landmarks))
    def produce(folder: Path) -> None:
        save_preview_model(build_preview_model(subject), folder / "model.npz")

    with cache.entry(key, produce) as (entry, cached):
        if cached:
            progress.note(f"preview: cached photo mesh ({key.short})")
        # both paths read the entry, so a cached run renders exactly what a fresh one does
        return load_preview_model(entry / "model.npz")


def _weights_key(weights_dir: Path | None) -> str | None:
    if weights_dir is None:
        return None
    from hvg_cli.backends.diffusion import weights_identity

    return weights_identity(weights_dir)


def photo_alignment(subject: Subject, width: int, height: int) -> Alignment:
    """The alignment of the photo from its own camera, so the reference and the bone maps line up."""

    cam = CameraGrid(K=subject.camera.K[None, None], world_to_cam=subject.camera.world_to_cam[None, None],
                     width=width, height=height, mode="views")  # [1, 1]: the photo's camera
    alignment, _ = align_job(subject, subject.photo_pose[None], subject.photo_trans[None], subject.skeleton, cam)
    return alignment


def diffusion_settings(settings: AnimateSettings):
    """The diffusion backend's settings from `hvg animate`'s flags."""
    from hvg_cli.backends.diffusion import DiffusionSettings

    overlap_views = min(1, settings.tile_views - 1)
    overlap_frames = min(3, settings.tile_frames - 1)
    return DiffusionSettings(steps=settings.steps, guidance_max=settings.guidance, seed=settings.seed,
                             mode=settings.sampling, tile_views=settings.tile_views, tile_frames=settings.tile_frames,
                             overlap_views=overlap_views, overlap_frames=overlap_frames,
                             anchor_stride=settings.anchor_stride, device=settings.device, dtype=settings.dtype,
                             offload=settings.offload)


def animate_plan(motion_source: str, settings: AnimateSettings, weights: Path | None = None,
                 cache: StageCache | None = None, progress: Reporter = SILENT) -> dict:
    """`hvg animate --dry-run`: the diffusion tile plan of a job (views, frames, tiles, UNet evaluations,
    memory per tile) without loading weights or reading the photo."""
    cache = cache or StageCache()
    motion = trim_motion(motion_from_source(motion_source, PoseSettings(), cache, progress), settings.render)
    grid = camera_grid(settings.camera, motion.num_frames, settings.mode)
    V, T = grid.shape
    plan = diffusion_dry_run(V, T, grid.width, grid.height, diffusion_settings(settings), closed=grid.closed,
                             weights=_find_weights(weights))
    return {"views": V, "frames": T, "width": grid.width, "height": grid.height, "fps": float(motion.fps), **plan}


def _generate_diffusion(job: Job, weights_dir: Path, settings: AnimateSettings, cache: StageCache,
                        progress: Reporter, stages: dict) -> np.ndarray:
    """The diffusion backend: aligned photo + aligned bone maps -> frames [V, T, H, W, 3]."""
    from hvg_cli.align.similarity import warp_image
    from hvg_cli.backends.diffusion import generate
    from hvg_cli.bonemap.render import render_bonemaps

    grid, m = job.grid, job.motion
    t = time.perf_counter()
    maps = render_bonemaps(m.poses, m.trans, m.skeleton, job.subject.radii, grid, progress)  # [V, T, H, W, ...]
    stages["bonemaps"] = time.perf_counter() - t
    # the photo's own alignment (as the first frame's): pelvis at the centre at the job's scale
    a = photo_alignment(job.subject, grid.width, grid.height)
    photo = warp_image(job.subject.image, float(a.scale[0, 0]), a.offset[0, 0], grid.width, grid.height)  # [H, W, 3]
    photo = np.clip(photo, 0, 255).astype(np.uint8)
    ds = diffusion_settings(settings)
    key = cache.key("sampler", 1, *job.key_parts, job.subject.radii, _weights_key(weights_dir), ds.sampling_key())
    state = cache.scratch(key) if cache.enabled else None  # the sampler's resumable state, per step
    frames = generate(weights_dir, photo, maps, grid, ds, cache_dir=state, progress=progress)  # [V, T, H, W, 3]
    if state is not None:  # finished: the render stage's entry holds the result from now on
        shutil.rmtree(state, ignore_errors=True)
    return frames
