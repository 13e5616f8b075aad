"""Views as their own axis (backends/diffusion/views.py) on tiny random components (CPU, 32 px).

The invariant: with fresh weights (view attention output zero) every view of a tile is exactly SVD run
on that view alone; with non-zero view attention the views do influence each other. Plus the naming
contract, the single-view shortcut's plain twin, and weights folders with and without view attention.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch  # a hard dependency: missing, these tests fail rather than skip
from test_diffusion import FAST, H, W, synthetic_job, tiny_pipe

from hvg_cli.backends.diffusion import DiffusionSettings
from hvg_cli.core.errors import BadInput

B, T, h, w = 2, 3, 8, 8  # CFG batch, frames, latent size of the UNet-level tests


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # conftest: one torch thread


def tiny_view_unet():
    from hvg_cli.backends.diffusion.views import as_view_unet
    from hvg_cli.backends.diffusion.weights import tiny_components

    torch.manual_seed(0)
    return as_view_unet(tiny_components(0)["unet"])


def unet_inputs(V: int, seed: int = 0):
    """sample [B, V, T, 8, h, w], CLIP embedding [B, 1, 32], added time ids [B, 3], timestep."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(B, V, T, 8, h, w, generator=g)
    emb = torch.randn(B, 1, 32, generator=g)
    ids = torch.tensor([[6.0, 127.0, 0.02]] * B)
    return x, emb, ids, torch.tensor(500.0)


def run_views(unet, x, emb, ids, t) -> torch.Tensor:
    """HVG layout: views folded into the batch. x [B, V, T, 8, h, w] -> [B, V, T, 4, h, w]."""
    V = x.shape[1]
    out = unet(
        x.reshape(B * V, T, *x.shape[3:]),
        t,
        emb.repeat_interleave(V, 0),
        ids.repeat_interleave(V, 0),
        num_views=V,
        return_dict=False,
    )[0]  # [B*V, T, 4, h, w]
    return out.reshape(B, V, T, *out.shape[2:])


def run_flat(unet, x, emb, ids, t) -> torch.Tensor:
    """The layout before views.py: a tile's views laid end to end on the frame axis (for the measurement)."""
    V = x.shape[1]
    out = unet(x.reshape(B, V * T, *x.shape[3:]), t, emb, ids, return_dict=False)[0]  # [B, V*T, 4, h, w]
    return out.reshape(B, V, T, *out.shape[2:])


def view0_change_when_view1_changes(run, unet, V: int = 3) -> float:
    x, emb, ids, t = unet_inputs(V)
    x2 = x.clone()
    x2[:, 1] = torch.randn(B, T, 8, h, w, generator=torch.Generator().manual_seed(7))
    with torch.no_grad():
        return float((run(unet, x, emb, ids, t)[:, 0] - run(unet, x2, emb, ids, t)[:, 0]).abs().max())


def perturb_view_attention(unet, std: float = 0.5) -> None:
    from hvg_cli.backends.diffusion.views import view_attention_parameters

    torch.manual_seed(1)
    for name, p in view_attention_parameters(unet):
        if ".to_out." in name:
            torch.nn.init.normal_(p, std=std)


# ---------------------------------------------------------------------------------------------
# the model
# ---------------------------------------------------------------------------------------------
def test_base_names_kept_and_every_new_parameter_is_view_attn():
    from diffusers import UNetSpatioTemporalConditionModel

    from hvg_cli.backends.diffusion.views import HVGUNet, base_unet, view_attention_parameters

    unet = tiny_view_unet()
    assert isinstance(unet, HVGUNet)
    plain = base_unet(unet)
    assert type(plain) is UNetSpatioTemporalConditionModel
    names = {n for n, _ in unet.named_parameters()}
    base = {n for n, _ in plain.named_parameters()}
    view = {n for n, _ in view_attention_parameters(unet)}
    assert base <= names and names - base == view  # nothing renamed; everything new is view attention
    assert all("view_attn" in n for n in view) and not any("view_attn" in n for n in base)
    # one view attention per spatio-temporal transformer block: 2 down, 1 mid, 3 up in the tiny UNet
    assert len({n.split(".view_attn.")[0] for n in view}) == 6
    assert all(float(p.abs().max()) == 0 for n, p in view_attention_parameters(unet) if ".to_out." in n)
    # a fresh HVGUNet from the same config and seed holds the same base weights as diffusers' UNet
    torch.manual_seed(0)
    again = HVGUNet.from_config(plain.config)
    torch.manual_seed(0)
    ref = UNetSpatioTemporalConditionModel.from_config(plain.config)
    sd = again.state_dict()
    assert all(torch.equal(v, sd[k]) for k, v in ref.state_dict().items())


