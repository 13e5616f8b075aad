"""HVGPipeline: Stable Video Diffusion's parts plus the bone-map encoder, sampled tile by tile.

Components (a diffusers pipeline folder, see weights/README.md):
  vae              AutoencoderKLTemporalDecoder
  image_encoder    transformers CLIPVisionModelWithProjection (+ feature_extractor CLIPImageProcessor)
  unet             HVGUNet (views.py): SVD's UNetSpatioTemporalConditionModel (8 input channels: noisy
                   latent ‖ photo latent) plus zero-initialised view attention
  scheduler        EulerDiscreteScheduler
  pose_encoder     PoseEncoder (this package), zero-initialised output added after unet.conv_in

The reference photo is treated exactly as SVD treats its input image (same operations, same order),
so with the zero-initialised encoder and one tile over all frames the result equals
diffusers' StableVideoDiffusionPipeline (tests/test_diffusion.py checks it).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from diffusers import AutoencoderKLTemporalDecoder, EulerDiscreteScheduler, UNetSpatioTemporalConditionModel
from diffusers.pipelines.pipeline_utils import DiffusionPipeline
from diffusers.pipelines.stable_video_diffusion.pipeline_stable_video_diffusion import _resize_with_antialiasing
from transformers import CLIPImageProcessor, CLIPVisionModelWithProjection

from hvg_cli.backends.diffusion.plan import SamplingPlan, make_plan
from hvg_cli.backends.diffusion.pose_encoder import PoseEncoder, conditioning_torch, conv_in_residual
from hvg_cli.backends.diffusion.settings import DiffusionSettings
from hvg_cli.backends.diffusion.views import HVGUNet, as_view_unet
from hvg_cli.core.errors import BadInput
from hvg_cli.core.types import BoneMaps, CameraGrid


@dataclass
class Reference:
    """The photo's conditioning, CFG batch first (uncond, cond) when guidance is on."""

    embeddings: torch.Tensor  # [B, 1, D] CLIP image embedding (uncond = zeros)
    latents: torch.Tensor  # [B, 4, h, w] VAE latent of the noise-augmented photo (uncond = zeros)
    time_ids: torch.Tensor  # [B, 3] (fps - 1, motion_bucket_id, noise_aug_strength)

    @property
    def cfg(self) -> bool:
        return self.embeddings.shape[0] == 2


