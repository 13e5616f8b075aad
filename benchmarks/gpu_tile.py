"""Seconds and peak GPU memory of one tile evaluation of the full-size HVG model (random weights).

    .venv/bin/python benchmarks/gpu_tile.py                 # on a GPU: the full table (a few minutes)
    .venv/bin/python benchmarks/gpu_tile.py --tiny          # smoke check on a CPU (tiny model, < 1 min)
    options: --sizes 576x1024 512x512 --tiles 1x14 1x25 2x8 4x8 --dtypes fp16 bf16 --offload off on
             --repeats 3 --job-frames 24 --job-steps 2 --json out.json

The model: Stable Video Diffusion XT's architecture with random weights (random weights cost the same
time and memory as trained ones). Where each number comes from:
  UNet            diffusers' default `UNetSpatioTemporalConditionModel()` config, which is SVD's: 8 input
                  channels, blocks (320, 640, 1280, 1280), heads (5, 10, 20, 20), cross-attention 1024,
                  added-time embedding 3 × 256 = 768, 25 frames (as published in the
                  stabilityai/stable-video-diffusion-img2vid-xt unet/config.json)
  VAE             AutoencoderKLTemporalDecoder with SVD-XT's vae/config.json values: blocks (128, 256, 512,
                  512), 2 layers per block, 4 latent channels, scaling 0.18215 (diffusers' defaults are a toy)
  image encoder   CLIP ViT-H/14 vision tower with projection, SVD-XT's image_encoder/config.json values:
                  hidden 1280, 32 layers, 16 heads, MLP 5120, patch 14, 224 px, projection 1024
  pose encoder    hvg's PoseEncoder default (16, 32, 64, 128) -> 320 channels, downscale 8
  view attention  the hook `add_view_attention` below (branch views-axis plugs its module in there)
Attention runs through PyTorch's scaled_dot_product_attention (diffusers' AttnProcessor2_0; printed).

Measured per (size, dtype, offload, tile v×t): seconds per tile evaluation (pose head + CFG-batched UNet
call + guidance, after a warm-up, CUDA-synchronised, median of --repeats) and the peak allocated GPU
memory during it (weights included), beside `--dry-run`'s estimate for that tile (plan.memory_estimate).
Then, per (size, dtype): seconds per generated frame·view of the default progressive job (4 views ×
91 frames, closed orbit, 25 steps, tiles 2×8) from its tile-evaluation count × the 2×8 tile's time plus
the pose features (once per frame), beside plain SVD's seconds per frame of one 25-frame clip
(25 steps × the 1×25 tile's time / 25). Their ratio is the cost of tiling and progressive sampling
(aim: <= 1.5). With --job-frames, a real progressive job of 4 views × that many frames runs end to end
(pipeline call to latents, --job-steps steps) and its measured seconds per frame·view·step are printed
beside the tile-based figure, so the sampler's own overhead is measured too.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DEFAULT_JOB = dict(views=4, frames=91, steps=25)


# ---------------------------------------------------------------------------------------------
# The view attention (backends/diffusion/views.py): the SVD-XT UNet becomes HVG's, with a zero-initialised
# view attention in each of its 16 spatio-temporal transformers, so time and memory include it.
# ---------------------------------------------------------------------------------------------
def add_view_attention(pipe):
    """pipe with its UNet made view-aware in place (as_view_unet: base weights kept, view attention added)."""
    from hvg_cli.backends.diffusion.views import as_view_unet

    pipe.unet = as_view_unet(pipe.unet)
    return pipe


def predict(pipe, ref, scaled, t, residual, guidance, views: int):
    """pipe.predict_tile on one tile of `views` views (folded into the UNet's batch)."""
    return pipe.predict_tile(ref, scaled, t, residual, guidance, views=views)


# ---------------------------------------------------------------------------------------------
# building the model
# ---------------------------------------------------------------------------------------------
def svd_xt_components(device: str):
    """SVD-XT-sized components with random weights, built directly on `device` (fp32)."""
    import torch
    from diffusers import AutoencoderKLTemporalDecoder, EulerDiscreteScheduler, UNetSpatioTemporalConditionModel
    from transformers import CLIPImageProcessor, CLIPVisionConfig, CLIPVisionModelWithProjection

    from hvg_cli.backends.diffusion.weights import SVD_SCHEDULER_CONFIG, pose_encoder_for

    torch.manual_seed(0)
    with torch.device(device):
        unet = UNetSpatioTemporalConditionModel()  # diffusers' defaults = SVD's UNet
        vae = AutoencoderKLTemporalDecoder(
            in_channels=3,
            out_channels=3,
            down_block_types=["DownEncoderBlock2D"] * 4,
            block_out_channels=[128, 256, 512, 512],
            layers_per_block=2,
            latent_channels=4,
            sample_size=768,
            scaling_factor=0.18215,
            force_upcast=True,
        )
        clip = CLIPVisionModelWithProjection(
            CLIPVisionConfig(
                hidden_size=1280,
                intermediate_size=5120,
                num_attention_heads=16,
                num_hidden_layers=32,
                patch_size=14,
                image_size=224,
                projection_dim=1024,
                hidden_act="gelu",
            )
        )
        pose = pose_encoder_for(unet, vae)  # (16, 32, 64, 128) -> 320, downscale 8
    scheduler = EulerDiscreteScheduler(**SVD_SCHEDULER_CONFIG)  # SVD-XT's scheduler_config.json
    comps = {
        "vae": vae,
        "image_encoder": clip,
        "unet": unet,
        "scheduler": scheduler,
        "feature_extractor": CLIPImageProcessor(crop_size=224, size=224),
        "pose_encoder": pose,
    }
    for m in (unet, vae, clip, pose):
        m.eval()
    return comps


def build(tiny: bool, device: str, dtype, offload: bool):
    import torch

    from hvg_cli.backends.diffusion.pipeline_hvg import HVGPipeline
    from hvg_cli.backends.diffusion.weights import _quiet, tiny_components

    _quiet()
    comps = tiny_components(0) if tiny else svd_xt_components(device)
    pipe = HVGPipeline(**comps)
    pipe.set_progress_bar_config(disable=True)
    pipe.to(dtype=dtype)
    if dtype == torch.float16 and pipe.vae.config.force_upcast:
        pipe.vae.to(dtype=torch.float32)  # as weights.load_pipeline does
    pipe = add_view_attention(pipe)
    if offload:
        pipe.to("cpu")
        pipe.enable_model_cpu_offload(device=device)
    else:
        pipe.to(device)
    return pipe


# ---------------------------------------------------------------------------------------------
# measuring
# ---------------------------------------------------------------------------------------------
class Clock:
    def __init__(self, device: str):
        import torch

        self.torch, self.cuda = torch, device.startswith("cuda")

    def sync(self) -> None:
        if self.cuda:
            self.torch.cuda.synchronize()

    def reset_peak(self) -> None:
        if self.cuda:
            self.sync()
            self.torch.cuda.reset_peak_memory_stats()

    def peak(self) -> int | None:
        return int(self.torch.cuda.max_memory_allocated()) if self.cuda else None


def synthetic_inputs(views: int, frames: int, height: int, width: int, seed: int = 0):
    """A photo, bone maps and an orbit camera grid of the given size (as the tests' synthetic job)."""
    import numpy as np

    from hvg_cli.core.types import BoneMaps, CameraGrid

    rng = np.random.default_rng(seed)
    H, W = height, width
    photo = rng.integers(0, 256, (H, W, 3), dtype=np.uint8)
    mask = np.zeros((views, frames, H, W), bool)
    mask[..., H // 8 : 7 * H // 8, 3 * W // 8 : 5 * W // 8] = True
    maps = BoneMaps(
        semantic=(rng.integers(0, 256, (views, frames, H, W, 3)) * mask[..., None]).astype(np.uint8),
        normal=(rng.uniform(-1, 1, (views, frames, H, W, 3)) * mask[..., None]).astype(np.float16),
        depth=(2.5 * mask).astype(np.float32),
        mask=mask,
        label=np.where(mask, 1, -1).astype(np.int8),
    )
    K = np.array([[1.2 * W, 0, W / 2], [0, 1.2 * W, H / 2], [0, 0, 1]])
    w2c = np.zeros((views, frames, 4, 4))
    for v in range(views):
        az = 2 * np.pi * v / views
        c = np.array([2.5 * np.sin(az), 0.9, 2.5 * np.cos(az)])
        z = np.array([0, 0.9, 0]) - c
        z /= np.linalg.norm(z)
        x = np.cross([0, -1.0, 0], z)
        x /= np.linalg.norm(x)
        R = np.stack([x, np.cross(z, x), z])
        w2c[v, :, :3, :3] = R
        w2c[v, :, :3, 3] = -R @ c
        w2c[v, :, 3, 3] = 1
    grid = CameraGrid(np.broadcast_to(K, (views, frames, 3, 3)).copy(), w2c, W, H, "views", views > 2)
    return photo, maps, grid


def tile_seconds(pipe, clock: Clock, views: int, frames: int, height: int, width: int, repeats: int, settings):
    """Time and peak memory of one tile evaluation of views × frames (pose head + UNet with CFG)."""
    import torch

    from hvg_cli.backends.diffusion.pipeline_hvg import PoseResiduals
    from hvg_cli.backends.diffusion.pose_encoder import conditioning_torch

    photo, maps, grid = synthetic_inputs(views, frames, height, width)
    device = pipe._execution_device
    dtype = pipe.unet.dtype
    gen = torch.Generator("cpu").manual_seed(0)
    ref = pipe.encode_reference(photo, torch.randn((1, 3, height, width), generator=gen), settings)
    H, W = height, width
    n = views * frames

    def cond_fn(vs, ts, pairs=False):
        import numpy as np

        iv, it = (np.asarray(vs), np.asarray(ts)) if pairs else np.ix_(vs, ts)
        return conditioning_torch(
            maps.semantic[iv, it].reshape(-1, H, W, 3),
            maps.normal[iv, it].reshape(-1, H, W, 3),
            maps.depth[iv, it].reshape(-1, H, W),
            maps.mask[iv, it].reshape(-1, H, W),
            grid.K[iv, it].reshape(-1, 3, 3),
            grid.world_to_cam[iv, it].reshape(-1, 4, 4),
            device=device,
        )

    clock.reset_peak()
    clock.sync()
    t0 = time.perf_counter()
    residuals = PoseResiduals(pipe, cond_fn, views, frames, keep=True)
    clock.sync()
    feature_seconds = (time.perf_counter() - t0) / n
    s = pipe.vae_scale_factor
    x = torch.randn((n, 4, H // s, W // s), generator=gen).to(device=device, dtype=dtype)  # [v*t, 4, h, w]
    pipe.scheduler.set_timesteps(settings.steps, device=device)
    t = pipe.scheduler.timesteps[settings.steps // 2]
    g = torch.full((n,), settings.guidance_max)
    vs, ts = tuple(range(views)), tuple(range(frames))
    times = []
    with torch.no_grad():
        for r in range(repeats + 1):  # the first is a warm-up
            clock.sync()
            t0 = time.perf_counter()
            predict(pipe, ref, x, t, residuals(vs, ts), g, views)
            clock.sync()
            if r:
                times.append(time.perf_counter() - t0)
    return statistics.median(times), feature_seconds, clock.peak()


def estimate(pipe, views: int, frames: int, height: int, width: int, dtype_bytes: int, offload: bool) -> int:
    """--dry-run's memory estimate for a single tile of views × frames with this model's sizes."""
    from hvg_cli.backends.diffusion import DiffusionSettings
    from hvg_cli.backends.diffusion.plan import make_plan, memory_estimate

    s = pipe.vae_scale_factor
    plan = make_plan(views, frames, height // s, width // s, DiffusionSettings(sampling="full"))
    params = {
        c: sum(p.numel() for p in getattr(pipe, c).parameters())
        for c in ("unet", "vae", "image_encoder", "pose_encoder")
    }
    return memory_estimate(
        plan, None, dtype_bytes, unet_channels=pipe.unet.config.block_out_channels, params=params, offload=offload
    )["total_bytes"]


def job_seconds(pipe, clock: Clock, views: int, frames: int, height: int, width: int, settings) -> float:
    """Seconds of a real progressive job (pipeline call to latents), per frame·view·step."""
    photo, maps, grid = synthetic_inputs(views, frames, height, width)
    clock.sync()
    t0 = time.perf_counter()
    pipe(photo, maps, grid, settings, output_type="latent")
    clock.sync()
    return (time.perf_counter() - t0) / (views * frames * settings.steps)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tiny", action="store_true", help="tiny random model on the CPU (smoke check)")
    ap.add_argument("--sizes", nargs="+", default=None, help="HxW, default 576x1024 512x512 (tiny: 32x32)")
    ap.add_argument("--tiles", nargs="+", default=["1x14", "1x25", "2x8", "4x8"], help="views x frames")
    ap.add_argument("--dtypes", nargs="+", default=None, help="default fp16 bf16 (tiny: fp32)")
    ap.add_argument("--offload", nargs="+", default=None, choices=["off", "on"], help="default off on (tiny: off)")
    ap.add_argument("--repeats", type=int, default=None, help="timed evaluations per tile after a warm-up (3; tiny: 1)")
    ap.add_argument("--job-frames", type=int, default=0, help="also run a real 4-view progressive job this long")
    ap.add_argument("--job-steps", type=int, default=2)
    ap.add_argument("--device", default=None)
    ap.add_argument("--json", type=Path, default=None)
    a = ap.parse_args()

    import torch

    from hvg_cli.backends.diffusion import DiffusionSettings
    from hvg_cli.backends.diffusion.plan import make_plan

    if a.tiny:
        torch.set_num_threads(1)
    device = a.device or ("cuda" if torch.cuda.is_available() and not a.tiny else "cpu")
    repeats = a.repeats or (1 if a.tiny else 3)
    sizes = [
        tuple(int(n) for n in s.split("x")) for s in (a.sizes or (["32x32"] if a.tiny else ["576x1024", "512x512"]))
    ]
    tiles = [tuple(int(n) for n in s.split("x")) for s in a.tiles]
    dtypes = a.dtypes or (["fp32"] if a.tiny else ["fp16", "bf16"])
    offloads = a.offload or (["off"] if a.tiny or device == "cpu" else ["off", "on"])
    torch_dtype = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
    settings = DiffusionSettings(guidance_max=3.0)  # defaults: 25 steps, CFG on, tiles 2×8
    gpu = torch.cuda.get_device_name(0) if device.startswith("cuda") else "CPU"
    print(
        f"{'tiny' if a.tiny else 'SVD-XT-sized'} HVG model, random weights, on {gpu} ({device}), torch "
        f"{torch.__version__}"
    )

    rows, jobs = [], []
    for dname in dtypes:
        for off in offloads:
            pipe = build(a.tiny, device, torch_dtype[dname], off == "on")
            procs = sorted({type(p).__name__ for p in pipe.unet.attn_processors.values()})
            params = sum(p.numel() for p in pipe.unet.parameters()) / 1e6
            print(f"\n{dname}, offload {off}: UNet {params:.0f} M parameters, attention {', '.join(procs)}")
            print(
                f"  {'size':>9s} {'tile':>5s} {'s/eval':>8s} {'peak GiB':>9s} {'estimate GiB':>12s} "
                f"{'pose features s/frame':>22s}"
            )
            for H, W in sizes:
                for v, t in tiles:
                    sec, feat, peak = tile_seconds(pipe, Clock(device), v, t, H, W, repeats, settings)
                    est = estimate(pipe, v, t, H, W, torch.finfo(torch_dtype[dname]).bits // 8, off == "on")
                    rows.append(
                        {
                            "dtype": dname,
                            "offload": off,
                            "size": [H, W],
                            "tile": [v, t],
                            "seconds": sec,
                            "peak_bytes": peak,
                            "estimate_bytes": est,
                            "pose_feature_seconds": feat,
                        }
                    )
                    pk = f"{peak / 2**30:9.2f}" if peak is not None else f"{'n/a':>9s}"
                    print(f"  {H:4d}x{W:<4d} {v}x{t:<3d} {sec:8.3f} {pk} {est / 2**30:12.2f} {feat:22.4f}", flush=True)
            # the default progressive job vs plain SVD, per generated frame (·view)
            for H, W in sizes:
                r = {
                    (x["tile"][0], x["tile"][1]): x
                    for x in rows
                    if x["dtype"] == dname and x["offload"] == off and x["size"] == [H, W]
                }
                if (2, 8) not in r or (1, 25) not in r:
                    continue
                s = pipe.vae_scale_factor
                plan = make_plan(DEFAULT_JOB["views"], DEFAULT_JOB["frames"], H // s, W // s, settings, closed=True)
                n = DEFAULT_JOB["views"] * DEFAULT_JOB["frames"]
                hvg = (plan.tile_evaluations * r[(2, 8)]["seconds"] + n * r[(2, 8)]["pose_feature_seconds"]) / n
                svd = settings.steps * r[(1, 25)]["seconds"] / 25
                line = {
                    "dtype": dname,
                    "offload": off,
                    "size": [H, W],
                    "tile_evaluations": plan.tile_evaluations,
                    "hvg_s_per_frame_view": hvg,
                    "svd_s_per_frame": svd,
                    "ratio": hvg / svd,
                }
                if a.job_frames:
                    js = settings.with_(steps=a.job_steps)
                    per = job_seconds(pipe, Clock(device), DEFAULT_JOB["views"], a.job_frames, H, W, js)
                    plan_j = make_plan(DEFAULT_JOB["views"], a.job_frames, H // s, W // s, js, closed=True)
                    tiles_only = (
                        plan_j.tile_evaluations
                        * r[(2, 8)]["seconds"]
                        / (DEFAULT_JOB["views"] * a.job_frames * js.steps)
                    )
                    line.update(
                        job_frames=a.job_frames,
                        job_s_per_frame_view_step=per,
                        job_tile_estimate_s_per_frame_view_step=tiles_only,
                    )
                jobs.append(line)
                print(
                    f"  {H}x{W}: default job (4x91, 25 steps, {plan.tile_evaluations} tile evals) "
                    f"{hvg:.3f} s per frame·view vs plain SVD {svd:.3f} s per frame (one 25-frame clip): "
                    f"ratio {hvg / svd:.2f} (aim <= 1.5)",
                    flush=True,
                )
                if a.job_frames:
                    print(
                        f"    real job 4x{a.job_frames}, {a.job_steps} steps: {line['job_s_per_frame_view_step']:.4f} "
                        f"s per frame·view·step measured vs {line['job_tile_estimate_s_per_frame_view_step']:.4f} "
                        f"from tile evaluations alone",
                        flush=True,
                    )
            del pipe
            if device.startswith("cuda"):
                torch.cuda.empty_cache()
    if a.json:
        a.json.write_text(json.dumps({"device": gpu, "tiles": rows, "jobs": jobs}, indent=1))


if __name__ == "__main__":
    main()
