"""The jobs that turn photo + motion + cameras into pictures: `hvg bonemap` and `hvg animate`.

Both share `assemble_job`: 1. motion from its source, trimmed, 2. subject from the photo, 3. the motion on the
subject's body, 4. cameras per view and frame, 5. view-temporal alignment. Their outputs are cached as
finished files (stages `bonemap_video`, `render`), so an unchanged re-run copies them, and a run that
changes only the camera re-uses the subject and the motion.
"""

from __future__ import annotations

import dataclasses
import shutil
import time
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from hvg_cli.core.atomic import atomic_copy
from hvg_cli.core.cache import StageCache, array_hash
from hvg_cli.core.errors import BadInput, MissingWeights
from hvg_cli.core.progress import SILENT, Reporter
from hvg_cli.core.settings import (
    AnimateSettings,
    Backend,
    BonemapSettings,
    CameraSpec,
    PoseSettings,
    SubjectSettings,
    Timing,
)
from hvg_cli.core.types import Alignment, CameraGrid, Motion, Skeleton, Subject
from hvg_cli.io.outputs import check_outputs
from hvg_cli.io.video import is_frames_folder
from hvg_cli.pipeline import stages
from hvg_cli.pipeline.commands import DEFAULT_WEIGHTS, camera_grid, camera_path, find_weights
from hvg_cli.pipeline.motion import motion_from_source, motion_source_kind, place_motion, trim_motion

if TYPE_CHECKING:
    from hvg_cli.backends.diffusion import DiffusionSettings


# --- 1-5: what every job needs ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Job:
    """Everything a renderer needs, with the motion already on the subject's body."""

    subject: Subject
    motion: Motion  # retargeted onto subject.skeleton and placed where the subject stands
    grid: CameraGrid  # final cameras [V, T] (aligned intrinsics unless --no-align)
    alignment: Alignment | None  # None with --no-align
    key_parts: tuple  # what identifies the job's pictures, for cache keys


def align_job(
    poses: np.ndarray,
    trans: np.ndarray,
    skeleton: Skeleton,
    grid: CameraGrid,
    fill: float = 0.75,
    smooth: str | float = "median",
) -> tuple[Alignment, CameraGrid]:
    """View-temporal alignment of a job: the pelvis at the image centre in every view and frame.

    poses [T, 24, 3], trans [T, 3] on `skeleton`; grid [V, T]. One scale per view (the median box fills
    `fill` of the height), lowered where needed so the body stays inside the frame in every frame.
    Returns (Alignment [V, T], the grid with aligned intrinsics S @ K, which render the aligned images
    exactly). `photo_alignment` aligns the subject's photo from its own camera the same way, so the reference
    and the bone maps line up.
    """
    from hvg_cli.align import aligned_intrinsics, compute_alignment, project_points, subject_box, subject_extent
    from hvg_cli.body.kinematics import pose_joints

    joints = pose_joints(poses, skeleton.rest_joints, skeleton.parents, trans)  # [T, 24, 3]
    V, T = grid.shape
    px = project_points(np.broadcast_to(joints, (V,) + joints.shape), grid.K, grid.world_to_cam)  # [V, T, 24, 2]
    alignment = compute_alignment(
        px[:, :, 0], subject_box(px), grid.width, grid.height, fill=fill, smooth=smooth, extent_px=subject_extent(px)
    )  # [V, T]: never leaves the frame
    return alignment, dataclasses.replace(grid, K=aligned_intrinsics(grid.K, alignment))


def photo_alignment(subject: Subject, width: int, height: int) -> Alignment:
    """The alignment of the photo from its own camera, so the reference and the bone maps line up."""
    cam = CameraGrid(
        K=subject.camera.K[None, None],
        world_to_cam=subject.camera.world_to_cam[None, None],
        width=width,
        height=height,
        mode="views",
    )  # [1, 1]: the photo's camera
    alignment, _ = align_job(subject.photo_pose[None], subject.photo_trans[None], subject.skeleton, cam)
    return alignment