def test_fresh_views_do_not_leak_and_each_equals_svd_alone():
    """The no-leak invariant at the UNet: the flat layout leaks (measured), the folded one does not."""
    from hvg_cli.backends.diffusion.views import base_unet

    unet = tiny_view_unet()
    flat_leak = view0_change_when_view1_changes(run_flat, unet)
    folded_leak = view0_change_when_view1_changes(run_views, unet)
    assert flat_leak > 0.05  # the old layout: temporal layers run across the view boundary
    assert folded_leak == 0.0  # exactly: nothing reaches view 0 from view 1

    plain = base_unet(unet)  # diffusers' own UNet with the same weights
    x, emb, ids, t = unet_inputs(3)
    with torch.no_grad():
        ours = run_views(unet, x, emb, ids, t)  # [B, 3, T, 4, h, w]
        for v in range(3):
            alone = plain(x[:, v], t, emb, ids, return_dict=False)[0]  # [B, T, 4, h, w]
            # batch 6 vs 2 picks other CPU kernel blockings: ~1e-6, not bit-exact
            torch.testing.assert_close(ours[:, v], alone, rtol=0, atol=1e-5)


def test_trained_view_attention_lets_views_meet_and_ignores_their_order():
    unet = tiny_view_unet()
    perturb_view_attention(unet)
    assert view0_change_when_view1_changes(run_views, unet) > 0.05
    # no view position embedding: permuting a tile's views permutes its outputs
    x, emb, ids, t = unet_inputs(3)
    perm = [2, 0, 1]
    with torch.no_grad():
        out = run_views(unet, x, emb, ids, t)
        out_perm = run_views(unet, x[:, perm], emb, ids, t)
    torch.testing.assert_close(out_perm, out[:, perm], rtol=0, atol=1e-5)
    with pytest.raises(ValueError, match="num_views"):
        unet(x.reshape(B * 3, T, 8, h, w), t, emb.repeat_interleave(3, 0), ids.repeat_interleave(3, 0), num_views=4)


def test_single_view_shortcut_matches_the_attention_it_replaces():
    from hvg_cli.backends.diffusion.views import ViewAttention

    torch.manual_seed(0)
    m = ViewAttention(32, 4, 8)
    torch.nn.init.normal_(m.attn.to_out[0].weight, std=0.5)
    torch.nn.init.normal_(m.attn.to_out[0].bias, std=0.5)
    x = torch.randn(6, 10, 32)  # [B*V*T, N, C] with V = 1, T = 3
    m.views, m.frames = 1, 3
    fast = m(x)
    y = m.norm(x).reshape(2, 1, 30, 32).permute(0, 2, 1, 3).reshape(60, 1, 32)  # one view per sequence
    slow = x + m.attn(y).reshape(2, 30, 1, 32).permute(0, 2, 1, 3).reshape(6, 10, 32)
    torch.testing.assert_close(fast, slow, rtol=0, atol=1e-6)
    assert float((fast - x).abs().max()) > 1e-2  # the output projection is live


