"""The objective of SVD fine-tuning: EDM noise levels, the preconditioning SVD's scheduler implies, the
EDM loss weighting, conditioning dropout for classifier-free guidance.

Sources
  [EDM]  Karras, Aittala, Aila, Laine, "Elucidating the Design Space of Diffusion-Based Generative Models",
         NeurIPS 2022, Table 1 and section 5: denoiser D(x; σ) = c_skip(σ)·x + c_out(σ)·F(c_in(σ)·x; c_noise(σ)),
         training noise levels ln σ ~ N(P_mean, P_std²), loss weight λ(σ) = (σ² + σ_data²) / (σ·σ_data)².
  [SVD]  Blattmann et al., "Stable Video Diffusion: Scaling Latent Video Diffusion Models to Large Datasets",
         2023, section 4 and appendix D: SVD is trained in the EDM framework with v-prediction (the
         "v-parameterisation" of Salimans & Ho 2022 written as EDM scalings), σ_data = 1, and the noise
         schedule shifted towards higher noise for video (P_mean = 0.7 or 1.0, P_std = 1.6).
  [sched] diffusers' EulerDiscreteScheduler with SVD's scheduler_config.json (prediction_type "v_prediction",
         timestep_type "continuous"): `scale_model_input` divides by √(σ² + 1), `step` forms
         pred_original_sample = F·(−σ/√(σ² + 1)) + x/(σ² + 1), and the UNet's timestep is 0.25·ln σ.

Reading [sched] as [EDM]'s denoiser gives σ_data = 1 and (v-prediction):
  c_in    = 1 / √(σ² + σ_data²)
  c_skip  = σ_data² / (σ² + σ_data²)
  c_out   = −σ·σ_data / √(σ² + σ_data²)       (the minus sign: v-prediction, as in [sched] and SVD's code)
  c_noise = 0.25·ln σ                           ([EDM] Table 1's c_noise, the value [sched] feeds the UNet)
Only the setting SVD ships (v_prediction + continuous timesteps) is accepted; any other scheduler config
is a BadInput (its c_noise would be a discrete timestep index, which SVD's UNet never saw).

With λ(σ)·c_out(σ)² = 1 the weighted loss on the denoised estimate equals the plain MSE between F and its
target (x0 − c_skip·x)/c_out: every noise level contributes with unit weight in F's space ([EDM] section 5).

Noise in the model's frames: x = x0 + σ·n with x0 the VAE latent of a frame times the VAE's scaling factor
(the space the sampler denoises in); the reference latent enters unscaled, as in SVD's pipeline.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from hvg_cli.core.errors import BadInput

if TYPE_CHECKING:
    from torch import Tensor


@dataclass(frozen=True)
class Preconditioning:
    """EDM scalings of a denoiser, derived from a scheduler config (see the module doc for the formulas)."""

    prediction_type: str = "v_prediction"
    sigma_data: float = 1.0

    @classmethod
    def from_scheduler_config(cls, config) -> Preconditioning:
        """The preconditioning an EulerDiscreteScheduler config implies (a dict or a diffusers FrozenDict).

        [sched]'s `scale_model_input` divides by √(σ² + 1) and its v-prediction x0 uses σ² + 1: σ_data = 1.
        """
        get = config.get if hasattr(config, "get") else (lambda k, d=None: getattr(config, k, d))
        pred = get("prediction_type", "epsilon")
        ttype = get("timestep_type", "discrete")
        if pred != "v_prediction" or ttype != "continuous":
            raise BadInput(
                f"the base's scheduler has prediction_type={pred!r}, timestep_type={ttype!r}; training supports "
                "Stable Video Diffusion's EDM setting (v_prediction, continuous)",
                "use a Stable Video Diffusion base (scheduler/scheduler_config.json as SVD ships it)",
            )
        return cls(prediction_type=pred, sigma_data=1.0)

    # each takes σ as a tensor of any shape and returns a tensor of that shape
    def c_in(self, sigma) -> Tensor:
        return 1.0 / (sigma**2 + self.sigma_data**2).sqrt()

    def c_skip(self, sigma) -> Tensor:
        return self.sigma_data**2 / (sigma**2 + self.sigma_data**2)

    def c_out(self, sigma) -> Tensor:
        return -sigma * self.sigma_data / (sigma**2 + self.sigma_data**2).sqrt()

    def c_noise(self, sigma) -> Tensor:
        return 0.25 * sigma.log()

    def denoised(self, model_output, noisy, sigma) -> Tensor:
        """D(x; σ) = c_skip·x + c_out·F. model_output F and noisy x: [B, ...]; sigma: [B]."""
        s = _expand(sigma, noisy)
        return self.c_skip(s) * noisy + self.c_out(s) * model_output

    def target(self, x0, noisy, sigma) -> Tensor:
        """The F that makes D(x; σ) = x0: (x0 − c_skip·x) / c_out (for v-prediction: the velocity)."""
        s = _expand(sigma, noisy)
        return (x0 - self.c_skip(s) * noisy) / self.c_out(s)

    def loss_weight(self, sigma) -> Tensor:
        """[EDM] λ(σ) = (σ² + σ_data²) / (σ·σ_data)², the weight of ‖D − x0‖²."""
        return (sigma**2 + self.sigma_data**2) / (sigma * self.sigma_data) ** 2


def _expand(sigma, like):
    """sigma [B] -> [B, 1, 1, ...] broadcastable against `like` [B, ...]."""
    return sigma.reshape(sigma.shape[0], *([1] * (like.dim() - 1))).to(like.dtype)


def edm_loss(precond: Preconditioning, model_output, noisy, x0, sigma) -> Tensor:
    """Per-sample EDM loss: mean over elements of λ(σ)·(D(x; σ) − x0)².

    model_output, noisy, x0: [B, ...]; sigma: [B]; returns [B] in float32 or wider (half inputs are upcast).
    """
    import torch

    dtype = torch.promote_types(model_output.dtype, torch.float32)
    d = precond.denoised(model_output.to(dtype), noisy.to(dtype), sigma)
    err = (d - x0.to(dtype)).pow(2).flatten(1).mean(1)  # [B]
    return precond.loss_weight(sigma.to(dtype)) * err


@dataclass(frozen=True)
class NoiseLevels:
    """[EDM] training noise levels: ln σ ~ N(p_mean, p_std²). SVD's video fine-tuning: p_mean 0.7–1.0, p_std 1.6
    ([SVD] appendix D); EDM's image default is (−1.2, 1.2). A lower mean helps small models at low noise."""

    p_mean: float = 0.7
    p_std: float = 1.6

    def sigma(self, standard_normal: float) -> float:
        """σ from one standard normal draw z: exp(p_mean + p_std·z)."""
        return math.exp(self.p_mean + self.p_std * standard_normal)


