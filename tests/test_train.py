"""Training room, fast parts: the EDM objective against diffusers' scheduler, per-sample randomness,
the dataset format (writer, reader, version check)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from hvg_cli.backends.diffusion.weights import SVD_SCHEDULER_CONFIG
from hvg_cli.core.errors import BadInput
from hvg_cli.train.dataset import FORMAT_VERSION, DatasetWriter, TrainDataset, random_clip
from hvg_cli.train.objective import ConditioningDropout, NoiseLevels, Preconditioning, edm_loss
from hvg_cli.train.randomness import data_index, draw_sample, global_indices, sample_seed

SVD_SCHEDULER = SVD_SCHEDULER_CONFIG  # SVD's own schedule (backends/diffusion/weights.py)


def svd_scheduler():
    from diffusers import EulerDiscreteScheduler

    return EulerDiscreteScheduler(**SVD_SCHEDULER)


# ---------------------------------------------------------------------------------------------
# objective
# ---------------------------------------------------------------------------------------------
def test_denoised_estimate_equals_the_samplers():
    """For every σ of a 25-step schedule, the training-side D(x; σ) = c_skip·x + c_out·F equals
    EulerDiscreteScheduler.step's pred_original_sample for the same model output F and sample x, c_in·x equals
    scale_model_input(x), and c_noise(σ) equals the timestep the sampler hands the UNet."""
    sched = svd_scheduler()
    pre = Preconditioning.from_scheduler_config(sched.config)
    assert pre.sigma_data == 1.0
    sched.set_timesteps(25)
    gen = torch.Generator().manual_seed(0)
    checked = 0
    for i, t in enumerate(sched.timesteps):
        sigma = sched.sigmas[i]
        x = torch.randn(2, 3, 4, 4, 4, generator=gen) * float(sigma)  # noisy latents at this σ, [B, F, C, h, w]
        F = torch.randn(2, 3, 4, 4, 4, generator=gen)
        scaled = sched.scale_model_input(x, t)
        torch.testing.assert_close(pre.c_in(sigma.expand(2)).reshape(2, 1, 1, 1, 1) * x, scaled, rtol=1e-6, atol=1e-6)
        torch.testing.assert_close(pre.c_noise(sigma.double()).float(), t.float(), rtol=1e-6, atol=1e-6)
        out = sched.step(F, t, x)
        mine = pre.denoised(F, x, sigma.expand(2))
        torch.testing.assert_close(mine, out.pred_original_sample, rtol=1e-5, atol=1e-5)
        checked += 1
    assert checked == 25


def test_target_inverts_the_denoiser_and_weights_are_unit_in_F_space():
    pre = Preconditioning()
    sigma = torch.tensor([0.01, 0.5, 1.0, 3.0, 80.0], dtype=torch.float64)
    x0 = torch.randn(5, 2, 4, 3, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    n = torch.randn(5, 2, 4, 3, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    noisy = x0 + sigma.reshape(5, 1, 1, 1, 1) * n
    F = pre.target(x0, noisy, sigma)
    torch.testing.assert_close(pre.denoised(F, noisy, sigma), x0)
    # v-prediction (σ_data = 1): the target is the velocity v = (n − σ·x0)/√(σ² + 1) in SVD's sign convention
    v = (n - sigma.reshape(5, 1, 1, 1, 1) * x0) / (sigma**2 + 1).sqrt().reshape(5, 1, 1, 1, 1)
    torch.testing.assert_close(F, v)
    torch.testing.assert_close(pre.loss_weight(sigma) * pre.c_out(sigma) ** 2, torch.ones(5, dtype=torch.float64))
    # so the EDM loss equals the plain MSE in F's space
    G = F + 0.1 * torch.randn_like(F)
    loss = edm_loss(pre, G, noisy, x0, sigma)
    torch.testing.assert_close(loss, (G - F).pow(2).flatten(1).mean(1))
    assert loss.shape == (5,)


def test_only_svd_scheduler_settings_are_accepted():
    with pytest.raises(BadInput, match="v_prediction"):
        Preconditioning.from_scheduler_config({**SVD_SCHEDULER, "prediction_type": "epsilon"})
    with pytest.raises(BadInput, match="continuous"):
        Preconditioning.from_scheduler_config({**SVD_SCHEDULER, "timestep_type": "discrete"})


def test_noise_levels_and_dropout_rates():
    levels = NoiseLevels(p_mean=0.7, p_std=1.6)
    drop = ConditioningDropout(reference=0.1, embedding=0.05, latent=0.2, pose=0.3)
    n = 4000
    draws = [draw_sample(7, 3, i, (1,), levels, drop) for i in range(n)]
    logs = np.log([d.sigma for d in draws])
    se = 1.6 / math.sqrt(n)
    assert abs(logs.mean() - 0.7) < 4 * se
    assert abs(logs.std() - 1.6) < 0.05
    emb = np.mean([not d.keep_embedding for d in draws])
    lat = np.mean([not d.keep_latent for d in draws])
    pose = np.mean([not d.keep_pose for d in draws])
    both = np.mean([not d.keep_embedding and not d.keep_latent for d in draws])

    def near(x, p):  # within 4 binomial standard errors
        return abs(x - p) < 4 * math.sqrt(p * (1 - p) / n)

    assert near(emb, 1 - 0.9 * 0.95)
    assert near(lat, 1 - 0.9 * 0.8)
    assert near(pose, 0.3)
    assert near(both, 0.1 + 0.9 * 0.05 * 0.2)
    with pytest.raises(BadInput):
        ConditioningDropout(pose=1.5)


# ---------------------------------------------------------------------------------------------
# per-sample randomness
# ---------------------------------------------------------------------------------------------
def test_draws_depend_only_on_seed_step_and_global_index():
    levels, drop = NoiseLevels(), ConditioningDropout()
    a = draw_sample(0, 5, 3, (2, 4, 4), levels, drop)
    b = draw_sample(0, 5, 3, (2, 4, 4), levels, drop)
    assert a.sigma == b.sigma and torch.equal(a.noise, b.noise)
    for other in (
        draw_sample(1, 5, 3, (2, 4, 4), levels, drop),
        draw_sample(0, 6, 3, (2, 4, 4), levels, drop),
        draw_sample(0, 5, 4, (2, 4, 4), levels, drop),
    ):
        assert other.sigma != a.sigma and not torch.equal(other.noise, a.noise)
    assert len({sample_seed(0, s, i) for s in range(20) for i in range(20)}) == 400


def test_global_indices_cover_the_batch_whatever_the_split():
    """1 process × batch 4, 2 processes × batch 2, 1 process × batch 2 × 2 micro-batches: the same 4 samples."""
    one = global_indices(4, 1, 0, 0, 4)
    two = sorted(global_indices(4, 2, 0, 0, 2) + global_indices(4, 2, 1, 0, 2))
    accum = sorted(global_indices(4, 1, 0, 0, 2) + global_indices(4, 1, 0, 1, 2))
    assert one == two == accum == [0, 1, 2, 3]
    with pytest.raises(ValueError):
        global_indices(4, 2, 1, 1, 2)


def test_data_order_is_a_permutation_per_epoch():
    order = [data_index(3, g, 5) for g in range(15)]
    for e in range(3):
        assert sorted(order[5 * e : 5 * e + 5]) == [0, 1, 2, 3, 4]
    assert order[:5] != order[5:10] or order[5:10] != order[10:15]  # epochs reshuffle
    assert order == [data_index(3, g, 5) for g in range(15)]


# ---------------------------------------------------------------------------------------------
# dataset
# ---------------------------------------------------------------------------------------------
def test_dataset_round_trip_and_resume(tmp_path):
    clips = [random_clip(f"c{i}", views=2, frames=3, seed=i) for i in range(5)]
    with DatasetWriter(tmp_path / "ds", clips_per_shard=2) as w:
        for c in clips[:3]:
            w.add(c)
    # a second writer appends (a re-run of prepare skips what is listed)
    w = DatasetWriter(tmp_path / "ds", clips_per_shard=2)
    assert w.has("c0") and w.has("c2") and not w.has("c3")
    for c in clips[3:]:
        w.add(c)
    w.close()
    ds = TrainDataset(tmp_path / "ds")
    ds.verify()
    assert len(ds) == 5
    assert ds.sizes == {
        "views": 2,
        "frames": 3,
        "latent_channels": 4,
        "latent_height": 16,
        "latent_width": 16,
        "height": 32,
        "width": 32,
        "embedding_dim": 32,
    }
    assert len(ds.manifest["shards"]) == 3  # 2 + 1 (first writer), 2 (second)
    for i, c in enumerate(clips):
        got = ds[i]
        assert got.id == c.id and got.synthetic and got.licence == "CC0-1.0"
        for f in ("latents", "ref_latent", "ref_embedding", "semantic", "normal", "depth", "mask", "K", "world_to_cam"):
            np.testing.assert_array_equal(getattr(got, f), getattr(c, f))
        assert got.mask.dtype == np.bool_ and got.normal.dtype == np.float16
    h1 = ds.manifest_sha256
    assert len(h1) == 64


def test_dataset_refuses_old_versions_and_mixed_sizes(tmp_path):
    with DatasetWriter(tmp_path / "ds") as w:
        w.add(random_clip("a"))
        with pytest.raises(BadInput, match="sizes"):
            w.add(random_clip("b", frames=3))
        with pytest.raises(BadInput, match="already"):
            w.add(random_clip("a"))
    m = json.loads((tmp_path / "ds" / "manifest.json").read_text())
    m["version"] = FORMAT_VERSION - 1
    (tmp_path / "ds" / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(BadInput, match="older hvg") as e:
        TrainDataset(tmp_path / "ds")
    assert "hvg prepare" in e.value.hint
    with pytest.raises(BadInput, match="no manifest.json"):
        TrainDataset(tmp_path)
    with pytest.raises(BadInput, match="expected"):
        bad = random_clip("x")
        DatasetWriter(tmp_path / "ds2").add(
            type(bad)(**{**bad.__dict__, "ref_latent": np.zeros((4, 8, 8), np.float32)})
        )


# ---------------------------------------------------------------------------------------------
# encoding a clip (what `hvg prepare` stores)
# ---------------------------------------------------------------------------------------------
def test_encode_clip_stores_what_the_sampler_feeds_the_unet(tmp_path):
    """The stored reference embedding and latent are encode_reference's for the clip's own augmentation
    noise; target latents are the VAE posterior's mode × scaling_factor of each frame, view-major."""
    from hvg_cli.backends.diffusion.pipeline_hvg import HVGPipeline
    from hvg_cli.backends.diffusion.settings import DiffusionSettings
    from hvg_cli.backends.diffusion.weights import tiny_components
    from hvg_cli.core.types import BoneMaps, CameraGrid
    from hvg_cli.train.encode import encode_clip, reference_noise

    torch.set_num_threads(1)
    pipe = HVGPipeline(**tiny_components())
    V, T, H, W = 2, 2, 32, 32
    rc = random_clip("x", views=V, frames=T)
    rng = np.random.default_rng(5)
    frames = rng.integers(0, 256, (V, T, H, W, 3), dtype=np.uint8)
    photo = rng.integers(0, 256, (H, W, 3), dtype=np.uint8)
    maps = BoneMaps(rc.semantic, rc.normal, rc.depth, rc.mask, np.where(rc.mask, 1, -1).astype(np.int8))
    grid = CameraGrid(rc.K, rc.world_to_cam, W, H, "views")
    clip = encode_clip(pipe, "walk-0", photo, frames, maps, grid, fps=8, noise_aug_strength=0.05, seed=3)
    assert clip.latents.shape == (V, T, 4, 16, 16) and clip.ref_latent.shape == (4, 16, 16)
    ref = pipe.encode_reference(
        photo, reference_noise(3, "walk-0", H, W), DiffusionSettings(guidance_max=1.0, fps=8, noise_aug_strength=0.05)
    )
    np.testing.assert_array_equal(clip.ref_embedding, ref.embeddings[0, 0].numpy())
    np.testing.assert_array_equal(clip.ref_latent, ref.latents[0].numpy())
    # another clip id draws other augmentation noise
    assert not torch.equal(reference_noise(3, "walk-1", H, W), reference_noise(3, "walk-0", H, W))
    # frame (v=1, t=0) encoded alone
    x = torch.from_numpy(frames[1, 0].astype(np.float32) / 127.5 - 1.0).permute(2, 0, 1)[None]
    with torch.no_grad():
        z = pipe.vae.encode(x).latent_dist.mode()[0] * pipe.vae.config.scaling_factor
    torch.testing.assert_close(torch.from_numpy(clip.latents[1, 0]), z, rtol=1e-5, atol=1e-5)
    # it survives the dataset round trip
    with DatasetWriter(tmp_path / "ds") as w:
        w.add(clip)
    back = TrainDataset(tmp_path / "ds")[0]
    np.testing.assert_array_equal(back.latents, clip.latents)
    assert back.fps == 8 and back.noise_aug_strength == 0.05


