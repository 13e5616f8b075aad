"""The HVG diffusion backend: SVD's latent video UNet with articulated pose modulation, sampled in
overlapping view×time tiles (progressive: anchors first, then dense windows).

Public API (no torch import at package import time):
  DiffusionSettings                       settings.py
  generate(weights_dir, photo, maps, grid, settings, cache_dir, progress) -> [V, T, H, W, 3] uint8
  dry_run(views, frames, width, height, settings, closed, weights_dir) -> dict (plan + memory estimate)
  check_weights(path) / init_tiny(out) / init_from_base(base, out)   weights.py
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np

from hvg_cli.backends.diffusion.settings import DiffusionSettings
from hvg_cli.backends.diffusion.weights import check_weights, init_from_base, init_tiny  # torch only at first call
from hvg_cli.core.progress import SILENT, Reporter
from hvg_cli.core.types import BoneMaps, CameraGrid

__all__ = ["DiffusionSettings", "generate", "dry_run", "job_fingerprint", "check_weights", "init_tiny",
           "init_from_base"]


def weights_identity(weights_dir: str | os.PathLike) -> str:
    """A cheap identity of a weights folder: every config's bytes and every weight file's name and size."""
    h = hashlib.sha256()
    root = Path(weights_dir)
    for p in sorted(root.rglob("*")):
        if p.is_file():
            rel = p.relative_to(root).as_posix()
            h.update(rel.encode())
            h.update(p.read_bytes() if p.suffix == ".json" else str(p.stat().st_size).encode())
    return h.hexdigest()


def job_fingerprint(weights_dir, photo: np.ndarray, maps: BoneMaps, grid: CameraGrid,
                    settings: DiffusionSettings) -> str:
    """What makes a saved sampler state valid for this job: weights, inputs, sampling settings."""
    from hvg_cli.core.cache import array_hash, canonical_json

    parts = [
        weights_identity(weights_dir),
        array_hash(photo, maps.semantic, maps.normal, maps.depth, maps.mask, grid.K, grid.world_to_cam),
        canonical_json(settings.sampling_key()),
        str(bool(grid.closed)),
    ]
    return hashlib.sha256("|".join(parts).encode()).hexdigest()


def generate(weights_dir, photo: np.ndarray, maps: BoneMaps, grid: CameraGrid, settings: DiffusionSettings,
             cache_dir=None, progress: Reporter = SILENT) -> np.ndarray:
    """Generate every view and frame with the HVG diffusion model.

    weights_dir: an HVG weights folder (weights/README.md); checked, then loaded locally (safetensors only)
    photo:       [H, W, 3] uint8 reference photo, aligned like the bone maps
    maps:        BoneMaps [V, T, H, W] (aligned); grid: CameraGrid [V, T] (aligned intrinsics)
    cache_dir:   folder for the resumable sampler state (None: no resume)
    returns:     [V, T, H, W, 3] uint8 RGB
    """
    from hvg_cli.backends.diffusion.weights import load_pipeline

    pipe = load_pipeline(weights_dir, settings.device, settings.dtype, settings.offload)
    meta_path = Path(weights_dir) / "hvg.json"
    if meta_path.exists() and json.loads(meta_path.read_text()).get("untrained"):
        progress.note(f"{weights_dir} holds UNTRAINED weights: the video will be meaningless")
    # the fingerprint hashes every bone map: only worth it when there is a saved state to check
    fp = job_fingerprint(weights_dir, photo, maps, grid, settings) if cache_dir is not None else ""
    return pipe(photo, maps, grid, settings, state_dir=cache_dir, fingerprint=fp, output_type="np", progress=progress)


def dry_run(views: int, frames: int, width: int, height: int, settings: DiffusionSettings, closed: bool = False,
            weights_dir=None) -> dict:
    """The tile plan, UNet evaluation counts and a per-tile memory estimate, without loading weights."""
    from hvg_cli.backends.diffusion.plan import make_plan, memory_estimate

    factor = 8
    if weights_dir is not None and (Path(weights_dir) / "vae" / "config.json").exists():
        vcfg = json.loads((Path(weights_dir) / "vae" / "config.json").read_text())
        factor = 2 ** (len(vcfg["block_out_channels"]) - 1)
    h, w = height // factor, width // factor  # latent size
    plan = make_plan(views, frames, h, w, settings, closed=closed)
    dtype_bytes = 4 if settings.dtype == "fp32" else 2
    out = plan.summary()
    out["memory_estimate"] = memory_estimate(plan, weights_dir, dtype_bytes)
    other = settings.with_(mode="onepass" if settings.mode == "progressive" else "progressive")
    out["compare"] = {other.mode: make_plan(views, frames, h, w, other, closed=closed).tile_evaluations}
    return out
