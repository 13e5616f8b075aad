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

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from diffusers import AutoencoderKLTemporalDecoder, EulerDiscreteScheduler, UNetSpatioTemporalConditionModel
from diffusers.pipelines.pipeline_utils import DiffusionPipeline
from diffusers.utils import BaseOutput
from transformers import CLIPImageProcessor, CLIPVisionModelWithProjection

from hvg_cli.backends.diffusion.plan import SamplingPlan, make_plan
from hvg_cli.backends.diffusion.pose_encoder import PoseEncoder, conditioning_torch, conv_in_residual
from hvg_cli.backends.diffusion.settings import DiffusionSettings, downscale
from hvg_cli.backends.diffusion.views import HVGUNet, as_view_unet
from hvg_cli.core.errors import BadInput
from hvg_cli.core.types import BoneMaps, CameraGrid

OUTPUT_TYPES = ("np", "pil", "pt", "latent")


@dataclass
class Reference:
    """The photo's conditioning, CFG batch first (uncond, cond) when guidance is on."""

    embeddings: torch.Tensor  # [B, 1, D] CLIP image embedding (uncond = zeros)
    latents: torch.Tensor  # [B, 4, h, w] VAE latent of the noise-augmented photo (uncond = zeros)
    time_ids: torch.Tensor  # [B, 3] (fps - 1, motion_bucket_id, noise_aug_strength)

    @property
    def cfg(self) -> bool:
        return self.embeddings.shape[0] == 2

    def at_fps(self, fps: float) -> Reference:
        """The same reference with SVD's fps micro-conditioning set to `fps` (the UNet sees fps - 1)."""
        ids = self.time_ids.clone()  # [B, 3]
        ids[:, 0] = fps - 1
        return replace(self, time_ids=ids)


@dataclass
class HVGPipelineOutput(BaseOutput):
    """What `HVGPipeline.__call__` returns with return_dict=True.

    frames:      output_type "np": [V, T, H, W, 3] float32 in [0, 1]; "pil": V lists of T PIL images;
                 "pt": [V, T, 3, H, W] float in [0, 1]; "latent": [V, T, 4, h, w] (unscaled by the VAE factor)
    frame_times: the absolute frame index of each of the T output frames (all frames, 0..T-1, unless the run
                 was interrupted during the anchor stage, whose frames are the anchors)
    interrupted: a `callback_on_step_end` stopped the run (`pipe._interrupt = True`); the sampler's state was
                 saved first, so a call with the same state_dir and fingerprint continues where it stopped
    """

    frames: Any
    frame_times: tuple[int, ...] = ()
    interrupted: bool = False