def test_batches_lay_views_and_frames_view_major():
    """Sample b's frame (v, t) sits at UNet frame v·T + t, and its pose input at row b·V·T + v·T + t, as in
    the sampler; the noisy latent is x0 + σ·n with the sample's own draws; dropped conditions are zeros."""
    from hvg_cli.backends.diffusion.pose_encoder import conditioning_torch
    from hvg_cli.train.loop import _make_batch

    V, T = 2, 3
    clips = [random_clip(f"c{i}", views=V, frames=T, seed=i) for i in range(2)]
    drop = ConditioningDropout(reference=0.0, embedding=0.0, latent=1.0, pose=0.0)
    draws = [draw_sample(0, 0, i, (V * T, 4, 16, 16), NoiseLevels(), drop) for i in range(2)]
    pre = Preconditioning()
    inputs, noisy, x0, sigma = _make_batch(clips, draws, pre, "cpu")
    assert inputs["scaled"].shape == (2, V * T, 4, 16, 16) and inputs["pose_cond"].shape == (2 * V * T, 14, 32, 32)
    b, v, t = 1, 1, 2
    c = clips[b]
    np.testing.assert_array_equal(x0[b, v * T + t].numpy(), c.latents[v, t])
    torch.testing.assert_close(noisy[b], x0[b] + draws[b].sigma * draws[b].noise)
    torch.testing.assert_close(inputs["scaled"][b], noisy[b] / math.sqrt(draws[b].sigma ** 2 + 1))
    one = conditioning_torch(
        c.semantic[v, t][None],
        c.normal[v, t][None],
        c.depth[v, t][None],
        c.mask[v, t][None],
        c.K[v, t][None],
        c.world_to_cam[v, t][None],
    )[0]
    torch.testing.assert_close(inputs["pose_cond"][b * V * T + v * T + t], one)
    assert float(inputs["ref_latent"].abs().max()) == 0.0  # latent dropout 1.0
    np.testing.assert_array_equal(inputs["embedding"][b, 0].numpy(), c.ref_embedding)
    torch.testing.assert_close(inputs["time_ids"][b], torch.tensor([6.0, 127.0, 0.02]))
    torch.testing.assert_close(inputs["c_noise"], 0.25 * sigma.log())


