"""Seconds per training step and peak memory of the HVG denoiser, per `--unet` mode and gradient checkpointing.

The baseline, measured in the same run, is `--unet frozen` without checkpointing (only the pose encoder and
view attention learn); every other row prints its time and memory beside it.

  python benchmarks/train_step.py                      # tiny random components, CPU, 32 px, 2 frames
  python benchmarks/train_step.py --full --size 512x512 --size 576x1024 --frames 14 --dtype bf16   # a GPU

--full builds SVD's UNet from diffusers' default config (1.5 B parameters, random weights: no download).
"""

from __future__ import annotations

import argparse
import time

import torch


def build(full: bool) -> tuple[torch.nn.Module, torch.nn.Module, int, int]:
    from hvg_cli.backends.diffusion.pose_encoder import PoseEncoder
    from hvg_cli.backends.diffusion.weights import tiny_components

    if not full:
        c = tiny_components()
        return c["unet"], c["pose_encoder"], 2, 32  # VAE factor, CLIP dim
    from diffusers import UNetSpatioTemporalConditionModel

    torch.manual_seed(0)
    unet = UNetSpatioTemporalConditionModel()  # SVD img2vid's architecture
    pe = PoseEncoder(out_channels=unet.config.block_out_channels[0], downscale=8)
    return unet, pe, 8, unet.config.cross_attention_dim


def run(
    unet_mode: str, ckpt: bool, size: tuple[int, int], frames: int, steps: int, full: bool, dtype: str, device: str
) -> tuple[float, float]:
    from hvg_cli.train.model import HVGDenoiser, select_trainable
    from hvg_cli.train.objective import Preconditioning, edm_loss

    unet, pe, factor, dim = build(full)
    model = HVGDenoiser(unet, pe).to(device).train()
    names = select_trainable(model, unet_mode)
    if ckpt:
        unet.enable_gradient_checkpointing()
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-5)
    H, W = size
    h, w = H // factor, W // factor
    B, F = 1, frames
    g = torch.Generator().manual_seed(0)
    x0 = torch.randn(B, F, 4, h, w, generator=g).to(device)
    sigma = torch.full((B,), 1.5, device=device)
    pre = Preconditioning()
    noisy = x0 + sigma[:, None, None, None, None] * torch.randn(x0.shape, generator=g).to(device)
    inputs = dict(
        scaled=pre.c_in(sigma)[:, None, None, None, None] * noisy,
        ref_latent=torch.randn(B, 4, h, w, generator=g).to(device),
        c_noise=pre.c_noise(sigma),
        embedding=torch.randn(B, 1, dim, generator=g).to(device),
        time_ids=torch.tensor([[6.0, 127.0, 0.02]], device=device),
        pose_cond=torch.randn(B * F, 14, H, W, generator=g).to(device),
        pose_keep=torch.ones(B, device=device),
    )
    amp = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(dtype)
    cuda = device.startswith("cuda")
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    times = []
    for i in range(steps + 1):  # the first step warms up (allocations, kernels) and is not timed
        t0 = time.perf_counter()
        with torch.autocast(device.split(":")[0], dtype=amp, enabled=amp is not None):
            out = model(**inputs)
        loss = edm_loss(pre, out, noisy, x0, sigma).mean()
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        if cuda:
            torch.cuda.synchronize()
        if i:
            times.append(time.perf_counter() - t0)
    peak = torch.cuda.max_memory_allocated() / 2**30 if cuda else float("nan")
    n_train = sum(p.numel() for p in params)
    del model, opt, unet, pe
    if cuda:
        torch.cuda.empty_cache()
    return sum(times) / len(times), peak, n_train, len(names["unet"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--full", action="store_true", help="SVD-size UNet (needs a GPU in practice)")
    ap.add_argument("--size", action="append", help="HxW pixels, repeatable (default 32x32, or 512x512 with --full)")
    ap.add_argument("--frames", type=int, default=None)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--dtype", default="fp32", choices=["fp32", "bf16", "fp16"])
    ap.add_argument("--modes", default="frozen,temporal,all")
    args = ap.parse_args()
    device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cpu":
        torch.set_num_threads(1)
    sizes = [tuple(int(v) for v in s.split("x")) for s in (args.size or (["512x512"] if args.full else ["32x32"]))]
    frames = args.frames or (14 if args.full else 2)
    print(
        f"device {device}, {'SVD-size' if args.full else 'tiny'} UNet, {frames} frames, {args.dtype}, "
        f"{args.steps} timed steps after 1 warm-up"
    )
    print(f"{'size':>9} {'unet':>8} {'ckpt':>5} {'s/step':>8} {'x base':>7} {'peak GiB':>9} {'trained':>12}")
    for size in sizes:
        base = None
        for mode in args.modes.split(","):
            for ckpt in (False, True):
                try:
                    sec, peak, n, _ = run(mode, ckpt, size, frames, args.steps, args.full, args.dtype, device)
                except torch.OutOfMemoryError:
                    print(f"{size[0]}x{size[1]:<4} {mode:>8} {str(ckpt):>5}  out of memory")
                    torch.cuda.empty_cache()
                    continue
                base = base or sec
                mem = f"{peak:9.2f}" if peak == peak else f"{'-':>9}"  # peak memory: CUDA only
                print(f"{size[0]}x{size[1]:<4} {mode:>8} {str(ckpt):>5} {sec:8.3f} {sec / base:7.2f} {mem} {n:12,d}")


if __name__ == "__main__":
    main()
