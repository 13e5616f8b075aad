"""The tile plan of a job: which views × frames each UNet evaluation sees, stage by stage.

Pure Python (no torch), so `--dry-run` can print it without loading weights. The sampler runs
exactly this plan.

The job's latents form a V×T grid (views × frames; SVD has no temporal compression, so one
latent frame per video frame). A tile is a set of views × a set of frames, laid along the UNet's
frame axis view-major: UNet frame index = i_view * len(tile.cols) + i_frame. Tiles overlap; their
predictions are blended with separable ramp weights (see `tiling.py`).

Progressive order (sampling "progressive"):
  stage "anchors": every `anchor_stride`-th frame (and the last frame) for all views, tiled over
                   that sub-grid and denoised through all steps;
  stage "dense":   the whole grid in overlapping windows; the anchors are held fixed (re-noised to
                   the current sigma at every step) so the frames between them follow.
Sampling "onepass" is the dense stage alone with nothing held; "full" is one tile over everything.
"""

from __future__ import annotations

import json
import math
import os
import struct
from dataclasses import dataclass
from pathlib import Path

from hvg_cli.backends.diffusion.settings import DiffusionSettings


@dataclass(frozen=True)
class Tile:
    views: tuple[int, ...]  # view indices (may wrap: (7, 0) on a closed orbit)
    cols: tuple[int, ...]  # positions along the stage's time axis (indices into Stage.times)
    weight_v: tuple[float, ...]  # blend ramp along the tile's views, (0, 1]
    weight_t: tuple[float, ...]  # blend ramp along the tile's frames, (0, 1]

    @property
    def num_frames(self) -> int:
        """Frames along the UNet's frame axis: views × frames."""
        return len(self.views) * len(self.cols)


@dataclass(frozen=True)
class Stage:
    name: str  # "anchors" | "dense" | "onepass" | "full"
    times: tuple[int, ...]  # absolute frame indices of this stage's time axis
    tiles: tuple[Tile, ...]
    held: tuple[int, ...] = ()  # positions (into times) held fixed at the anchors' finished latents


@dataclass(frozen=True)
class SamplingPlan:
    views: int
    frames: int
    latent_height: int
    latent_width: int
    closed: bool
    steps: int
    sampling: str  # progressive | onepass | full
    stages: tuple[Stage, ...]

    @property
    def tile_evaluations(self) -> int:
        """UNet calls of the whole job (each a CFG batch of 2 over one tile)."""
        return self.steps * sum(len(s.tiles) for s in self.stages)

    @property
    def unet_frames(self) -> int:
        """Frames pushed through the UNet over the whole job (per CFG branch)."""
        return self.steps * sum(t.num_frames for s in self.stages for t in s.tiles)

    @property
    def max_tile_frames(self) -> int:
        return max(t.num_frames for s in self.stages for t in s.tiles)

    def summary(self) -> dict:
        return {
            "grid": [self.views, self.frames],
            "latent": [self.latent_height, self.latent_width],
            "closed": self.closed,
            "sampling": self.sampling,
            "steps": self.steps,
            "stages": [
                {
                    "name": s.name,
                    "frames": len(s.times),
                    "tiles": len(s.tiles),
                    "held": len(s.held),
                    "tile_shapes": sorted({(len(t.views), len(t.cols)) for t in s.tiles}),
                }
                for s in self.stages
            ],
            "tile_evaluations": self.tile_evaluations,
            "unet_frames": self.unet_frames,
            "max_tile_frames": self.max_tile_frames,
        }


# ---------------------------------------------------------------------------------------------
# windows along one axis
# ---------------------------------------------------------------------------------------------
def axis_windows(n: int, size: int, overlap: int, wrap: bool = False) -> list[tuple[int, ...]]:
    """Overlapping windows covering 0..n-1.

    n <= size: one window over everything. Otherwise windows of `size` at stride size - overlap;
    without wrap the last window is pushed back to end at n - 1; with wrap (closed orbit) windows run
    past the end and continue at 0, so the last and first indices share a window.
    """
    if n <= size:
        return [tuple(range(n))]
    stride = max(1, size - overlap)
    if wrap:
        count = math.ceil(n / stride)
        return [tuple((s * stride + j) % n for j in range(size)) for s in range(count)]
    starts = list(range(0, n - size, stride)) + [n - size]
    return [tuple(range(s, s + size)) for s in dict.fromkeys(starts)]