def resize_antialiased(image: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Gaussian low-pass, then bicubic resize (corners aligned), as SVD prepares CLIP's input.

    image: [N, C, H, W] float; size: (height, width) -> [N, C, height, width].
    The blur's sigma per axis is max((factor - 1) / 2, 0.001) for the downscale factor (the anti-aliasing
    rule of scikit-image's `resize`), its kernel 4 sigma wide (at least 3 taps, odd), reflect-padded, run
    horizontally then vertically. Same arithmetic as SVD's pipeline, so the CLIP embedding is bit-identical.
    """
    N, C, H, W = image.shape
    out = image
    for axis, (n_in, n_out) in enumerate(((W, size[1]), (H, size[0]))):  # x first, then y
        sigma_px = max((n_in / n_out - 1.0) / 2.0, 0.001)
        sigma = torch.tensor(sigma_px, dtype=image.dtype)
        taps = int(max(4.0 * sigma_px, 3))
        taps += 1 - taps % 2  # odd
        x = torch.arange(taps, dtype=image.dtype) - taps // 2  # [k] tap offsets, pixels
        g = torch.exp(-x.pow(2.0) / (2 * sigma.pow(2.0)))
        g = (g / g.sum()).to(image.device)  # [k], sums to 1
        pad = taps // 2
        if axis == 0:
            out = torch.nn.functional.pad(out, (pad, pad, 0, 0), mode="reflect")
            weight = g.view(1, 1, 1, taps).expand(C, 1, 1, taps).contiguous()  # depthwise [C, 1, 1, k]
        else:
            out = torch.nn.functional.pad(out, (0, 0, pad, pad), mode="reflect")
            weight = g.view(1, 1, taps, 1).expand(C, 1, taps, 1).contiguous()  # depthwise [C, 1, k, 1]
        out = torch.nn.functional.conv2d(out, weight, groups=C)  # [N, C, H, W]
    return torch.nn.functional.interpolate(out, size=size, mode="bicubic", align_corners=True)


class PoseResiduals:
    """Each tile's pose residual [v*t, C0, h, w], from features computed once per (view, frame).

    keep=True:  the pose encoder's trunk runs once per (view, frame) of the job, in chunks; its features
                [V, T, C_f, h, w] stay on the device in the compute dtype, and a tile gathers its frames
                and runs the 1×1 head (cheap). keep=False: the encoder input and the whole encoder are
                recomputed for every tile at every step (no memory that grows with the video; slow).
    Both give the same residuals (the head is per pixel and the trunk per frame).
    """

    def __init__(self, pipe: HVGPipeline, cond_fn: Callable, views: int, frames: int, keep: bool, chunk: int = 8):
        self.pipe, self.cond_fn, self.keep = pipe, cond_fn, keep
        self.features = None
        if not keep:
            return
        pairs = [(v, t) for v in range(views) for t in range(frames)]  # view-major
        parts = []
        for s in range(0, len(pairs), chunk):
            vs, ts = zip(*pairs[s : s + chunk])
            cond = cond_fn(vs, ts, pairs=True)  # [n, 14, H, W]
            parts.append(self._encode(cond, "features"))  # [n, C_f, h, w]
        feats = torch.cat(parts)  # [V*T, C_f, h, w]
        self.features = feats.reshape(views, frames, *feats.shape[1:])  # [V, T, C_f, h, w]

    def _encode(self, x: torch.Tensor, part: str) -> torch.Tensor:
        device = self.pipe._execution_device
        dtype = self.pipe.pose_encoder.dtype
        return self.pipe.pose_encoder(x.to(device=device, dtype=dtype), part=part)

    @torch.no_grad()
    def __call__(self, views: tuple[int, ...], frames: tuple[int, ...]) -> torch.Tensor:
        """views (v), absolute frames (t) -> [v*t, C0, h, w], view-major."""
        if not self.keep or self.features is None:
            return self._encode(self.cond_fn(views, frames), "all")
        iv = torch.as_tensor(views, device=self.features.device)[:, None]  # [v, 1]
        it = torch.as_tensor(frames, device=self.features.device)[None, :]  # [1, t]
        feats = self.features[iv, it]  # [v, t, C_f, h, w]
        return self._encode(feats.reshape(-1, *feats.shape[2:]), "head")  # [v*t, C0, h, w]


class HVGPipeline(DiffusionPipeline):
    model_cpu_offload_seq = "image_encoder->pose_encoder->unet->vae"
    _callback_tensor_inputs = ["latents", "noise_pred"]

    def __init__(
        self,
        vae: AutoencoderKLTemporalDecoder,
        image_encoder: CLIPVisionModelWithProjection,
        unet: HVGUNet | UNetSpatioTemporalConditionModel,
        scheduler: EulerDiscreteScheduler,
        feature_extractor: CLIPImageProcessor,
        pose_encoder: PoseEncoder,
    ):
        super().__init__()
        # a plain SVD UNet (e.g. diffusers loading an older folder) gains zero view attention in place
        unet = as_view_unet(unet)
        self.register_modules(
            vae=vae,
            image_encoder=image_encoder,
            unet=unet,
            scheduler=scheduler,
            feature_extractor=feature_extractor,
            pose_encoder=pose_encoder,
        )
        self.vae_scale_factor = downscale(self.vae.config.block_out_channels)

    # -----------------------------------------------------------------------------------------
    # Step 3 of __call__. Reference photo: CLIP embedding and VAE latent, as SVD computes them
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
        clip_in = resize_antialiased(image * 2.0 - 1.0, (224, 224))  # [1, 3, 224, 224]
        clip_in = (clip_in + 1.0) / 2.0
        pixel_values = self.feature_extractor(
            images=clip_in,
            do_normalize=True,
            do_center_crop=False,
            do_resize=False,
            do_rescale=False,
            return_tensors="pt",
        ).pixel_values  # [1, 3, 224, 224]
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
            raise BadInput(
                "the UNet's added-time embedding does not take (fps, motion bucket, noise aug)",
                "check unet/config.json (addition_time_embed_dim, projection_class_embeddings_input_dim)",
            )
        time_ids = torch.tensor([ids], dtype=emb.dtype, device=device)  # [1, 3]
        if cfg:  # batch (uncond, cond)
            emb = torch.cat([torch.zeros_like(emb), emb])  # [2, 1, D]
            lat = torch.cat([torch.zeros_like(lat), lat])  # [2, 4, h, w]
            time_ids = torch.cat([time_ids, time_ids])  # [2, 3]
        return Reference(emb, lat, time_ids)

    # -----------------------------------------------------------------------------------------
    # Step 6 of __call__ (sampler.sample calls it per tile). One tile: views × frames, view-major; the
    # views are folded into the UNet's batch, so its temporal layers see one view's frames at a time
    # and views meet only through the view attention (views.py)
    # -----------------------------------------------------------------------------------------
    @torch.no_grad()
    def predict_tile(
        self,
        ref: Reference,
        scaled: torch.Tensor,
        t: torch.Tensor,
        residual: torch.Tensor | None,
        guidance: torch.Tensor,
        views: int,
    ) -> torch.Tensor:
        """The guided prediction of one tile.

        scaled:   [F, 4, h, w] scheduler-scaled noisy latents, F = views × frames, view-major
        residual: [F, C0, h, w] pose residual of the same frames (PoseResiduals), added after conv_in; None: none
        guidance: [F] CFG scale of each frame (DiffusionSettings.guidance_ramp)
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
        if residual is not None:
            # the UNet flattens [B*V, T] to index (b·V + v)·T + t: the view-major residual repeated B times
            residual = residual.repeat(B, 1, 1, 1)  # [B*V*T, C0, h, w]
        with conv_in_residual(self.unet, residual):
            pred = self.unet(
                model_in, t, encoder_hidden_states=emb, added_time_ids=time_ids, num_views=V, return_dict=False
            )[0]  # [B*V, T, 4, h, w]
        pred = pred.reshape(B, F, *pred.shape[2:])  # [B, F, 4, h, w], view-major
        if ref.cfg:
            uncond, cond_pred = pred.chunk(2)  # [1, F, 4, h, w] each
            g = guidance.to(pred.device, pred.dtype)[None, :, None, None, None]  # [1, F, 1, 1, 1]
            pred = uncond + g * (cond_pred - uncond)  # [1, F, 4, h, w]
        return pred[0]  # [F, 4, h, w]

    # -----------------------------------------------------------------------------------------
    # Step 7 of __call__. Decoding, chunked along time per view
    # -----------------------------------------------------------------------------------------
    @torch.no_grad()
    def decode(self, latents: torch.Tensor, chunk: int, output_type: str = "uint8") -> Any:
        """latents [V, T, 4, h, w] -> frames, decoded `chunk` frames per VAE call.

        output_type "uint8": [V, T, H, W, 3] uint8 numpy (what `generate` returns); "np": [V, T, H, W, 3]
        float32 numpy in [0, 1]; "pt": [V, T, 3, H, W] float32 torch in [0, 1] (CPU);
        "pil": V lists of T PIL images.
        """
        V, T, _, h, w = latents.shape
        H, W = h * self.vae_scale_factor, w * self.vae_scale_factor
        out: Any  # [V, T, 3, H, W] torch ("pt") or [V, T, H, W, 3] numpy
        if output_type == "pt":
            out = torch.zeros(V, T, 3, H, W)
        else:
            out = np.zeros((V, T, H, W, 3), np.uint8 if output_type in ("uint8", "pil") else np.float32)
        for v in range(V):
            for s in range(0, T, chunk):
                z = (1 / self.vae.config.scaling_factor) * latents[v, s : s + chunk]  # [n, 4, h, w], as SVD
                img = self.vae.decode(z.to(self.vae.dtype), num_frames=z.shape[0]).sample.float()  # [n, 3, H, W]
                img = (img * 0.5 + 0.5).clamp(0, 1)
                n = z.shape[0]
                if output_type == "pt":
                    out[v, s : s + n] = img.cpu()
                    continue
                rgb = img.permute(0, 2, 3, 1).cpu().numpy()  # [n, H, W, 3]
                out[v, s : s + n] = (rgb * 255).round().astype(np.uint8) if out.dtype == np.uint8 else rgb
        if output_type == "pil":
            import PIL.Image

            return [[PIL.Image.fromarray(f) for f in view] for view in out]
        return out

    # -----------------------------------------------------------------------------------------
    # The whole job
    # -----------------------------------------------------------------------------------------
    def plan(self, maps: BoneMaps, grid: CameraGrid, settings: DiffusionSettings) -> SamplingPlan:
        V, T, H, W = maps.shape
        s = self.vae_scale_factor
        return make_plan(V, T, H // s, W // s, settings, closed=grid.closed)

    @property
    def interrupt(self) -> bool:
        """Set `pipe._interrupt = True` in a callback_on_step_end to stop the run after that step."""
        return getattr(self, "_interrupt", False)

    @property
    def stage(self) -> str | None:
        """The sampling stage now running ("anchors", "dense", "onepass", "full"), for callbacks."""
        return getattr(self, "_stage", None)

    def keep_pose_features(self, plan: SamplingPlan, settings: DiffusionSettings) -> tuple[bool, dict]:
        """Whether the pose features of every (view, frame) stay on the device (settings.pose_residuals;
        "auto" decides from an estimate against the device's free memory, see plan.pose_feature_policy)."""
        from hvg_cli.backends.diffusion.plan import device_free_bytes, memory_estimate, pose_feature_policy

        dtype_bytes = torch.finfo(self.pose_encoder.dtype).bits // 8
        est = memory_estimate(
            plan, None, dtype_bytes, unet_channels=self.unet.config.block_out_channels, params={}
        )  # weights already resident: count activations and the grid only
        free = device_free_bytes(str(self._execution_device)) if settings.pose_residuals == "auto" else None
        policy = pose_feature_policy(
            plan, self.pose_encoder.feature_channels, dtype_bytes, settings.pose_residuals, free, est["total_bytes"]
        )
        return policy["keep"], policy

    @torch.no_grad()
    def __call__(
        self,
        photo: np.ndarray,
        maps: BoneMaps,
        grid: CameraGrid,
        settings: DiffusionSettings | None = None,
        num_inference_steps: int | None = None,
        guidance_scale: float | None = None,
        min_guidance_scale: float | None = None,
        generator: torch.Generator | None = None,
        latents: torch.Tensor | None = None,
        output_type: str = "np",
        return_dict: bool = True,
        callback_on_step_end: Callable[[HVGPipeline, int, torch.Tensor, dict], dict] | None = None,
        callback_on_step_end_tensor_inputs: Sequence[str] = ("latents",),
        state_dir: str | Path | None = None,
        fingerprint: str = "",
        progress=None,
    ):
        """Generate every view and frame.

        photo:     [H, W, 3] uint8 aligned reference; maps (aligned) and grid give V×T frames of H×W
        settings:  DiffusionSettings (default: its defaults); the keyword arguments below override it
        num_inference_steps: denoising steps (settings.steps)
        guidance_scale:      CFG scale of every frame, or of the last frame with guidance_ramp "svd" (guidance_max)
        min_guidance_scale:  CFG scale of the first frame with guidance_ramp "svd" (guidance_min)
        generator: draws the photo's augmentation noise [1, 3, H, W], then the latents' noise [V, T, 4, h, w]
                   (default: a CPU generator seeded with settings.seed)
        latents:   [V, T, 4, h, w] unit Gaussian noise to start from instead of drawing it (the sampler scales
                   it by the scheduler's initial sigma; it is also the held anchors' fixed noise)
        output_type: "np" [V, T, H, W, 3] float in [0, 1] | "pil" V lists of T images | "pt" [V, T, 3, H, W]
                     float in [0, 1] | "latent" [V, T, 4, h, w]
        return_dict: HVGPipelineOutput (True) or the frames alone
        callback_on_step_end(pipe, step, timestep, tensors) after every denoising step of every stage (`pipe.stage`
                   names it); `tensors` holds the requested names of `_callback_tensor_inputs`: "latents" (the
                   stage's grid [V, n, 4, h, w]) and "noise_pred" (the blended prediction); a returned
                   {"latents": ...} replaces the latents; `pipe._interrupt = True` stops the run after the step
        state_dir, fingerprint: where the sampler's state is saved after every step, and what makes it this
                   job's: a re-run with the same fingerprint resumes (the caller hashes what matters, see
                   `backends.diffusion.job_fingerprint`)
        progress:  a core.progress Reporter: per-step progress of each stage, notes (resume, pose features)
        """
        from hvg_cli.backends.diffusion.sampler import sample
        from hvg_cli.core.progress import SILENT

        progress = progress or SILENT
        if output_type not in OUTPUT_TYPES:
            raise BadInput(f"unknown output_type {output_type!r}", f"use one of {', '.join(OUTPUT_TYPES)}")
        bad = set(callback_on_step_end_tensor_inputs) - set(self._callback_tensor_inputs)
        if bad:
            raise BadInput(
                f"callback_on_step_end_tensor_inputs {sorted(bad)} are not among {self._callback_tensor_inputs}"
            )
        settings = settings or DiffusionSettings()
        overrides = {"steps": num_inference_steps, "guidance_max": guidance_scale, "guidance_min": min_guidance_scale}
        settings = settings.with_(**{k: v for k, v in overrides.items() if v is not None})
        self._interrupt = False
        self._stage = None

        # 1. Sizes and the tile plan
        V, T, H, W = maps.shape
        check_sizes(photo, maps, grid, self)
        plan = self.plan(maps, grid, settings)
        device = self._execution_device
        dtype = self.unet.dtype
        shape = (V, T, 4, plan.latent_height, plan.latent_width)

        # 2. Noise, all drawn up front, in SVD's order: the photo's augmentation [1, 3, H, W], then the
        #    latents [V, T, 4, h, w] (unless given)
        gen = generator if generator is not None else torch.Generator("cpu").manual_seed(settings.seed)
        aug_noise = torch.randn((1, 3, H, W), generator=gen, device=gen.device, dtype=torch.float32)
        if latents is None:
            noise = torch.randn(shape, generator=gen, device=gen.device, dtype=torch.float32)
        elif tuple(latents.shape) != shape:
            raise BadInput(f"latents are {tuple(latents.shape)}, this job needs {shape} (views, frames, 4, h, w)")
        else:
            noise = latents

        # 3. Reference photo: CLIP embedding, VAE latent, micro-conditioning (settings.fps)
        ref = self.encode_reference(photo, aug_noise, settings)

        # 4. Per-frame guidance [T] (settings.guidance_ramp)
        guidance = guidance_scales(settings, T)

        # 5. Pose: the encoder's input per (view, frame) from the bone maps and rays; its trunk features once
        #    per frame on the device, or everything per tile when memory asks (PoseResiduals)
        def cond_fn(views: tuple[int, ...], times: tuple[int, ...], pairs: bool = False) -> torch.Tensor:
            """views × times (or, pairs=True, the pairs zip(views, times)) -> [n, 14, H, W], view-major."""
            if pairs:
                iv, it = np.asarray(views), np.asarray(times)  # [n], [n]
            else:
                iv, it = np.ix_(views, times)  # [v, 1], [1, t]
            n = iv.size if pairs else len(views) * len(times)
            # every [v, t, ...] selection reshaped to [v*t, ...], view-major
            return conditioning_torch(
                maps.semantic[iv, it].reshape(n, H, W, 3),
                maps.normal[iv, it].reshape(n, H, W, 3),
                maps.depth[iv, it].reshape(n, H, W),
                maps.mask[iv, it].reshape(n, H, W),
                grid.K[iv, it].reshape(n, 3, 3),
                grid.world_to_cam[iv, it].reshape(n, 4, 4),
                device=device,
            )  # [n, 14, H, W]

        keep, policy = self.keep_pose_features(plan, settings)
        if not keep:
            progress.note(f"diffusion: pose encoder runs per tile and step ({policy['reason']})")
        residuals = PoseResiduals(self, cond_fn, V, T, keep=keep)

        # 6. Denoise the V×T grid stage by stage, tile by tile (sampler.py)
        result = sample(
            self,
            ref,
            plan,
            noise.to(device=device, dtype=dtype),
            residuals,
            guidance,
            settings,
            state_dir=state_dir,
            fingerprint=fingerprint,
            callback_on_step_end=callback_on_step_end,
            tensor_inputs=tuple(callback_on_step_end_tensor_inputs),
            progress=progress,
        )
        self._stage = None

        # 7. Decode in chunks
        if output_type == "latent":
            frames = result.latents
        else:
            frames = self.decode(result.latents, settings.decode_chunk, output_type)
        self.maybe_free_model_hooks()
        if not return_dict:
            return frames
        return HVGPipelineOutput(frames=frames, frame_times=result.times, interrupted=result.interrupted)


def guidance_scales(settings: DiffusionSettings, frames: int) -> torch.Tensor:
    """[T] float32 CFG scale of each frame of a view: "flat" guidance_max everywhere; "svd" SVD's linear ramp
    guidance_min -> guidance_max (torch.linspace, exactly as SVD's pipeline computes it)."""
    if settings.guidance_ramp == "svd":
        return torch.linspace(settings.guidance_min, settings.guidance_max, frames)
    return torch.full((frames,), float(settings.guidance_max))


def check_sizes(photo: np.ndarray, maps: BoneMaps, grid: CameraGrid, pipe: HVGPipeline) -> None:
    V, T, H, W = maps.shape
    if photo.shape != (H, W, 3) or photo.dtype != np.uint8:
        raise BadInput(
            f"the aligned photo is {photo.shape} {photo.dtype}, the bone maps are {H}x{W}",
            "align the photo to the bone maps' size (uint8 RGB)",
        )
    if grid.shape != (V, T):
        raise BadInput(f"the camera grid is {grid.shape}, the bone maps are {(V, T)} views x frames")
    mult = pipe.vae_scale_factor * downscale(pipe.unet.config.block_out_channels)
    if H % mult or W % mult:
        raise BadInput(
            f"{W}x{H} is not a multiple of {mult} pixels, which this model needs",
            f"use a width and height divisible by {mult}",
        )