def job_motion(
    motion_source: str, timing: Timing, max_gap: int | None, cache: StageCache, progress: Reporter = SILENT
) -> Motion:
    """The frames [start, end) of a job's motion (at most max_frames of them).

    A video is tracked only over that window (the decoder stops at its end; --max-gap as `hvg pose`'s); a file
    or a preset is read whole and trimmed.
    """
    if motion_source_kind(motion_source) != "video":
        return trim_motion(motion_from_source(motion_source, PoseSettings(), cache, progress), timing)
    end = timing.end
    if timing.max_frames is not None:
        end = timing.start + timing.max_frames if end is None else min(end, timing.start + timing.max_frames)
    pose = PoseSettings(start=timing.start, end=end, max_gap=max_gap)
    return motion_from_source(motion_source, pose, cache, progress)  # exactly the window: nothing to trim


def check_job_inputs(photo: Path, motion_source: str, body_model: str | None) -> None:
    """BadInput naming the file, before any work, for a missing, empty or folder photo / motion / body model."""
    from hvg_cli.io import check_input_file
    from hvg_cli.io.image import check_image

    check_image(Path(photo))
    if motion_source_kind(motion_source) != "preset":
        check_input_file(Path(motion_source), "a motion", "a video, an AMASS .npz, a .bvh or a preset name")
    if body_model is not None:
        check_input_file(Path(body_model), "a body model", "SMPL_NEUTRAL.pkl or SMPLX_NEUTRAL.npz")


def assemble_job(
    photo: Path,
    motion_source: str,
    settings: BonemapSettings | AnimateSettings,
    cache: StageCache,
    progress: Reporter = SILENT,
    seconds: dict | None = None,
) -> Job:
    """Steps 1-5 shared by `bonemap_job` and `animate_job`: the settings' camera, camera mode, timing,
    alignment, body model and max gap; wall time per step goes into `seconds`."""
    seconds = {} if seconds is None else seconds
    # 1. The motion from its source (a video's pose and fit are cached), cut to --start/--end/--frames
    t = time.perf_counter()
    motion = job_motion(motion_source, settings.timing, settings.max_gap, cache, progress)
    seconds["motion"] = time.perf_counter() - t
    # 2. The subject: appearance, proportions, photo pose and camera (cached by the photo's bytes)
    t = time.perf_counter()
    subject = stages.subject(Path(photo), SubjectSettings(body_model=settings.body_model), cache, progress)
    seconds["subject"] = time.perf_counter() - t
    if subject.legs_guessed:
        progress.note(f"{photo}: the legs are not visible; hvg guessed them (a full-body photo works best)")
    # 3. On the subject's body
    t = time.perf_counter()
    motion = place_motion(motion, subject)
    T = motion.num_frames
    # 4. Cameras: K [V, T, 3, 3], world_to_cam [V, T, 4, 4]
    grid = camera_grid(settings.camera, T, settings.camera_mode)
    # 5. View-temporal alignment: the subject's pelvis at the centre of every view and frame, steady scale
    alignment = None
    if settings.align:
        alignment, grid = align_job(motion.poses, motion.trans, motion.skeleton, grid)
    seconds["cameras"] = time.perf_counter() - t
    key_parts = (
        subject.source_hash,
        array_hash(motion.poses, motion.trans, motion.skeleton.rest_joints),
        array_hash(grid.K, grid.world_to_cam),
        grid.width,
        grid.height,
        grid.mode,
        str(motion.fps),
    )
    return Job(subject=subject, motion=motion, grid=grid, alignment=alignment, key_parts=key_parts)


def _file_or_frames(path: Path) -> str:
    """check_outputs' kind of an output path: "frames" for a folder name without suffix, else "file"."""
    from hvg_cli.io.video import output_kind

    return "frames" if output_kind(path) == "frames" else "file"


def _job_inputs(
    photo: Path, motion_source: str, camera: CameraSpec, body_model: str | None, weights_dir: Path | None = None
) -> list:
    """Every file or folder a bonemap/animate job reads (preset names are not paths and drop out)."""
    return [photo, motion_source, camera.camera, body_model, weights_dir]


# --- `hvg bonemap` --------------------------------------------------------------------------------------------------
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
        return {
            "out": str(self.out),
            "export": str(self.export) if self.export else None,
            "views": self.views,
            "frames": self.frames,
            "fps": float(self.fps),
            "fps_exact": f"{self.fps.numerator}/{self.fps.denominator}",
            "cached": self.cached,
            "seconds": round(self.seconds, 3),
        }