def ramp(size: int, overlap: int, single: bool) -> tuple[float, ...]:
    """Blend weights along a window: 1 in the middle, falling linearly over `overlap` at both ends.

    single: the window is the only one on its axis, then every weight is 1 (a one-tile grid blends
    to exactly the tile's prediction).
    """
    if single or overlap <= 0:
        return (1.0,) * size
    return tuple(min(1.0, (j + 1) / (overlap + 1), (size - j) / (overlap + 1)) for j in range(size))


def _tiles(views: int, frames: int, s: DiffusionSettings, closed: bool) -> tuple[Tile, ...]:
    vw = axis_windows(views, s.tile_views, s.overlap_views, wrap=closed)
    tw = axis_windows(frames, s.tile_frames, s.overlap_frames, wrap=False)
    rv = [ramp(len(w), s.overlap_views, len(vw) == 1) for w in vw]
    rt = [ramp(len(w), s.overlap_frames, len(tw) == 1) for w in tw]
    return tuple(Tile(v, t, wv, wt) for v, wv in zip(vw, rv) for t, wt in zip(tw, rt))


def anchor_frames(frames: int, stride: int) -> tuple[int, ...]:
    """Every stride-th frame, plus the last one so no gap is longer than the stride."""
    return tuple(sorted(set(range(0, frames, stride)) | {frames - 1}))


def make_plan(
    views: int, frames: int, latent_height: int, latent_width: int, settings: DiffusionSettings, closed: bool = False
) -> SamplingPlan:
    """The stages and tiles the sampler will run for a V×T job."""
    s = settings
    closed = bool(closed and views > 2)
    if s.sampling == "full":
        one = Tile(tuple(range(views)), tuple(range(frames)), (1.0,) * views, (1.0,) * frames)
        stages: tuple[Stage, ...] = (Stage("full", tuple(range(frames)), (one,)),)
    elif s.sampling == "onepass":
        stages = (Stage("onepass", tuple(range(frames)), _tiles(views, frames, s, closed)),)
    else:
        anchors = anchor_frames(frames, s.anchor_stride)
        if frames <= s.tile_frames or len(anchors) >= frames:  # nothing to gain: one dense pass
            stages = (Stage("dense", tuple(range(frames)), _tiles(views, frames, s, closed)),)
        else:
            dense = tuple(t for t in _tiles(views, frames, s, closed) if not set(t.cols) <= set(anchors))
            stages = (
                Stage("anchors", anchors, _tiles(views, len(anchors), s, closed)),
                Stage("dense", tuple(range(frames)), dense, held=anchors),
            )
    return SamplingPlan(views, frames, latent_height, latent_width, closed, s.steps, s.sampling, stages)


# ---------------------------------------------------------------------------------------------
# memory estimate (no weights loaded: configs and safetensors headers only)
# ---------------------------------------------------------------------------------------------
_SVD_XT = {
    "block_out_channels": [320, 640, 1280, 1280],
    "params": {"unet": 1_524_623_082, "vae": 97_739_049, "image_encoder": 632_076_800, "pose_encoder": 1_000_000},
}
_DTYPE_BYTES = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I8": 1, "U8": 1, "BOOL": 1}


def safetensors_params(path: Path) -> int:
    """Number of parameters in a .safetensors file, read from its JSON header only."""
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n))
    return sum(math.prod(v["shape"]) for k, v in header.items() if k != "__metadata__")


def _weights_facts(weights_dir: str | os.PathLike | None) -> dict:
    if weights_dir is None or not (Path(weights_dir) / "unet" / "config.json").exists():
        return _SVD_XT
    wd = Path(weights_dir)
    cfg = json.loads((wd / "unet" / "config.json").read_text())
    params = {}
    for comp in ("unet", "vae", "image_encoder", "pose_encoder"):
        files = sorted((wd / comp).glob("*.safetensors")) if (wd / comp).is_dir() else []
        params[comp] = sum(safetensors_params(f) for f in files)
    return {"block_out_channels": cfg["block_out_channels"], "params": params}


