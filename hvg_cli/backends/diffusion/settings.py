"""Settings of the diffusion backend (no heavy imports: the CLI and `--dry-run` read them)."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, fields, replace
from pathlib import Path

MODES = ("progressive", "onepass", "full")
GUIDANCE_RAMPS = ("flat", "svd")
POSE_RESIDUALS = ("auto", "keep", "recompute")


def downscale(block_out_channels: Sequence[int]) -> int:
    """How much a VAE (or a UNet) with these block widths shrinks an image: 2 per block after the first."""
    return 2 ** (len(block_out_channels) - 1)


def vae_factor(weights_dir: str | os.PathLike) -> int:
    """Pixels per latent cell of a weights folder's VAE (8 for SVD), read from its vae/config.json."""
    config = json.loads((Path(weights_dir) / "vae" / "config.json").read_text())
    return downscale(config["block_out_channels"])


@dataclass(frozen=True)
class DiffusionSettings:
    """How the HVG diffusion backend samples a job.

    sampling: "progressive" (anchors every `anchor_stride`-th frame first, then dense windows holding the
          anchors fixed), "onepass" (every step blends overlapping tiles over the whole grid once) or
          "full" (no tiling: the whole grid in one UNet call; the plain reference path, small jobs only).
    A tile is `tile_views` views × `tile_frames` frames laid along the UNet's frame axis, view-major:
    UNet frame index = i_view * n_frames_in_tile + i_frame.

    Guidance (`guidance_ramp`): SVD ramps the CFG scale linearly over a clip, from `guidance_min` at
    the first frame to `guidance_max` at the last, because its first frame reconstructs the
    conditioning image and needs no guidance. HVG's frames are all generated: every view starts at
    its own camera and pose, none of them is the photo, so "flat" (the default) gives every frame
    `guidance_max`. That also keeps a frame's guidance independent of the video's length and of the
    tile it is sampled in. "svd" is SVD's ramp over each view's T frames (the equivalence tests use it).

    Micro-conditioning: `fps` is the motion's real frame rate (SVD's UNet sees fps - 1); the anchor
    stage of progressive sampling sees its anchors' effective rate, fps / anchor_stride.
    """

    steps: int = 25
    guidance_min: float = 1.0  # CFG scale of the first frame with guidance_ramp "svd"
    guidance_max: float = 3.0  # CFG scale of every frame ("flat") or of the last frame ("svd")
    guidance_ramp: str = "flat"  # flat | svd (see above)
    seed: int = 0
    fps: float = 7.0  # the motion's frame rate, frames/s: SVD's fps micro-conditioning (the UNet sees fps - 1)
    motion_bucket_id: int = 127  # SVD's motion micro-conditioning (higher: more motion)
    noise_aug_strength: float = 0.02  # noise added to the photo before VAE encoding (SVD's cond_aug)
    sampling: str = "progressive"  # progressive | onepass | full (see above)
    tile_views: int = 2
    tile_frames: int = 8
    overlap_views: int = 1
    overlap_frames: int = 3
    anchor_stride: int = 4
    decode_chunk: int = 8  # frames decoded per VAE call
    device: str = "auto"  # auto | cuda | mps | cpu (| cuda:1 ...)
    dtype: str = "auto"  # auto (fp16 on cuda/mps, fp32 on cpu) | fp32 | fp16 | bf16
    offload: bool = False  # diffusers' model CPU offload: each component on the GPU only while it runs
    pose_residuals: str = "auto"  # auto | keep (pose features of every frame on the device) | recompute (per tile)

    def __post_init__(self) -> None:
        from hvg_cli.core.errors import BadInput

        if self.sampling not in MODES:
            raise BadInput(f"unknown sampling {self.sampling!r}", f"use one of {', '.join(MODES)}")
        if self.steps < 1:
            raise BadInput(f"--steps must be at least 1, got {self.steps}")
        for name in ("tile_views", "tile_frames", "anchor_stride", "decode_chunk"):
            if getattr(self, name) < 1:
                raise BadInput(f"{name} must be at least 1, got {getattr(self, name)}")
        if not 0 <= self.overlap_views < self.tile_views:
            raise BadInput(f"overlap_views must be in [0, tile_views), got {self.overlap_views} for {self.tile_views}")
        if not 0 <= self.overlap_frames < self.tile_frames:
            raise BadInput(
                f"overlap_frames must be in [0, tile_frames), got {self.overlap_frames} for {self.tile_frames}"
            )
        if self.guidance_ramp not in GUIDANCE_RAMPS:
            raise BadInput(f"unknown guidance ramp {self.guidance_ramp!r}", f"use one of {', '.join(GUIDANCE_RAMPS)}")
        if self.pose_residuals not in POSE_RESIDUALS:
            raise BadInput(f"unknown pose_residuals {self.pose_residuals!r}", f"use one of {', '.join(POSE_RESIDUALS)}")
        if not self.fps > 0:
            raise BadInput(f"fps must be positive, got {self.fps}")
        if not 0 <= self.noise_aug_strength <= 1:
            raise BadInput(f"--noise-aug must be in [0, 1], got {self.noise_aug_strength}")
        if self.motion_bucket_id < 0:
            raise BadInput(f"--motion-bucket must be at least 0, got {self.motion_bucket_id}", "SVD's default is 127")
        if self.dtype not in ("auto", "fp32", "fp16", "bf16"):
            raise BadInput(f"unknown dtype {self.dtype!r}", "use auto, fp32, fp16 or bf16")

    def sampling_key(self) -> dict:
        """The fields that change the sampled latents (device placement and decoding left out)."""
        skip = {"device", "offload", "decode_chunk", "pose_residuals"}
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name not in skip}

    def anchor_fps(self) -> float:
        """The frame rate the anchor stage conditions on: its frames are anchor_stride apart."""
        return self.fps / self.anchor_stride

    def with_(self, **changes) -> DiffusionSettings:
        return replace(self, **changes)