def bonemap_job(
    photo: Path,
    motion_source: str,
    settings: BonemapSettings,
    out: Path,
    export: Path | None = None,
    cache: StageCache | None = None,
    progress: Reporter = SILENT,
) -> BonemapResult:
    """`hvg bonemap`: render the bone maps of a job as a video (channels side by side, views in a grid)."""
    from hvg_cli.bonemap.render import grid_images, render_bonemaps, to_images
    from hvg_cli.io.video import write_video

    t0 = time.perf_counter()
    cache = cache or StageCache()
    # 0. Outputs checked before any work: known suffixes, never an input, never a folder hvg did not write
    outs = [(Path(out), _file_or_frames(Path(out)))] + ([(Path(export), "file")] if export is not None else [])
    check_outputs(outs, _job_inputs(photo, motion_source, settings.camera, settings.body_model))
    check_job_inputs(photo, motion_source, settings.body_model)
    # 1-5. Motion, subject, retargeting, cameras, alignment
    job = assemble_job(photo, motion_source, settings, cache, progress)
    V, T = job.grid.shape
    key = stages.stage_key(
        "bonemap_video",
        *job.key_parts,
        job.subject.radii,
        settings.channels,
        settings.grid,
        Path(out).suffix.lower(),
        export is not None,
    )

    def produce(folder: Path) -> None:
        # 6. Bone maps [V, T, H, W, ...] -> images [V, T, H, W * C, 3] -> one stream [T, H', W', 3]
        m = job.motion
        maps = render_bonemaps(m.poses, m.trans, m.skeleton, job.subject.radii, job.grid, progress)
        images = to_images(maps, settings.channels)  # [V, T, H, W * C, 3]
        frames = grid_images(images) if V > 1 else images[0]  # [T, H', W', 3]
        write_video(folder / ("bones" + Path(out).suffix), iter(frames), m.fps)
        if export is not None:
            np.savez(
                folder / "maps.npz",
                semantic=maps.semantic,
                normal=maps.normal,
                depth=maps.depth,
                mask=maps.mask,
                label=maps.label,
                K=job.grid.K,
                world_to_cam=job.grid.world_to_cam,
                fps=np.array([m.fps.numerator, m.fps.denominator]),
            )

    with cache.entry(key, produce) as (entry, cached):
        if cached:
            progress.note(f"bonemap: cached ({key.short})")
        # 7. The finished files to the user's paths, atomically
        atomic_copy(entry / ("bones" + Path(out).suffix), Path(out), previous_output=is_frames_folder)
        if export is not None:
            atomic_copy(entry / "maps.npz", Path(export))
    return BonemapResult(
        out=Path(out),
        export=export,
        views=V,
        frames=T,
        fps=job.motion.fps,
        cached=cached,
        seconds=time.perf_counter() - t0,
    )


# --- `hvg animate` --------------------------------------------------------------------------------------------------
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
        return {
            "outputs": [str(p) for p in self.outputs],
            "views": self.views,
            "frames": self.frames,
            "fps": float(self.fps),
            "fps_exact": f"{self.fps.numerator}/{self.fps.denominator}",
            "backend": self.backend,
            "cached": self.cached,
            "seconds": round(self.seconds, 3),
            "stage_seconds": {k: round(v, 3) for k, v in self.stage_seconds.items()},
        }


def choose_backend(requested: Backend, weights: Path | None) -> tuple[str, Path | None]:
    """`auto` -> diffusion when a weights folder is found, else preview. Returns (backend, weights folder)."""
    if requested == Backend.PREVIEW:
        return "preview", None
    found = find_weights(weights)
    if requested == Backend.DIFFUSION:
        if found is None:
            raise MissingWeights(
                f"no diffusion weights in {weights or DEFAULT_WEIGHTS}",
                "give --weights DIR, build a folder with `hvg weights init`, or use --backend preview",
            )
        return "diffusion", found
    return ("preview", None) if found is None else ("diffusion", found)


def output_paths(out: Path, views: int, per_view: bool) -> list[Path]:
    """Where each output goes: OUT, or OUT_view00.ext, OUT_view01.ext ... with --per-view."""
    out = Path(out)
    if not per_view:
        return [out]
    return [out.with_name(f"{out.stem}_view{v:02d}{out.suffix}") for v in range(views)]