# ---------------------------------------------------------------------------------------------
# the pipeline
# ---------------------------------------------------------------------------------------------
def svd_latents(photo: np.ndarray, noise: torch.Tensor, seed: int) -> torch.Tensor:
    """diffusers' own StableVideoDiffusionPipeline (plain UNet) -> final latents [N, T, 4, h, w].

    noise: [N, T, 4, h, w], N videos of the same photo in one batch (num_videos_per_prompt=N); SVD never
    lets the videos of a batch interact, so each is SVD run on its own noise.
    """
    import PIL.Image
    from diffusers import StableVideoDiffusionPipeline

    from hvg_cli.backends.diffusion.weights import tiny_components

    comps = tiny_components(0)
    comps.pop("pose_encoder")
    svd = StableVideoDiffusionPipeline(**comps)
    svd.set_progress_bar_config(disable=True)
    return svd(
        PIL.Image.fromarray(photo),
        height=H,
        width=W,
        num_frames=noise.shape[1],
        num_videos_per_prompt=noise.shape[0],
        num_inference_steps=FAST["steps"],
        min_guidance_scale=FAST["guidance_min"],
        max_guidance_scale=FAST["guidance_max"],
        generator=torch.Generator("cpu").manual_seed(seed),
        latents=noise,
        output_type="latent",
    ).frames


