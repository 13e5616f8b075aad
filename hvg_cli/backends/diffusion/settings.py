"""Settings of the diffusion backend (no heavy imports: the CLI and `--dry-run` read them)."""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

MODES = ("progressive", "onepass", "full")


@dataclass(frozen=True)
class DiffusionSettings:
    """How the HVG diffusion backend samples a job.

    mode: "progressive" (anchors every `anchor_stride`-th frame first, then dense windows holding the
          anchors fixed), "onepass" (every step blends overlapping tiles over the whole grid once) or
          "full" (no tiling: the whole grid in one UNet call; the plain reference path, small jobs only).
    A tile is `tile_views` views × `tile_frames` frames laid along the UNet's frame axis, view-major:
    UNet frame index = i_view * n_frames_in_tile + i_frame.
    """

    steps: int = 25
    guidance_min: float = 1.0  # CFG scale of the first frame (SVD ramps it linearly over time)
    guidance_max: float = 3.0  # CFG scale of the last frame
    seed: int = 0
    fps: int = 7  # micro-conditioning as in SVD (the UNet sees fps - 1)
    motion_bucket_id: int = 127
    noise_aug_strength: float = 0.02
    mode: str = "progressive"
    tile_views: int = 2
    tile_frames: int = 8
    overlap_views: int = 1
    overlap_frames: int = 3
    anchor_stride: int = 4
    decode_chunk: int = 8  # frames decoded per VAE call
    device: str = "auto"  # auto | cuda | mps | cpu (| cuda:1 ...)
    dtype: str = "auto"  # auto (fp16 on cuda/mps, fp32 on cpu) | fp32 | fp16 | bf16
    offload: bool = False  # model CPU offload for small GPUs (needs accelerate)

    def __post_init__(self) -> None:
        from hvg_cli.core.errors import BadInput

        if self.mode not in MODES:
            raise BadInput(f"unknown sampling mode {self.mode!r}", f"use one of {', '.join(MODES)}")
        if self.steps < 1:
            raise BadInput(f"--steps must be at least 1, got {self.steps}")
        for name in ("tile_views", "tile_frames", "anchor_stride", "decode_chunk"):
            if getattr(self, name) < 1:
                raise BadInput(f"{name} must be at least 1, got {getattr(self, name)}")
        if not 0 <= self.overlap_views < self.tile_views:
            raise BadInput(f"overlap_views must be in [0, tile_views), got {self.overlap_views} for {self.tile_views}")
        if not 0 <= self.overlap_frames < self.tile_frames:
            raise BadInput(f"overlap_frames must be in [0, tile_frames), got {self.overlap_frames} for {self.tile_frames}")
        if self.dtype not in ("auto", "fp32", "fp16", "bf16"):
            raise BadInput(f"unknown dtype {self.dtype!r}", "use auto, fp32, fp16 or bf16")

    def sampling_key(self) -> dict:
        """The fields that change the sampled latents (device placement and decoding left out)."""
        skip = {"device", "offload", "decode_chunk"}
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name not in skip}

    def with_(self, **changes) -> "DiffusionSettings":
        return replace(self, **changes)
