"""The HVG diffusion backend on tiny random diffusers components (CPU, 32 px, 2 steps).

Equivalence with diffusers' own StableVideoDiffusionPipeline, the tile plan and blending, resume,
weights folders (save/load, check, init).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch  # a hard dependency: a missing torch fails here, it never skips

from hvg_cli.backends.diffusion import DiffusionSettings, dry_run  # noqa: E402
from hvg_cli.backends.diffusion.plan import anchor_frames, axis_windows, make_plan  # noqa: E402
from hvg_cli.backends.diffusion.tiling import Blender, normalised_weights, weight_sum  # noqa: E402
from hvg_cli.core.errors import BadInput, MissingWeights  # noqa: E402
from hvg_cli.core.types import BoneMaps, CameraGrid  # noqa: E402

H = W = 32
FAST = dict(steps=2, guidance_min=1.0, guidance_max=2.5, guidance_ramp="svd")  # SVD's ramp: comparable with SVD


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # conftest: one torch thread


def synthetic_job(V: int, T: int, seed: int = 0, closed: bool = False):
    """Aligned photo [H, W, 3] uint8, BoneMaps [V, T, H, W] and an orbit CameraGrid, all synthetic."""
    rng = np.random.default_rng(seed)
    photo = rng.integers(0, 256, (H, W, 3), dtype=np.uint8)
    mask = rng.uniform(size=(V, T, H, W)) > 0.4
    maps = BoneMaps(
        semantic=(rng.integers(0, 256, (V, T, H, W, 3)) * mask[..., None]).astype(np.uint8),
        normal=(rng.uniform(-1, 1, (V, T, H, W, 3)) * mask[..., None]).astype(np.float16),
        depth=(rng.uniform(2.0, 3.0, (V, T, H, W)) * mask).astype(np.float32),
        mask=mask,
        label=np.where(mask, 1, -1).astype(np.int8),
    )
    K = np.array([[40.0, 0, W / 2], [0, 40.0, H / 2], [0, 0, 1]])
    w2c = np.zeros((V, T, 4, 4))
    for v in range(V):
        az = 2 * np.pi * v / V
        c = np.array([2.5 * np.sin(az), 0.9, 2.5 * np.cos(az)])  # camera centre, looking at (0, 0.9, 0)
        z = -c + np.array([0, 0.9, 0])
        z /= np.linalg.norm(z)
        x = np.cross([0, -1.0, 0], z)
        x /= np.linalg.norm(x)
        y = np.cross(z, x)
        R = np.stack([x, y, z])
        w2c[v, :, :3, :3] = R
        w2c[v, :, :3, 3] = -R @ c
        w2c[v, :, 3, 3] = 1
    grid = CameraGrid(np.broadcast_to(K, (V, T, 3, 3)).copy(), w2c, W, H, "views", closed)
    return photo, maps, grid


def tiny_pipe():
    from hvg_cli.backends.diffusion.pipeline_hvg import HVGPipeline
    from hvg_cli.backends.diffusion.weights import tiny_components

    pipe = HVGPipeline(**tiny_components(0))
    pipe.set_progress_bar_config(disable=True)
    return pipe


def svd_frames(photo: np.ndarray, frames: int) -> torch.Tensor:
    """diffusers' own StableVideoDiffusionPipeline on the same tiny components and FAST settings: [1, T, 3, H, W]
    in [0, 1]."""
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
        num_frames=frames,
        num_inference_steps=FAST["steps"],
        min_guidance_scale=FAST["guidance_min"],
        max_guidance_scale=FAST["guidance_max"],
        generator=torch.Generator("cpu").manual_seed(0),
        output_type="pt",
    ).frames


# ---------------------------------------------------------------------------------------------
# equivalence with diffusers
# ---------------------------------------------------------------------------------------------
def test_matches_diffusers_svd_with_one_tile_and_zero_encoder():
    photo, maps, grid = synthetic_job(1, 2)
    ref = svd_frames(photo, 2)[0]  # [T, 3, H, W]
    pipe = tiny_pipe()
    assert float(pipe.pose_encoder.conv_out.weight.detach().abs().sum()) == 0.0  # zero-initialised
    for mode in ("full", "onepass"):
        ours = pipe(photo, maps, grid, DiffusionSettings(sampling=mode, **FAST), output_type="pt").frames[
            0
        ]  # [T, 3, H, W]
        torch.testing.assert_close(ours, ref, rtol=0, atol=1e-6)
    # the pose pathway is live: a non-zero encoder output changes the frames
    torch.manual_seed(1)
    torch.nn.init.normal_(pipe.pose_encoder.conv_out.weight, std=0.5)
    posed = pipe(photo, maps, grid, DiffusionSettings(sampling="full", **FAST), output_type="pt").frames[0]
    assert float((posed - ref).abs().max()) > 1e-3


def test_one_tile_grid_identical_tiled_and_untiled():
    photo, maps, grid = synthetic_job(2, 3)
    pipe = tiny_pipe()
    s = DiffusionSettings(tile_views=2, tile_frames=4, overlap_views=1, overlap_frames=1, **FAST)
    plan = pipe.plan(maps, grid, s.with_(sampling="onepass"))
    assert plan.tile_evaluations == 2 and plan.max_tile_frames == 6  # one 2×3 tile per step
    full = pipe(photo, maps, grid, s.with_(sampling="full"), output_type="latent").frames
    tiled = pipe(photo, maps, grid, s.with_(sampling="onepass"), output_type="latent").frames
    assert full.shape == (2, 3, 4, H // 2, W // 2)
    assert torch.equal(full, tiled)


# ---------------------------------------------------------------------------------------------
# tile plan and blending (pure)
# ---------------------------------------------------------------------------------------------
def test_windows_cover_and_wrap():
    assert axis_windows(5, 8, 3) == [(0, 1, 2, 3, 4)]
    assert axis_windows(12, 4, 1) == [(0, 1, 2, 3), (3, 4, 5, 6), (6, 7, 8, 9), (8, 9, 10, 11)]
    closed = axis_windows(6, 2, 1, wrap=True)
    assert closed[-1] == (5, 0)  # the first and last views are neighbours on a closed orbit
    assert all((5, 0) != w and (0, 5) != w for w in axis_windows(6, 2, 1, wrap=False))
    assert anchor_frames(10, 4) == (0, 4, 8, 9)


@pytest.mark.parametrize("mode", ["onepass", "progressive"])
def test_blend_weights_cover_every_latent_and_sum_to_one(mode):
    s = DiffusionSettings(
        sampling=mode, tile_views=2, tile_frames=8, overlap_views=1, overlap_frames=3, anchor_stride=4
    )
    plan = make_plan(5, 23, 8, 8, s, closed=True)
    for stage in plan.stages:
        total = weight_sum(stage, 5)
        assert (total > 0).all(), f"{stage.name}: uncovered latents"
        acc = np.zeros_like(total)
        for tile, w in zip(stage.tiles, normalised_weights(stage, 5)):
            np.add.at(acc, np.ix_(tile.views, tile.cols), w)
        np.testing.assert_allclose(acc, 1.0, atol=1e-12)
        assert any(t.views[:2] == (4, 0) for t in stage.tiles)  # wrap: views 4 and 0 in one tile
    # the torch blender is a convex combination: equal tile predictions fuse to that prediction
    stage = plan.stages[-1]
    like = torch.zeros(5, len(stage.times), 4, 8, 8, dtype=torch.float64)
    b = Blender(stage, 5, like)
    field = torch.randn(4, 8, 8, dtype=torch.float64)
    for t in stage.tiles:
        b.add(t, field.expand(len(t.views), len(t.cols), 4, 8, 8))
    torch.testing.assert_close(b.result(), field.expand_as(like), rtol=0, atol=1e-12)


def test_progressive_plan_and_dry_run_numbers():
    s = DiffusionSettings()  # defaults: 25 steps, tiles 2 views × 8 frames, overlaps 1 × 3, anchors every 4
    out = dry_run(4, 48, 512, 512, s, closed=True)
    # anchors 0, 4, ..., 44 and 47 -> 13; time windows over 13 at stride 5: (0..7), (5..12) -> 2; views wrap: 4
    # dense: starts 0, 5, ..., 35 and 40 -> 9 windows × 4 view windows = 36
    assert [(st["name"], st["frames"], st["tiles"], st["held"]) for st in out["stages"]] == [
        ("anchors", 13, 8, 0),
        ("dense", 48, 36, 13),
    ]
    assert out["tile_evaluations"] == 25 * (8 + 36) == 1100
    assert out["compare"] == {"onepass": 25 * 36}
    assert out["unet_frames"] == 25 * 44 * 16 and out["max_tile_frames"] == 16
    mem = out["memory_estimate"]
    assert mem["weights_bytes"] == 2 * (1_524_623_082 + 97_739_049 + 632_076_800 + 1_000_000)
    # activations: 2 (CFG) × 16 frames × Σ C_l h_l w_l × 2 bytes × 16, latent 64×64
    per_frame = 320 * 64 * 64 + 640 * 32 * 32 + 1280 * 16 * 16 + 1280 * 8 * 8
    assert mem["tile_activation_bytes"] == 2 * 16 * per_frame * 2 * 16
    # the estimate depends on the tile, not on the video's length
    longer = dry_run(4, 480, 512, 512, s, closed=True)["memory_estimate"]
    assert longer["tile_activation_bytes"] == mem["tile_activation_bytes"]


def test_plucker_rays():
    from hvg_cli.backends.diffusion.pose_encoder import plucker_rays

    _, _, grid = synthetic_job(3, 1)
    rays = plucker_rays(grid.K[:, 0], grid.world_to_cam[:, 0], W, H)  # [V, 6, H, W]
    d, m = rays[:, :3], rays[:, 3:]
    np.testing.assert_allclose(np.linalg.norm(d, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose((d * m).sum(axis=1), 0.0, atol=1e-5)  # moment ⟂ direction
    # the rays near the image centre point at the look-at target (0, 0.9, 0): its moment is ~0
    target = np.array([0, 0.9, 0])
    for v in range(3):
        dc = d[v, :, H // 2, W // 2]
        mc = m[v, :, H // 2, W // 2]
        assert np.linalg.norm(np.cross(target, dc) - mc) < 0.1


def test_conditioning_fast_path_matches_plain_twin():
    from hvg_cli.backends.diffusion.pose_encoder import IN_CHANNELS, conditioning, conditioning_torch

    _, maps, grid = synthetic_job(2, 3)
    args = (
        maps.semantic.reshape(6, H, W, 3),
        maps.normal.reshape(6, H, W, 3),
        maps.depth.reshape(6, H, W),
        maps.mask.reshape(6, H, W),
        grid.K.reshape(6, 3, 3),
        grid.world_to_cam.reshape(6, 4, 4),
    )
    slow = conditioning(*args)  # [6, 14, H, W]
    fast = conditioning_torch(*args)
    assert slow.shape == (6, IN_CHANNELS, H, W)
    torch.testing.assert_close(fast, torch.from_numpy(slow), rtol=0, atol=1e-5)
    assert (slow[:, 6][~maps.mask.reshape(6, H, W)] == 0).all()  # no disparity where the map is empty


# ---------------------------------------------------------------------------------------------
# resume and anchors
# ---------------------------------------------------------------------------------------------
def test_resume_after_interruption_gives_identical_frames(tmp_path):
    from hvg_cli.backends.diffusion.sampler import STATE_FILE, load_state
    from hvg_cli.core.progress import SilentReporter

    photo, maps, grid = synthetic_job(2, 5)
    pipe = tiny_pipe()
    s = DiffusionSettings(
        sampling="progressive", tile_views=1, tile_frames=3, overlap_views=0, overlap_frames=1, anchor_stride=2, **FAST
    )
    assert [st.name for st in pipe.plan(maps, grid, s).stages] == ["anchors", "dense"]

    whole = pipe(photo, maps, grid, s, state_dir=tmp_path / "a", fingerprint="job", output_type="np").frames
    state = load_state(tmp_path / "a", "job")
    assert state["stage"] == 2  # finished
    anchors = anchor_frames(5, 2)
    assert torch.equal(state["latents"][:, list(anchors)], state["anchors"])  # anchors held exactly
    assert load_state(tmp_path / "a", "another job") is None  # a foreign state is never resumed

    seen: list[tuple[str, int]] = []

    def stop_at(stage: str, step: int):  # a diffusers-style callback that stops the run (pipe._interrupt)
        def cb(p, i, t, tensors):
            seen.append((p.stage, i))
            assert tensors["latents"].shape[:2] == (2, 3 if p.stage == "anchors" else 5)
            if (p.stage, i) == (stage, step):
                p._interrupt = True
            return {}

        return cb

    b = tmp_path / "b"
    out = pipe(photo, maps, grid, s, state_dir=b, fingerprint="job", callback_on_step_end=stop_at("anchors", 0))
    assert out.interrupted and out.frame_times == anchors and out.frames.shape[:2] == (2, 3)
    report = SilentReporter()
    out = pipe(
        photo, maps, grid, s, state_dir=b, fingerprint="job", callback_on_step_end=stop_at("dense", 0), progress=report
    )
    assert out.interrupted and out.frame_times == tuple(range(5))
    assert any("resuming from saved state: anchors stage, step 2 of 2" in n for n in report.notes), report.notes
    out = pipe(
        photo,
        maps,
        grid,
        s,
        state_dir=b,
        fingerprint="job",
        callback_on_step_end=stop_at("never", -1),
        output_type="np",
    )
    resumed = out.frames
    assert not out.interrupted
    assert seen == [("anchors", 0), ("anchors", 1), ("dense", 0), ("dense", 1)]  # no step ran twice
    assert (b / STATE_FILE).exists() and not list(b.glob("*.tmp"))
    assert resumed.shape == (2, 5, H, W, 3) and resumed.dtype == np.float32
    np.testing.assert_array_equal(resumed, whole)


# ---------------------------------------------------------------------------------------------
# weights folders
# ---------------------------------------------------------------------------------------------
def test_save_load_round_trip(tmp_path):
    from hvg_cli.backends.diffusion.weights import check_weights, load_pipeline

    photo, maps, grid = synthetic_job(1, 2)
    pipe = tiny_pipe()
    torch.manual_seed(2)
    torch.nn.init.normal_(pipe.pose_encoder.conv_out.weight, std=0.5)  # so a fresh encoder would differ
    s = DiffusionSettings(sampling="full", **FAST)
    before = pipe(photo, maps, grid, s, output_type="pt").frames  # [1, 2, 3, H, W] in [0, 1]
    pipe.save_pretrained(tmp_path / "w", safe_serialization=True)
    files = [p.name for p in (tmp_path / "w").rglob("*") if p.is_file()]
    assert not [f for f in files if f.endswith((".bin", ".pt", ".pkl"))]
    assert check_weights(tmp_path / "w").params["pose_encoder"] == sum(
        p.numel() for p in pipe.pose_encoder.parameters()
    )
    loaded = load_pipeline(tmp_path / "w", device="cpu")
    for name in ("unet", "vae", "image_encoder", "pose_encoder"):
        a, b = getattr(pipe, name).state_dict(), getattr(loaded, name).state_dict()
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), name
    after = loaded(photo, maps, grid, s, output_type="pt").frames
    # transformers' loaded CLIP differs from the fresh one by ~1e-7 (its kernels, same weights): not bit-exact
    torch.testing.assert_close(after, before, rtol=0, atol=1e-4)


def test_weights_check_rejects_pickle_and_shape_mismatch(tmp_path):
    from safetensors.torch import load_file, save_file
    from typer.testing import CliRunner

    from hvg_cli.backends.diffusion.weights import check_weights, init_tiny
    from hvg_cli.cli.main import app

    report = init_tiny(tmp_path / "w")
    meta = json.loads((tmp_path / "w" / "hvg.json").read_text())
    assert report.untrained and meta["untrained"] is True and "UNTRAINED" in (tmp_path / "w" / "README.md").read_text()
    assert report.params["unet"] > 1_000_000
    assert report.notes[0] == "UNTRAINED weights: the video will be meaningless"

    runner = CliRunner()
    ok = runner.invoke(app, ["weights", "check", str(tmp_path / "w"), "--json"])
    assert ok.exit_code == 0 and json.loads(ok.stdout)["total_params"] == report.total_params

    pickle = tmp_path / "w" / "unet" / "extra.bin"
    pickle.write_bytes(b"\x80\x04K\x01.")
    with pytest.raises(BadInput, match="extra.bin is a pickle file"):
        check_weights(tmp_path / "w")
    bad = runner.invoke(app, ["weights", "check", str(tmp_path / "w")])
    assert bad.exit_code == BadInput.exit_code and "pickle" in bad.stderr
    pickle.unlink()

    f = tmp_path / "w" / "pose_encoder" / "diffusion_pytorch_model.safetensors"
    sd = load_file(str(f))
    sd["conv_out.weight"] = torch.zeros(32, 7, 1, 1)
    save_file(sd, str(f))
    with pytest.raises(BadInput, match=r"conv_out.weight has shape \[32, 7, 1, 1\]"):
        check_weights(tmp_path / "w")
    bad = runner.invoke(app, ["weights", "check", str(tmp_path / "w")])
    assert bad.exit_code == BadInput.exit_code and len(bad.stderr.strip().splitlines()) == 1

    missing = runner.invoke(app, ["weights", "check", str(tmp_path / "nothing")])
    assert missing.exit_code == MissingWeights.exit_code


def test_init_from_local_svd_folder_behaves_like_svd(tmp_path):
    from diffusers import StableVideoDiffusionPipeline

    from hvg_cli.backends.diffusion.weights import init_from_base, load_pipeline, tiny_components

    comps = tiny_components(0)
    comps.pop("pose_encoder")
    StableVideoDiffusionPipeline(**comps).save_pretrained(tmp_path / "svd", safe_serialization=True)
    report = init_from_base(tmp_path / "svd", tmp_path / "hvg")
    assert not report.untrained and report.params["pose_encoder"] > 0
    assert (tmp_path / "hvg" / "unet" / "diffusion_pytorch_model.safetensors").is_symlink()
    pipe = load_pipeline(tmp_path / "hvg", device="cpu")
    assert float(pipe.pose_encoder.conv_out.weight.detach().abs().sum()) == 0.0
    photo, maps, grid = synthetic_job(1, 2)
    ours = pipe(photo, maps, grid, DiffusionSettings(sampling="full", **FAST), output_type="pt").frames[0]
    # loaded (not fresh) CLIP: ~1e-7 kernel noise upstream, see test_save_load_round_trip
    torch.testing.assert_close(ours, svd_frames(photo, 2)[0], rtol=0, atol=1e-4)


# ---------------------------------------------------------------------------------------------
# end to end through `hvg animate`
# ---------------------------------------------------------------------------------------------
def test_animate_with_tiny_diffusion_weights(tmp_path, data_dir, cache_dir):
    from typer.testing import CliRunner

    from hvg_cli.backends.diffusion.weights import init_tiny
    from hvg_cli.cli.main import app
    from hvg_cli.io.video import probe_video

    init_tiny(tmp_path / "w")
    res = CliRunner().invoke(
        app,
        [
            "animate",
            str(data_dir / "photo_woman_studio.jpg"),
            "--motion",
            "wave",
            "--orbit",
            "360",
            "--views",
            "4",
            "--per-view",
            "--backend",
            "diffusion",
            "--weights",
            str(tmp_path / "w"),
            "--steps",
            "2",
            "-r",
            "32",
            "--frames",
            "2",
            "-o",
            str(tmp_path / "out.mp4"),
            "--json",
            "--quiet",
        ],
    )
    assert res.exit_code == 0, res.stderr
    result = json.loads(res.stdout)
    assert result["backend"] == "diffusion" and result["views"] == 4 and result["frames"] == 2
    assert len(result["outputs"]) == 4
    for path in result["outputs"]:
        info = probe_video(path)
        assert (info.width, info.height, info.frame_count) == (32, 32, 2)


def test_cli_stderr_has_no_library_chatter(tmp_path: Path) -> None:
    """`hvg weights init --tiny` in a fresh process: stderr holds hvg's own lines, not transformers' note that
    CLIPImageProcessor falls back to its PIL twin without torchvision (it was printed on every prepare)."""
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k not in ("TRANSFORMERS_VERBOSITY", "DIFFUSERS_VERBOSITY")}
    code = "import sys; from hvg_cli.cli.main import run; sys.argv = ['hvg', *sys.argv[1:]]; run()"
    proc = subprocess.run(
        [sys.executable, "-c", code, "weights", "init", "--tiny", "-o", str(tmp_path / "w")],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "w" / "hvg.json").is_file()
    assert "[transformers]" not in proc.stderr and "torchvision" not in proc.stderr, proc.stderr
