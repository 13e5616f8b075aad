"""The HVG diffusion backend: SVD's latent video UNet with articulated pose modulation, sampled in
overlapping view×time tiles (progressive: anchors first, then dense windows).

Public API (no torch import at package import time):
  DiffusionSettings                       settings.py
  generate(weights_dir, photo, maps, grid, settings, cache_dir, progress) -> [V, T, H, W, 3] uint8
  dry_run(views, frames, width, height, settings, closed, weights_dir) -> dict (plan + memory estimate)
  weights_identity(weights_dir) -> str   content hash of a weights folder (memoised by path, size, mtime)
  job_fingerprint(weights_dir, photo, maps, grid, settings) -> str   what a saved sampler state belongs to
  check_weights(path) / init_tiny(out) / init_from_base(base, out)   weights.py
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np

from hvg_cli.backends.diffusion.settings import DiffusionSettings, vae_factor
from hvg_cli.backends.diffusion.weights import check_weights, init_from_base, init_tiny  # torch only at first call
from hvg_cli.core.progress import SILENT, Reporter
from hvg_cli.core.types import BoneMaps, CameraGrid

__all__ = [
    "DiffusionSettings",
    "generate",
    "dry_run",
    "job_fingerprint",
    "weights_identity",
    "pose_control_untrained",
    "check_weights",
    "init_tiny",
    "init_from_base",
]


def weights_identity(weights_dir: str | os.PathLike) -> str:
    """The identity of a weights folder: every file's relative path and the sha256 of its CONTENTS.

    Fine-tuning re-saves weights with the same shapes and file sizes, so sizes say nothing. Each file is
    hashed once and remembered by (resolved path, size, mtime_ns) across processes
    (`core.cache.file_hash`), so a multi-GB folder costs one read per change, then a stat per file.
    Symlinked files (`weights init --base` links the SVD files) are hashed through the link.
    """
    from hvg_cli.core.cache import file_hash

    h = hashlib.sha256()
    root = Path(weights_dir).expanduser()
    for p in sorted(root.rglob("*")):
        if p.is_file():
            h.update(p.relative_to(root).as_posix().encode() + b"\0")
            h.update(file_hash(p).encode() + b"\n")
    return h.hexdigest()


def pose_control_untrained(meta: dict) -> bool:
    """Whether a folder's hvg.json says its pose control was never trained: "pose_control_trained": false, or,
    in folders written before that key, a base model with a fresh encoder (`weights init --base`)."""
    if "pose_control_trained" in meta:
        return not meta["pose_control_trained"]
    return bool(meta.get("base")) and not meta.get("untrained", False)


def job_fingerprint(
    weights_dir, photo: np.ndarray, maps: BoneMaps, grid: CameraGrid, settings: DiffusionSettings
) -> str:
    """What makes a saved sampler state valid for this job: weights (contents), inputs, sampling settings."""
    from hvg_cli.core.cache import array_hash, canonical_json

    parts = [
        weights_identity(weights_dir),
        array_hash(photo, maps.semantic, maps.normal, maps.depth, maps.mask, grid.K, grid.world_to_cam),
        canonical_json(settings.sampling_key()),
        str(bool(grid.closed)),
    ]
    return hashlib.sha256("|".join(parts).encode()).hexdigest()


def generate(
    weights_dir,
    photo: np.ndarray,
    maps: BoneMaps,
    grid: CameraGrid,
    settings: DiffusionSettings,
    cache_dir=None,
    progress: Reporter = SILENT,
) -> np.ndarray:
    """Generate every view and frame with the HVG diffusion model.

    weights_dir: an HVG weights folder (weights/README.md); checked, then loaded locally (safetensors only)
    photo:       [H, W, 3] uint8 reference photo, aligned like the bone maps
    maps:        BoneMaps [V, T, H, W] (aligned); grid: CameraGrid [V, T] (aligned intrinsics)
    settings:    DiffusionSettings; settings.fps should be the motion's frame rate
    cache_dir:   folder for the resumable sampler state (None: no resume)
    returns:     [V, T, H, W, 3] uint8 RGB
    """
    from hvg_cli.backends.diffusion.weights import load_pipeline, untrained_note

    pipe = load_pipeline(weights_dir, settings.device, settings.dtype, settings.offload)
    meta_path = Path(weights_dir) / "hvg.json"
    meta = json.loads(meta_path.read_text()) if meta_path.exists() else {}
    if (warning := untrained_note(meta)) is not None:
        progress.note(f"{weights_dir}: {warning}")
    elif pose_control_untrained(meta):
        progress.note(
            f"{weights_dir}: pose control has never been trained (a fresh pose encoder on the base "
            "model): the motion and the camera are ignored until it is trained (`hvg train`)"
        )
    # the fingerprint hashes every bone map: only worth it when there is a saved state to check
    fp = job_fingerprint(weights_dir, photo, maps, grid, settings) if cache_dir is not None else ""
    out = pipe(
        photo, maps, grid, settings, state_dir=cache_dir, fingerprint=fp, output_type="latent", progress=progress
    )
    with progress.task("diffusion decode", total=1, unit="grids") as task:
        frames = pipe.decode(out.frames, settings.decode_chunk, "uint8")  # [V, T, H, W, 3] uint8
        task.advance(1)
    pipe.maybe_free_model_hooks()
    return frames


def dry_run(
    views: int,
    frames: int,
    width: int,
    height: int,
    settings: DiffusionSettings,
    closed: bool = False,
    weights_dir=None,
) -> dict:
    """The tile plan, UNet evaluation counts, a per-tile memory estimate and where the pose features will
    live ("pose_features": kept on the device or recomputed per tile, see plan.pose_feature_policy), without
    loading weights."""
    from hvg_cli.backends.diffusion.plan import (
        device_free_bytes,
        make_plan,
        memory_estimate,
        pose_feature_channels,
        pose_feature_policy,
    )

    factor = 8
    wd = Path(weights_dir) if weights_dir is not None else None
    if wd is not None and (wd / "vae" / "config.json").exists():
        factor = vae_factor(wd)
    pe_cfg = None
    if wd is not None and (wd / "pose_encoder" / "config.json").exists():
        pe_cfg = json.loads((wd / "pose_encoder" / "config.json").read_text())
    h, w = height // factor, width // factor  # latent size
    plan = make_plan(views, frames, h, w, settings, closed=closed)
    dtype_bytes = 4 if settings.dtype == "fp32" else 2
    out = plan.summary()
    out["memory_estimate"] = memory_estimate(plan, weights_dir, dtype_bytes, offload=settings.offload)
    free = None
    if settings.pose_residuals == "auto":
        free = device_free_bytes(_dry_run_device(settings.device))
    out["pose_features"] = pose_feature_policy(
        plan,
        pose_feature_channels(pe_cfg),
        dtype_bytes,
        settings.pose_residuals,
        free,
        out["memory_estimate"]["total_bytes"],
    )
    out["pose_features"]["where"] = "device, once per frame" if out["pose_features"]["keep"] else "recomputed per tile"
    out["micro_conditioning"] = {
        "fps": settings.fps,
        "anchor_fps": settings.anchor_fps(),
        "motion_bucket_id": settings.motion_bucket_id,
        "noise_aug_strength": settings.noise_aug_strength,
    }
    other = settings.with_(sampling="onepass" if settings.sampling == "progressive" else "progressive")
    out["compare"] = {other.sampling: make_plan(views, frames, h, w, other, closed=closed).tile_evaluations}
    return out


def _dry_run_device(device: str) -> str:
    """The device a run would use, found without loading anything heavy when it can be."""
    if device != "auto":
        return device
    try:
        import torch
    except ImportError:
        return "cpu"
    return "cuda" if torch.cuda.is_available() else "cpu"
