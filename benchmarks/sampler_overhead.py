"""Time spent outside UNet calls, as a share of sampling time (tiny random pipeline, CPU).

    .venv/bin/python benchmarks/sampler_overhead.py [--size 512] [--views 4] [--frames 8] [--steps 2] [--vae-factor 8]

The model: the tests' tiny random UNet and CLIP (channels (32, 64)), with a tiny VAE of SVD's downscale
factor 8 (4 blocks (32, 32, 64, 64)) and hvg's SVD-sized pose encoder ((16, 32, 64, 128), downscale 8),
so 512² px is a 64² latent as for SVD and the pose input and encoder cost what they cost with SVD.
The UNet is far cheaper than SVD's, so the share outside UNet calls here is an upper bound of SVD's.
(`--vae-factor 2` is the tests' pipeline as it is: a 256² latent whose full-resolution spatial attention
takes minutes per tile on a CPU.)

One job (closed orbit of `--views` views × `--frames` frames at `--size`², default tiles 2 views × 8
frames with overlaps 1 × 3, one-pass sampling so every tile is a 16-frame UNet evaluation) is sampled
twice in the same process with the same weights and noise:
  baseline  pose_residuals="recompute": the encoder input (bone maps + Plücker rays) and the whole pose
            encoder are rebuilt for every tile at every step, as the sampler did before;
  now       pose_residuals="keep": the encoder's trunk runs once per (view, frame), a tile gathers its
            features and runs the 1×1 head.
Sampling time is the pipeline call up to the final latents (photo encoding, pose features, every step;
no VAE decoding); UNet time is the wall time inside `unet.forward`. The share outside UNet calls is
1 - UNet / sampling. Target: at most 15 %. The two runs' latents are compared (same up to kernel noise).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))


def tiny_pipe_factor8():
    """The tests' tiny UNet and CLIP with a tiny VAE of downscale 8 and the SVD-sized pose encoder."""
    import torch
    from diffusers import AutoencoderKLTemporalDecoder

    from hvg_cli.backends.diffusion.pipeline_hvg import HVGPipeline
    from hvg_cli.backends.diffusion.weights import pose_encoder_for, tiny_components

    comps = tiny_components(0)
    torch.manual_seed(0)
    comps["vae"] = AutoencoderKLTemporalDecoder(
        block_out_channels=[32, 32, 64, 64],
        in_channels=3,
        out_channels=3,
        down_block_types=["DownEncoderBlock2D"] * 4,
        latent_channels=4,
    ).eval()
    torch.manual_seed(0)
    comps["pose_encoder"] = pose_encoder_for(comps["unet"], comps["vae"]).eval()  # (16, 32, 64, 128) -> 32, /8
    pipe = HVGPipeline(**comps)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--views", type=int, default=4)
    ap.add_argument("--frames", type=int, default=8)
    ap.add_argument("--steps", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--vae-factor", type=int, default=8, choices=[2, 8])
    a = ap.parse_args()

    import torch

    torch.set_num_threads(a.threads)
    import test_diffusion as td  # the synthetic job builder of the tests

    from hvg_cli.backends.diffusion import DiffusionSettings

    td.H = td.W = a.size
    photo, maps, grid = td.synthetic_job(a.views, a.frames, closed=True)
    pipe = td.tiny_pipe() if a.vae_factor == 2 else tiny_pipe_factor8()
    torch.manual_seed(1)
    torch.nn.init.normal_(pipe.pose_encoder.conv_out.weight, std=0.5)  # a live pose pathway, as trained weights
    base = DiffusionSettings(steps=a.steps, guidance_max=2.5, sampling="onepass")  # default tiles 2×8, overlaps 1×3
    plan = pipe.plan(maps, grid, base)

    unet_seconds = [0.0]
    first_call = [None]
    forward = pipe.unet.forward

    def timed_forward(*args, **kwargs):
        t0 = time.perf_counter()
        if first_call[0] is None:
            first_call[0] = t0
        out = forward(*args, **kwargs)
        unet_seconds[0] += time.perf_counter() - t0
        return out

    pipe.unet.forward = timed_forward

    print(
        f"tiny HVG pipeline (random weights, pose encoder {tuple(pipe.pose_encoder.config.block_out_channels)}), "
        f"{a.size}x{a.size} px, latent {plan.latent_height}x{plan.latent_width}, {a.views} views (closed) x "
        f"{a.frames} frames, {a.steps} steps, {plan.tile_evaluations} tile evaluations of up to "
        f"{plan.max_tile_frames} frames, torch threads {a.threads}"
    )
    results = {}
    for name, policy in (
        ("baseline: encoder per tile and step", "recompute"),
        ("now: encoder once per (view, frame)", "keep"),
    ):
        unet_seconds[0] = 0.0
        first_call[0] = None
        t0 = time.perf_counter()
        lat = pipe(photo, maps, grid, base.with_(pose_residuals=policy), output_type="latent").frames
        total = time.perf_counter() - t0
        outside = total - unet_seconds[0]
        results[policy] = lat
        once = first_call[0] - t0  # before the first UNet call: photo encoding, plan, pose features (kept)
        per_step_out = (outside - once) / a.steps
        per_step_unet = unet_seconds[0] / a.steps
        at25 = (once + 25 * per_step_out) / (once + 25 * (per_step_out + per_step_unet))
        print(
            f"  {name:38s} sampling {total:7.2f} s  UNet {unet_seconds[0]:7.2f} s  outside UNet {outside:6.2f} s"
            f"  = {100 * outside / total:5.1f} % of sampling  ({outside / plan.tile_evaluations:.3f} s per tile eval;"
            f" before the first UNet call {once:.2f} s, then {per_step_out:.2f} s per step;"
            f" at 25 steps {100 * at25:.1f} %)",
            flush=True,
        )
    diff = float((results["keep"] - results["recompute"]).abs().max())
    print(f"  latents of the two runs differ by at most {diff:.2e}")


if __name__ == "__main__":
    main()
