"""`hvg prepare` and `hvg train`: training data from the same cached stages `animate` uses, and the training run.

prepare_job: photos × motions × a camera preset -> synthetic multi-view clips rendered with the preview backend
  (stages.subject, stages.preview_model, the motion placed on the subject as animate places it, cameras from the
  preset in "views" mode, aligned by jobs.align_job exactly as animate aligns; bone maps rendered for the aligned
  cameras). Each (photo, motion) is rendered once; its windows (train.windows) become clips. The reference
  image of a clip is the front view (view 0) of a frame OUTSIDE the window (train.windows picks the nearest
  frame at least `gap` frames away): the model has to move the person into the bone maps' pose, it cannot
  copy a target frame. Targets are the preview renders (`target="preview"`) or the bone maps' semantic colours
  as a silhouette (`target="bonemap"`), on a plain background.
  Monocular videos (monocular_clipset): the cached pose stages (pose_track, motion_video), the video camera solved
  with train.camera_solve so the fitted skeleton reprojects on MediaPipe's 2D landmarks (clips above
  max_error_px refused), animate's alignment into the training frame, bone maps for that camera, the frames
  warped by the same alignment; the reference is a frame of the video outside the window (train.windows).
  Multi-view captures (multiview_capture, multiview_clipset): SEQUENCE/transforms.json (nerfstudio, read by
  cameras.capture) and one video per camera; the motion fitted with the cached pose stages on each camera's
  video, the body placed in the calibrated capture by train.placement on every camera's landmarks (the camera
  whose motion reprojects best is kept), cameras re-expressed in the motion's world, animate's alignment per
  view, bone maps for every camera; captures above max_error_px in any camera are skipped with one line.
train_job: TrainSettings -> train.loop.train with a validation callback that renders a fixed photo + motion +
  4-view orbit with the current weights through the diffusion backend's `generate` into OUT/validation/.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from hvg_cli.core.cache import StageCache
from hvg_cli.core.errors import BadInput, HvgError
from hvg_cli.core.progress import SILENT, Reporter
from hvg_cli.core.settings import CameraSpec, SubjectSettings
from hvg_cli.core.types import Alignment, BoneMaps, CameraGrid, CameraPath, Motion, Subject

if TYPE_CHECKING:
    from collections.abc import Callable

    from hvg_cli.train.loop import TrainResult

SYNTHETIC_TARGETS = ("preview", "bonemap")
PHOTO_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp")


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


@dataclass(frozen=True)
class PrepareResult:
    out: str
    written: int
    existing: int
    skipped: tuple[tuple[str, str], ...] = field(default_factory=tuple)
    seconds: float = 0.0
    clips_per_s: float = 0.0
    total_clips: int = 0  # clips in the dataset now
    reprojection: dict = field(default_factory=dict)  # {video: (mean error, limit)} in training pixels


def expand_photos(sources) -> list[Path]:
    """Photos from files, folders (their images, sorted) and .txt lists (one path a line, # comments)."""
    out: list[Path] = []
    for s in sources:
        p = Path(s).expanduser()
        if p.is_dir():
            out += sorted(q for q in p.iterdir() if q.suffix.lower() in PHOTO_SUFFIXES)
        elif p.suffix.lower() == ".txt" and p.is_file():
            lines = [ln.strip() for ln in p.read_text().splitlines()]
            out += expand_photos([p.parent / ln for ln in lines if ln and not ln.startswith("#")])
        elif p.is_file():
            out.append(p)
        else:
            raise BadInput(f"{p}: no such file or folder", "give photo files, folders of photos or a .txt list")
    if not out:
        raise BadInput("no photos found in " + ", ".join(map(str, sources)), "give .jpg/.png files or a folder of them")
    return out


def _file_hash(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@dataclass(frozen=True, eq=False)
class SyntheticRender:
    """One (photo, motion) rendered through the camera preset, aligned as animate aligns."""

    frames: np.ndarray  # [V, T, H, W, 3] uint8 targets
    maps: BoneMaps  # [V, T, H, W]
    grid: CameraGrid  # [V, T], aligned intrinsics
    fps: float


def render_synthetic(
    photo: Path, motion_source: str, settings: PrepareSettings, cache: StageCache, progress: Reporter = SILENT
) -> SyntheticRender:
    """The preview backend's render and the bone maps of `photo` performing `motion_source`, every view and frame."""
    from hvg_cli.bonemap.render import render_bonemaps
    from hvg_cli.pipeline import stages
    from hvg_cli.pipeline.commands import camera_grid
    from hvg_cli.pipeline.jobs import align_job
    from hvg_cli.pipeline.motion import motion_from_source, place_motion

    subject = stages.subject(Path(photo), SubjectSettings(), cache, progress)
    motion = place_motion(motion_from_source(motion_source, cache=cache, progress=progress), subject)
    poses, trans = motion.poses, motion.trans  # [T, 24, 3], [T, 3]
    if settings.max_frames is not None:
        poses, trans = poses[: settings.max_frames], trans[: settings.max_frames]
    grid = camera_grid(settings.camera_spec(), len(poses), "views")  # [V, T]
    _, grid = align_job(poses, trans, motion.skeleton, grid)  # exactly animate's alignment
    maps = render_bonemaps(poses, trans, motion.skeleton, subject.radii, grid, progress)  # [V, T, H, W]
    if settings.target == "bonemap":
        bg = np.asarray(settings.background, np.uint8)
        frames = np.where(maps.mask[..., None], maps.semantic, bg)  # [V, T, H, W, 3]: silhouettes in part colours
    else:
        from hvg_cli.backends.preview.render import render_preview

        model = stages.preview_model(subject, cache, progress)
        frames = render_preview(subject, poses, trans, grid, tuple(settings.background), progress, model=model)[..., :3]
    return SyntheticRender(np.ascontiguousarray(frames, dtype=np.uint8), maps, grid, float(motion.fps))


def _slice(render: SyntheticRender, frames: tuple[int, ...]) -> tuple[np.ndarray, BoneMaps, CameraGrid]:
    """(frames [V, t, H, W, 3], BoneMaps [V, t, ...], CameraGrid [V, t]) of the window's track frames."""
    idx = list(frames)
    m = render.maps
    maps = BoneMaps(
        semantic=m.semantic[:, idx],
        normal=m.normal[:, idx],
        depth=m.depth[:, idx],
        mask=m.mask[:, idx],
        label=m.label[:, idx],
    )
    grid = dataclasses.replace(
        render.grid, K=render.grid.K[:, idx], world_to_cam=render.grid.world_to_cam[:, idx], closed=False
    )
    return render.frames[:, idx], maps, grid


def synthetic_sources(
    photos, motions, settings: PrepareSettings, cache: StageCache, progress: Reporter = SILENT
) -> list:
    """One train.prepare.ClipSource per window of every (photo, motion); each (photo, motion) is rendered at most
    once (when its first unfinished window loads). Returns the list of sources."""
    from hvg_cli.pipeline.motion import motion_from_source
    from hvg_cli.train.prepare import ClipInputs, ClipSource
    from hvg_cli.train.windows import windows

    key = settings.content_key()
    memo: dict = {}
    sources = []
    for photo in photos:
        ph = _file_hash(photo)[:12]
        for motion in motions:
            T = motion_from_source(motion, cache=cache, progress=progress).num_frames
            if settings.max_frames is not None:
                T = min(T, settings.max_frames)
            mname = "".join(c if c.isalnum() or c in "-_" else "_" for c in Path(str(motion)).stem)[:32]
            for w in windows(T, settings.length, settings.stride, settings.frame_step, settings.gap):

                def load(photo=photo, motion=motion, w=w) -> ClipInputs:
                    if memo.get("key") != (photo, motion):
                        memo.clear()  # one (photo, motion) in memory at a time; a failed render is not kept
                        render = render_synthetic(photo, motion, settings, cache, progress)
                        memo.update(key=(photo, motion), render=render)
                    r = memo["render"]
                    frames, maps, grid = _slice(r, w.frames)
                    ref = r.frames[0, w.reference]  # [H, W, 3]: the front view of a frame outside the window
                    return ClipInputs(
                        photo=np.ascontiguousarray(ref),
                        frames=np.ascontiguousarray(frames),
                        maps=maps,
                        grid=grid,
                        fps=r.fps / settings.frame_step,
                        source=f"{photo}|{motion}",
                        licence=settings.licence,
                        synthetic=True,
                        reference=f"{photo}|{motion}|frame {w.reference}|view 0",
                    )

                sources.append(ClipSource(f"syn-{ph}-{mname}-{key}-{w.id_suffix}", load))
    return sources


VIDEO_SUFFIXES = (".mp4", ".mov", ".mkv", ".avi", ".webm", ".m4v")


def expand_videos(sources) -> list[Path]:
    """Videos from files, folders (their videos, sorted) and .txt lists (one path a line, # comments)."""
    out: list[Path] = []
    for s in sources:
        p = Path(s).expanduser()
        if p.is_dir():
            out += sorted(q for q in p.iterdir() if q.suffix.lower() in VIDEO_SUFFIXES)
        elif p.suffix.lower() == ".txt" and p.is_file():
            lines = [ln.strip() for ln in p.read_text().splitlines()]
            out += expand_videos([p.parent / ln for ln in lines if ln and not ln.startswith("#")])
        elif p.is_file():
            out.append(p)
        else:
            raise BadInput(f"{p}: no such file or folder", "give video files, folders of videos or a .txt list")
    return out


@dataclass(frozen=True, eq=False)
class MonocularClipSet:
    """A tracked video aligned for training: every track frame warped to the training size (one view)."""

    frames: np.ndarray  # [1, T, H, W, 3] uint8, aligned exactly as animate aligns (jobs.align_job)
    maps: BoneMaps  # [1, T, H, W] rendered for the solved video camera, aligned
    grid: CameraGrid  # [1, T] aligned intrinsics
    fps: float
    error_px: float  # mean reprojection error of the fitted skeleton on MediaPipe's landmarks, training pixels
    limit_px: float  # the largest error train.camera_solve.max_error_px allows, training pixels
    video_K: np.ndarray  # [3, 3] the solved camera's intrinsics in video pixels (grid.K = alignment @ video_K)


def monocular_clipset(
    video: Path, motion, settings: PrepareSettings, vae_factor: int, cache: StageCache, progress: Reporter = SILENT
) -> MonocularClipSet:
    """Solve the video's camera so the fitted skeleton reprojects on MediaPipe's 2D landmarks, align as animate
    does, render the bone maps for that camera and warp the frames by the same alignment.

    The subject (bone radii) is fitted on the track frame where MediaPipe saw the person best (highest mean
    landmark visibility): one fit per video. Raises BadInput when the reprojection error at the training
    resolution is above max_error_px (half a latent cell)."""
    from hvg_cli.body.ik import landmarks_from_pose
    from hvg_cli.bonemap.render import render_bonemaps
    from hvg_cli.core.types import CameraGrid
    from hvg_cli.io.video import probe_video
    from hvg_cli.pipeline.jobs import align_job
    from hvg_cli.train.camera_solve import max_error_px, solve_camera

    info = probe_video(video)
    ex = motion.extras
    T = motion.num_frames
    # 1. the video camera: fitted skeleton's landmarks (world, metres) against MediaPipe's pixels
    points = landmarks_from_pose(motion.poses, motion.skeleton) + motion.trans[:, None]  # [T, 33, 3]
    sol = solve_camera(points, np.asarray(ex["landmarks"]), np.asarray(ex["visibility"]), info.width, info.height)
    K = np.broadcast_to(sol.camera.K, (1, T, 3, 3)).copy()
    w2c = np.broadcast_to(sol.camera.world_to_cam, (1, T, 4, 4)).copy()
    # 2. animate's alignment into the training frame (video pixels -> training pixels, pelvis centred)
    grid0 = CameraGrid(K=K, world_to_cam=w2c, width=settings.width, height=settings.height, mode="views")
    alignment, grid = align_job(motion.poses, motion.trans, motion.skeleton, grid0)  # [1, T]
    scale = float(np.median(alignment.scale))  # training px per video px
    limit_video = max_error_px(vae_factor, 1.0 / scale)
    error, limit = sol.mean_error_px * scale, limit_video * scale
    if sol.mean_error_px > limit_video:
        raise BadInput(
            f"{video.name}: the fitted skeleton reprojects {error:.2f} px from MediaPipe's landmarks at "
            f"{settings.width}x{settings.height} (limit {limit:.2f} px)",
            "a tripod shot with the whole body visible works best",
        )
    # 3. the subject for the bone radii, from the best-seen frame
    fi = np.asarray(ex["frame_indices"], dtype=int)  # [T] source frame of each track frame
    best = int(np.argmax(np.asarray(ex["visibility"]).mean(1)))
    subject = _frame_subject(video, int(fi[best]), cache, progress)
    maps = render_bonemaps(motion.poses, motion.trans, motion.skeleton, subject.radii, grid, progress)  # [1, T]
    # 4. the frames, warped by the same alignment (video frame t -> aligned frame t)
    out = _aligned_frames(video, fi, alignment.scale[0], alignment.offset[0], settings.width, settings.height)
    return MonocularClipSet(out[None], maps, grid, float(motion.fps), float(error), float(limit), sol.camera.K.copy())


def _frame_subject(video: Path, frame: int, cache: StageCache, progress: Reporter = SILENT):
    """The subject (bone radii) fitted on one frame of a video, through the cached subject stage."""
    import tempfile

    from PIL import Image

    from hvg_cli.io.video import read_frames
    from hvg_cli.pipeline import stages

    img = next(iter(read_frames(video, start=frame, end=frame + 1)))
    with tempfile.TemporaryDirectory() as tmp:
        png = Path(tmp) / f"{video.stem}-f{frame:06d}.png"
        Image.fromarray(img).save(png)
        return stages.subject(png, SubjectSettings(), cache, progress)


def _aligned_frames(
    video: Path, frame_indices: np.ndarray, scale: np.ndarray, offset: np.ndarray, width: int, height: int
) -> np.ndarray:
    """The video's frames frame_indices [T] (evenly spaced), each warped by its alignment (scale [T], offset
    [T, 2]: aligned = scale · pixel + offset) to width × height -> [T, H, W, 3] uint8."""
    from hvg_cli.align.similarity import warp_image
    from hvg_cli.io.video import read_frames

    fi = np.asarray(frame_indices, dtype=int)
    T = len(fi)
    step = int(fi[1] - fi[0]) if T > 1 else 1
    out = np.zeros((T, height, width, 3), np.uint8)
    for t, img in enumerate(read_frames(video, start=int(fi[0]), end=int(fi[-1]) + 1, stride=max(1, step))):
        if t >= T:
            break
        out[t] = np.clip(warp_image(img, float(scale[t]), offset[t], width, height), 0, 255).astype(np.uint8)
    return out


def monocular_sources(
    videos, settings: PrepareSettings, vae_factor: int, cache: StageCache, progress: Reporter = SILENT
) -> tuple[list, list[tuple[str, str]], dict]:
    """(sources, skipped, errors): one ClipSource per window of every tracked video; videos that cannot be
    tracked are skipped here with their reason. errors: {video: (error px, limit px)} once a video loaded."""
    from hvg_cli.core.settings import PoseSettings
    from hvg_cli.pipeline import stages
    from hvg_cli.train.prepare import ClipInputs, ClipSource
    from hvg_cli.train.windows import windows

    key = settings.content_key()
    memo: dict = {}
    errors: dict = {}
    sources, skipped = [], []
    for video in videos:
        try:
            motion, _ = stages.motion_video(video, PoseSettings(), cache, progress)
        except HvgError as e:
            skipped.append((str(video), str(e)))
            progress.note(f"skipped video {video}: {e}")
            continue
        usable = [bool(d) for d in np.asarray(motion.extras.get("detected", np.ones(motion.num_frames, bool)))]
        wins = windows(motion.num_frames, settings.length, settings.stride, settings.frame_step, settings.gap, usable)
        if not wins:
            skipped.append((str(video), f"too short: no window of {settings.length} usable frames"))
            progress.note(f"skipped video {video}: too short for one window of {settings.length} frames")
            continue
        vh = _file_hash(video)[:12]
        for w in wins:

            def load(video=video, motion=motion, w=w) -> ClipInputs:
                if memo.get("key") != video:
                    memo.clear()
                    cs = monocular_clipset(video, motion, settings, vae_factor, cache, progress)
                    errors[str(video)] = (cs.error_px, cs.limit_px)
                    memo.update(key=video, set=cs)
                cs = memo["set"]
                frames, maps, grid = _slice(cs, w.frames)
                return ClipInputs(
                    photo=np.ascontiguousarray(cs.frames[0, w.reference]),
                    frames=np.ascontiguousarray(frames),
                    maps=maps,
                    grid=grid,
                    fps=cs.fps / settings.frame_step,
                    source=str(video),
                    licence=settings.licence,
                    synthetic=False,
                    reference=f"{video}|frame {w.reference}",
                    kind="video",
                )

            sources.append(ClipSource(f"vid-{vh}-{key}-{w.id_suffix}", load))
    return sources, skipped, errors


# ---------------------------------------------------------------------------------------------
# Multi-view captures: SEQUENCE/transforms.json + one video per camera
# ---------------------------------------------------------------------------------------------
def expand_sources(sources) -> tuple[list[Path], list[Path]]:
    """(captures, videos) from `hvg prepare`'s positional sources.

    A folder holding transforms.json is one multi-view capture; a folder whose sub-folders hold one is a folder
    of captures (videos lying directly in it are monocular); any other folder, file or .txt list (one path a
    line, # comments) is read as by expand_videos."""
    from hvg_cli.cameras.capture import TRANSFORMS

    captures: list[Path] = []
    videos: list[Path] = []
    for s in sources:
        p = Path(s).expanduser()
        if p.is_dir() and (p / TRANSFORMS).is_file():
            captures.append(p)
        elif p.is_dir():
            captures += sorted(q for q in p.iterdir() if q.is_dir() and (q / TRANSFORMS).is_file())
            videos += sorted(q for q in p.iterdir() if q.is_file() and q.suffix.lower() in VIDEO_SUFFIXES)
        elif p.suffix.lower() == ".txt" and p.is_file():
            lines = [ln.strip() for ln in p.read_text().splitlines()]
            more_c, more_v = expand_sources([p.parent / ln for ln in lines if ln and not ln.startswith("#")])
            captures += more_c
            videos += more_v
        else:
            videos += expand_videos([p])
    return captures, videos


@dataclass(frozen=True, eq=False)
class MultiviewCapture:
    """A calibrated capture with the body placed in it: everything but the pixels (cheap, checked up front).

    The motion is the one fitted on videos[fitted] (the cached pose stages), in its own y-up world; the
    capture's cameras are re-expressed in that world (train.placement.Placement.body_cameras), so the clip
    lives in the same body-centred frame as monocular and synthetic clips."""

    folder: Path
    videos: tuple[Path, ...]  # [V] one per camera, transforms.json's order
    motion: Motion  # T frames (trimmed to the shortest camera)
    grid: CameraGrid  # [V, T] aligned intrinsics (training pixels), cameras in the motion's world
    alignment: Alignment  # [V, T]: video pixels -> training pixels
    video_K: np.ndarray  # [V, 3, 3] each camera's intrinsics in its video's pixels
    frame_indices: np.ndarray  # [T] source frame of each track frame (the same in every camera)
    usable: tuple[bool, ...]  # [T] the person detected (not interpolated) in the fitted camera
    fitted: int  # the view whose video the motion was fitted on
    fps: float
    error_px: np.ndarray  # [V] mean reprojection error per camera, training pixels
    limit_px: float  # train.camera_solve.max_error_px at the training size
    frame_counts: tuple[int, ...]  # [V] track frames per camera before trimming to the shortest
    refined: bool = False  # the rotations were refitted on the triangulated landmarks (refine_motion)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(v.name for v in self.videos)


def multiview_capture(
    folder: Path,
    settings: PrepareSettings,
    vae_factor: int,
    cache: StageCache,
    progress: Reporter = SILENT,
    refine: bool = True,
) -> MultiviewCapture:
    """Read a capture, track every camera, fit the motion and place the body (see README "Training data layouts").

    1. transforms.json -> cameras (OpenCV, video pixels); every video must exist and share one fps;
    2. MediaPipe's track of every camera (cached stage pose_track); all are trimmed to the shortest;
    3. the motion fitted on each camera's video (cached stage motion_video, that camera's field of view), the
       body placed by train.placement.solve_placement on the landmarks of ALL cameras; the camera whose motion
       reprojects best over all cameras is kept; with `refine`, its rotations and bone lengths are then refitted
       on the landmarks triangulated from all cameras (refine_motion) and the body placed again, kept when that
       reprojects better;
    4. animate's alignment of every view into the training frame; each camera's mean reprojection error in
       training pixels. BadInput (the capture is skipped) for a missing video, a bad transforms.json, cameras
       out of step, nobody to place, or any camera above train.camera_solve.max_error_px.
    """
    import math

    from hvg_cli.body.ik import landmarks_from_pose
    from hvg_cli.cameras.capture import TRANSFORMS, read_transforms
    from hvg_cli.core.settings import PoseSettings, Timing
    from hvg_cli.io.video import probe_video
    from hvg_cli.pipeline import stages
    from hvg_cli.pipeline.jobs import align_job
    from hvg_cli.pipeline.motion import trim_motion
    from hvg_cli.train.camera_solve import max_error_px
    from hvg_cli.train.placement import solve_placement

    folder = Path(folder)
    name = str(folder)  # every message names the capture
    # 1. cameras and videos
    cams = read_transforms(folder / TRANSFORMS)
    if len(cams) < 2:
        raise BadInput(f"{name}: {TRANSFORMS} lists {len(cams)} camera; a capture needs two or more")
    videos, Ks = [], []
    for c in cams:
        video = folder / c.file
        if not video.is_file():
            raise BadInput(f"{name}: camera video {c.file} is missing", f"put it beside {TRANSFORMS} or fix file_path")
        info = probe_video(video)
        K = np.asarray(c.K, dtype=np.float64)
        if c.width is not None and c.height is not None and (c.width, c.height) != (info.width, info.height):
            K = np.diag([info.width / c.width, info.height / c.height, 1.0]) @ K  # intrinsics follow the video's size
        videos.append(video)
        Ks.append(K)
    if any(c.distorted for c in cams):
        progress.note(f"{name}: lens distortion in {TRANSFORMS} is ignored (undistort the videos for best results)")
    # 2. tracks, in step
    tracks = [stages.pose_track(v, PoseSettings(), cache, progress) for v in videos]
    rates = {str(tr.fps) for tr in tracks}
    if len(rates) > 1:
        raise BadInput(
            f"{name}: the cameras run at different frame rates ({', '.join(sorted(rates))} fps)",
            "re-encode the videos to one frame rate",
        )
    counts = tuple(int(tr.image.shape[0]) for tr in tracks)
    T = min(counts)
    fi = np.asarray(tracks[0].frame_indices[:T], dtype=int)  # [T]
    if any(not np.array_equal(tr.frame_indices[:T], fi) for tr in tracks):
        raise BadInput(f"{name}: the cameras' frames are not in step", "start every video at the same instant")
    if len(set(counts)) > 1:
        progress.note(f"{name}: the cameras have {'/'.join(map(str, counts))} frames; all trimmed to the shortest, {T}")
    pixels = np.stack([tr.image[:T] for tr in tracks])  # [V, T, 33, 2] video px
    vis = np.stack([tr.visibility[:T] for tr in tracks])  # [V, T, 33]
    K = np.stack(Ks)  # [V, 3, 3]
    E = np.stack([c.world_to_cam for c in cams])  # [V, 4, 4] capture world
    # 3. the motion from each camera's video, placed on all cameras; the best overall reprojection wins
    best = None
    last_error: HvgError | None = None
    for v, video in enumerate(videos):
        fov = math.degrees(2 * math.atan(0.5 * tracks[v].height / K[v, 1, 1]))  # that camera's vertical fov
        try:
            motion, _ = stages.motion_video(video, PoseSettings(fov_deg=round(fov, 3)), cache, progress)
            motion = trim_motion(motion, Timing(max_frames=T))
            points = landmarks_from_pose(motion.poses, motion.skeleton) + motion.trans[:, None]  # [T, 33, 3] m
            placement = solve_placement(points, pixels, vis, K, E)
        except BadInput as e:
            last_error = BadInput(f"{name}: {e.message}", e.hint)  # the placement's messages name no file
            continue
        except HvgError as e:
            last_error = e
            continue
        n = placement.camera_points
        mean = float(np.nansum(placement.camera_error_px * n) / max(n.sum(), 1))
        if best is None or mean < best[0]:
            best = (mean, v, motion, placement)
    if best is None:
        raise last_error or BadInput(f"{name}: the body could not be placed")
    mean, fitted, motion, placement = best
    refined = False
    if refine:
        # 3b. the rotations refitted on the landmarks triangulated from every camera (kept when they reproject better)
        motion2 = refine_motion(motion, placement, pixels, vis, K, E)
        points = landmarks_from_pose(motion2.poses, motion2.skeleton) + motion2.trans[:, None]  # [T, 33, 3]
        placement2 = solve_placement(points, pixels, vis, K, E)
        n = placement2.camera_points
        if float(np.nansum(placement2.camera_error_px * n) / max(n.sum(), 1)) < mean:
            motion, placement, refined = motion2, placement2, True
    # 4. animate's alignment per view and frame; the error in training pixels
    w2c = placement.body_cameras(E)  # [V, 4, 4] in the motion's world
    V = len(videos)
    grid0 = CameraGrid(
        K=np.broadcast_to(K[:, None], (V, T, 3, 3)).copy(),
        world_to_cam=np.broadcast_to(w2c[:, None], (V, T, 4, 4)).copy(),
        width=settings.width,
        height=settings.height,
        mode="views",
    )
    alignment, grid = align_job(motion.poses, motion.trans, motion.skeleton, grid0)  # [V, T]
    scale = np.median(alignment.scale, axis=1)  # [V] training px per video px
    error = placement.camera_error_px * scale  # [V] training px
    limit = max_error_px(vae_factor, 1.0)  # half a latent cell, training px
    if not np.all(error <= limit):
        worst = int(np.nanargmax(np.where(np.isfinite(error), error, np.inf)))
        raise BadInput(
            f"{name}: the placed skeleton reprojects {error[worst]:.2f} px from MediaPipe's landmarks in "
            f"{videos[worst].name} at {settings.width}x{settings.height} (limit {limit:.2f} px; all cameras: "
            + ", ".join(f"{e:.2f}" for e in error)
            + ")",
            "check transforms.json against the videos (axes, units, file order) and that every camera sees the person",
        )
    detected = np.asarray(motion.extras.get("detected", np.ones(T, bool)))[:T]
    return MultiviewCapture(
        folder,
        tuple(videos),
        motion,
        grid,
        alignment,
        K,
        fi,
        tuple(bool(d) for d in detected),
        int(fitted),
        float(motion.fps),
        error,
        float(limit),
        counts,
        refined,
    )


def refine_motion(
    motion: Motion,
    placement,
    pixels: np.ndarray,
    vis: np.ndarray,
    K: np.ndarray,
    E: np.ndarray,
    min_weight: float = 0.5,
) -> Motion:
    """The placed motion refitted on the landmarks triangulated from every camera.

    One camera's MediaPipe world landmarks carry that view's depth guesses; with calibrated cameras the
    landmarks seen by two or more of them are triangulated (train.placement.triangulate), brought into the
    motion's world by the inverse placement, and the skeleton (bone lengths) and rotations refitted with the
    same analytic IK `hvg pose` uses (body.ik.estimate_skeleton, fit_landmarks). Landmarks no two cameras see
    keep the single-view fit's position. pixels [V, T, 33, 2], vis [V, T, 33], K [V, 3, 3], E [V, 4, 4].
    """
    from hvg_cli.body.ik import estimate_skeleton, fit_landmarks, landmarks_from_pose
    from hvg_cli.train.placement import triangulate

    V, T = pixels.shape[:2]
    X, ok = triangulate(pixels.reshape(V, T * 33, 2), vis.reshape(V, T * 33), K, E, min_weight)  # [T*33, 3]
    Xm = ((X - placement.translation) @ placement.rotation / placement.scale).reshape(T, 33, 3)  # motion world
    ok = ok.reshape(T, 33)
    single = landmarks_from_pose(motion.poses, motion.skeleton) + motion.trans[:, None]  # [T, 33, 3]
    world = np.where(ok[..., None], Xm, single)  # [T, 33, 3] metres, motion world
    hip = 0.5 * (world[:, 23] + world[:, 24])  # [T, 3] pelvis: the hip landmarks' midpoint, as the IK places it
    centred = world - hip[:, None]
    weight = np.where(ok, vis.max(0), 0.1)  # [T, 33]: triangulated points lead the bone lengths
    skeleton = estimate_skeleton(centred, weight)
    fit = fit_landmarks(centred, skeleton, weight)
    return dataclasses.replace(
        motion,
        poses=fit.poses,
        trans=hip,
        skeleton=skeleton,
        joints=fit.joints + hip[:, None],
        fit_error_deg=fit.fit_error_deg,
    )


@dataclass(frozen=True, eq=False)
class MultiviewClipSet:
    """A placed capture's pixels: every view's frames and bone maps, aligned as animate aligns."""

    frames: np.ndarray  # [V, T, H, W, 3] uint8
    maps: BoneMaps  # [V, T, H, W] rendered for the calibrated cameras, aligned
    grid: CameraGrid  # [V, T]
    fps: float


def multiview_clipset(capture: MultiviewCapture, cache: StageCache, progress: Reporter = SILENT) -> MultiviewClipSet:
    """Bone maps of the placed motion for every calibrated camera (bone radii from the subject fitted on the
    frame where MediaPipe saw the person best in the fitted camera) and every camera's frames warped by the
    same alignment."""
    from hvg_cli.bonemap.render import render_bonemaps

    m = capture.motion
    best = int(np.argmax(np.asarray(m.extras["visibility"])[: len(capture.frame_indices)].mean(1)))
    subject = _frame_subject(capture.videos[capture.fitted], int(capture.frame_indices[best]), cache, progress)
    maps = render_bonemaps(m.poses, m.trans, m.skeleton, subject.radii, capture.grid, progress)  # [V, T, H, W]
    a = capture.alignment
    W, H = capture.grid.width, capture.grid.height
    frames = np.stack(
        [
            _aligned_frames(video, capture.frame_indices, a.scale[v], a.offset[v], W, H)
            for v, video in enumerate(capture.videos)
        ]
    )  # [V, T, H, W, 3]
    return MultiviewClipSet(frames, maps, capture.grid, capture.fps)


def multiview_sources(
    captures, settings: PrepareSettings, vae_factor: int, cache: StageCache, progress: Reporter = SILENT
) -> tuple[list, list[tuple[str, str]], dict]:
    """(sources, skipped, errors) of multi-view captures: one ClipSource per window of every capture that can
    be placed; a capture that cannot (bad transforms.json, a missing video, cameras out of step, reprojection
    above the limit, too short) is skipped with one line. errors: {"capture/video": (error px, limit px)}."""
    from hvg_cli.core.cache import file_hash
    from hvg_cli.train.prepare import ClipInputs, ClipSource
    from hvg_cli.train.windows import windows

    key = settings.content_key()
    memo: dict = {}
    errors: dict = {}
    sources, skipped = [], []
    for folder in captures:
        try:
            cap = multiview_capture(folder, settings, vae_factor, cache, progress)
        except HvgError as e:
            skipped.append((str(folder), str(e)))
            progress.note(f"skipped capture: {e}")  # the message names the capture or its file
            continue
        T = len(cap.frame_indices)
        wins = windows(T, settings.length, settings.stride, settings.frame_step, settings.gap, list(cap.usable))
        if not wins:
            skipped.append((str(folder), f"too short: no window of {settings.length} usable frames"))
            progress.note(f"skipped capture {folder}: too short for one window of {settings.length} frames")
            continue
        for v, video in enumerate(cap.videos):
            errors[f"{folder}/{video.name}"] = (float(cap.error_px[v]), cap.limit_px)
        ident = hashlib.sha256(
            "|".join([_file_hash(folder / "transforms.json")] + [file_hash(v) for v in cap.videos]).encode()
        ).hexdigest()[:12]
        for w in wins:

            def load(cap=cap, w=w) -> ClipInputs:
                if memo.get("key") != cap.folder:
                    memo.clear()
                    memo.update(key=cap.folder, set=multiview_clipset(cap, cache, progress))
                cs = memo["set"]
                frames, maps, grid = _slice(cs, w.frames)
                return ClipInputs(
                    photo=np.ascontiguousarray(cs.frames[cap.fitted, w.reference]),
                    frames=np.ascontiguousarray(frames),
                    maps=maps,
                    grid=grid,
                    fps=cs.fps / settings.frame_step,
                    source=str(cap.folder),
                    licence=settings.licence,
                    synthetic=False,
                    reference=f"{cap.folder}|{cap.videos[cap.fitted].name}|frame {w.reference}",
                    kind="multiview",
                    cameras=cap.names,
                )

            sources.append(ClipSource(f"mv-{ident}-{key}-{w.id_suffix}", load))
    return sources, skipped, errors


@dataclass(frozen=True, eq=False)
class SyntheticCapture:
    """What write_synthetic_capture rendered: the ground truth a prepared capture is checked against."""

    folder: Path
    coverage: np.ndarray  # [V, T, H, W] uint8: the person's coverage in each camera's video (255 = person)
    poses: np.ndarray  # [T, 24, 3] the motion on the subject
    trans: np.ndarray  # [T, 3] metres
    motion: Motion  # the placed motion (skeleton: the subject's)
    subject: Subject  # its radii render the true bone maps
    cameras: CameraPath  # [V] the true cameras, video pixels


def write_synthetic_capture(
    folder: Path,
    photo: Path,
    motion_source: str,
    cameras: CameraPath,
    frames: int,
    cache: StageCache,
    background: tuple[int, int, int] = (127, 127, 127),
    progress: Reporter = SILENT,
) -> SyntheticCapture:
    """A multi-view capture made with the preview backend: the person of `photo` performing `motion_source`
    (first `frames` frames), seen by the fixed cameras of `cameras` (a CameraPath, [V] views, its size the
    videos' size), written as FOLDER/cam0.mp4 ... and FOLDER/transforms.json (nerfstudio convention). For tests,
    benchmarks and trying `hvg prepare` on a capture without a studio."""
    from hvg_cli.backends.preview.render import render_preview
    from hvg_cli.cameras.capture import CaptureCamera, write_transforms
    from hvg_cli.io.video import write_video
    from hvg_cli.pipeline import stages
    from hvg_cli.pipeline.motion import motion_from_source, place_motion

    subject = stages.subject(Path(photo), SubjectSettings(), cache, progress)
    motion = place_motion(motion_from_source(motion_source, cache=cache, progress=progress), subject)
    poses, trans = motion.poses[:frames], motion.trans[:frames]  # [T, 24, 3], [T, 3]
    V, T = cameras.num_views, len(poses)
    grid = CameraGrid(
        K=np.broadcast_to(cameras.K[:, None], (V, T, 3, 3)).copy(),
        world_to_cam=np.broadcast_to(cameras.world_to_cam[:, None], (V, T, 4, 4)).copy(),
        width=cameras.width,
        height=cameras.height,
        mode="views",
    )  # [V, T]: every camera fixed over time
    model = stages.preview_model(subject, cache, progress)
    rgba = render_preview(subject, poses, trans, grid, "transparent", progress, model=model)  # [V, T, H, W, 4]
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    bg = np.asarray(background, np.uint8)
    names = [f"cam{v}.mp4" for v in range(V)]
    for v in range(V):
        img = np.where(rgba[v, ..., 3:] > 0, rgba[v, ..., :3], bg).astype(np.uint8)  # [T, H, W, 3] on the background
        write_video(folder / names[v], iter(img), motion.fps)
    write_transforms(
        [
            CaptureCamera(names[v], cameras.K[v], cameras.world_to_cam[v], cameras.width, cameras.height)
            for v in range(V)
        ],
        folder,
    )
    return SyntheticCapture(folder, rgba[..., 3].copy(), poses, trans, motion, subject, cameras)


def prepare_job(
    out: Path,
    weights: Path,
    synthetic=(),
    motions=(),
    settings: PrepareSettings = PrepareSettings(),
    videos=(),
    cache: StageCache | None = None,
    progress: Reporter = SILENT,
) -> PrepareResult:
    """`hvg prepare`: write (or continue) the dataset at `out`.

    weights: an HVG weights folder whose VAE and CLIP encoder encode the clips (the same folder, or one with the
    same VAE and image encoder, as the one trained). synthetic: photos (files, folders, .txt lists) rendered
    performing each of `motions` (presets, .npz, .bvh) through `settings.cameras`. videos: monocular footage
    (files, folders, .txt lists): see monocular_clipset; folders holding a transforms.json (or folders of such
    folders) among them are multi-view captures: see multiview_capture (expand_sources splits them).
    """
    from hvg_cli.backends.diffusion.weights import load_pipeline
    from hvg_cli.train.dataset import TrainDataset
    from hvg_cli.train.prepare import prepare_clips

    if not synthetic and not videos:
        raise BadInput("nothing to prepare", "give videos, or --synthetic PHOTOS --motions PRESETS")
    if synthetic and not motions:
        raise BadInput("--synthetic needs --motions", "e.g. --motions dance,wave (hvg pose --list-presets)")
    from hvg_cli.backends.diffusion.weights import check_weights

    check_weights(weights)  # MissingWeights before any work
    cache = cache or StageCache()
    sources: list = []
    skipped: list[tuple[str, str]] = []
    errors: dict = {}
    if synthetic:
        from hvg_cli.pipeline.commands import camera_grid

        camera_grid(settings.camera_spec(), 1, "views")  # a bad preset or view count: one error before any work
        sources += synthetic_sources(expand_photos(synthetic), list(motions), settings, cache, progress)
    if videos:
        from hvg_cli.backends.diffusion.settings import vae_factor

        factor = vae_factor(weights)
        captures, found = expand_sources(videos)
        if not found and not captures:
            raise BadInput(
                "no videos or captures found in " + ", ".join(map(str, videos)),
                "give .mp4/.mov files, a folder of them, or capture folders holding transforms.json",
            )
        if found:
            more, skipped, errors = monocular_sources(found, settings, factor, cache, progress)
            sources += more
        if captures:
            more, skipped_mv, errors_mv = multiview_sources(captures, settings, factor, cache, progress)
            sources += more
            skipped += skipped_mv
            errors.update(errors_mv)
    if not sources:
        raise BadInput(
            f"no window of {settings.length} frames fits the sources"
            + (f" ({len(skipped)} videos or captures skipped)" if skipped else ""),
            "the skipped lines above say why" if skipped else "lower --length or --gap",
        )
    pipe = load_pipeline(weights, "cpu" if not _has_cuda() else "auto", "fp32")
    summary = prepare_clips(
        pipe,
        sources,
        out,
        total=len(sources),
        clips_per_shard=settings.clips_per_shard,
        seed=settings.seed,
        progress=progress,
    )
    total = len(TrainDataset(out)) if (Path(out) / "manifest.json").exists() else 0
    return PrepareResult(
        str(out),
        summary.written,
        summary.existing,
        tuple(skipped) + summary.skipped,
        summary.seconds,
        summary.clips_per_s,
        total,
        errors,
    )


def _has_cuda() -> bool:
    import torch

    return torch.cuda.is_available()


# ---------------------------------------------------------------------------------------------
# hvg train
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ValidationJob:
    """The fixed validation job: photo + motion + a 4-view orbit, at the dataset's size and frame count."""

    photo: str
    motion: str = "dance"
    views: int = 4
    steps: int = 4
    seed: int = 0


@dataclass(frozen=True, eq=False)
class ValidationInputs:
    photo: np.ndarray  # [H, W, 3] uint8, aligned
    maps: BoneMaps  # [V, T, H, W]
    grid: CameraGrid  # [V, T]
    fps: float


def validation_inputs(
    job: ValidationJob, width: int, height: int, frames: int, cache: StageCache, progress: Reporter = SILENT
) -> ValidationInputs:
    """The aligned photo, bone maps and cameras of the validation job, built as animate builds them."""
    from hvg_cli.align.similarity import warp_image
    from hvg_cli.bonemap.render import render_bonemaps
    from hvg_cli.pipeline import stages
    from hvg_cli.pipeline.commands import camera_grid
    from hvg_cli.pipeline.jobs import align_job, photo_alignment
    from hvg_cli.pipeline.motion import motion_from_source, place_motion

    subject = stages.subject(Path(job.photo), SubjectSettings(), cache, progress)
    motion = place_motion(motion_from_source(job.motion, cache=cache, progress=progress), subject)
    poses, trans = motion.poses[:frames], motion.trans[:frames]
    spec = CameraSpec(camera="orbit-360", views=job.views, width=width, height=height)
    grid = camera_grid(spec, len(poses), "views")
    _, grid = align_job(poses, trans, motion.skeleton, grid)
    maps = render_bonemaps(poses, trans, motion.skeleton, subject.radii, grid, progress)
    a = photo_alignment(subject, width, height)
    photo = warp_image(subject.image, float(a.scale[0, 0]), a.offset[0, 0], width, height)
    return ValidationInputs(np.clip(photo, 0, 255).astype(np.uint8), maps, grid, float(motion.fps))


def make_validator(base: Path, inputs: ValidationInputs, job: ValidationJob) -> Callable[..., None]:
    """train()'s validate callback: write the current weights beside the base's other parts in a scratch folder,
    render the job with the diffusion backend's `generate`, store FOLDER/orbit.mp4 (views in a grid) and
    FOLDER/frames.npy [V, T, H, W, 3]."""

    def validate(step: int, unet, pose_encoder, folder: Path) -> None:
        from hvg_cli.backends.diffusion import DiffusionSettings, generate
        from hvg_cli.bonemap.render import grid_images
        from hvg_cli.io.video import write_video

        scratch = Path(folder) / ".weights"
        if scratch.exists():
            shutil.rmtree(scratch)
        scratch.mkdir(parents=True)
        try:
            for comp in ("vae", "image_encoder", "scheduler", "feature_extractor"):
                os.symlink(Path(base).resolve() / comp, scratch / comp)
            shutil.copy2(Path(base) / "model_index.json", scratch / "model_index.json")
            unet.save_pretrained(scratch / "unet", safe_serialization=True)
            pose_encoder.save_pretrained(scratch / "pose_encoder", safe_serialization=True)
            ds = DiffusionSettings(
                steps=job.steps,
                seed=job.seed,
                device="cpu" if not _has_cuda() else "auto",
                dtype="fp32",
                fps=max(1, int(round(inputs.fps))),
            )  # the fps clips are stored with
            frames = generate(scratch, inputs.photo, inputs.maps, inputs.grid, ds)  # [V, T, H, W, 3]
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        np.save(Path(folder) / "frames.npy", frames)
        write_video(Path(folder) / "orbit.mp4", iter(grid_images(frames)), max(1, round(inputs.fps)))

    return validate


def train_job(
    settings, validation: ValidationJob | None = None, cache: StageCache | None = None, progress: Reporter = SILENT
) -> TrainResult:
    """`hvg train`: train.loop.train(settings) with the validation job rendered every settings.validate_every
    steps (needs `validation`). Checks run before anything is written; returns train.loop.TrainResult."""
    from hvg_cli.train.dataset import TrainDataset
    from hvg_cli.train.loop import train

    validate = None
    if settings.validate_every:
        if validation is None:
            raise BadInput("--validate-every needs a validation photo", "add --validation-photo PHOTO")
        data = TrainDataset(settings.data)  # BadInput for a missing or old dataset, before any rendering
        s = data.sizes
        inputs = validation_inputs(validation, s["width"], s["height"], s["frames"], cache or StageCache(), progress)
        validate = make_validator(Path(settings.weights).expanduser(), inputs, validation)
    return train(settings, progress, validate)
