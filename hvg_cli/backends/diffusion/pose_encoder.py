"""Articulated pose modulation: the bone-map encoder and how its output enters the UNet.

Input per frame (pixel resolution H × W, 14 channels):
  0-2   bone colour (semantic map) scaled to [-1, 1]
  3-5   view-space normal, x right, y up, z towards the viewer, [-1, 1], 0 where empty
  6     disparity 1 / depth (1/metres), 0 where empty
  7     mask, 0 or 1
  8-13  Plücker ray of the pixel in world space: direction d (unit) and moment o × d (metres)
Output: [N, C0, H / s, W / s], C0 = the UNet's first block width, s = the VAE's downscale factor.
The last layer is zero-initialised, so a fresh encoder adds exactly 0: HVG starts as its SVD base.

The encoder is a trunk (convolutions down to the latent resolution, `part="features"`) and a 1×1
head (`part="head"`) to C0 channels. The sampler runs the trunk once per (view, frame) of a job and
keeps its features (C_trunk channels, 128 for the default encoder vs C0 = 320 for SVD: 2.5× less
memory than the residuals themselves); the cheap head runs per tile. Both parts go through
`forward`, so diffusers' model CPU offload hooks (attached to `forward`) move the weights in time.

The output is added to the output of the UNet's `conv_in` for every frame, through a forward hook
on `unet.conv_in` (diffusers is not edited and the UNet's weights keep their names).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import torch
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin
from torch import nn

IN_CHANNELS = 14


class PoseEncoder(ModelMixin, ConfigMixin):
    """Small conv net: 14-channel bone map + rays at pixel resolution -> UNet conv_in features."""

    @register_to_config
    def __init__(
        self,
        in_channels: int = IN_CHANNELS,
        block_out_channels: tuple[int, ...] = (16, 32, 64, 128),
        out_channels: int = 320,
        downscale: int = 8,
    ):
        super().__init__()
        stages = int(round(math.log2(downscale)))
        if 2**stages != downscale:
            raise ValueError(f"downscale must be a power of two, got {downscale}")
        chans = list(block_out_channels)[: stages + 1]
        chans += [chans[-1]] * (stages + 1 - len(chans))
        self.conv_in = nn.Conv2d(in_channels, chans[0], 3, padding=1)
        self.down = nn.ModuleList(nn.Conv2d(chans[i], chans[i + 1], 3, stride=2, padding=1) for i in range(stages))
        self.mid = nn.Conv2d(chans[-1], chans[-1], 3, padding=1)
        self.conv_out = nn.Conv2d(chans[-1], out_channels, 1)
        nn.init.zeros_(self.conv_out.weight)
        nn.init.zeros_(self.conv_out.bias)  # type: ignore[arg-type]  # Conv2d is built with a bias

    @property
    def feature_channels(self) -> int:
        """Channels of the trunk's output (the head's input)."""
        return self.conv_out.in_channels

    def forward(self, x: torch.Tensor, part: str = "all") -> torch.Tensor:
        """part "all":      x = cond [N, 14, H, W] -> residual [N, out_channels, H / s, W / s]
        part "features": x = cond [N, 14, H, W] -> trunk features [N, feature_channels, H / s, W / s]
        part "head":     x = trunk features     -> residual [N, out_channels, H / s, W / s]
        ("all" equals "head" after "features", bit for bit.)"""
        if part == "head":
            return self.conv_out(x)
        x = nn.functional.silu(self.conv_in(x))
        for conv in self.down:
            x = nn.functional.silu(conv(x))
        x = nn.functional.silu(self.mid(x))
        if part == "features":
            return x
        if part != "all":
            raise ValueError(f"part must be all, features or head, got {part!r}")
        return self.conv_out(x)


def plucker_rays(K: np.ndarray, world_to_cam: np.ndarray, width: int, height: int) -> np.ndarray:
    """Per-pixel Plücker coordinates of the cameras' rays.

    K:            [N, 3, 3] intrinsics, pixels
    world_to_cam: [N, 4, 4] OpenCV
    returns:      [N, 6, H, W] float32: unit direction d (world) and moment o × d (metres),
                  o = camera centre, rays through pixel centres (u + 0.5, v + 0.5)
    """
    u, v = np.meshgrid(np.arange(width) + 0.5, np.arange(height) + 0.5)  # [H, W] each
    pix = np.stack([u, v, np.ones_like(u)], axis=-1).reshape(-1, 3)  # [H*W, 3]
    K_inv = np.linalg.inv(K.astype(np.float64))  # [N, 3, 3]
    R = world_to_cam[:, :3, :3].astype(np.float64)  # [N, 3, 3]
    t = world_to_cam[:, :3, 3].astype(np.float64)  # [N, 3]
    origin = -np.einsum("nji,nj->ni", R, t)  # [N, 3] = -Rᵀ t
    d_cam = np.einsum("nij,pj->npi", K_inv, pix)  # [N, H*W, 3]
    d = np.einsum("nji,npj->npi", R, d_cam)  # [N, H*W, 3] = Rᵀ d_cam
    d /= np.linalg.norm(d, axis=-1, keepdims=True)
    m = np.cross(origin[:, None, :], d)  # [N, H*W, 3]
    out = np.concatenate([d, m], axis=-1)  # [N, H*W, 6]
    return out.reshape(len(K), height, width, 6).transpose(0, 3, 1, 2).astype(np.float32)  # [N, 6, H, W]


def conditioning(
    semantic: np.ndarray,
    normal: np.ndarray,
    depth: np.ndarray,
    mask: np.ndarray,
    K: np.ndarray,
    world_to_cam: np.ndarray,
) -> np.ndarray:
    """The encoder's input for N frames.

    semantic [N, H, W, 3] uint8, normal [N, H, W, 3] float16, depth [N, H, W] metres, mask [N, H, W] bool,
    K [N, 3, 3], world_to_cam [N, 4, 4]  ->  [N, 14, H, W] float32 (channel table in the module doc).
    """
    N, H, W = mask.shape
    m = mask.astype(np.float32)  # [N, H, W]
    sem = semantic.astype(np.float32) / 127.5 - 1.0  # [N, H, W, 3]
    nrm = normal.astype(np.float32) * m[..., None]
    disp = np.where(mask & (depth > 1e-6), 1.0 / np.maximum(depth, 1e-6), 0.0).astype(np.float32)  # [N, H, W]
    maps = np.concatenate([sem, nrm, disp[..., None], m[..., None]], axis=-1).transpose(0, 3, 1, 2)  # [N, 8, H, W]
    rays = plucker_rays(K, world_to_cam, W, H)  # [N, 6, H, W]
    return np.concatenate([maps, rays], axis=1)  # [N, 14, H, W]


def conditioning_torch(
    semantic: np.ndarray,
    normal: np.ndarray,
    depth: np.ndarray,
    mask: np.ndarray,
    K: np.ndarray,
    world_to_cam: np.ndarray,
    device="cpu",
) -> torch.Tensor:
    """`conditioning` computed with torch on `device` (the sampler's path; `conditioning` is its plain twin).

    Same inputs; returns [N, 14, H, W] float32 on `device`.
    """
    N, H, W = mask.shape
    m = torch.from_numpy(np.ascontiguousarray(mask)).to(device).float()  # [N, H, W]
    sem = torch.from_numpy(np.ascontiguousarray(semantic)).to(device).float() / 127.5 - 1.0  # [N, H, W, 3]
    nrm = torch.from_numpy(np.ascontiguousarray(normal)).to(device).float() * m[..., None]  # [N, H, W, 3]
    dep = torch.from_numpy(np.ascontiguousarray(depth)).to(device).float()  # [N, H, W]
    disp = torch.where((m > 0) & (dep > 1e-6), 1.0 / dep.clamp_min(1e-6), torch.zeros_like(dep))  # [N, H, W]
    maps = torch.cat([sem, nrm, disp[..., None], m[..., None]], dim=-1).permute(0, 3, 1, 2)  # [N, 8, H, W]

    # rays: d = Rᵀ K⁻¹ (u + 0.5, v + 0.5, 1), normalised; moment o × d with o = -Rᵀ t
    R = world_to_cam[:, :3, :3].astype(np.float64)  # [N, 3, 3]
    M = np.einsum("nji,njk->nik", R, np.linalg.inv(K.astype(np.float64)))  # [N, 3, 3] = Rᵀ K⁻¹
    origin = -np.einsum("nji,nj->ni", R, world_to_cam[:, :3, 3].astype(np.float64))  # [N, 3]
    M_t = torch.from_numpy(M).float().to(device)
    o_t = torch.from_numpy(origin).float().to(device)
    v, u = torch.meshgrid(torch.arange(H, device=device) + 0.5, torch.arange(W, device=device) + 0.5, indexing="ij")
    pix = torch.stack([u, v, torch.ones_like(u)]).reshape(3, H * W).float()  # [3, H*W]
    d = M_t @ pix  # [N, 3, H*W]
    d = d / d.norm(dim=1, keepdim=True)
    mo = torch.cross(o_t[:, :, None].expand_as(d), d, dim=1)  # [N, 3, H*W]
    rays = torch.cat([d, mo], dim=1).reshape(N, 6, H, W)  # [N, 6, H, W]
    return torch.cat([maps, rays], dim=1)  # [N, 14, H, W]


@contextmanager
def conv_in_residual(unet: nn.Module, residual: torch.Tensor | None) -> Iterator[None]:
    """Add `residual` [B*F, C0, h, w] to the output of `unet.conv_in` while the block runs."""
    if residual is None:
        yield
        return

    def hook(module, args, output):
        return output + residual.to(output.dtype)

    conv_in: nn.Module = unet.conv_in  # type: ignore[assignment]  # a Conv2d, as every SVD UNet has
    handle = conv_in.register_forward_hook(hook)
    try:
        yield
    finally:
        handle.remove()
