"""One training clip from aligned frames, photo, bone maps and cameras: what `hvg prepare` stores per clip.

The reference is encoded by HVGPipeline.encode_reference itself (CLIP embedding, noise-augmented VAE
latent, the same operations in the same order as at sampling time), so training conditions on exactly
what the sampler feeds the UNet. Target frames become VAE latents × the VAE's scaling_factor: the space
the sampler denoises in (it divides by scaling_factor before decoding). The posterior's mode is used, so
a clip's latents are a pure function of its pixels.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

import numpy as np

from hvg_cli.core.errors import BadInput
from hvg_cli.core.types import BoneMaps, CameraGrid
from hvg_cli.train.dataset import TrainClip

if TYPE_CHECKING:
    from torch import Tensor


def reference_noise(seed: int, clip_id: str, height: int, width: int) -> Tensor:
    """The reference photo's noise-augmentation ε [1, 3, H, W], from (seed, clip id) only."""
    import torch

    digest = hashlib.sha256(f"hvg-prepare|{int(seed)}|{clip_id}".encode()).digest()
    g = torch.Generator("cpu").manual_seed(int.from_bytes(digest[:8], "little") & ((1 << 63) - 1))
    return torch.randn((1, 3, height, width), generator=g, dtype=torch.float32)


def encode_frames(pipe, frames: np.ndarray, chunk: int = 8) -> Tensor:
    """frames [N, H, W, 3] uint8 -> [N, C, h, w] float32: mode() of the VAE posterior × scaling_factor."""
    import torch

    out = []
    device = pipe._execution_device
    with torch.no_grad():
        for s in range(0, len(frames), chunk):
            x = torch.from_numpy(frames[s : s + chunk].astype(np.float32) / 127.5 - 1.0)  # [n, H, W, 3] in [-1, 1]
            x = x.permute(0, 3, 1, 2).to(device=device, dtype=pipe.vae.dtype)  # [n, 3, H, W]
            z = pipe.vae.encode(x).latent_dist.mode() * pipe.vae.config.scaling_factor  # [n, C, h, w]
            out.append(z.float().cpu())
    return torch.cat(out)


def encode_clip(
    pipe,
    clip_id: str,
    photo: np.ndarray,
    frames: np.ndarray,
    maps: BoneMaps,
    grid: CameraGrid,
    fps: float,
    motion_bucket_id: int = 127,
    noise_aug_strength: float = 0.02,
    seed: int = 0,
    source: str = "",
    licence: str = "",
    synthetic: bool = False,
    reference: str = "",
    kind: str = "",
    cameras: tuple[str, ...] = (),
    chunk: int = 8,
) -> TrainClip:
    """A TrainClip from aligned inputs.

    pipe:   a loaded HVGPipeline (its VAE and CLIP encoder are used; the UNet is not run)
    photo:  [H, W, 3] uint8 aligned reference (a frame of the clip other than the targets' first, or a photo)
    frames: [V, T, H, W, 3] uint8 aligned target frames
    maps:   BoneMaps [V, T, H, W] aligned like the frames; grid: CameraGrid [V, T] (aligned intrinsics)
    fps, motion_bucket_id, noise_aug_strength: SVD's micro-conditioning, stored with the clip
    """
    from hvg_cli.backends.diffusion.pipeline_hvg import check_sizes
    from hvg_cli.backends.diffusion.settings import DiffusionSettings

    V, T, H, W = maps.shape
    if frames.shape != (V, T, H, W, 3) or frames.dtype != np.uint8:
        raise BadInput(
            f"clip {clip_id}: frames are {frames.shape} {frames.dtype}, the bone maps {(V, T, H, W)}",
            "align the frames to the bone maps' size (uint8 RGB)",
        )
    check_sizes(photo, maps, grid, pipe)

    # 1. Reference: exactly the sampler's encode_reference (no CFG doubling: guidance 1)
    ref_settings = DiffusionSettings(
        guidance_min=1.0,
        guidance_max=1.0,
        fps=int(round(fps)),
        motion_bucket_id=int(motion_bucket_id),
        noise_aug_strength=float(noise_aug_strength),
    )
    ref = pipe.encode_reference(photo, reference_noise(seed, clip_id, H, W), ref_settings)
    emb = ref.embeddings[0, 0].float().cpu().numpy()  # [D]
    ref_latent = ref.latents[0].float().cpu().numpy()  # [C, h, w]

    # 2. Targets: [V, T, H, W, 3] -> [V*T, H, W, 3] -> latents [V*T, C, h, w] -> [V, T, C, h, w]
    lat = encode_frames(pipe, frames.reshape(V * T, H, W, 3), chunk)
    latents = lat.reshape(V, T, *lat.shape[1:]).numpy()
    return TrainClip(
        id=clip_id,
        latents=latents,
        ref_latent=ref_latent,
        ref_embedding=emb,
        semantic=maps.semantic,
        normal=maps.normal.astype(np.float16),
        depth=maps.depth.astype(np.float32),
        mask=maps.mask.astype(bool),
        K=grid.K.astype(np.float32),
        world_to_cam=grid.world_to_cam.astype(np.float32),
        fps=float(fps),
        motion_bucket_id=int(motion_bucket_id),
        noise_aug_strength=float(noise_aug_strength),
        source=source,
        licence=licence,
        synthetic=synthetic,
        reference=reference,
        kind=kind,
        cameras=tuple(cameras),
    )
