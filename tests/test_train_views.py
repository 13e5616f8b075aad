"""The training forward runs the sampler's view-aware UNet exactly as the sampler does: for the same inputs
HVGDenoiser gives HVGPipeline.predict_tile's prediction (V = 2 views, view attention live), a batch of two
samples gives each sample's own prediction, and with fresh (zero-output) view attention a view's output does
not depend on the other view's input."""

from __future__ import annotations

import pytest
import torch

from hvg_cli.train.dataset import random_clip
from hvg_cli.train.objective import ConditioningDropout, NoiseLevels, Preconditioning
from hvg_cli.train.randomness import draw_sample

V, T = 2, 3


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # conftest: one torch thread


def _pipe(live_views: bool):
    """Tiny HVGPipeline; pose encoder output and (when live_views) view attention output randomised, so both
    paths change the prediction (fresh, they add exactly zero)."""
    from hvg_cli.backends.diffusion.pipeline_hvg import HVGPipeline
    from hvg_cli.backends.diffusion.views import view_attention_parameters
    from hvg_cli.backends.diffusion.weights import tiny_components

    pipe = HVGPipeline(**tiny_components())
    g = torch.Generator().manual_seed(7)
    with torch.no_grad():
        for p in pipe.pose_encoder.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.2)
        if live_views:
            for _, p in view_attention_parameters(pipe.unet):
                p.copy_(torch.randn(p.shape, generator=g) * 0.2)
    return pipe.to(torch.float32)


def _inputs(n: int):
    from hvg_cli.train.loop import _make_batch

    clips = [random_clip(f"c{i}", views=V, frames=T, seed=i) for i in range(n)]
    none = ConditioningDropout(0.0, 0.0, 0.0, 0.0)
    draws = [draw_sample(0, 0, i, (V * T, 4, 16, 16), NoiseLevels(), none) for i in range(n)]
    inputs, _, _, _ = _make_batch(clips, draws, Preconditioning(), "cpu")
    return inputs


def _sampler(pipe, inputs, b: int):
    """predict_tile on sample b of a training batch (no CFG: batch of one reference)."""
    from hvg_cli.backends.diffusion.pipeline_hvg import Reference

    F = V * T
    ref = Reference(
        embeddings=inputs["embedding"][b : b + 1],
        latents=inputs["ref_latent"][b : b + 1],
        time_ids=inputs["time_ids"][b : b + 1],
    )
    cond = inputs["pose_cond"][b * F : (b + 1) * F]  # [F, 14, H, W]
    with torch.no_grad():
        residual = pipe.pose_encoder(cond)  # [F, C0, h, w]: what PoseResiduals computes for these frames
    return pipe.predict_tile(
        ref, inputs["scaled"][b], inputs["c_noise"][b], residual, torch.ones(F), views=V
    )  # [F, 4, h, w]


def test_training_forward_equals_the_samplers_prediction():
    from hvg_cli.train.model import HVGDenoiser

    pipe = _pipe(live_views=True)
    model = HVGDenoiser(pipe.unet, pipe.pose_encoder).eval()
    inputs = _inputs(2)
    with torch.no_grad():
        got = model(**inputs, num_views=V)  # [2, F, 4, h, w]
        want = torch.stack([_sampler(pipe, inputs, b) for b in range(2)])
        # the view folding matters: the same inputs read as 1 view of 6 frames give another prediction
        flat = model(**inputs, num_views=1)
    assert got.shape == (2, V * T, 4, 16, 16)
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)
    assert float((flat - want).abs().max()) > 1e-3
    # the pose input is used per frame: dropping it (pose_keep 0) changes the prediction
    with torch.no_grad():
        dropped = model(**{**inputs, "pose_keep": torch.zeros(2)}, num_views=V)
    assert float((dropped - want).abs().max()) > 1e-3


@pytest.mark.parametrize("live", [False, True])
def test_views_leak_only_through_trained_view_attention(live):
    """Fresh view attention: view 0's output is exactly independent of view 1's noisy latent; live: it is not."""
    from hvg_cli.train.model import HVGDenoiser

    pipe = _pipe(live_views=live)
    model = HVGDenoiser(pipe.unet, pipe.pose_encoder).eval()
    inputs = _inputs(1)
    other = dict(inputs)
    scaled = inputs["scaled"].clone()
    scaled[:, T:] += torch.randn(scaled[:, T:].shape, generator=torch.Generator().manual_seed(3))  # view 1 only
    other["scaled"] = scaled
    with torch.no_grad():
        a = model(**inputs, num_views=V)[:, :T]  # view 0
        b = model(**other, num_views=V)[:, :T]
    change = float((a - b).abs().max())
    if live:
        assert change > 1e-4
    else:
        assert change == 0.0