def test_every_view_equals_svd_on_that_view_alone():
    """Three views, fresh weights, the whole pipeline: the views of one tile, and 2-view tiles blended over a
    closed orbit, equal SVD on each view's noise."""
    V, T_, seed = 3, 2, 0
    photo, maps, grid = synthetic_job(V, T_, closed=True)
    pipe = tiny_pipe()
    # the noise as HVGPipeline.__call__ draws it from the seed: photo augmentation first, then the grid
    gen = torch.Generator("cpu").manual_seed(seed)
    torch.randn((1, 3, H, W), generator=gen)
    noise = torch.randn((V, T_, 4, H // 2, W // 2), generator=gen)  # [V, T, 4, h, w]
    full = pipe(
        photo,
        maps,
        grid,
        DiffusionSettings(sampling="full", seed=seed, **FAST),
        output_type="latent",
        return_dict=False,
    )
    # SVD with the 3 views as 3 independent videos in one batch: the UNet sees the very same batch
    # (uncond views, cond views) as HVG's folded tile, so this is bit-exact
    assert torch.equal(full, svd_latents(photo, noise, seed))
    # SVD on each view by itself: other batch sizes take other CPU GEMM kernels (1e-7 per op, ~1e-4 after
    # two steps through the random UNet); a leak would be thousands of times larger (see below)
    alone = torch.cat([svd_latents(photo, noise[v : v + 1], seed) for v in range(V)])  # [V, T, 4, h, w]
    torch.testing.assert_close(full, alone, rtol=0, atol=5e-4)
    tiled = pipe(
        photo,
        maps,
        grid,
        DiffusionSettings(
            sampling="onepass", tile_views=2, overlap_views=1, tile_frames=2, overlap_frames=1, seed=seed, **FAST
        ),
        output_type="latent",
        return_dict=False,
    )
    torch.testing.assert_close(tiled, alone, rtol=0, atol=5e-4)
    # with view attention switched on, the same job comes out different (so the comparison can fail)
    perturb_view_attention(pipe.unet, std=0.2)
    mixed = pipe(
        photo,
        maps,
        grid,
        DiffusionSettings(sampling="full", seed=seed, **FAST),
        output_type="latent",
        return_dict=False,
    )
    assert float((mixed - alone).abs().max()) > 0.05


# ---------------------------------------------------------------------------------------------
# weights folders
# ---------------------------------------------------------------------------------------------
def _unet_file(folder):
    return folder / "unet" / "diffusion_pytorch_model.safetensors"


def test_weights_init_writes_zero_view_attention_and_loads_it(tmp_path):
    from safetensors.torch import load_file

    from hvg_cli.backends.diffusion.views import view_attention_parameters, view_attention_state_dict
    from hvg_cli.backends.diffusion.weights import check_weights, init_tiny, load_pipeline

    report = init_tiny(tmp_path / "w")
    meta = json.loads((tmp_path / "w" / "hvg.json").read_text())
    assert meta["version"] == 2 and meta["pose_control_trained"] is False and meta["view_attention_trained"] is False
    assert any("view attention untrained" in n for n in report.notes)
    index = json.loads((tmp_path / "w" / "model_index.json").read_text())
    assert index["unet"] == ["hvg_cli.backends.diffusion.views", "HVGUNet"]
    stored = {k: v for k, v in load_file(str(_unet_file(tmp_path / "w"))).items() if "view_attn" in k}
    assert stored and all(float(v.abs().max()) == 0 for k, v in stored.items() if ".to_out." in k)

    # trained view attention survives save -> check -> load, and check says it is no longer zero
    pipe = load_pipeline(tmp_path / "w", device="cpu")
    assert {n for n, _ in view_attention_parameters(pipe.unet)} == set(stored)
    perturb_view_attention(pipe.unet)
    pipe.save_pretrained(tmp_path / "t", safe_serialization=True)
    assert not any("view attention" in n for n in check_weights(tmp_path / "t").notes)
    loaded = load_pipeline(tmp_path / "t", device="cpu")
    a, b = view_attention_state_dict(pipe.unet), view_attention_state_dict(loaded.unet)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_folder_without_view_attention_loads_as_zero_and_partial_is_refused(tmp_path):
    from safetensors.torch import load_file, save_file

    from hvg_cli.backends.diffusion.views import view_attention_state_dict
    from hvg_cli.backends.diffusion.weights import check_weights, init_tiny, load_pipeline

    init_tiny(tmp_path / "w")
    fresh = load_pipeline(tmp_path / "w", device="cpu")
    f = _unet_file(tmp_path / "w")
    sd = load_file(str(f))
    # an older folder: the UNet file without any view attention (and model_index naming diffusers' UNet)
    save_file({k: v for k, v in sd.items() if "view_attn" not in k}, str(f))
    index = json.loads((tmp_path / "w" / "model_index.json").read_text())
    index["unet"] = ["diffusers", "UNetSpatioTemporalConditionModel"]
    (tmp_path / "w" / "model_index.json").write_text(json.dumps(index))
    report = check_weights(tmp_path / "w")
    assert any("has no view attention" in n and "hvg weights init" in n for n in report.notes)
    old = load_pipeline(tmp_path / "w", device="cpu")
    a, b = view_attention_state_dict(fresh.unet), view_attention_state_dict(old.unet)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)  # = what init writes: output zero
    photo, maps, grid = synthetic_job(2, 2)
    s = DiffusionSettings(sampling="full", **FAST)
    torch.testing.assert_close(
        old(photo, maps, grid, s, output_type="latent", return_dict=False),
        fresh(photo, maps, grid, s, output_type="latent", return_dict=False),
        rtol=0,
        atol=1e-4,
    )

    # part of the view attention missing: refused, naming `hvg weights init`, by check and by load
    dropped = sorted(k for k in sd if "view_attn" in k)[0]
    save_file({k: v for k, v in sd.items() if k != dropped}, str(f))
    with pytest.raises(BadInput, match="only part of the view attention") as e:
        check_weights(tmp_path / "w")
    assert "hvg weights init" in e.value.hint


def test_init_from_base_links_svd_and_writes_view_attention_beside_it(tmp_path):
    from diffusers import StableVideoDiffusionPipeline
    from safetensors.torch import save_file

    from hvg_cli.backends.diffusion.views import view_attention_state_dict
    from hvg_cli.backends.diffusion.weights import (
        check_weights,
        init_from_base,
        init_tiny,
        load_pipeline,
        tiny_components,
    )

    comps = tiny_components(0)
    comps.pop("pose_encoder")
    StableVideoDiffusionPipeline(**comps).save_pretrained(tmp_path / "svd", safe_serialization=True)
    before = sorted(p.name for p in (tmp_path / "svd" / "unet").iterdir())
    report = init_from_base(tmp_path / "svd", tmp_path / "hvg")
    unet_dir = tmp_path / "hvg" / "unet"
    assert _unet_file(tmp_path / "hvg").is_symlink()  # the SVD file is linked, not copied
    assert sorted(p.name for p in (tmp_path / "svd" / "unet").iterdir()) == before  # the base is untouched
    weight_map = json.loads((unet_dir / "diffusion_pytorch_model.safetensors.index.json").read_text())["weight_map"]
    assert {f for k, f in weight_map.items() if "view_attn" in k} == {"view_attention.safetensors"}
    assert {f for k, f in weight_map.items() if "view_attn" not in k} == {"diffusion_pytorch_model.safetensors"}
    meta = json.loads((tmp_path / "hvg" / "hvg.json").read_text())
    assert meta["pose_control_trained"] is False and meta["view_attention_trained"] is False
    assert any("view attention untrained" in n for n in report.notes)

    pipe = load_pipeline(tmp_path / "hvg", device="cpu")  # every base tensor from the SVD file (strict)
    init_tiny(tmp_path / "tiny")
    tiny = load_pipeline(tmp_path / "tiny", device="cpu")
    a, b = view_attention_state_dict(pipe.unet), view_attention_state_dict(tiny.unet)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)  # one init rule for both

    # a safetensors file the index does not name would be silently ignored by diffusers: refused
    save_file({"x": torch.zeros(1)}, str(unet_dir / "stray.safetensors"))
    with pytest.raises(BadInput, match="stray.safetensors is not listed"):
        check_weights(tmp_path / "hvg")


