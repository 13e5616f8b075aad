"""Fit a weights folder's VAE to a set of images: `fit_vae(weights_dir, images, steps, seed)`.

Why: `hvg weights init --tiny` builds a RANDOM VAE. Its encode → decode round trip smears a 32 px silhouette
beyond recognition (IoU of the round trip's foreground with the silhouette ≈ 0.16), so no diffusion model
trained through it can draw a pose, however well it learns: the latents it is trained to predict do not hold
the picture. A real SVD VAE needs no fitting. For the tiny one, a few hundred steps of autoencoder training on
the dataset's own target frames make the round trip nearly lossless, and the diffusion model then has latents
worth predicting (benchmarks/train_learns.py fits it before `prepare`, which encodes the clips with it).

Objective (the KL-regularised autoencoder of Rombach et al., "High-Resolution Image Synthesis with Latent
Diffusion Models", CVPR 2022, section 3.1, without its perceptual and adversarial terms, which a few
flat-coloured silhouettes do not need):
    loss = Σ w·(|x̂ − x| + (x̂ − x)²) / Σ w  +  kl_weight · KL(q(z|x) ‖ N(0, I)) / elements,   x̂ = decode(z)
    z = μ + sample_std·σ·ε  (ε from the seeded generator; sample_std 0 = the posterior mean, which the round trip
                             and `prepare` use, and the default: every weighted fit measured here used it. One
                             unweighted run each at 150 steps: IoU 0.33 sampled, 0.23 mean - not settled)
    w = 1 + fg_weight on the figure and the pixels next to it (figure = pixels farther than 0.1 from the image's
        background colour, the median of its border; 3×3 dilation): a silhouette covers ~8 % of a 32 px frame,
        and an unweighted loss is content to smear one-pixel limbs into the background (IoU 0.23 → 0.49 at
        150 steps with fg_weight 10); weighting the neighbours too punishes the colour halo around limbs.
x in [−1, 1]. Encoder and decoder (including the temporal decoder's time mixing) both train, AdamW with a
cosine decay to 0 over `steps`, gradient norm clipped at 1. The decoder decodes groups of `num_frames`
consecutive images together, as the sampler decodes a clip's frames.

Afterwards the VAE config's `scaling_factor` is set to 1 / std of the posterior means over the images (the
rule by which Rombach et al. chose 0.18215 for SD's VAE): latents × scaling_factor then have unit variance,
the σ_data = 1 that SVD's EDM preconditioning assumes (train/objective.py). The folder's VAE files are
rewritten in place; hvg.json records the fit under "vae_fit".
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from hvg_cli.core.errors import BadInput

if TYPE_CHECKING:
    from torch import Tensor


@dataclass(frozen=True)
class VaeFit:
    """What fit_vae did: the reconstruction error before and after (mean |x̂ − x| in [−1, 1] units over the
    images, posterior mode, decoded in groups of num_frames), the new scaling factor, the loss curve."""

    steps: int
    error_before: float
    error_after: float
    scaling_factor: float
    losses: tuple[float, ...]  # one per step


def reconstruction_error(vae, images: np.ndarray, num_frames: int = 1, chunk: int = 32) -> float:
    """Mean |decode(mode(encode(x))) − x| over images [N, H, W, 3] uint8, x in [−1, 1]; N a multiple of
    num_frames (groups of num_frames consecutive images are decoded together)."""
    import torch

    x_all = _to_tensor(images)  # [N, 3, H, W]
    step = max(num_frames, chunk // num_frames * num_frames)
    errs = []
    with torch.no_grad():
        for s in range(0, len(x_all), step):
            x = x_all[s : s + step]  # [n, 3, H, W]
            z = vae.encode(x).latent_dist.mode()  # [n, C, h, w]
            rec = vae.decode(z, num_frames=num_frames).sample  # [n, 3, H, W]
            errs.append((rec - x).abs().flatten(1).mean(1))  # [n]
    return float(torch.cat(errs).mean())


def figure_mask(x: Tensor) -> Tensor:
    """x [N, 3, H, W] in [-1, 1] -> [N, 1, H, W] float 0/1: pixels farther than 0.1 (largest channel) from the
    image's background colour, the median of its border pixels."""
    import torch

    border = torch.cat([x[..., 0, :], x[..., -1, :], x[..., :, 0], x[..., :, -1]], dim=-1)  # [N, 3, 2H + 2W]
    bg = border.median(dim=-1).values[..., None, None]  # [N, 3, 1, 1]
    return ((x - bg).abs().amax(1, keepdim=True) > 0.1).float()


