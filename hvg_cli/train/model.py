"""What trains: the denoiser module (pose encoder + UNet, SVD's conditioning), and which parameters learn.

The training forward applies SVD's conditioning exactly as HVGPipeline.predict_tile does at sampling
time: scheduler-scaled noisy latents ‖ the reference latent on channels, the CLIP embedding as
cross-attention context, added_time_ids (fps − 1, motion bucket, noise augmentation), and the pose
encoder's residual added to the output of the UNet's conv_in. A sample's views × frames arrive view-major
(frame index = view · T + t); the forward folds the views into the UNet's batch (row b·V + v holds view v's
T frames) and passes num_views to views.HVGUNet, exactly as the sampler does.

Parameter selection is by name:
  new parts (always trained):  every pose-encoder parameter, and every UNet parameter whose name holds
                               `view_attn` (the naming contract of backends/diffusion's view attention)
  unet="temporal":             plus SVD's temporal layers (names holding `temporal_`, `time_mixer`,
                               `time_pos_embed`)
  unet="all":                  plus every other UNet parameter
  unet="lora":                 plus LoRA adapters (peft) on the UNet's attention projections
  unet="frozen":               nothing else
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from hvg_cli.backends.diffusion.views import HVGUNet
from hvg_cli.core.errors import BadInput, MissingDependency

UNET_MODES = ("temporal", "all", "lora", "frozen")
VIEW_ATTN_KEY = "view_attn"
TEMPORAL_KEYS = ("temporal_", "time_mixer", "time_pos_embed")
LORA_TARGETS = ("to_q", "to_k", "to_v", "to_out.0")


def is_view_attention(name: str) -> bool:
    return VIEW_ATTN_KEY in name


def is_temporal(name: str) -> bool:
    return any(k in name for k in TEMPORAL_KEYS)


class HVGDenoiser(nn.Module):
    """F(c_in·x; c_noise) of the EDM denoiser: pose encoder + SVD UNet, one module for accelerate/DDP."""

    def __init__(self, unet: nn.Module, pose_encoder: nn.Module):
        super().__init__()
        self.unet = unet
        self.pose_encoder = pose_encoder

    def forward(
        self,
        scaled: torch.Tensor,
        ref_latent: torch.Tensor,
        c_noise: torch.Tensor,
        embedding: torch.Tensor,
        time_ids: torch.Tensor,
        pose_cond: torch.Tensor,
        pose_keep: torch.Tensor,
        num_views: int = 1,
    ) -> torch.Tensor:
        """The UNet's output F.

        scaled:     [B, F, C, h, w] c_in(σ)·(x0 + σ·n), F = views × frames, view-major
        ref_latent: [B, C, h, w] the reference latent (zeros where dropped)
        c_noise:    [B] 0.25·ln σ
        embedding:  [B, 1, D] CLIP image embedding (zeros where dropped)
        time_ids:   [B, 3] (fps − 1, motion_bucket_id, noise_aug_strength)
        pose_cond:  [B·F, 14, H, W] pose-encoder input, batch-major then view-major
        pose_keep:  [B] 1 keeps the pose residual, 0 drops it
        num_views:  V (F = V × T); the views are folded into the UNet's batch exactly as
                    HVGPipeline.predict_tile folds them, so its temporal layers see one view's T frames at a
                    time and only the view attention mixes views
        returns     [B, F, C, h, w]
        """
        from hvg_cli.backends.diffusion.pose_encoder import conv_in_residual

        B, F = scaled.shape[:2]
        V = int(num_views)
        if V < 1 or F % V:
            raise ValueError(f"{F} frames are not a multiple of num_views={V}")
        T = F // V
        shape = scaled.shape[2:]  # (C, h, w)
        x = scaled.reshape(B, V, T, *shape)  # [B, V, T, C, h, w]
        img = ref_latent[:, None, None].expand(B, V, T, *ref_latent.shape[1:])  # [B, V, T, C, h, w]
        model_in = torch.cat([x, img], dim=3).reshape(B * V, T, -1, *shape[1:])  # [B*V, T, 2C, h, w]
        emb = embedding.repeat_interleave(V, dim=0)  # [B*V, 1, D], batch-major like model_in
        ids = time_ids.repeat_interleave(V, dim=0)  # [B*V, 3]
        t = c_noise.repeat_interleave(V)  # [B*V]
        residual = self.pose_encoder(pose_cond)  # [B*F, C0, h, w]: index (b·V + v)·T + t, as the UNet flattens
        keep = pose_keep.to(residual.dtype).repeat_interleave(F)[:, None, None, None]  # [B*F, 1, 1, 1]
        # the multiply keeps every pose-encoder parameter in the graph (DDP needs no unused-parameter search)
        with conv_in_residual(self.unet, residual * keep):
            out = self.unet(model_in, t, encoder_hidden_states=emb, added_time_ids=ids, num_views=V, return_dict=False)[
                0
            ]  # [B*V, T, C, h, w]
        return out.reshape(B, F, *out.shape[2:])  # [B, F, C, h, w], view-major


def load_components(weights: str | Path) -> tuple[HVGUNet, nn.Module, dict]:
    """(unet: HVGUNet, pose_encoder, scheduler_config) from a checked HVG weights folder, local safetensors only.

    The one place that builds the trainable model from a folder; the UNet is the sampler's view-aware
    HVGUNet (views.load_view_unet), so training and sampling run the same module.
    """
    from diffusers import EulerDiscreteScheduler

    from hvg_cli.backends.diffusion.pose_encoder import PoseEncoder
    from hvg_cli.backends.diffusion.views import load_view_unet
    from hvg_cli.backends.diffusion.weights import _quiet

    _quiet()
    root = Path(weights)
    unet = load_view_unet(root / "unet")  # HVGUNet; a folder without view attention gets it fresh (zero output)
    pose_encoder = PoseEncoder.from_pretrained(root / "pose_encoder", local_files_only=True, use_safetensors=True)
    sched_cfg = EulerDiscreteScheduler.load_config(root / "scheduler", local_files_only=True)
    return unet, pose_encoder, sched_cfg


def add_lora(unet: nn.Module, rank: int) -> None:
    """LoRA adapters (peft) on the UNet's attention projections, in place; MissingDependency without peft.

    diffusers' SVD UNet has no adapter mixin, so peft injects the layers directly (B starts at zero: the
    model equals its base until the first step)."""
    try:
        from peft import LoraConfig, inject_adapter_in_model
    except ImportError:
        raise MissingDependency(
            "--unet lora needs the peft package", "pip install peft, or use --unet temporal"
        ) from None
    inject_adapter_in_model(
        LoraConfig(r=rank, lora_alpha=rank, init_lora_weights="gaussian", target_modules=list(LORA_TARGETS)), unet
    )


def merge_lora(unet: nn.Module) -> int:
    """Fold every LoRA adapter into its base layer and put the base layer back: the UNet's parameter names
    are SVD's again (a plain weights folder). Returns the number of merged layers."""
    from peft.tuners.tuners_utils import BaseTunerLayer

    merged = 0
    for name, module in list(unet.named_modules()):
        if isinstance(module, BaseTunerLayer):
            module.merge()
            parent_name, _, child = name.rpartition(".")
            parent = unet.get_submodule(parent_name) if parent_name else unet
            setattr(parent, child, module.get_base_layer())
            merged += 1
    return merged


def select_trainable(model: HVGDenoiser, unet_mode: str) -> dict[str, list[str]]:
    """Set requires_grad by name; returns {"new": [...], "unet": [...]} parameter names (model-relative).

    "new" (pose encoder, view attention) and "unet" (SVD's own or LoRA parameters) get their own
    learning rates. Call add_lora first for unet_mode="lora".
    """
    if unet_mode not in UNET_MODES:
        raise BadInput(f"unknown --unet mode {unet_mode!r}", f"use one of {', '.join(UNET_MODES)}")
    new: list[str] = []
    base: list[str] = []
    for name, p in model.named_parameters():
        if name.startswith("pose_encoder.") or is_view_attention(name):
            train, group = True, new
        elif unet_mode == "all":
            train, group = True, base
        elif unet_mode == "temporal":
            train, group = is_temporal(name), base
        elif unet_mode == "lora":
            train, group = "lora_" in name, base
        else:
            train, group = False, base
        p.requires_grad_(train)
        if train:
            group.append(name)
    return {"new": new, "unet": base}