def test_view_attention_trains_and_checkpointing_keeps_the_layout():
    """Gradients reach the view attention (its zero output projection gets one first), and with gradient
    checkpointing (blocks recomputed in backward) they equal those without."""
    from hvg_cli.backends.diffusion.views import view_attention_parameters

    def grads(checkpointing: bool) -> dict[str, torch.Tensor]:
        unet = tiny_view_unet().train()
        if checkpointing:
            unet.enable_gradient_checkpointing()
        x, emb, ids, t = unet_inputs(2)
        run_views(unet, x, emb, ids, t).square().mean().backward()
        return {n: p.grad.clone() for n, p in view_attention_parameters(unet)}

    plain = grads(False)
    out = {n: g for n, g in plain.items() if ".to_out.0.weight" in n}
    assert out and all(float(g.abs().max()) > 0 for g in out.values())
    checkpointed = grads(True)
    for n in plain:
        torch.testing.assert_close(checkpointed[n], plain[n], rtol=1e-5, atol=1e-7)


def test_batch_chunked_attention_matches_one_launch():
    """The processor that keeps fused-attention launches under CUDA's grid limit: small slices here."""
    from diffusers.models.attention_processor import AttnProcessor2_0

    from hvg_cli.backends.diffusion.views import BatchChunkedAttnProcessor

    unet = tiny_view_unet()
    perturb_view_attention(unet)
    x, emb, ids, t = unet_inputs(2)
    with torch.no_grad():
        ref = run_views(unet, x, emb, ids, t)
        procs = unet.attn_processors
        assert sum(isinstance(p, BatchChunkedAttnProcessor) for p in procs.values()) == 2 * 6 + 6  # temporal + view
        for p in procs.values():
            if isinstance(p, BatchChunkedAttnProcessor):
                p.max_batch = 7  # forces uneven slices of every temporal and view attention batch
        # (the projections inside run on fewer rows per call: other CPU GEMM blockings, ~1e-6)
        torch.testing.assert_close(run_views(unet, x, emb, ids, t), ref, rtol=0, atol=1e-5)
        unet.set_attn_processor(AttnProcessor2_0())  # diffusers' own processor everywhere: the same numbers
        torch.testing.assert_close(run_views(unet, x, emb, ids, t), ref, rtol=0, atol=1e-5)