def animate_job(
    photo: Path,
    motion_source: str,
    settings: AnimateSettings,
    out: Path,
    weights: Path | None = None,
    cache: StageCache | None = None,
    progress: Reporter = SILENT,
) -> AnimateResult:
    """`hvg animate`: the person in the photo performs the motion while the camera follows the path."""
    from hvg_cli.bonemap.render import grid_images
    from hvg_cli.io.video import write_video

    t0 = time.perf_counter()
    cache = cache or StageCache()
    seconds: dict[str, float] = {}
    # 0. Check what can be checked before any work: output kind and paths, background, backend and weights
    kind = _file_or_frames(Path(out))
    background = settings.background.value
    if background == "transparent" and kind != "frames":
        raise BadInput(
            f"{out}: transparent output needs PNG frames", "give -o a folder name without a suffix, e.g. -o frames/"
        )
    backend, weights_dir = choose_backend(settings.backend, weights)
    views = camera_path(settings.camera).num_views if settings.per_view else 1
    check_outputs(
        [(p, kind) for p in output_paths(Path(out), views, settings.per_view)],
        _job_inputs(photo, motion_source, settings.camera, settings.body_model, weights_dir),
    )
    check_job_inputs(photo, motion_source, settings.body_model)
    # 1-5. Motion, subject, retargeting, cameras, alignment
    job = assemble_job(photo, motion_source, settings, cache, progress, seconds)
    V, T = job.grid.shape
    motion = job.motion
    suffix = Path(out).suffix.lower()
    # every setting that changes the pictures: a diffusion render also holds the whole sampling (sampling, tiles,
    # anchors, dtype, ...), so `--sampling onepass` after a progressive run renders anew
    ds = diffusion_settings(settings, float(motion.fps)) if backend == "diffusion" else None
    weights_key = _weights_key(weights_dir)  # the weights' contents, hashed once for both keys
    identity = (
        backend,
        weights_key,
        background,
        settings.grid,
        settings.per_view,
        suffix,
        settings.audio,
        settings.seed,
        settings.steps,
        settings.guidance,
        None if ds is None else ds.sampling_key(),
        # a preview render is the preview model's pictures: a new mesh (its stage version) renders anew
        stages.VERSIONS["preview_model"] if backend == "preview" else None,
    )
    key = stages.stage_key("render", *job.key_parts, job.subject.radii, *identity)
    names = [f"out{v:02d}{suffix}" for v in range(V if settings.per_view else 1)]

    def produce(folder: Path) -> None:
        # 6. Generate every view and frame: [V, T, H, W, 3|4] uint8
        if settings.backend == Backend.AUTO:
            progress.note(
                f"backend: diffusion (weights {weights_dir})"
                if weights_dir
                else "backend: preview (no diffusion weights found; see weights/README.md)"
            )
        t = time.perf_counter()
        if backend == "preview":
            from hvg_cli.backends.preview.render import render_preview

            model = stages.preview_model(job.subject, cache, progress)
            frames = render_preview(
                job.subject, motion.poses, motion.trans, job.grid, background, progress, model=model
            )
            if background != "transparent":
                frames = frames[..., :3]
        else:
            assert weights_dir is not None  # choose_backend picks diffusion only with a weights folder
            assert weights_dir is not None and ds is not None  # backend "diffusion"
            frames = _generate_diffusion(job, weights_dir, weights_key, ds, cache, progress, seconds)
        seconds["generate"] = time.perf_counter() - t
        # 7. Write: one video, one per view, or the views as a grid
        t = time.perf_counter()
        audio = motion.audio_path if settings.audio else None
        streams = [frames[v] for v in range(V)] if settings.per_view else [grid_images(frames) if V > 1 else frames[0]]
        for name, stream in zip(names, streams):
            write_video(
                folder / name,
                iter(stream),
                motion.fps,
                audio_from=audio,
                audio_start=motion.start_time,
                audio_duration=T / float(motion.fps),
            )
        seconds["write"] = time.perf_counter() - t

    with cache.entry(key, produce) as (entry, cached):
        if cached:
            progress.note(f"render: cached ({key.short}), copying the finished video")
        # 8. The finished files to the user's paths, atomically
        t = time.perf_counter()
        outputs = output_paths(Path(out), V, settings.per_view)
        for name, dst in zip(names, outputs):
            atomic_copy(entry / name, dst, previous_output=is_frames_folder)
    seconds["copy"] = time.perf_counter() - t
    return AnimateResult(
        outputs=tuple(outputs),
        views=V,
        frames=T,
        fps=motion.fps,
        backend=backend,
        cached=cached,
        seconds=time.perf_counter() - t0,
        stage_seconds=seconds,
    )


