"""The sampler and the pipeline's call: pose features once per frame, micro-conditioning, guidance, the
diffusers-style call (outputs, callbacks, generator, latents), cache identity of weights folders.

Tiny random diffusers components on the CPU (32 px, 2 steps), as tests/test_diffusion.py.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")  # noqa: E402  (torch is a hard dependency; this only names it)

from test_diffusion import FAST, H, W, synthetic_job, tiny_pipe  # noqa: E402

from hvg_cli.backends.diffusion import DiffusionSettings, dry_run  # noqa: E402
from hvg_cli.core.errors import BadInput  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # conftest: one torch thread


def live_pose_encoder(pipe, seed: int = 1):
    """Give the zero-initialised encoder a non-zero head so the pose pathway changes the frames."""
    torch.manual_seed(seed)
    torch.nn.init.normal_(pipe.pose_encoder.conv_out.weight, std=0.5)
    return pipe


class Spy:
    """Wraps pipe.predict_tile and pipe.pose_encoder.forward, recording what they were called with."""

    def __init__(self, pipe):
        self.tiles: list[dict] = []
        self.encoder_frames = {"features": 0, "head": 0, "all": 0}
        predict, encode = pipe.predict_tile, pipe.pose_encoder.forward

        def predict_tile(ref, scaled, t, residual, guidance, views):
            self.tiles.append(
                {
                    "stage": pipe.stage,
                    "time_ids": ref.time_ids.clone(),
                    "guidance": guidance.clone(),
                    "frames": scaled.shape[0],
                }
            )
            return predict(ref, scaled, t, residual, guidance, views=views)

        def forward(x, part="all"):
            self.encoder_frames[part] += x.shape[0]
            return encode(x, part=part)

        pipe.predict_tile = predict_tile
        pipe.pose_encoder.forward = forward


# ---------------------------------------------------------------------------------------------
# pose features: once per (view, frame), same residuals as the per-tile path
# ---------------------------------------------------------------------------------------------
def test_pose_encoder_runs_once_per_view_and_frame_and_matches_per_tile_path():
    photo, maps, grid = synthetic_job(2, 5)
    s = DiffusionSettings(
        sampling="progressive",
        tile_views=1,
        tile_frames=3,
        overlap_views=0,
        overlap_frames=1,
        anchor_stride=2,
        **{**FAST, "steps": 1},
    )
    pipe = live_pose_encoder(tiny_pipe())
    spy = Spy(pipe)
    kept = pipe(photo, maps, grid, s.with_(pose_residuals="keep"), output_type="latent").frames
    plan = pipe.plan(maps, grid, s)
    tile_frames = sum(t["frames"] for t in spy.tiles)
    assert tile_frames == plan.unet_frames > 2 * 5  # the tiles see every frame several times...
    assert spy.encoder_frames == {"features": 2 * 5, "head": tile_frames, "all": 0}  # ...the trunk runs once each

    spy.encoder_frames = dict.fromkeys(spy.encoder_frames, 0)
    per_tile = pipe(photo, maps, grid, s.with_(pose_residuals="recompute"), output_type="latent").frames
    assert spy.encoder_frames == {"features": 0, "head": 0, "all": tile_frames}  # today's path, the plain twin
    torch.testing.assert_close(kept, per_tile, rtol=0, atol=1e-6)
    # and the pose pathway is live: a zero encoder gives other latents
    torch.nn.init.zeros_(pipe.pose_encoder.conv_out.weight)
    plain = pipe(photo, maps, grid, s, output_type="latent").frames
    assert float((plain - kept).abs().max()) > 1e-3


def test_pose_encoder_parts_compose_to_the_whole():
    from hvg_cli.backends.diffusion.plan import pose_feature_channels
    from hvg_cli.backends.diffusion.pose_encoder import PoseEncoder

    torch.manual_seed(0)
    pe = PoseEncoder(block_out_channels=(8, 16, 24), out_channels=32, downscale=8).eval()
    torch.nn.init.normal_(pe.conv_out.weight, std=0.3)
    x = torch.randn(3, 14, 32, 32)
    feats = pe(x, part="features")
    assert feats.shape == (3, pe.feature_channels, 4, 4) and pe.feature_channels == 24
    assert torch.equal(pe(feats, part="head"), pe(x))
    assert pose_feature_channels(dict(pe.config)) == pe.feature_channels
    assert pose_feature_channels(None) == PoseEncoder().feature_channels == 128  # SVD-sized default


def test_pose_feature_policy_decides_by_estimate():
    from hvg_cli.backends.diffusion.plan import make_plan, pose_feature_policy

    plan = make_plan(4, 91, 72, 128, DiffusionSettings())  # 576×1024, the default 4 × 91 job
    need = 4 * 91 * 128 * 72 * 128 * 2  # V T C_f h w, fp16
    big = pose_feature_policy(plan, 128, 2, "auto", free_bytes=40 * 2**30, other_bytes=6 * 2**30)
    assert big["keep"] and big["feature_bytes"] == need and big["budget_bytes"] == 17 * 2**30
    small = pose_feature_policy(plan, 128, 2, "auto", free_bytes=7 * 2**30, other_bytes=6 * 2**30)
    assert not small["keep"] and small["budget_bytes"] == 2**29  # 819 MiB of features > half of the 1 GiB left
    assert pose_feature_policy(plan, 128, 2, "keep", free_bytes=0)["keep"]
    assert not pose_feature_policy(plan, 128, 2, "recompute", free_bytes=2**40)["keep"]


def test_dry_run_says_where_pose_features_live():
    s = DiffusionSettings(dtype="fp16")
    out = dry_run(4, 91, 1024, 576, s, closed=True)
    pf = out["pose_features"]
    assert pf["feature_bytes"] == 4 * 91 * 128 * 72 * 128 * 2
    assert pf["where"] in ("device, once per frame", "recomputed per tile")
    forced = dry_run(4, 91, 1024, 576, s.with_(pose_residuals="recompute"), closed=True)["pose_features"]
    assert forced["where"] == "recomputed per tile" and not forced["keep"]
    assert out["micro_conditioning"] == {
        "fps": 7.0,
        "anchor_fps": 7.0 / 4,
        "motion_bucket_id": 127,
        "noise_aug_strength": 0.02,
    }


# ---------------------------------------------------------------------------------------------
# micro-conditioning and guidance
# ---------------------------------------------------------------------------------------------
def test_fps_reaches_micro_conditioning_and_anchors_see_their_rate():
    photo, maps, grid = synthetic_job(1, 7)
    pipe = tiny_pipe()
    spy = Spy(pipe)
    s = DiffusionSettings(
        sampling="progressive",
        tile_views=1,
        tile_frames=3,
        overlap_views=0,
        overlap_frames=1,
        anchor_stride=2,
        fps=30.0,
        motion_bucket_id=60,
        noise_aug_strength=0.1,
        **FAST,
    )
    pipe(photo, maps, grid, s, output_type="latent")
    ids = {t["stage"]: t["time_ids"] for t in spy.tiles}
    assert set(ids) == {"anchors", "dense"}
    torch.testing.assert_close(ids["dense"], torch.tensor([[29.0, 60.0, 0.1]] * 2))  # (fps - 1, bucket, aug) × CFG
    torch.testing.assert_close(ids["anchors"], torch.tensor([[14.0, 60.0, 0.1]] * 2))  # fps / stride - 1
    with pytest.raises(BadInput):
        DiffusionSettings(noise_aug_strength=-0.1)
    with pytest.raises(BadInput):
        DiffusionSettings(fps=0)


def test_guidance_is_flat_for_generated_frames_and_svd_ramp_on_request():
    from hvg_cli.backends.diffusion.pipeline_hvg import guidance_scales

    flat = DiffusionSettings(guidance_max=3.0)
    assert flat.guidance_ramp == "flat"  # the default: every frame is generated
    assert guidance_scales(flat, 5).tolist() == [3.0] * 5
    svd = flat.with_(guidance_ramp="svd", guidance_min=1.0)
    assert guidance_scales(svd, 5).tolist() == [1.0, 1.5, 2.0, 2.5, 3.0]
    # in the sampler: every view's first frame is guided, whatever tile it falls in
    photo, maps, grid = synthetic_job(2, 5)
    pipe = tiny_pipe()
    spy = Spy(pipe)
    pipe(
        photo,
        maps,
        grid,
        DiffusionSettings(
            sampling="onepass",
            tile_views=1,
            tile_frames=3,
            overlap_views=0,
            overlap_frames=1,
            steps=1,
            guidance_max=2.5,
        ),
        output_type="latent",
    )
    assert all(t["guidance"].tolist() == [2.5] * t["frames"] for t in spy.tiles)
    spy.tiles.clear()
    pipe(
        photo,
        maps,
        grid,
        DiffusionSettings(
            sampling="onepass",
            tile_views=1,
            tile_frames=3,
            overlap_views=0,
            overlap_frames=1,
            steps=1,
            guidance_max=2.5,
            guidance_min=1.0,
            guidance_ramp="svd",
        ),
        output_type="latent",
    )
    assert spy.tiles[0]["guidance"].tolist() == [1.0, 1.375, 1.75]  # SVD: the first frame unguided


# ---------------------------------------------------------------------------------------------
# the call as diffusers users expect it
# ---------------------------------------------------------------------------------------------
def test_resize_matches_svd_preprocessing():
    from diffusers.pipelines.stable_video_diffusion.pipeline_stable_video_diffusion import _resize_with_antialiasing

    from hvg_cli.backends.diffusion.pipeline_hvg import resize_antialiased

    torch.manual_seed(0)
    for shape in ((1, 3, 32, 32), (2, 3, 576, 1024), (1, 3, 100, 333)):
        x = torch.rand(shape) * 2 - 1
        assert torch.equal(resize_antialiased(x, (224, 224)), _resize_with_antialiasing(x, (224, 224))), shape


def test_call_outputs_generator_latents_and_callback():
    import PIL.Image

    photo, maps, grid = synthetic_job(2, 3)
    pipe = tiny_pipe()
    s = DiffusionSettings(
        sampling="onepass", tile_views=2, tile_frames=3, overlap_views=1, overlap_frames=1, **{**FAST, "steps": 1}
    )
    out = pipe(photo, maps, grid, s)  # defaults: output_type "np", return_dict
    assert out.frames.shape == (2, 3, H, W, 3) and out.frames.dtype == np.float32
    assert 0.0 <= out.frames.min() and out.frames.max() <= 1.0 and out.frame_times == (0, 1, 2) and not out.interrupted
    pil = pipe(photo, maps, grid, s, output_type="pil", return_dict=False)
    assert len(pil) == 2 and len(pil[0]) == 3 and isinstance(pil[0][0], PIL.Image.Image)
    np.testing.assert_array_equal(np.asarray(pil[1][2]), (out.frames[1, 2] * 255).round().astype(np.uint8))
    lat = pipe(photo, maps, grid, s, output_type="latent", return_dict=False)
    assert lat.shape == (2, 3, 4, H // 2, W // 2)

    # an explicit generator seeded like settings.seed gives the same run; so do the same latents passed in
    gen = torch.Generator("cpu").manual_seed(s.seed)
    assert torch.equal(pipe(photo, maps, grid, s, generator=gen, output_type="latent").frames, lat)
    gen = torch.Generator("cpu").manual_seed(s.seed)
    torch.randn((1, 3, H, W), generator=gen)  # the photo's augmentation noise comes first
    noise = torch.randn((2, 3, 4, H // 2, W // 2), generator=gen)
    assert torch.equal(pipe(photo, maps, grid, s, latents=noise, output_type="latent").frames, lat)
    other = pipe(photo, maps, grid, s, generator=torch.Generator("cpu").manual_seed(5), output_type="latent").frames
    assert float((other - lat).abs().max()) > 1e-3
    # keyword overrides as in diffusers
    steps = []
    pipe(
        photo,
        maps,
        grid,
        s,
        num_inference_steps=2,
        guidance_scale=1.0,
        callback_on_step_end=lambda p, i, t, k: steps.append(i) or {},
        output_type="latent",
    )
    assert steps == [0, 1]

    # the callback reads the latents and may replace them: zeroing them at the last step zeroes the output
    def zero_last(p, i, t, tensors):
        assert set(tensors) == {"latents", "noise_pred"} and tensors["latents"].shape == lat.shape
        return {"latents": torch.zeros_like(tensors["latents"])} if i == s.steps - 1 else {}

    zeroed = pipe(
        photo,
        maps,
        grid,
        s,
        output_type="latent",
        callback_on_step_end=zero_last,
        callback_on_step_end_tensor_inputs=["latents", "noise_pred"],
    ).frames
    assert float(zeroed.abs().max()) == 0.0
    with pytest.raises(BadInput):
        pipe(photo, maps, grid, s, callback_on_step_end_tensor_inputs=["prompt_embeds"])
    with pytest.raises(BadInput):
        pipe(photo, maps, grid, s, output_type="mp4")


# ---------------------------------------------------------------------------------------------
# cache identity: contents, remembered across processes
# ---------------------------------------------------------------------------------------------
def _age(path: Path, seconds: float = 60.0) -> None:
    """Set a file's mtime in the past, as for weights saved a while ago (fresh files are never memoised)."""
    t = time.time_ns() - int(seconds * 1e9)
    os.utime(path, ns=(t, t))