# ---------------------------------------------------------------------------------------------
# the video camera of a monocular clip
# ---------------------------------------------------------------------------------------------
def _moving_body(T: int = 24, N: int = 14, seed: int = 0) -> np.ndarray:
    """[T, N, 3] a body-sized point cloud walking and turning, metres."""
    rng = np.random.default_rng(seed)
    rest = rng.uniform([-0.25, 0.0, -0.15], [0.25, 1.7, 0.15], (N, 3))
    out = np.zeros((T, N, 3))
    for t in range(T):
        a = 0.8 * t / T
        R = np.array([[np.cos(a), 0, np.sin(a)], [0, 1, 0], [-np.sin(a), 0, np.cos(a)]])
        out[t] = rest @ R.T + [0.6 * t / T - 0.3, 0.0, 0.4 * t / T]
    return out


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_camera_solve_recovers_a_known_camera(seed):
    """A random camera (f 500-1500 px, 1280×720, 2.5-5 m away) sees a moving body; 0.7 px landmark noise,
    10 % gross outliers (60 px) and, for seed 0, 10 % unconfident points: focal within 4 %, centre within
    15 cm, the clean landmarks reproject within 1 px."""
    from hvg_cli.cameras.generators import look_at
    from hvg_cli.train.camera_solve import max_error_px, project, solve_camera

    W, H = 1280, 720
    rng = np.random.default_rng(seed)
    f = rng.uniform(500, 1500)
    pos = np.array([rng.uniform(-2, 2), rng.uniform(0.5, 2), rng.uniform(2.5, 5)])
    K = np.array([[f, 0, W / 2], [0, f, H / 2], [0, 0, 1]])
    E = look_at(pos[None], np.array([0.0, 0.9, 0.2]))[0]
    pts = _moving_body(seed=seed)
    clean = project(K, E, pts)  # [T, N, 2]
    pix = clean + rng.normal(0, 0.7, clean.shape)
    outlier = rng.uniform(size=clean.shape[:2]) < 0.1
    pix[outlier] += rng.choice([-60.0, 60.0], size=(int(outlier.sum()), 2))
    weights = np.ones(clean.shape[:2])
    if seed == 0:
        weights = np.where(rng.uniform(size=clean.shape[:2]) < 0.1, 0.2, rng.uniform(0.6, 1.0, clean.shape[:2]))
    sol = solve_camera(pts, pix, weights, W, H)
    assert abs(sol.camera.K[0, 0] / f - 1) < 0.04, (sol.camera.K[0, 0], f)
    assert np.linalg.norm(sol.camera.position - pos) < 0.15
    got = project(sol.camera.K, sol.camera.world_to_cam, pts)
    good = ~outlier & (weights >= 0.5)
    assert np.abs(got - clean)[good].max() < 1.0
    assert sol.frame_error_px.shape == (24,)
    assert sol.median_error_px < 1.5 < sol.mean_error_px  # the outliers move the mean, not the median
    assert 0.85 < sol.inliers <= 1.0
    assert max_error_px(8, 1280 / 512) == 10.0  # half a latent cell at 512 px, in 1280-px video pixels