# --- the diffusion backend inside `animate` ---------------------------------------------------------------------
def _weights_key(weights_dir: Path | None) -> str | None:
    if weights_dir is None:
        return None
    from hvg_cli.backends.diffusion import weights_identity

    return weights_identity(weights_dir)


def diffusion_settings(settings: AnimateSettings, fps: float) -> DiffusionSettings:
    """The diffusion backend's settings from `hvg animate`'s, with the motion's real frame rate (SVD's fps
    micro-conditioning)."""
    from hvg_cli.backends.diffusion import DiffusionSettings

    return DiffusionSettings(
        steps=settings.steps,
        guidance_max=settings.guidance,
        seed=settings.seed,
        fps=fps,
        guidance_ramp=settings.guidance_ramp.value,
        motion_bucket_id=settings.motion_bucket,
        noise_aug_strength=settings.noise_aug,
        sampling=settings.sampling.value,
        tile_views=settings.tile_views,
        tile_frames=settings.tile_frames,
        overlap_views=min(1, settings.tile_views - 1),
        overlap_frames=min(3, settings.tile_frames - 1),
        anchor_stride=settings.anchor_stride,
        device=settings.device,
        dtype=settings.dtype.value,
        offload=settings.offload,
    )


def animate_plan(
    motion_source: str,
    settings: AnimateSettings,
    weights: Path | None = None,
    cache: StageCache | None = None,
    progress: Reporter = SILENT,
) -> dict:
    """`hvg animate --dry-run`: the diffusion tile plan of a job (views, frames, tiles, UNet evaluations,
    memory per tile) without loading weights or reading the photo."""
    from hvg_cli.backends.diffusion import dry_run

    cache = cache or StageCache()
    motion = job_motion(motion_source, settings.timing, settings.max_gap, cache, progress)
    grid = camera_grid(settings.camera, motion.num_frames, settings.camera_mode)
    V, T = grid.shape
    plan = dry_run(
        V,
        T,
        grid.width,
        grid.height,
        diffusion_settings(settings, float(motion.fps)),
        closed=grid.closed,
        weights_dir=find_weights(weights),
    )
    return {"views": V, "frames": T, "width": grid.width, "height": grid.height, "fps": float(motion.fps), **plan}


def _generate_diffusion(
    job: Job,
    weights_dir: Path,
    weights_key: str | None,
    ds: DiffusionSettings,
    cache: StageCache,
    progress: Reporter,
    seconds: dict,
) -> np.ndarray:
    """The diffusion backend: aligned photo + aligned bone maps -> frames [V, T, H, W, 3] (ds: the job's
    diffusion settings, weights_key: the weights' identity, both as the render key holds them)."""
    from hvg_cli.align.similarity import warp_image
    from hvg_cli.backends.diffusion import generate
    from hvg_cli.bonemap.render import render_bonemaps

    grid, m = job.grid, job.motion
    t = time.perf_counter()
    maps = render_bonemaps(m.poses, m.trans, m.skeleton, job.subject.radii, grid, progress)  # [V, T, H, W, ...]
    seconds["bonemaps"] = time.perf_counter() - t
    # the photo's own alignment (as the first frame's): pelvis at the centre at the job's scale
    a = photo_alignment(job.subject, grid.width, grid.height)
    photo = warp_image(job.subject.image, float(a.scale[0, 0]), a.offset[0, 0], grid.width, grid.height)  # [H, W, 3]
    photo = np.clip(photo, 0, 255).astype(np.uint8)
    key = stages.stage_key("sampler", *job.key_parts, job.subject.radii, weights_key, ds.sampling_key())
    state = cache.scratch(key) if cache.enabled else None  # the sampler's resumable state, per step
    frames = generate(weights_dir, photo, maps, grid, ds, cache_dir=state, progress=progress)  # [V, T, H, W, 3]
    if state is not None:  # finished: the render stage's entry holds the result from now on
        shutil.rmtree(state, ignore_errors=True)
    return frames
