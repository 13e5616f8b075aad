"""Monocular videos as `hvg prepare` sources: the cached pose stages (pose_track, motion_video), the video camera
solved with train.camera_solve so the fitted skeleton reprojects on MediaPipe's 2D landmarks (clips above
max_error_px refused), animate's alignment into the training frame, bone maps for that camera, the frames warped
by the same alignment; the reference is a frame of the video outside the window (train.windows)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hvg_cli.core.cache import StageCache
from hvg_cli.core.errors import BadInput, HvgError
from hvg_cli.core.progress import SILENT, Reporter
from hvg_cli.core.settings import PrepareSettings, SubjectSettings
from hvg_cli.core.types import BoneMaps, CameraGrid, Subject
from hvg_cli.pipeline.sources import LastBuilt, file_key, slice_clip


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
    subject = frame_subject(video, int(fi[best]), cache, progress)
    maps = render_bonemaps(motion.poses, motion.trans, motion.skeleton, subject.radii, grid, progress)  # [1, T]
    # 4. the frames, warped by the same alignment (video frame t -> aligned frame t)
    out = aligned_frames(video, fi, alignment.scale[0], alignment.offset[0], settings.width, settings.height)
    return MonocularClipSet(out[None], maps, grid, float(motion.fps), float(error), float(limit), sol.camera.K.copy())


def frame_subject(video: Path, frame: int, cache: StageCache, progress: Reporter = SILENT) -> Subject:
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


def aligned_frames(
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
    last = LastBuilt()  # the clip set of the video being written
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
        vh = file_key(video)
        for w in wins:

            def load(video=video, motion=motion, w=w) -> ClipInputs:
                def build(video=video, motion=motion):
                    cs = monocular_clipset(video, motion, settings, vae_factor, cache, progress)
                    errors[str(video)] = (cs.error_px, cs.limit_px)
                    return cs

                cs = last.get(video, build)
                frames, maps, grid = slice_clip(cs, w.frames)
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