def test_camera_solve_refuses_what_it_cannot_solve():
    from hvg_cli.train.camera_solve import solve_camera

    pts = _moving_body(T=2, N=5)
    with pytest.raises(BadInput, match="12 needed"):
        solve_camera(pts, np.zeros((2, 5, 2)), np.ones((2, 5)), 640, 480)
    flat = _moving_body(T=10)
    flat[..., 2] = 0.0
    flat[..., 0] = 0.1  # all points on one line-ish plane x = 0.1, z = 0: no depth to solve from
    with pytest.raises(BadInput, match="one plane"):
        solve_camera(flat, np.zeros((10, 14, 2)), np.ones((10, 14)), 640, 480)


def test_windows_and_their_references():
    from hvg_cli.train.windows import windows

    ws = windows(40, length=4, stride=10, frame_step=2, gap=5)
    assert [w.frames for w in ws] == [(0, 2, 4, 6), (10, 12, 14, 16), (20, 22, 24, 26), (30, 32, 34, 36)]
    # the first window has nothing 5 frames before it: its reference lies 5 after its last frame
    assert [w.reference for w in ws] == [11, 5, 15, 25]
    for w in ws:
        assert w.reference not in range(w.frames[0] - 4, w.frames[-1] + 5)
    # frames where the person was lost: windows over them are dropped, references skip them
    usable = [True] * 40
    usable[12] = False
    usable[25] = False
    ws = windows(40, length=4, stride=10, frame_step=2, gap=5, usable=usable)
    assert [w.frames[0] for w in ws] == [0, 20, 30]
    assert [w.reference for w in ws] == [11, 15, 24]
    assert windows(5, length=4, stride=1, frame_step=2) == []  # too short for one window
    with pytest.raises(BadInput):
        windows(10, length=0, stride=1)


