"""`hvg prepare` and `hvg train`: training data from the same cached stages `animate` uses, and the training run.

prepare_job: a dataset from three kinds of source, each a module of this package: synthetic clips (photos ×
  motions × a camera preset, rendered by the preview backend: pipeline.synthetic), monocular videos
  (pipeline.monocular) and calibrated multi-view captures (pipeline.multiview); every clip is encoded with the
  weights' VAE and CLIP encoder and written by train.prepare (resumable; bad clips skipped with one line).
train_job: TrainSettings -> train.loop.train with a validation callback that renders a fixed photo + motion +
  4-view orbit with the current weights through the diffusion backend's `generate` into OUT/validation/.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from hvg_cli.core.cache import StageCache
from hvg_cli.core.errors import BadInput
from hvg_cli.core.progress import SILENT, Reporter
from hvg_cli.core.settings import CameraSpec, SubjectSettings
from hvg_cli.core.types import BoneMaps, CameraGrid

if TYPE_CHECKING:
    from collections.abc import Callable

    from hvg_cli.train.loop import TrainResult
from hvg_cli.core.settings import PrepareSettings
from hvg_cli.pipeline.monocular import monocular_sources
from hvg_cli.pipeline.multiview import multiview_sources
from hvg_cli.pipeline.sources import expand_photos, expand_sources
from hvg_cli.pipeline.synthetic import synthetic_sources


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