def memory_estimate(
    plan: SamplingPlan,
    weights_dir: str | os.PathLike | None = None,
    dtype_bytes: int = 2,
    unet_channels: list[int] | tuple[int, ...] | None = None,
    params: dict | None = None,
    offload: bool = False,
) -> dict:
    """Rough peak memory of one tile evaluation, in bytes (an estimate, not a measurement).

    weights: every component resident at `dtype_bytes` per parameter (`params` overrides the counts read
    from `weights_dir`, e.g. {} once the weights are loaded and already counted as used memory);
    activations: CFG batch 2 × tile frames × Σ_levels C_l × h_l × w_l, times ~16 live tensors per
    level (resnets, attention projections, skip connections), attention via memory-efficient kernels.
    offload (diffusers' model CPU offload): while the UNet runs, the image encoder is back on the CPU; the
    UNet, the pose encoder and the VAE (used last to encode the photo) are resident.
    """
    facts = dict(_weights_facts(weights_dir))
    if unet_channels is not None:
        facts["block_out_channels"] = list(unet_channels)
    if params is not None:
        facts["params"] = params
    f = plan.max_tile_frames
    h, w = plan.latent_height, plan.latent_width
    per_frame = sum(c * max(1, h >> i) * max(1, w >> i) for i, c in enumerate(facts["block_out_channels"]))
    activations = 2 * f * per_frame * dtype_bytes * 16
    resident = {k: v for k, v in facts["params"].items() if not (offload and k == "image_encoder")}
    weights = sum(resident.values()) * dtype_bytes
    grid = plan.views * plan.frames * 4 * h * w * 4 * 3  # latents, noise, fused prediction (fp32)
    return {
        "weights_bytes": int(weights),
        "tile_activation_bytes": int(activations),
        "grid_bytes": int(grid),
        "total_bytes": int(weights + activations + grid),
        "tile_frames": f,
    }


# ---------------------------------------------------------------------------------------------
# pose features: kept on the device for the whole job, or recomputed per tile
# ---------------------------------------------------------------------------------------------
POSE_FEATURE_SHARE = 0.5  # the features may take at most this share of the memory left after the estimate


def pose_feature_channels(config: dict | None) -> int:
    """Channels of the pose encoder's trunk output for its config.json (PoseEncoder.feature_channels)."""
    config = config or {}
    boc = list(config.get("block_out_channels", (16, 32, 64, 128)))
    stages = int(round(math.log2(config.get("downscale", 8))))
    chans = boc[: stages + 1]
    return (chans + [chans[-1]] * (stages + 1 - len(chans)))[-1]


def pose_feature_policy(
    plan: SamplingPlan,
    feature_channels: int,
    dtype_bytes: int,
    setting: str = "auto",
    free_bytes: int | None = None,
    other_bytes: int = 0,
) -> dict:
    """Keep the pose features of every (view, frame) on the device, or recompute them per tile?

    The features take V × T × C_f × h × w × dtype_bytes. setting "keep" / "recompute" decide outright;
    "auto" keeps them when they fit in POSE_FEATURE_SHARE of the device memory left once `other_bytes`
    (the memory estimate of weights, tile and grid) is taken from `free_bytes`; with the free memory
    unknown (None), it keeps them.
    returns {"keep": bool, "feature_bytes": int, "budget_bytes": int | None, "reason": str}
    """
    need = plan.views * plan.frames * feature_channels * plan.latent_height * plan.latent_width * dtype_bytes
    mb = lambda b: f"{b / 2**20:.0f} MiB"  # noqa: E731
    if setting in ("keep", "recompute"):
        return {
            "keep": setting == "keep",
            "feature_bytes": need,
            "budget_bytes": None,
            "reason": f"asked for ({setting}); features {mb(need)}",
        }
    if free_bytes is None:
        return {
            "keep": True,
            "feature_bytes": need,
            "budget_bytes": None,
            "reason": f"device memory unknown; features {mb(need)}",
        }
    budget = max(0, int((free_bytes - other_bytes) * POSE_FEATURE_SHARE))
    keep = need <= budget
    return {
        "keep": keep,
        "feature_bytes": need,
        "budget_bytes": budget,
        "reason": f"features {mb(need)} {'fit in' if keep else 'exceed'} the budget of {mb(budget)}",
    }


def device_free_bytes(device: str) -> int | None:
    """Free memory of a device in bytes: CUDA from the driver, the CPU from /proc/meminfo (MemAvailable);
    None where unknown (MPS, no /proc). Imports torch only for CUDA."""
    if device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            return None
        index = torch.device(device).index
        return int(torch.cuda.mem_get_info(index if index is not None else torch.cuda.current_device())[0])
    if device == "cpu":
        try:
            for line in open("/proc/meminfo"):
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
        except OSError:
            return None
    return None