def test_prepare_clips_skips_bad_and_finished_clips(tmp_path):
    """3 sources, one without a person: 2 written, 1 skipped with its reason; a re-run loads nothing again."""
    from hvg_cli.backends.diffusion.pipeline_hvg import HVGPipeline
    from hvg_cli.backends.diffusion.weights import tiny_components
    from hvg_cli.core.errors import NoPerson
    from hvg_cli.core.progress import SilentReporter
    from hvg_cli.core.types import BoneMaps, CameraGrid
    from hvg_cli.train.prepare import ClipInputs, ClipSource, prepare_clips

    torch.set_num_threads(1)
    pipe = HVGPipeline(**tiny_components())
    loads = []

    def loader(i):
        def load():
            loads.append(i)
            if i == 1:
                raise NoPerson("no person in frames 10-20 of dance.mp4")
            rc = random_clip(f"s{i}", seed=i)
            rng = np.random.default_rng(i)
            return ClipInputs(
                photo=rng.integers(0, 256, (32, 32, 3), dtype=np.uint8),
                frames=rng.integers(0, 256, (1, 2, 32, 32, 3), dtype=np.uint8),
                maps=BoneMaps(rc.semantic, rc.normal, rc.depth, rc.mask, np.where(rc.mask, 1, -1).astype(np.int8)),
                grid=CameraGrid(rc.K, rc.world_to_cam, 32, 32, "views"),
                fps=12,
                source="dance.mp4",
                licence="CC-BY-4.0",
                reference=f"frame {i}",
            )

        return load

    sources = [ClipSource(f"dance-{i}", loader(i)) for i in range(3)]
    notes = SilentReporter()
    s = prepare_clips(pipe, sources, tmp_path / "ds", total=3, progress=notes)
    assert (s.written, s.existing, [c for c, _ in s.skipped]) == (2, 0, ["dance-1"])
    assert "no person" in s.skipped[0][1] and notes.notes == [f"skipped clip dance-1: {s.skipped[0][1]}"]
    ds = TrainDataset(tmp_path / "ds")
    assert [c["id"] for c in ds.clips] == ["dance-0", "dance-2"]
    assert ds[1].licence == "CC-BY-4.0" and ds[1].fps == 12 and ds[1].reference == "frame 2"
    assert ds.manifest["vae_scaling_factor"] == pytest.approx(pipe.vae.config.scaling_factor)
    loads.clear()
    s2 = prepare_clips(pipe, sources, tmp_path / "ds", total=3)
    assert (s2.written, s2.existing, len(s2.skipped)) == (0, 2, 1) and loads == [1]  # only the bad one again