def _to_tensor(images: np.ndarray):
    import torch

    return torch.from_numpy(images.astype(np.float32) / 127.5 - 1.0).permute(0, 3, 1, 2).contiguous()  # [N, 3, H, W]


def fit_vae(
    weights_dir: str | os.PathLike,
    images: np.ndarray,
    steps: int = 1000,
    seed: int = 0,
    batch_size: int = 8,
    num_frames: int = 1,
    lr: float = 2e-3,
    kl_weight: float = 1e-6,
    sample_std: float = 0.0,
    fg_weight: float = 10.0,
) -> VaeFit:
    """Fine-tune the VAE of the weights folder `weights_dir` on `images` and write it back (see module doc).

    images: [N, H, W, 3] uint8, N a multiple of num_frames; groups of num_frames consecutive images are one
            decoded clip (the batch draws whole groups). batch_size: images per step (rounded down to whole groups,
            at least one group). Deterministic given seed (CPU, one thread order): the batch order and the
            posterior noise come from a generator seeded by `seed`.
    Returns VaeFit; raises BadInput for images of the wrong shape.
    """
    import torch
    from diffusers import AutoencoderKLTemporalDecoder

    from hvg_cli.backends.diffusion.weights import _quiet

    images = np.asarray(images)
    if images.ndim != 4 or images.shape[-1] != 3 or images.dtype != np.uint8:
        raise BadInput(f"fit_vae takes images [N, H, W, 3] uint8, got {images.shape} {images.dtype}")
    if num_frames < 1 or len(images) < num_frames or len(images) % num_frames:
        raise BadInput(f"{len(images)} images are not whole groups of num_frames={num_frames}")
    if steps < 1:
        raise BadInput(f"steps must be at least 1, got {steps}")
    _quiet()
    folder = Path(weights_dir).expanduser() / "vae"
    vae = AutoencoderKLTemporalDecoder.from_pretrained(folder, local_files_only=True, use_safetensors=True)
    vae.to(dtype=torch.float32).eval()
    before = reconstruction_error(vae, images, num_frames)

    x_all = _to_tensor(images)  # [N, 3, H, W]
    # the figure and the pixels next to it (3×3 dilation): a missed limb and a halo around it both cost
    weight = 1.0 + fg_weight * torch.nn.functional.max_pool2d(figure_mask(x_all), 3, 1, 1)  # [N, 1, H, W]
    groups = len(images) // num_frames
    per_batch = max(1, batch_size // num_frames)  # groups per step
    g = torch.Generator("cpu").manual_seed(int(seed))
    opt = torch.optim.AdamW(vae.parameters(), lr=lr, weight_decay=0.0)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.5 * (1.0 + np.cos(np.pi * min(1.0, s / steps))))
    vae.train()
    losses = []
    order = torch.randperm(groups, generator=g)
    pos = 0
    for _ in range(steps):
        if pos + per_batch > groups:
            order, pos = torch.randperm(groups, generator=g), 0
        pick = order[pos : pos + per_batch]
        pos += per_batch
        idx = (pick[:, None] * num_frames + torch.arange(num_frames)[None]).reshape(-1)  # [n] whole groups
        x = x_all[idx]  # [n, 3, H, W]
        post = vae.encode(x).latent_dist
        z = post.mean + sample_std * post.std * torch.randn(post.mean.shape, generator=g)  # [n, C, h, w]
        rec = vae.decode(z, num_frames=num_frames).sample  # [n, 3, H, W]
        kl = 0.5 * (post.mean.pow(2) + post.var - 1.0 - post.logvar).sum() / x.numel()
        err = (rec - x).abs() + (rec - x).pow(2)  # [n, 3, H, W]
        loss = (err * weight[idx]).sum() / weight[idx].expand_as(err).sum() + kl_weight * kl
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(vae.parameters(), 1.0)
        opt.step()
        sched.step()
        losses.append(float(loss.detach()))
    vae.eval()
    after = reconstruction_error(vae, images, num_frames)
    with torch.no_grad():
        mus = torch.cat([vae.encode(x_all[s : s + 64]).latent_dist.mode() for s in range(0, len(x_all), 64)])
    scaling = float(1.0 / mus.std())
    vae.register_to_config(scaling_factor=scaling)
    vae.save_pretrained(folder, safe_serialization=True)
    meta_path = folder.parent / "hvg.json"
    if meta_path.exists():
        meta = json.loads(meta_path.read_text())
        meta["vae_fit"] = {
            "images": int(len(images)),
            "steps": int(steps),
            "seed": int(seed),
            "error_before": before,
            "error_after": after,
            "scaling_factor": scaling,
        }
        meta_path.write_text(json.dumps(meta, indent=2) + "\n")
    return VaeFit(steps, before, after, scaling, tuple(losses))