@dataclass(frozen=True)
class ConditioningDropout:
    """Per-sample probabilities of training without a condition, so classifier-free guidance works.

    reference: drop the CLIP embedding AND the reference latent together, the unconditional branch the
               sampler uses for guidance (zeros for both, as SVD's pipeline feeds its uncond half);
    embedding: drop only the CLIP embedding; latent: drop only the reference latent (both as in
               InstructPix2Pix/SVD fine-tuning practice, so each condition also stands alone);
    pose:      drop the pose encoder's residual (the model then is its base: no pose), so the pose
               condition can be guided too.
    Each is an independent Bernoulli draw from the sample's own generator (randomness.py).
    """

    reference: float = 0.1
    embedding: float = 0.05
    latent: float = 0.05
    pose: float = 0.05

    def __post_init__(self) -> None:
        for name in ("reference", "embedding", "latent", "pose"):
            p = getattr(self, name)
            if not 0.0 <= p <= 1.0:
                raise BadInput(f"conditioning dropout {name}={p} is not a probability in [0, 1]")

    def keep(self, u_reference: float, u_embedding: float, u_latent: float, u_pose: float) -> tuple[bool, bool, bool]:
        """From four uniform draws in [0, 1): whether the sample keeps (embedding, reference latent, pose)."""
        drop_ref = u_reference < self.reference
        keep_emb = not (drop_ref or u_embedding < self.embedding)
        keep_lat = not (drop_ref or u_latent < self.latent)
        keep_pose = not u_pose < self.pose
        return keep_emb, keep_lat, keep_pose
