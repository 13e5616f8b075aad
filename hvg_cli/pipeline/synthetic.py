"""Synthetic clips for `hvg prepare --synthetic`: photos performing motions, rendered by the preview backend through a
camera preset and aligned exactly as `hvg animate` aligns; and synthetic multi-view captures (videos +
transforms.json) for tests, benchmarks and trying `hvg prepare` on a capture without a studio.

A clip's reference image is the front view (view 0) of a frame OUTSIDE its window (train.windows picks the nearest
frame at least `gap` frames away): the model has to move the person into the bone maps' pose, it cannot copy a
target frame. Targets are the preview renders (`target="preview"`) or the bone maps' semantic colours as a
silhouette (`target="bonemap"`), on a plain background."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hvg_cli.core.cache import StageCache
from hvg_cli.core.progress import SILENT, Reporter
from hvg_cli.core.settings import PrepareSettings, SubjectSettings
from hvg_cli.core.types import BoneMaps, CameraGrid, CameraPath, Motion, Subject
from hvg_cli.pipeline.sources import LastBuilt, file_key, slice_clip


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


def synthetic_sources(
    photos, motions, settings: PrepareSettings, cache: StageCache, progress: Reporter = SILENT
) -> list:
    """One train.prepare.ClipSource per window of every (photo, motion); each (photo, motion) is rendered at most
    once (when its first unfinished window loads). Returns the list of sources."""
    from hvg_cli.pipeline.motion import motion_from_source
    from hvg_cli.train.prepare import ClipInputs, ClipSource
    from hvg_cli.train.windows import windows

    key = settings.content_key()
    last = LastBuilt()  # one (photo, motion) render in memory at a time
    sources = []
    for photo in photos:
        ph = file_key(photo)
        for motion in motions:
            T = motion_from_source(motion, cache=cache, progress=progress).num_frames
            if settings.max_frames is not None:
                T = min(T, settings.max_frames)
            mname = "".join(c if c.isalnum() or c in "-_" else "_" for c in Path(str(motion)).stem)[:32]
            for w in windows(T, settings.length, settings.stride, settings.frame_step, settings.gap):

                def load(photo=photo, motion=motion, w=w) -> ClipInputs:
                    r = last.get((photo, motion), lambda: render_synthetic(photo, motion, settings, cache, progress))
                    frames, maps, grid = slice_clip(r, w.frames)
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