def test_reference_swap_takes_another_clip_of_the_same_subject(tmp_path):
    """reference_donors: same subject (photo), another source (motion) first, else the subject's other clips; the
    swap is a pure function of (seed, step, index), happens at its rate, and replaces only the reference."""
    import dataclasses

    from hvg_cli.train.loop import TrainSettings, _StepBatches, reference_donors
    from hvg_cli.train.randomness import swap_draws

    srcs = ["p1|dance", "p1|dance", "p1|idle", "p2|wave", "v.mp4", "v.mp4", "solo"]
    assert reference_donors(srcs) == [[2], [2], [0, 1], [], [5], [4], []]
    assert swap_draws(0, 3, 1) == swap_draws(0, 3, 1) != swap_draws(0, 3, 2)
    rate = np.mean([swap_draws(0, s, j)[0] < 0.3 for s in range(200) for j in range(4)])
    assert abs(rate - 0.3) < 0.05

    clips = [dataclasses.replace(random_clip(f"c{i}", seed=i), source=s) for i, s in enumerate(srcs[:3])]
    with DatasetWriter(tmp_path / "ds") as w:
        for c in clips:
            w.add(c)
    ds = TrainDataset(tmp_path / "ds")
    by_id = {c.id: c for c in clips}
    for p, expect_swaps in ((0.0, False), (1.0, True)):
        st = TrainSettings(weights="w", data="d", out="o", reference_swap=p, steps=4, batch_size=3)
        b = _StepBatches(ds, st, 3, 1, 0, 0, None, None, None, None)
        for s in range(4):
            for j in range(3):
                clip = ds[j]
                out = b._swap(clip, s, j)
                np.testing.assert_array_equal(out.latents, clip.latents)  # targets and bone maps stay
                donor_ids = [clips[k].id for k in reference_donors(srcs[:3])[j]]
                if expect_swaps:
                    assert any(np.array_equal(out.ref_latent, by_id[d].ref_latent) for d in donor_ids)
                    assert any(np.array_equal(out.ref_embedding, by_id[d].ref_embedding) for d in donor_ids)
                else:
                    assert out is clip
