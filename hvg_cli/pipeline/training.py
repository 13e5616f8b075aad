"""`hvg prepare` and `hvg train`: training data from the same cached stages `animate` uses, and the training run.

prepare_job: photos × motions × a camera preset -> synthetic multi-view clips rendered with the preview backend
  (stages.subject, stages.preview_model, the motion placed on the subject as animate places it, cameras from the
  preset in "views" mode, aligned by jobs.align_job exactly as animate aligns; bone maps rendered for the aligned
  cameras). Each (photo, motion) is rendered once; its windows (train.windows) become clips. The reference
  image of a clip is the front view (view 0) of a frame OUTSIDE the window (train.windows picks the nearest
  frame at least `gap` frames away): the model has to move the person into the bone maps' pose, it cannot
  copy a target frame. Targets are the preview renders (`target="preview"`) or the bone maps' semantic colours
  as a silhouette (`target="bonemap"`), on a plain background.
  Monocular videos and multi-view captures are not wired yet (see README "Training data layouts").
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

import numpy as np

from hvg_cli.core.cache import StageCache
from hvg_cli.core.errors import BadInput, HvgError
from hvg_cli.core.progress import SILENT, Reporter
from hvg_cli.core.settings import CameraSpec, SubjectSettings

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
    maps: object  # BoneMaps [V, T, H, W]
    grid: object  # CameraGrid [V, T], aligned intrinsics
    fps: float


def render_synthetic(photo: Path, motion_source: str, settings: PrepareSettings, cache: StageCache,
                     progress: Reporter = SILENT) -> SyntheticRender:
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


def _slice(render: SyntheticRender, frames: tuple[int, ...]):
    """(frames [V, t, H, W, 3], BoneMaps [V, t, ...], CameraGrid [V, t]) of the window's track frames."""
    from hvg_cli.core.types import BoneMaps

    idx = list(frames)
    m = render.maps
    maps = BoneMaps(semantic=m.semantic[:, idx], normal=m.normal[:, idx], depth=m.depth[:, idx], mask=m.mask[:, idx],
                    label=m.label[:, idx])
    grid = dataclasses.replace(render.grid, K=render.grid.K[:, idx], world_to_cam=render.grid.world_to_cam[:, idx],
                               closed=False)
    return render.frames[:, idx], maps, grid


def synthetic_sources(photos, motions, settings: PrepareSettings, cache: StageCache, progress: Reporter = SILENT):
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
                    return ClipInputs(photo=np.ascontiguousarray(ref), frames=np.ascontiguousarray(frames), maps=maps,
                                      grid=grid, fps=r.fps / settings.frame_step, source=f"{photo}|{motion}",
                                      licence=settings.licence, synthetic=True,
                                      reference=f"{photo}|{motion}|frame {w.reference}|view 0")

                sources.append(ClipSource(f"syn-{ph}-{mname}-{key}-{w.id_suffix}", load))
    return sources


def prepare_job(out: Path, weights: Path, synthetic=(), motions=(), settings: PrepareSettings = PrepareSettings(),
                videos=(), cache: StageCache | None = None, progress: Reporter = SILENT) -> PrepareResult:
    """`hvg prepare`: write (or continue) the dataset at `out`.

    weights: an HVG weights folder whose VAE and CLIP encoder encode the clips (the same folder, or one with the
    same VAE and image encoder, as the one trained). synthetic: photos (files, folders, .txt lists) rendered
    performing each of `motions` (presets, .npz, .bvh) through `settings.cameras`. videos: monocular footage -
    not wired yet (BadInput).
    """
    from hvg_cli.backends.diffusion.weights import load_pipeline
    from hvg_cli.train.dataset import TrainDataset
    from hvg_cli.train.prepare import prepare_clips

    if videos:
        raise BadInput("monocular videos are not supported by `hvg prepare` yet",
                       "use --synthetic PHOTOS --motions ... (see README, Training data layouts)")
    if not synthetic:
        raise BadInput("nothing to prepare", "give --synthetic PHOTOS --motions PRESETS")
    if not motions:
        raise BadInput("--synthetic needs --motions", "e.g. --motions dance,wave (hvg pose --list-presets)")
    cache = cache or StageCache()
    from hvg_cli.pipeline.commands import camera_grid

    camera_grid(settings.camera_spec(), 1, "views")  # a bad preset or view count: one error before any work
    photos = expand_photos(synthetic)
    sources = synthetic_sources(photos, list(motions), settings, cache, progress)
    if not sources:
        raise BadInput(f"no window of {settings.length} frames fits the motions", "lower --length or --gap")
    pipe = load_pipeline(weights, "cpu" if not _has_cuda() else "auto", "fp32")
    summary = prepare_clips(pipe, sources, out, total=len(sources), clips_per_shard=settings.clips_per_shard,
                            seed=settings.seed, progress=progress)
    total = len(TrainDataset(out)) if (Path(out) / "manifest.json").exists() else 0
    return PrepareResult(str(out), summary.written, summary.existing, summary.skipped, summary.seconds,
                         summary.clips_per_s, total)


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
    maps: object  # BoneMaps [V, T, H, W]
    grid: object  # CameraGrid [V, T]
    fps: float


def validation_inputs(job: ValidationJob, width: int, height: int, frames: int, cache: StageCache,
                      progress: Reporter = SILENT) -> ValidationInputs:
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


def make_validator(base: Path, inputs: ValidationInputs, job: ValidationJob):
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
            ds = DiffusionSettings(steps=job.steps, seed=job.seed, device="cpu" if not _has_cuda() else "auto",
                                   dtype="fp32", fps=max(1, int(round(inputs.fps))))  # the fps clips are stored with
            frames = generate(scratch, inputs.photo, inputs.maps, inputs.grid, ds)  # [V, T, H, W, 3]
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        np.save(Path(folder) / "frames.npy", frames)
        write_video(Path(folder) / "orbit.mp4", iter(grid_images(frames)), max(1, round(inputs.fps)))

    return validate


def train_job(settings, validation: ValidationJob | None = None, cache: StageCache | None = None,
              progress: Reporter = SILENT):
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
