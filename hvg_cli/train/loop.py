"""The training loop on accelerate: `train(settings, progress)`.

Runs as a plain process (one device) and under `accelerate launch` (many processes, many nodes: accelerate's
own config and launcher). What makes the result independent of how the work is split:
  * the global batch of an optimizer step holds G = batch_size × processes × grad_accum samples; sample j
    of step s reads clip data_index(seed, s·G + j) and draws σ, dropout and noise from a generator seeded by
    (seed, s, j) (randomness.py), whatever process or micro-batch computes it;
  * each process averages its micro-batch, accumulation divides by grad_accum and DDP averages over the
    processes: the gradient is the mean over the global batch.
So 1 process × batch 2b, 2 processes × batch b and 1 process × batch b × 2 accumulation steps train the
same weights (up to float summation order), and a resumed run reads and draws what the uninterrupted one did.

Files:
  WORK (settings.work_dir, default OUT + ".train"):
    checkpoints/checkpoint-<step>/   accelerate's save_state (trainable weights only, optimizer, LR schedule,
                                     EMA, RNG) + hvg_train_state.json; written under a temporary name, renamed
    metrics.csv                      one row per logged step (accelerate tracker "hvg_csv"; tensorboard too when
                                     installed, under WORK/logs)
  OUT: a weights folder like `hvg weights init` writes (check_weights passes it), assembled in a temporary
       sibling folder and renamed into place at the end: a failed or killed run leaves no OUT.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import hashlib
import json
import math
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from hvg_cli.backends.diffusion.settings import downscale
from hvg_cli.core.errors import BadInput, HvgError, MissingDependency, OutputError
from hvg_cli.core.progress import SILENT, Reporter

STATE_FILE = "hvg_train_state.json"
MIXED_PRECISION = ("no", "fp16", "bf16")
LR_SCHEDULES = ("constant", "cosine")


@dataclass(frozen=True)
class TrainSettings:
    """Everything `hvg train` needs. Paths are plain strings (the CLI passes what the user typed).

    weights: base HVG weights folder (`hvg weights init --base SVD` or another trained folder)
    data:    dataset folder (`hvg prepare`); out: the new weights folder (must not exist, or be empty)
    work_dir: checkpoints and metrics (default: OUT + ".train", beside OUT)
    unet:    what of the UNet trains besides pose encoder and view attention: temporal | all | lora | frozen
    batch_size: samples per process per micro-batch; global batch = batch_size × processes × grad_accum
    lr: learning rate of the UNet's trained parameters; lr_new: of the pose encoder and view attention
    warmup_steps: linear warm-up from 0; lr_schedule: constant | cosine (decay to 0 at `steps` after warm-up)
    p_mean, p_std: ln σ ~ N(p_mean, p_std²) (objective.NoiseLevels)
    drop_*: conditioning dropout probabilities (objective.ConditioningDropout)
    reference_swap: probability that a sample's reference (CLIP embedding and reference latent) is replaced by
             the reference of another clip of the same subject (reference_donors): the reference then shows the
             person in a pose unrelated to the target, so the pose can only come from the bone maps. Without it,
             a reference frame a few frames from the window shows nearly the target's pose, and copying the
             reference is the cheapest way down the loss (benchmarks/train_learns.py measured that)
    ema_decay: 0 = no EMA; else the exported weights are the EMA of the trained parameters
    checkpoint_every: steps between checkpoints (0 = none); checkpoints_total_limit: keep the newest N (0 = all)
    validate_every: steps between calls of train()'s `validate` callback (0 = never; the last step always)
    resume: None, "latest" (the newest checkpoint in work_dir; none yet = start fresh) or a checkpoint folder
    mixed_precision: no | fp16 | bf16 (accelerate's autocast; trained parameters stay float32)
    optimizer: adamw | adamw8bit (bitsandbytes, only if installed)
    cpu: force the CPU even where a GPU is present
    num_workers: DataLoader worker processes that read clips and build batches ahead (0 = in the loop)
    """

    weights: str
    data: str
    out: str
    work_dir: str | None = None
    unet: str = "temporal"
    steps: int = 1000
    batch_size: int = 1
    grad_accum: int = 1
    lr: float = 1e-5
    lr_new: float = 1e-4
    warmup_steps: int = 0
    lr_schedule: str = "constant"
    adam_beta1: float = 0.9
    adam_beta2: float = 0.999
    adam_eps: float = 1e-8
    weight_decay: float = 1e-2
    max_grad_norm: float = 1.0
    p_mean: float = 0.7
    p_std: float = 1.6
    drop_reference: float = 0.1
    drop_embedding: float = 0.05
    drop_latent: float = 0.05
    drop_pose: float = 0.05
    reference_swap: float = 0.0
    ema_decay: float = 0.0
    mixed_precision: str = "no"
    gradient_checkpointing: bool = False
    lora_rank: int = 16
    optimizer: str = "adamw"
    checkpoint_every: int = 500
    checkpoints_total_limit: int = 3
    validate_every: int = 0
    resume: str | None = None
    log_every: int = 1
    seed: int = 0
    cpu: bool = False
    num_workers: int = 0

    def __post_init__(self) -> None:
        from hvg_cli.train.model import UNET_MODES

        if self.unet not in UNET_MODES:
            raise BadInput(f"unknown --unet mode {self.unet!r}", f"use one of {', '.join(UNET_MODES)}")
        if self.mixed_precision not in MIXED_PRECISION:
            raise BadInput(f"unknown mixed precision {self.mixed_precision!r}", "use no, fp16 or bf16")
        if self.lr_schedule not in LR_SCHEDULES:
            raise BadInput(f"unknown LR schedule {self.lr_schedule!r}", "use constant or cosine")
        if self.optimizer not in ("adamw", "adamw8bit"):
            raise BadInput(f"unknown optimizer {self.optimizer!r}", "use adamw or adamw8bit")
        for name in ("steps", "batch_size", "grad_accum", "log_every"):
            if getattr(self, name) < 1:
                raise BadInput(f"{name} must be at least 1, got {getattr(self, name)}")
        for name in ("warmup_steps", "checkpoint_every", "checkpoints_total_limit", "validate_every", "num_workers"):
            if getattr(self, name) < 0:
                raise BadInput(f"{name} must be 0 or more, got {getattr(self, name)}")
        if not 0.0 <= self.reference_swap <= 1.0:
            raise BadInput(f"reference_swap must be a probability in [0, 1], got {self.reference_swap}")
        if not 0.0 <= self.ema_decay < 1.0:
            raise BadInput(f"ema_decay must be in [0, 1), got {self.ema_decay}")

    @property
    def work(self) -> Path:
        out = Path(self.out).expanduser()
        return Path(self.work_dir).expanduser() if self.work_dir else out.with_name(out.name + ".train")

    def math_key(self, global_batch: int) -> dict:
        """The settings that change what a step computes (a checkpoint only resumes under the same key).

        The split of the global batch (batch_size, processes, grad_accum) does not enter, only its size;
        nor do the step count, checkpointing, logging, paths or the device.
        """
        skip = {
            "weights",
            "data",
            "out",
            "work_dir",
            "steps",
            "batch_size",
            "grad_accum",
            "checkpoint_every",
            "checkpoints_total_limit",
            "validate_every",
            "resume",
            "log_every",
            "cpu",
            "num_workers",
            "lr_schedule",
            "warmup_steps",
        }
        key = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name not in skip}
        key["global_batch"] = global_batch
        key["lr_schedule"] = [self.lr_schedule, self.warmup_steps] + (
            [self.steps] if self.lr_schedule == "cosine" else []
        )
        return key


@dataclass(frozen=True)
class TrainResult:
    out: str  # the weights folder
    steps: int  # optimizer steps done in total
    resumed_from: int  # step the run started from (0 = fresh)
    final_loss: float  # mean loss over the global batch of the last step
    global_batch: int
    trained: dict = field(default_factory=dict)  # {"pose_encoder": n, "view_attention": n, "unet": n, "unet_mode": ...}
    metrics: str = ""  # metrics.csv
    data_manifest_sha256: str = ""


# ---------------------------------------------------------------------------------------------
# metrics: a CSV tracker for accelerate (always), tensorboard when installed
# ---------------------------------------------------------------------------------------------
def _csv_tracker_class():
    from accelerate.tracking import GeneralTracker, on_main_process

    class CSVTracker(GeneralTracker):
        """Appends one row per `log` call to a CSV file (columns fixed by the first row)."""

        name = "hvg_csv"
        requires_logging_directory = False
        main_process_only = True

        def __init__(self, path: Path, resume_step: int | None):
            super().__init__()
            self.path = Path(path)
            self.resume_step = resume_step
            self.columns: list[str] | None = None
            self._opened = False

        def _open(self) -> None:
            """First log: a fresh run starts a new file; a resumed run drops the rows a killed run logged
            after its checkpoint (they are logged again)."""
            self._opened = True
            if not self.path.exists():
                return
            if self.resume_step is None:
                self.path.unlink()
                return
            with open(self.path, newline="") as f:
                rows = list(csv.DictReader(f))
            if not rows:
                return
            self.columns = list(rows[0].keys())
            with open(self.path, "w", newline="") as f:
                w = csv.DictWriter(f, self.columns)
                w.writeheader()
                w.writerows(r for r in rows if int(r["step"]) <= self.resume_step)

        @property
        def tracker(self):
            return self.path

        @on_main_process
        def store_init_configuration(self, values: dict) -> None:
            pass

        @on_main_process
        def log(self, values: dict, step: int | None = None, **kwargs) -> None:
            if not self._opened:
                self._open()
            row = {"step": step, **values}
            new = self.columns is None
            if new:
                self.columns = list(row.keys())
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.path, "a", newline="") as f:
                w = csv.DictWriter(f, self.columns or list(row.keys()), extrasaction="ignore")
                if new and f.tell() == 0:
                    w.writeheader()
                w.writerow(row)

    return CSVTracker


# ---------------------------------------------------------------------------------------------
# checks before anything is written
# ---------------------------------------------------------------------------------------------
def _preflight(settings: TrainSettings):
    """Check base weights, dataset and their agreement; returns (report, dataset). Raises, writes nothing."""
    from hvg_cli.backends.diffusion.weights import check_weights
    from hvg_cli.train.dataset import TrainDataset

    out = Path(settings.out).expanduser()
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise BadInput(f"{out} exists and is not empty", "choose a new -o folder (the trained weights go there)")
    report = check_weights(settings.weights)  # MissingWeights: no folder / no pose encoder / bad tensors
    data = TrainDataset(settings.data)
    base = Path(settings.weights).expanduser()
    unet_cfg = json.loads((base / "unet" / "config.json").read_text())
    vae_cfg = json.loads((base / "vae" / "config.json").read_text())
    pe_cfg = json.loads((base / "pose_encoder" / "config.json").read_text())
    s = data.sizes
    factor = downscale(vae_cfg["block_out_channels"])
    problems = []
    if s["latent_channels"] != unet_cfg["out_channels"] or 2 * s["latent_channels"] != unet_cfg["in_channels"]:
        problems.append(
            f"latents have {s['latent_channels']} channels, the UNet takes {unet_cfg['in_channels']} = "
            f"2 × {unet_cfg['out_channels']}"
        )
    if s["embedding_dim"] != unet_cfg["cross_attention_dim"]:
        problems.append(
            f"CLIP embeddings have {s['embedding_dim']} values, the UNet's cross-attention takes "
            f"{unet_cfg['cross_attention_dim']}"
        )
    if s["height"] != s["latent_height"] * factor or s["width"] != s["latent_width"] * factor:
        problems.append(
            f"bone maps of {s['width']}x{s['height']} px do not match latents of "
            f"{s['latent_width']}x{s['latent_height']} at this VAE's factor {factor}"
        )
    if pe_cfg.get("downscale", factor) != factor:
        problems.append(f"the pose encoder downsamples by {pe_cfg.get('downscale')}, the VAE by {factor}")
    mult = downscale(unet_cfg["block_out_channels"])
    if s["latent_height"] % mult or s["latent_width"] % mult:
        problems.append(
            f"latents of {s['latent_width']}x{s['latent_height']} are not a multiple of {mult}, which this UNet needs"
        )
    if problems:
        raise BadInput(
            f"the dataset {settings.data} does not fit the weights {settings.weights}: {problems[0]}",
            "prepare the dataset with these weights (`hvg prepare --weights ...`)",
        )
    if settings.unet == "lora":
        try:
            import peft  # noqa: F401
        except ImportError:
            raise MissingDependency(
                "--unet lora needs the peft package", "pip install peft, or use --unet temporal"
            ) from None
    if settings.optimizer == "adamw8bit":
        try:
            import bitsandbytes  # noqa: F401
        except ImportError:
            raise MissingDependency(
                "--optimizer adamw8bit needs the bitsandbytes package",
                "pip install bitsandbytes, or use --optimizer adamw",
            ) from None
    return report, data


def _weights_identity(folder: Path) -> str:
    from hvg_cli.backends.diffusion import weights_identity

    return weights_identity(folder)


# ---------------------------------------------------------------------------------------------
# batches
# ---------------------------------------------------------------------------------------------
def _make_batch(clips, draws, precond, device):
    """Stack the samples of one micro-batch into the model's inputs (shapes in HVGDenoiser.forward), on `device`."""
    import torch

    from hvg_cli.backends.diffusion.pose_encoder import conditioning_torch

    x0s, noisy, embs, refs, ids, conds, keep_pose, sigmas = [], [], [], [], [], [], [], []
    for clip, d in zip(clips, draws):
        V, T, C, h, w = clip.latents.shape
        H, W = clip.mask.shape[2:]
        n = V * T
        x0 = torch.from_numpy(clip.latents).float().reshape(n, C, h, w)  # [V*T, C, h, w], view-major
        x0s.append(x0)
        noisy.append(x0 + d.sigma * d.noise)  # [V*T, C, h, w]
        embs.append(torch.from_numpy(clip.ref_embedding).float()[None] * float(d.keep_embedding))  # [1, D]
        refs.append(torch.from_numpy(clip.ref_latent).float() * float(d.keep_latent))  # [C, h, w]
        # SVD's micro-conditioning, as the sampler builds it from its integer fps setting
        ids.append(
            torch.tensor([round(clip.fps) - 1, clip.motion_bucket_id, clip.noise_aug_strength], dtype=torch.float32)
        )  # [3]
        conds.append(
            conditioning_torch(
                clip.semantic.reshape(n, H, W, 3),
                clip.normal.reshape(n, H, W, 3),
                clip.depth.reshape(n, H, W),
                clip.mask.reshape(n, H, W),
                clip.K.reshape(n, 3, 3),
                clip.world_to_cam.reshape(n, 4, 4),
                device=device,
            )
        )  # [V*T, 14, H, W]
        keep_pose.append(float(d.keep_pose))
        sigmas.append(d.sigma)
    sigma = torch.tensor(sigmas, dtype=torch.float32)  # [B]
    x0 = torch.stack(x0s)  # [B, F, C, h, w]
    x = torch.stack(noisy)  # [B, F, C, h, w]
    scaled = precond.c_in(sigma)[:, None, None, None, None] * x  # [B, F, C, h, w]
    inputs = dict(
        scaled=scaled,
        ref_latent=torch.stack(refs),
        c_noise=precond.c_noise(sigma),
        embedding=torch.stack(embs),
        time_ids=torch.stack(ids),
        pose_cond=torch.cat(conds),
        pose_keep=torch.tensor(keep_pose),
    )
    inputs = {k: v.to(device) for k, v in inputs.items()}
    return inputs, x.to(device), x0.to(device), sigma.to(device)


def subject_of(source: str) -> str:
    """The subject of a clip's source: a synthetic clip's source is "PHOTO|MOTION" (the photo), a video's the video."""
    return source.split("|", 1)[0]


def reference_donors(sources: list[str]) -> list[list[int]]:
    """For each clip i, the clips whose reference may replace its own under reference_swap: the clips of the same
    subject from another source (the same photo performing another motion), else the same subject's other clips
    (other windows of the same video); [] when the subject has one clip only."""
    by_subject: dict[str, list[int]] = {}
    for i, src in enumerate(sources):
        by_subject.setdefault(subject_of(src), []).append(i)
    out = []
    for i, src in enumerate(sources):
        same = [k for k in by_subject[subject_of(src)] if k != i]
        other = [k for k in same if sources[k] != src]
        out.append(other or same)
    return out


class _StepBatches:
    """A map-style dataset whose item k is micro-batch k % grad_accum of step start + k // grad_accum for this
    process, built on the CPU: a pure function of (seed, step, micro-batch, rank), so DataLoader workers can
    build batches ahead in any order and the run stays exact. Module-level, so workers can unpickle it."""

    def __init__(
        self,
        data,
        settings: TrainSettings,
        G: int,
        P: int,
        rank: int,
        start: int,
        latent_shape,
        levels,
        dropout,
        precond,
    ):
        self.data, self.settings, self.G, self.P, self.rank, self.start = data, settings, G, P, rank, start
        self.latent_shape, self.levels, self.dropout, self.precond = latent_shape, levels, dropout, precond

    def __len__(self) -> int:
        return (self.settings.steps - self.start) * self.settings.grad_accum

    def _swap(self, clip, step: int, j: int):
        """The clip with, at probability reference_swap, another clip's reference (randomness.swap_draws)."""
        from hvg_cli.train.randomness import swap_draws

        if not hasattr(self, "_donors"):
            self._ids = {c["id"]: i for i, c in enumerate(self.data.clips)}
            self._donors = reference_donors([c.get("source", "") for c in self.data.clips])
        u, r = swap_draws(self.settings.seed, step, j)
        donors = self._donors[self._ids[clip.id]]
        if u >= self.settings.reference_swap or not donors:
            return clip
        donor = self.data[donors[min(int(r * len(donors)), len(donors) - 1)]]
        return dataclasses.replace(clip, ref_latent=donor.ref_latent, ref_embedding=donor.ref_embedding)

    def __getitem__(self, k: int):
        from hvg_cli.train.randomness import data_index, draw_sample, global_indices

        st = self.settings
        s, a = self.start + k // st.grad_accum, k % st.grad_accum
        idx = global_indices(self.G, self.P, self.rank, a, st.batch_size)
        clips = [self.data[data_index(st.seed, s * self.G + j, len(self.data))] for j in idx]
        if st.reference_swap > 0:
            clips = [self._swap(clip, s, j) for clip, j in zip(clips, idx)]
        draws = [draw_sample(st.seed, s, j, self.latent_shape, self.levels, self.dropout) for j in idx]
        return _make_batch(clips, draws, self.precond, "cpu")


def _lr_lambda(settings: TrainSettings):
    def f(step: int) -> float:
        if settings.warmup_steps and step < settings.warmup_steps:
            return (step + 1) / settings.warmup_steps
        if settings.lr_schedule == "cosine":
            span = max(1, settings.steps - settings.warmup_steps)
            progress = min(1.0, (step - settings.warmup_steps) / span)
            return 0.5 * (1.0 + math.cos(math.pi * progress))
        return 1.0

    return f


# ---------------------------------------------------------------------------------------------
# checkpoints
# ---------------------------------------------------------------------------------------------
def _checkpoints(work: Path) -> list[tuple[int, Path]]:
    root = work / "checkpoints"
    if not root.is_dir():
        return []
    found = []
    for p in root.iterdir():
        if p.is_dir() and p.name.startswith("checkpoint-") and (p / STATE_FILE).exists():
            try:
                found.append((int(p.name.split("-", 1)[1]), p))
            except ValueError:
                continue
    return sorted(found)


def _resolve_resume(settings: TrainSettings) -> Path | None:
    if settings.resume is None:
        return None
    if settings.resume == "latest":
        found = _checkpoints(settings.work)
        return found[-1][1] if found else None
    path = Path(settings.resume).expanduser()
    if not (path / STATE_FILE).exists():
        raise BadInput(
            f"{path} is not a training checkpoint (no {STATE_FILE})",
            "use --resume latest or a checkpoint-N folder from the work folder",
        )
    return path


def _save_checkpoint(accelerator, work: Path, step: int, key_hash: str, limit: int) -> None:
    """accelerate's save_state into a temporary folder, then renamed to checkpoint-<step>; prune to `limit`."""
    root = work / "checkpoints"
    tmp = root / f".checkpoint-{step}.tmp"
    final = root / f"checkpoint-{step}"
    if accelerator.is_main_process:
        if tmp.exists():
            shutil.rmtree(tmp)
        tmp.mkdir(parents=True)
    accelerator.wait_for_everyone()
    accelerator.save_state(str(tmp))
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        (tmp / STATE_FILE).write_text(json.dumps({"step": step, "key": key_hash}) + "\n")
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
        if limit:
            for _, old in _checkpoints(work)[:-limit]:
                shutil.rmtree(old, ignore_errors=True)
    accelerator.wait_for_everyone()


# ---------------------------------------------------------------------------------------------
# the output folder
# ---------------------------------------------------------------------------------------------
def _link_or_copy_tree(src: Path, dst: Path) -> None:
    """Copy a component folder: symlinks stay links (to their resolved target), files are hard-linked where
    the file system allows, else copied. Pickle files are never carried over."""
    from hvg_cli.backends.diffusion.weights import PICKLE_SUFFIXES

    dst.mkdir(parents=True)
    for p in sorted(src.iterdir()):
        if p.suffix.lower() in PICKLE_SUFFIXES:
            continue
        target = dst / p.name
        if p.is_dir():
            _link_or_copy_tree(p, target)
        elif p.is_symlink():
            os.symlink(p.resolve(), target)
        else:
            try:
                os.link(p, target)
            except OSError:
                shutil.copy2(p, target)


def _export(settings: TrainSettings, unet, pose_encoder, provenance: dict, extra: dict | None = None) -> Path:
    """Assemble the weights folder beside OUT, check it, rename it to OUT. Returns OUT.

    extra: {name in OUT: existing file or folder to copy} (the metrics, the validation renders)."""
    from hvg_cli.backends.diffusion.weights import check_weights

    base = Path(settings.weights).expanduser()
    out = Path(settings.out).expanduser()
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    if tmp.exists():
        shutil.rmtree(tmp)
    try:
        tmp.mkdir(parents=True)
        for comp in ("vae", "image_encoder", "scheduler", "feature_extractor"):
            _link_or_copy_tree(base / comp, tmp / comp)
        shutil.copy2(base / "model_index.json", tmp / "model_index.json")
        unet.save_pretrained(tmp / "unet", safe_serialization=True)
        pose_encoder.save_pretrained(tmp / "pose_encoder", safe_serialization=True)
        base_meta = json.loads((base / "hvg.json").read_text()) if (base / "hvg.json").exists() else {}
        meta = {
            "format": "hvg-diffusion",
            "version": 1,
            "untrained": bool(base_meta.get("untrained", False)),
            "base": str(base),
            "note": f"trained by hvg train for {provenance['steps']} steps",
            "training": provenance,
        }
        (tmp / "hvg.json").write_text(json.dumps(meta, indent=2) + "\n")
        (tmp / "README.md").write_text(
            "# HVG weights trained with `hvg train`\n\nProvenance (base, data manifest hash, steps, what was trained) "
            'is in hvg.json under "training".\n'
            + (
                "\nThe base was UNTRAINED random weights: so is the video this folder makes.\n"
                if meta["untrained"]
                else ""
            )
        )
        for name, src in (extra or {}).items():
            if Path(src).is_dir():
                shutil.copytree(src, tmp / name)
            elif Path(src).exists():
                shutil.copy2(src, tmp / name)
        check_weights(tmp)
        if out.exists():
            out.rmdir()  # empty (checked before training)
        os.replace(tmp, out)
    except BaseException as e:
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(e, OSError):
            raise OutputError(f"cannot write {out}: {e.strerror or e}", "check free disk space and permissions") from e
        raise
    return out


# ---------------------------------------------------------------------------------------------
# the loop
# ---------------------------------------------------------------------------------------------
def train(settings: TrainSettings, progress: Reporter = SILENT, validate=None) -> TrainResult:
    """Train pose encoder + view attention (+ the UNet per settings.unet) on a dataset; write OUT.

    Works in a plain process and under `accelerate launch` (every process calls it with the same settings).
    Raises BadInput / MissingWeights / MissingDependency before writing anything when the inputs do not fit.
    validate: optional callable(step, unet, pose_encoder, folder) run on the main process every
              settings.validate_every steps and after the last, with the weights that would be exported
              (EMA swapped in), modules in eval mode, under no_grad; `folder` (WORK/validation/step-N) is
              where it writes (e.g. a fixed photo + motion + 4-view orbit rendered through HVGPipeline). The
              validation folder is copied into OUT/validation at the end.
    """
    import torch
    from accelerate import Accelerator
    from accelerate.utils import ProjectConfiguration

    from hvg_cli.train.model import HVGDenoiser, add_lora, load_components, select_trainable
    from hvg_cli.train.objective import ConditioningDropout, NoiseLevels, Preconditioning, edm_loss

    # 1. Check everything that can be checked before a file is written
    report, data = _preflight(settings)
    on_cpu = settings.cpu or not torch.cuda.is_available()
    if settings.mixed_precision != "no" and on_cpu:
        # fp16 needs a GPU's scaler; bf16 on the CPU was measured here (torch 2.13, oneDNN) to return NaN weight
        # gradients from the UNet's temporal Conv3d backward while the same op in float32 is finite
        raise BadInput(
            f"{settings.mixed_precision} mixed precision is not supported on the CPU",
            "use --mixed-precision no on the CPU (bf16/fp16 on a GPU)",
        )
    levels = NoiseLevels(settings.p_mean, settings.p_std)
    dropout = ConditioningDropout(
        settings.drop_reference, settings.drop_embedding, settings.drop_latent, settings.drop_pose
    )
    unet, pose_encoder, sched_cfg = load_components(settings.weights)
    precond = Preconditioning.from_scheduler_config(sched_cfg)
    resume_dir = _resolve_resume(settings)
    work = settings.work
    if settings.resume is None and _checkpoints(work):
        raise BadInput(
            f"{work / 'checkpoints'} holds checkpoints of an earlier run",
            "continue it with --resume latest, or delete that folder to start afresh",
        )

    # 2. accelerate: processes, device, mixed precision, trackers
    trackers = [_csv_tracker_class()(work / "metrics.csv", _checkpoint_step(resume_dir))]
    try:
        from accelerate.utils import is_tensorboard_available

        if is_tensorboard_available():
            trackers.append("tensorboard")
    except ImportError:
        pass
    # a process may call train() more than once (tests, notebooks) with other precision settings: forget the
    # previous run's accelerator state, keep the process group (PartialState) of a distributed launch
    from accelerate.state import AcceleratorState, GradientState

    AcceleratorState._reset_state(reset_partial_state=False)
    GradientState._reset_state()
    from accelerate.utils import DistributedDataParallelKwargs

    # with one view the view attention reduces to to_out(to_v(.)) (views.ViewAttention): its to_q / to_k take no
    # part in the loss, and DDP must be told to look for such parameters (a graph walk per step; V > 1 uses all)
    ddp = DistributedDataParallelKwargs(find_unused_parameters=data.sizes["views"] == 1)
    accelerator = Accelerator(
        mixed_precision=settings.mixed_precision,
        cpu=settings.cpu,
        log_with=trackers,
        kwargs_handlers=[ddp],
        project_config=ProjectConfiguration(project_dir=str(work), logging_dir=str(work / "logs")),
    )
    P, rank = accelerator.num_processes, accelerator.process_index
    G = settings.batch_size * P * settings.grad_accum
    key = settings.math_key(G)
    key["base"] = _weights_identity(Path(settings.weights).expanduser())
    key["data"] = data.manifest_sha256
    key_hash = hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()

    # 3. What trains
    if settings.unet == "lora":
        add_lora(unet, settings.lora_rank)
    model = HVGDenoiser(unet, pose_encoder)
    names = select_trainable(model, settings.unet)
    if settings.gradient_checkpointing:
        unet.enable_gradient_checkpointing()
    model.train()
    params = dict(model.named_parameters())
    groups = [{"params": [params[n] for n in names["new"]], "lr": settings.lr_new}]
    if names["unet"]:
        groups.append({"params": [params[n] for n in names["unet"]], "lr": settings.lr})
    trained = {
        "pose_encoder": sum(params[n].numel() for n in names["new"] if n.startswith("pose_encoder.")),
        "view_attention": sum(params[n].numel() for n in names["new"] if not n.startswith("pose_encoder.")),
        "unet": sum(params[n].numel() for n in names["unet"]),
        "unet_mode": settings.unet,
    }
    trainable_names = set(names["new"]) | set(names["unet"])
    if settings.optimizer == "adamw8bit":
        import bitsandbytes as bnb

        opt_cls = bnb.optim.AdamW8bit
    else:
        opt_cls = torch.optim.AdamW
    optimizer = opt_cls(
        groups,
        betas=(settings.adam_beta1, settings.adam_beta2),
        eps=settings.adam_eps,
        weight_decay=settings.weight_decay,
    )
    # the LR schedule is stepped once per optimizer step here (accelerate's prepared scheduler would step
    # once per process), and checkpointed as a custom object
    lr_sched = torch.optim.lr_scheduler.LambdaLR(optimizer, _lr_lambda(settings))
    model, optimizer = accelerator.prepare(model, optimizer)
    core = accelerator.unwrap_model(model)
    trainable = [p for n, p in core.named_parameters() if n in trainable_names]
    ema = None
    if settings.ema_decay > 0:
        from diffusers.training_utils import EMAModel

        ema = EMAModel(trainable, decay=settings.ema_decay)
        ema.to(accelerator.device)
    accelerator.register_for_checkpointing(lr_sched)
    if ema is not None:
        accelerator.register_for_checkpointing(ema)
    _register_trainable_only_hooks(accelerator, trainable_names)

    # 4. Resume
    start = 0
    if resume_dir is not None:
        state = json.loads((resume_dir / STATE_FILE).read_text())
        if state.get("key") != key_hash:
            raise BadInput(
                f"{resume_dir} was saved with other settings, weights, data or global batch size",
                "resume with the settings of that run, or start without --resume",
            )
        accelerator.load_state(str(resume_dir))
        start = int(state["step"])
        if accelerator.is_main_process:
            progress.note(f"resuming from {resume_dir} (step {start})")
    elif settings.resume == "latest" and accelerator.is_main_process:
        progress.note(f"no checkpoint in {work / 'checkpoints'}: starting from step 0")
    if start > settings.steps:
        raise BadInput(f"the checkpoint is at step {start}, beyond --steps {settings.steps}")
    accelerator.init_trackers(
        "hvg-train",
        config={k: v for k, v in dataclasses.asdict(settings).items() if isinstance(v, (int, float, str, bool))},
    )

    # 5. Train: step s reads global samples s·G + j, j < G; this process computes its share
    loss_value = float("nan")
    V, T = data.sizes["views"], data.sizes["frames"]
    latent_shape = (V * T, data.sizes["latent_channels"], data.sizes["latent_height"], data.sizes["latent_width"])
    task_ctx = progress.task("training", total=settings.steps, unit="steps") if accelerator.is_main_process else None
    task = task_ctx.__enter__() if task_ctx is not None else None
    ok = False
    try:
        if task is not None and start:
            task.advance(start)
        t0 = time.perf_counter()
        batches = _StepBatches(data, settings, G, P, rank, start, latent_shape, levels, dropout, precond)
        loader = iter(
            torch.utils.data.DataLoader(
                batches,  # type: ignore[arg-type]  # an iterable of ready batches, as an IterableDataset is
                batch_size=None,
                shuffle=False,
                num_workers=settings.num_workers,
            )
        )
        dev = accelerator.device
        for s in range(start, settings.steps):
            local_losses = []
            for a in range(settings.grad_accum):
                inputs, noisy, x0, sigma = next(loader)  # micro-batch a of step s (see _StepBatches)
                inputs = {k: v.to(dev) for k, v in inputs.items()}
                noisy, x0, sigma = noisy.to(dev), x0.to(dev), sigma.to(dev)
                sync = a == settings.grad_accum - 1
                with accelerator.no_sync(model) if not sync else contextlib.nullcontext():
                    out = model(**inputs, num_views=V)  # [b, F, C, h, w]
                    losses = edm_loss(precond, out, noisy, x0, sigma)  # [b]
                    accelerator.backward(losses.mean() / settings.grad_accum)
                local_losses.append(losses.detach())
            grad_norm = None
            if settings.max_grad_norm > 0:
                grad_norm = accelerator.clip_grad_norm_(trainable, settings.max_grad_norm)
            optimizer.step()
            lr_sched.step()
            optimizer.zero_grad(set_to_none=True)
            if ema is not None:
                ema.step(trainable)
            step_done = s + 1
            all_losses = accelerator.gather(torch.cat(local_losses))  # [G]
            loss_value = float(all_losses.mean())
            skipped = settings.mixed_precision == "fp16" and accelerator.optimizer_step_was_skipped
            if not skipped and not (
                math.isfinite(loss_value) and (grad_norm is None or math.isfinite(float(grad_norm)))
            ):
                raise HvgError(
                    f"training diverged at step {step_done}: loss {loss_value}, gradient norm {grad_norm}",
                    "lower --lr / --lr-new, or resume from the last checkpoint with other settings",
                )
            if step_done % settings.log_every == 0 or step_done == settings.steps:
                row = {
                    "loss": loss_value,
                    "lr_new": optimizer.param_groups[0]["lr"],
                    "lr_unet": optimizer.param_groups[-1]["lr"] if names["unet"] else 0.0,
                    "grad_norm": float(grad_norm) if grad_norm is not None else float("nan"),
                    "seconds": round(time.perf_counter() - t0, 3),
                }
                accelerator.log(row, step=step_done)
            if (
                validate is not None
                and settings.validate_every
                and (step_done % settings.validate_every == 0 or step_done == settings.steps)
            ):
                _run_validation(accelerator, validate, step_done, core, ema, trainable, work)
            if settings.checkpoint_every and step_done % settings.checkpoint_every == 0 and step_done < settings.steps:
                _save_checkpoint(accelerator, work, step_done, key_hash, settings.checkpoints_total_limit)
            if task is not None:
                task.advance(1)
        ok = True
    finally:
        if task_ctx is not None:
            task_ctx.__exit__(None, None, None)
        # the trackers close; accelerator.end_training() would also destroy the process group, which the
        # export below and a caller running train() again still need
        for tracker in accelerator.trackers:
            tracker.finish()
        if not ok:
            accelerator.free_memory()

    # 6. Export (main process): EMA weights if on, LoRA merged, into OUT atomically
    accelerator.wait_for_everyone()
    out = Path(settings.out).expanduser()
    if accelerator.is_main_process:
        if ema is not None:
            ema.copy_to(trainable)
        export_unet = core.unet
        if settings.unet == "lora":
            from hvg_cli.train.model import merge_lora

            merge_lora(export_unet)
        provenance = {
            "base": str(Path(settings.weights).expanduser()),
            "base_meta": report.meta,
            "data": str(Path(settings.data).expanduser()),
            "data_manifest_sha256": data.manifest_sha256,
            "data_clips": len(data),
            "steps": settings.steps,
            "global_batch": G,
            "processes": P,
            "trained": trained,
            "ema_decay": settings.ema_decay,
            "seed": settings.seed,
            "objective": {
                "p_mean": settings.p_mean,
                "p_std": settings.p_std,
                "sigma_data": precond.sigma_data,
                "prediction_type": precond.prediction_type,
            },
            "settings": {k: v for k, v in dataclasses.asdict(settings).items()},
        }
        core.float()
        _export(
            settings,
            export_unet,
            core.pose_encoder,
            provenance,
            extra={"training_metrics.csv": work / "metrics.csv", "validation": work / "validation"},
        )
    accelerator.wait_for_everyone()
    return TrainResult(
        out=str(out),
        steps=settings.steps,
        resumed_from=start,
        final_loss=loss_value,
        global_batch=G,
        trained=trained,
        metrics=str(work / "metrics.csv"),
        data_manifest_sha256=data.manifest_sha256,
    )


def _run_validation(accelerator, validate, step: int, core, ema, trainable, work: Path) -> None:
    """Call `validate` on the main process with the exported weights (EMA swapped in, then swapped back)."""
    import torch

    if accelerator.is_main_process:
        folder = work / "validation" / f"step-{step}"
        folder.mkdir(parents=True, exist_ok=True)
        if ema is not None:
            ema.store(trainable)
            ema.copy_to(trainable)
        core.eval()
        try:
            with torch.no_grad():
                validate(step, core.unet, core.pose_encoder, folder)
        finally:
            core.train()
            if ema is not None:
                ema.restore(trainable)
    accelerator.wait_for_everyone()


def _checkpoint_step(resume_dir: Path | None) -> int | None:
    if resume_dir is None:
        return None
    return int(json.loads((resume_dir / STATE_FILE).read_text())["step"])


def _register_trainable_only_hooks(accelerator, trainable_names: set[str]) -> None:
    """Checkpoints hold only the trained parameters (the frozen base is in the weights folder already)."""
    from safetensors.torch import load_file

    def strip(name: str) -> str:
        return name[len("module.") :] if name.startswith("module.") else name

    def save_hook(models, weights, output_dir):
        for i, w in enumerate(weights):
            weights[i] = {k: v for k, v in w.items() if strip(k) in trainable_names}

    def load_hook(models, input_dir):
        for i, m in enumerate(list(models)):
            fname = "model.safetensors" if i == 0 else f"model_{i}.safetensors"
            state = load_file(os.path.join(input_dir, fname))
            state = {strip(k): v for k, v in state.items()}
            if set(state) != trainable_names:
                raise BadInput(
                    f"{input_dir} holds other trained parameters than this run trains",
                    "resume with the --unet mode of that run",
                )
            core = accelerator.unwrap_model(m)
            missing, unexpected = core.load_state_dict(state, strict=False)
            if unexpected:
                raise BadInput(f"{input_dir}: unexpected tensors {unexpected[:3]}")
        models.clear()

    accelerator.register_save_state_pre_hook(save_hook)
    accelerator.register_load_state_pre_hook(load_hook)


def evaluate_loss(
    weights: str | os.PathLike,
    data: str | os.PathLike,
    seed: int = 0,
    samples: int | None = None,
    p_mean: float = 0.7,
    p_std: float = 1.6,
) -> float:
    """Mean EDM loss of a weights folder on a dataset, with fixed draws and no conditioning dropout.

    Sample i reads clip i mod N and draws σ and noise from the evaluation stream (seed, step −2, i), the
    same for every weights folder, so two folders' losses compare like for like. samples: default N.
    """
    import torch

    from hvg_cli.train.dataset import TrainDataset
    from hvg_cli.train.model import HVGDenoiser, load_components
    from hvg_cli.train.objective import ConditioningDropout, NoiseLevels, Preconditioning, edm_loss
    from hvg_cli.train.randomness import draw_sample

    ds = TrainDataset(data)
    unet, pose_encoder, sched_cfg = load_components(Path(weights))
    precond = Preconditioning.from_scheduler_config(sched_cfg)
    model = HVGDenoiser(unet, pose_encoder).eval()
    s = ds.sizes
    shape = (s["views"] * s["frames"], s["latent_channels"], s["latent_height"], s["latent_width"])
    none = ConditioningDropout(0.0, 0.0, 0.0, 0.0)
    losses = []
    with torch.no_grad():
        for i in range(samples or len(ds)):
            d = draw_sample(seed, -2, i, shape, NoiseLevels(p_mean, p_std), none)
            inputs, noisy, x0, sigma = _make_batch([ds[i % len(ds)]], [d], precond, "cpu")
            losses.append(float(edm_loss(precond, model(**inputs, num_views=s["views"]), noisy, x0, sigma)[0]))
    return sum(losses) / len(losses)