class HVGPipeline(DiffusionPipeline):
    model_cpu_offload_seq = "image_encoder->pose_encoder->unet->vae"

    def __init__(self, vae: AutoencoderKLTemporalDecoder, image_encoder: CLIPVisionModelWithProjection,
                 unet: HVGUNet | UNetSpatioTemporalConditionModel, scheduler: EulerDiscreteScheduler,
                 feature_extractor: CLIPImageProcessor, pose_encoder: PoseEncoder):
        super().__init__()
        # a plain SVD UNet (e.g. diffusers loading an older folder) gains zero view attention in place
        unet = as_view_unet(unet)
        self.register_modules(vae=vae, image_encoder=image_encoder, unet=unet, scheduler=scheduler,
                              feature_extractor=feature_extractor, pose_encoder=pose_encoder)
        self.vae_scale_factor = 2 ** (len(self.vae.config.block_out_channels) - 1)

    # -----------------------------------------------------------------------------------------
    # Step 2 of __call__. Reference photo: CLIP embedding and VAE latent, as SVD computes them
    # -----------------------------------------------------------------------------------------
    @torch.no_grad()
    def encode_reference(self, photo: np.ndarray, aug_noise: torch.Tensor, settings: DiffusionSettings) -> Reference:
        """photo: [H, W, 3] uint8 (aligned, generation size); aug_noise: [1, 3, H, W] drawn from the seed."""
        device = self._execution_device
        cfg = settings.guidance_max > 1
        # [1, 3, H, W] in [0, 1], built as diffusers does (numpy NHWC -> transposed view): the memory
        # layout picks the conv kernels, and the same layout gives bit-identical latents
        image = torch.from_numpy((photo[None].astype(np.float32) / 255.0).transpose(0, 3, 1, 2))

        # CLIP: resize to 224 with antialiasing in [-1, 1], back to [0, 1], normalise
        clip_in = _resize_with_antialiasing(image * 2.0 - 1.0, (224, 224))  # [1, 3, 224, 224]
        clip_in = (clip_in + 1.0) / 2.0
        pixel_values = self.feature_extractor(images=clip_in, do_normalize=True, do_center_crop=False, do_resize=False,
                                              do_rescale=False, return_tensors="pt").pixel_values  # [1, 3, 224, 224]
        enc_dtype = next(self.image_encoder.parameters()).dtype
        emb = self.image_encoder(pixel_values.to(device=device, dtype=enc_dtype)).image_embeds[:, None]  # [1, 1, D]

        # VAE: [-1, 1], noise augmentation, latent mode
        vae_in = (image * 2.0 - 1.0).to(device)  # [1, 3, H, W]
        vae_in = vae_in + settings.noise_aug_strength * aug_noise.to(device=device, dtype=vae_in.dtype)
        lat = self.vae.encode(vae_in.to(dtype=self.vae.dtype)).latent_dist.mode()  # [1, 4, h, w]
        lat = lat.to(emb.dtype)

        ids = [settings.fps - 1, settings.motion_bucket_id, settings.noise_aug_strength]
        expected = self.unet.add_embedding.linear_1.in_features
        if self.unet.config.addition_time_embed_dim * len(ids) != expected:
            raise BadInput("the UNet's added-time embedding does not take (fps, motion bucket, noise aug)",
                           "check unet/config.json (addition_time_embed_dim, projection_class_embeddings_input_dim)")
        time_ids = torch.tensor([ids], dtype=emb.dtype, device=device)  # [1, 3]
        if cfg:  # batch (uncond, cond)
            emb = torch.cat([torch.zeros_like(emb), emb])  # [2, 1, D]
            lat = torch.cat([torch.zeros_like(lat), lat])  # [2, 4, h, w]
            time_ids = torch.cat([time_ids, time_ids])  # [2, 3]
        return Reference(emb, lat, time_ids)

    # -----------------------------------------------------------------------------------------
    # Step 4 of __call__ (sampler.sample calls it per tile). One tile: views × frames, view-major; the
    # views are folded into the UNet's batch, so its temporal layers see one view's frames at a time
    # and views meet only through the view attention (views.py)
    # -----------------------------------------------------------------------------------------
    @torch.no_grad()
    def predict_tile(self, ref: Reference, scaled: torch.Tensor, t: torch.Tensor, cond: torch.Tensor,
                     guidance: torch.Tensor, views: int) -> torch.Tensor:
        """The guided prediction of one tile.

        scaled:   [F, 4, h, w] scheduler-scaled noisy latents, F = views × frames, view-major
        cond:     [F, 14, H, W] pose-encoder input of the same frames
        guidance: [F] CFG scale of each frame (SVD's linear ramp over time)
        views:    the tile's number of views V (F = V × T)
        returns:  [F, 4, h, w]
        """
        B = ref.embeddings.shape[0]
        F = scaled.shape[0]
        V, T = views, F // views
        x = scaled.reshape(V, T, *scaled.shape[1:])[None].expand(B, V, T, *scaled.shape[1:])  # [B, V, T, 4, h, w]
        img = ref.latents[:, None, None].expand(B, V, T, *ref.latents.shape[1:])  # [B, V, T, 4, h, w]
        model_in = torch.cat([x, img], dim=3).reshape(B * V, T, -1, *scaled.shape[2:])  # [B*V, T, 8, h, w]
        emb = ref.embeddings.repeat_interleave(V, dim=0)  # [B*V, 1, D], batch-major like model_in
        time_ids = ref.time_ids.repeat_interleave(V, dim=0)  # [B*V, 3]
        pe_dtype = next(self.pose_encoder.parameters()).dtype
        residual = self.pose_encoder(cond.to(device=scaled.device, dtype=pe_dtype))  # [V*T, C0, h, w], view-major
        # the UNet flattens [B*V, T] to index (b·V + v)·T + t: the view-major residual repeated B times
        residual = residual.repeat(B, 1, 1, 1)  # [B*V*T, C0, h, w]
        with conv_in_residual(self.unet, residual):
            pred = self.unet(model_in, t, encoder_hidden_states=emb, added_time_ids=time_ids, num_views=V,
                             return_dict=False)[0]  # [B*V, T, 4, h, w]
        pred = pred.reshape(B, F, *pred.shape[2:])  # [B, F, 4, h, w], view-major
        if ref.cfg:
            uncond, cond_pred = pred.chunk(2)  # [1, F, 4, h, w] each
            g = guidance.to(pred.device, pred.dtype)[None, :, None, None, None]  # [1, F, 1, 1, 1]
            pred = uncond + g * (cond_pred - uncond)  # [1, F, 4, h, w]
        return pred[0]  # [F, 4, h, w]

    # -----------------------------------------------------------------------------------------
    # Step 5 of __call__. Decoding, chunked along time per view
    # -----------------------------------------------------------------------------------------
    @torch.no_grad()
    def decode(self, latents: torch.Tensor, chunk: int, out_uint8: bool = True):
        """latents [V, T, 4, h, w] -> [V, T, H, W, 3] uint8 (numpy) or [V, T, 3, H, W] float in [0, 1] (torch)."""
        V, T, _, h, w = latents.shape
        H, W = h * self.vae_scale_factor, w * self.vae_scale_factor
        out = np.zeros((V, T, H, W, 3), np.uint8) if out_uint8 else torch.zeros(V, T, 3, H, W)
        for v in range(V):
            for s in range(0, T, chunk):
                z = (1 / self.vae.config.scaling_factor) * latents[v, s : s + chunk]  # [n, 4, h, w], as SVD
                img = self.vae.decode(z.to(self.vae.dtype), num_frames=z.shape[0]).sample.float()  # [n, 3, H, W]
                img = (img * 0.5 + 0.5).clamp(0, 1)
                if out_uint8:
                    rgb = img.permute(0, 2, 3, 1).cpu().numpy()  # [n, H, W, 3]
                    out[v, s : s + z.shape[0]] = (rgb * 255).round().astype(np.uint8)
                else:
                    out[v, s : s + z.shape[0]] = img.cpu()
        return out

    # -----------------------------------------------------------------------------------------
    # The whole job
    # -----------------------------------------------------------------------------------------
    def plan(self, maps: BoneMaps, grid: CameraGrid, settings: DiffusionSettings) -> SamplingPlan:
        V, T, H, W = maps.shape
        s = self.vae_scale_factor
        return make_plan(V, T, H // s, W // s, settings, closed=grid.closed)

    @torch.no_grad()
    def __call__(self, photo: np.ndarray, maps: BoneMaps, grid: CameraGrid, settings: DiffusionSettings,
                 state_dir: str | Path | None = None, fingerprint: str = "", output_type: str = "np",
                 callback: Callable[[str, int, int], None] | None = None, progress=None):
        """Generate every view and frame.

        photo [H, W, 3] uint8 aligned reference; maps (aligned) and grid give V×T frames of H×W.
        state_dir: where the sampler's state is saved after every step (resume on re-run).
        output_type: "np" -> [V, T, H, W, 3] uint8; "pt" -> [V, T, 3, H, W] float in [0, 1];
                     "latent" -> [V, T, 4, h, w].
        callback(stage, step, steps): called after each finished (and saved) step.
        """
        from hvg_cli.backends.diffusion.sampler import sample
        from hvg_cli.core.progress import SILENT

        V, T, H, W = maps.shape
        check_sizes(photo, maps, grid, self)
        plan = self.plan(maps, grid, settings)
        device = self._execution_device
        dtype = self.unet.dtype

        # 1. Noise, all drawn up front from the seed on the CPU, in SVD's order: augmentation, latents
        gen = torch.Generator("cpu").manual_seed(settings.seed)
        aug_noise = torch.randn((1, 3, H, W), generator=gen, dtype=torch.float32)  # [1, 3, H, W]
        noise = torch.randn((V, T, 4, plan.latent_height, plan.latent_width), generator=gen,
                            dtype=torch.float32)  # [V, T, 4, h, w]

        # 2. Reference photo
        ref = self.encode_reference(photo, aug_noise, settings)

        # 3. Per-frame guidance ramp over time, as SVD
        guidance = torch.linspace(settings.guidance_min, settings.guidance_max, T)  # [T]

        # 4. Denoise the V×T grid stage by stage, tile by tile; a tile's pose-encoder input is built
        #    when the tile runs (keeping every tile's input would grow with the video's length)
        def cond_fn(tile_views: tuple[int, ...], times: tuple[int, ...]) -> torch.Tensor:
            iv, it = np.ix_(tile_views, times)  # [v, 1], [1, t]
            n = len(tile_views) * len(times)
            # every [v, t, ...] selection reshaped to [v*t, ...], view-major
            return conditioning_torch(
                maps.semantic[iv, it].reshape(n, H, W, 3), maps.normal[iv, it].reshape(n, H, W, 3),
                maps.depth[iv, it].reshape(n, H, W), maps.mask[iv, it].reshape(n, H, W),
                grid.K[iv, it].reshape(n, 3, 3), grid.world_to_cam[iv, it].reshape(n, 4, 4), device=device,
            )  # [v*t, 14, H, W], view-major

        latents = sample(self, ref, plan, noise.to(device=device, dtype=dtype), cond_fn, guidance, settings,
                         state_dir=state_dir, fingerprint=fingerprint, callback=callback, progress=progress or SILENT)
        if output_type == "latent":
            return latents
        # 5. Decode in chunks
        self.maybe_free_model_hooks()
        return self.decode(latents, settings.decode_chunk, out_uint8=(output_type == "np"))


def check_sizes(photo: np.ndarray, maps: BoneMaps, grid: CameraGrid, pipe: HVGPipeline) -> None:
    V, T, H, W = maps.shape
    if photo.shape != (H, W, 3) or photo.dtype != np.uint8:
        raise BadInput(f"the aligned photo is {photo.shape} {photo.dtype}, the bone maps are {H}x{W}",
                       "align the photo to the bone maps' size (uint8 RGB)")
    if grid.shape != (V, T):
        raise BadInput(f"the camera grid is {grid.shape}, the bone maps are {(V, T)} views x frames")
    mult = pipe.vae_scale_factor * 2 ** (len(pipe.unet.config.block_out_channels) - 1)
    if H % mult or W % mult:
        raise BadInput(f"{W}x{H} is not a multiple of {mult} pixels, which this model needs",
                       f"use a width and height divisible by {mult}")