def test_file_hash_memo_survives_processes_and_skips_fresh_files(tmp_path, monkeypatch):
    import hvg_cli.core.cache as cache

    memo = tmp_path / "memo.json"
    f = tmp_path / "w.bin"
    f.write_bytes(b"a" * 1000)
    fresh = cache.file_hash(f, memo=memo)
    assert not memo.exists()  # modified just now: hashed, not remembered
    _age(f)
    digest = cache.file_hash(f, memo=memo)
    assert digest == fresh and memo.exists()

    # another process reads the memo instead of the file
    code = (
        "import hashlib, hvg_cli.core.cache as c, sys\n"
        "hashlib.sha256 = lambda *a: sys.exit('hashed again')\n"
        f"print(c.file_hash({str(f)!r}, memo={str(memo)!r}))"
    )
    run = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)}
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == digest

    # same size, new contents, new mtime: a new hash
    f.write_bytes(b"b" * 1000)
    _age(f, 30)
    assert cache.file_hash(f, memo=memo) != digest
    # the memo is keyed by mtime: restoring the old mtime over new bytes would serve the old hash (the rule is
    # path + size + mtime, as git's index); writing the file always moves the mtime forward


def test_weights_identity_and_fingerprint_follow_contents(tmp_path, monkeypatch):
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    from hvg_cli.backends.diffusion import job_fingerprint, weights_identity
    from hvg_cli.backends.diffusion.weights import init_tiny

    monkeypatch.setenv("HVG_CACHE_DIR", str(tmp_path / "cache"))
    init_tiny(tmp_path / "w")
    for p in (tmp_path / "w").rglob("*"):
        if p.is_file():
            _age(p)
    photo, maps, grid = synthetic_job(1, 2)
    s = DiffusionSettings(**FAST)
    ident = weights_identity(tmp_path / "w")
    fp = job_fingerprint(tmp_path / "w", photo, maps, grid, s)
    assert (tmp_path / "cache" / "file-hashes.json").exists()  # remembered for the next process
    assert weights_identity(tmp_path / "w") == ident

    # fine-tuning re-saves the same tensors, same shapes, same file size: only the values differ
    f = tmp_path / "w" / "unet" / "diffusion_pytorch_model.safetensors"
    size = f.stat().st_size
    sd = load_file(str(f))
    with safe_open(str(f), framework="pt") as sf:
        meta = sf.metadata()
    key = sorted(sd)[0]
    sd[key] = sd[key] + 0.01
    save_file(sd, str(f), metadata=meta)
    assert f.stat().st_size == size
    _age(f, 10)
    assert weights_identity(tmp_path / "w") != ident
    assert job_fingerprint(tmp_path / "w", photo, maps, grid, s) != fp
    # the fingerprint also follows every sampling setting
    assert job_fingerprint(tmp_path / "w", photo, maps, grid, s.with_(fps=30.0)) != job_fingerprint(
        tmp_path / "w", photo, maps, grid, s
    )


def test_untrained_pose_control_is_recognised_from_hvg_json():
    from hvg_cli.backends.diffusion import pose_control_untrained

    assert pose_control_untrained({"base": "/svd", "untrained": False})  # `weights init --base` before the key
    assert pose_control_untrained({"pose_control_trained": False, "base": "/svd"})
    assert not pose_control_untrained({"pose_control_trained": True, "base": "/svd"})  # after `hvg train`
    assert not pose_control_untrained({"untrained": True, "base": None})  # tiny: warned about as a whole
    assert not pose_control_untrained({})
