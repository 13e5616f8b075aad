"""Multi-view captures as `hvg prepare` sources: SEQUENCE/transforms.json (nerfstudio, read by cameras.capture) and
one video per camera. The motion is fitted with the cached pose stages on each camera's video, the body placed in
the calibrated capture by train.placement on every camera's landmarks (the camera whose motion reprojects best is
kept), cameras re-expressed in the motion's world, animate's alignment per view, bone maps for every camera;
captures above max_error_px in any camera are skipped with one line."""

from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hvg_cli.core.cache import StageCache, file_hash
from hvg_cli.core.errors import BadInput, HvgError
from hvg_cli.core.progress import SILENT, Reporter
from hvg_cli.core.settings import PrepareSettings
from hvg_cli.core.types import Alignment, BoneMaps, CameraGrid, Motion
from hvg_cli.pipeline.monocular import aligned_frames, frame_subject
from hvg_cli.pipeline.sources import LastBuilt, slice_clip


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
    subject = frame_subject(capture.videos[capture.fitted], int(capture.frame_indices[best]), cache, progress)
    maps = render_bonemaps(m.poses, m.trans, m.skeleton, subject.radii, capture.grid, progress)  # [V, T, H, W]
    a = capture.alignment
    W, H = capture.grid.width, capture.grid.height
    frames = np.stack(
        [
            aligned_frames(video, capture.frame_indices, a.scale[v], a.offset[v], W, H)
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
    from hvg_cli.train.prepare import ClipInputs, ClipSource
    from hvg_cli.train.windows import windows

    key = settings.content_key()
    last = LastBuilt()  # the clip set of the capture being written
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
            "|".join([file_hash(folder / "transforms.json")] + [file_hash(v) for v in cap.videos]).encode()
        ).hexdigest()[:12]
        for w in wins:

            def load(cap=cap, w=w) -> ClipInputs:
                cs = last.get(cap.folder, lambda: multiview_clipset(cap, cache, progress))
                frames, maps, grid = slice_clip(cs, w.frames)
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
