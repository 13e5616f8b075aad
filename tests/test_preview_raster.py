"""The preview renderer's compiled kernels (hvg_cli/backends/preview/kernels.py) against their plain-PyTorch twins.

- z-buffer: face ids equal to the torch rasteriser's, barycentrics and depth close (float64);
- textured, supersampled render: colour, coverage and depth close to `render_textured`;
- skinning straight into camera space: close to `skin.pose_vertices` followed by world -> camera;
- bilinear sampling: close to torch's grid_sample (border padding);
- 8-bit compositing: equal to the torch expressions of the old renderer;
- the whole preview render: the fast engine against the legacy (torch) engine on the synthetic person, and
  the same frames whatever the number of worker threads.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from test_preview import synthetic_subject


def _scene(seed: int, B: int = 2, N: int = 40, F: int = 36, W: int = 48, H: int = 40):
    """Random triangles (overlapping, in front of the camera, some crossing the image border), uv and texture."""
    g = torch.Generator().manual_seed(seed)
    v = torch.rand(B, N, 3, generator=g, dtype=torch.float64) * torch.tensor([2.4, 2.4, 1.0], dtype=torch.float64)
    v = v - torch.tensor([1.2, 1.2, -1.5], dtype=torch.float64)  # x, y in [-1.2, 1.2], z in [1.5, 2.5]
    faces = torch.randint(0, N, (F, 3), generator=g)
    K = torch.tensor([[36.0, 0, W / 2], [0, 36, H / 2], [0, 0, 1]], dtype=torch.float64).expand(B, 3, 3).clone()
    K[1, 0, 2] += 3.3  # the second camera looks a little elsewhere
    uv = torch.rand(N, 2, generator=g, dtype=torch.float64) * torch.tensor([20.0, 14.0], dtype=torch.float64)
    tex = torch.rand(14, 20, 3, generator=g)  # [Ht, Wt, C] float32
    return v, faces, K, uv, tex, W, H


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_rasterise_fast_matches_the_torch_twin(seed):
    from hvg_cli.backends.preview.raster import rasterise, rasterise_fast, rasterise_reference

    v, faces, K, _, _, W, H = _scene(seed)
    fast = rasterise_fast(v, faces, K, W, H)
    twin = rasterise(v, faces, K, W, H)
    assert (fast.face >= 0).sum() > 500 and (fast.face < 0).sum() > 100  # covered and empty pixels both
    assert len(torch.unique(fast.face)) > 10  # many faces win somewhere: the depth test is exercised
    torch.testing.assert_close(fast.face, twin.face, rtol=0, atol=0)
    torch.testing.assert_close(fast.dense_bary(), twin.dense_bary())
    torch.testing.assert_close(fast.dense_depth(), twin.dense_depth())
    if seed == 0:  # and the loop-over-pixels reference, for one scene (slow)
        torch.testing.assert_close(fast.face, rasterise_reference(v, faces, K, W, H).face, rtol=0, atol=0)


def test_rasterise_fast_depth_test_and_ties():
    """A near square hides a far one; two coplanar copies of a triangle: the lower face index wins."""
    from hvg_cli.backends.preview.raster import rasterise_fast

    quad = torch.tensor([[-1, -1, 0], [1, -1, 0], [1, 1, 0], [-1, 1, 0]], dtype=torch.float64)
    near = quad * torch.tensor([0.5, 0.5, 1]) + torch.tensor([0, 0, 2.0])
    far = quad * torch.tensor([3.0, 3.0, 1]) + torch.tensor([0, 0, 4.0])
    verts = torch.cat([far, near])[None]
    faces = torch.tensor([[4, 5, 6], [4, 6, 7], [0, 1, 2], [0, 2, 3], [4, 5, 6]])  # face 4 repeats face 0
    K = torch.tensor([[[40.0, 0, 32], [0, 40, 32], [0, 0, 1]]], dtype=torch.float64)
    fr = rasterise_fast(verts, faces, K, 64, 64)
    assert fr.face[0, 32, 32] in (0, 1) and fr.face[0, 5, 32] in (2, 3)
    assert not (fr.face == 4).any()  # the copy of face 0 never wins a tie
    d = fr.dense_depth()
    assert abs(d[0, 32, 32].item() - 2.0) < 1e-12 and abs(d[0, 5, 32].item() - 4.0) < 1e-12


@pytest.mark.parametrize("seed,ssaa", [(0, 2), (1, 2), (2, 1), (3, 3)])
def test_render_textured_fast_matches_the_torch_twin(seed, ssaa):
    from hvg_cli.backends.preview.raster import render_textured, render_textured_fast

    v, faces, K, uv, tex, W, H = _scene(seed)
    col, cov, depth = render_textured_fast(v, faces, uv, tex, K, W, H, ssaa=ssaa)
    # the twin samples a float64 copy of the texture (the fast path weighs texels in float64 too)
    col2, cov2, depth2 = render_textured(v, faces, uv, tex.double(), K, W, H, ssaa=ssaa)
    assert col.shape == (2, H, W, 3) and col.dtype == torch.float32 and depth.dtype == torch.float64
    assert (cov > 0).sum() > 500 and (ssaa == 1 or ((cov > 0) & (cov < 1)).sum() > 20)  # anti-aliased edges too
    torch.testing.assert_close(cov, cov2.float(), rtol=0, atol=0)
    torch.testing.assert_close(col, col2.float())
    torch.testing.assert_close(depth, depth2)


def test_skin_to_camera_matches_pose_vertices():
    from hvg_cli.backends.preview.raster import skin_to_camera
    from hvg_cli.backends.preview.skin import SkinnedMesh, joint_transforms, pose_vertices
    from hvg_cli.body.skeleton import DEFAULT_PELVIS_HEIGHT, default_skeleton
    from hvg_cli.cameras.generators import orbit

    rng = np.random.default_rng(0)
    N = 500
    idx = np.stack([rng.choice(24, 4, replace=False) for _ in range(N)])  # [N, 4] distinct joints
    w = rng.random((N, 4))
    w[:, 3] = 0.0  # a zero weight is skipped
    w /= w.sum(1, keepdims=True)
    mesh = SkinnedMesh(
        verts=rng.normal(size=(N, 3)) * 0.3 + [0, 1, 0],
        faces=np.zeros((0, 3), np.int64),
        uv=np.zeros((N, 2)),
        joint_index=idx,
        joint_weight=w,
        labels=np.zeros(N, np.int64),
        back=np.zeros(N, bool),
    )
    sk = default_skeleton()
    poses = rng.normal(size=(3, 24, 3)) * 0.4  # [T, 24, 3] axis-angle
    trans = np.array([[0.0, DEFAULT_PELVIS_HEIGHT, 0.0]]) + rng.normal(size=(3, 3)) * 0.1
    rest = rng.normal(size=(24, 3)) * 0.2
    A = joint_transforms(poses, trans, sk, rest, trans[0])  # [3, 24, 3, 4]
    w2c = orbit(views=3, degrees=240, elevation=10, radius=3.0, fov=45, width=64, height=64).world_to_cam  # [3, 4, 4]
    fast = torch.from_numpy(skin_to_camera(mesh, A, w2c))
    world = pose_vertices(mesh, A)  # [3, N, 3]
    w2c_t = torch.from_numpy(w2c)
    twin = torch.einsum("bij,bnj->bni", w2c_t[:, :3, :3], world) + w2c_t[:, None, :3, 3]
    assert (world - torch.from_numpy(mesh.verts)).abs().max() > 0.1  # the pose really moves the vertices
    torch.testing.assert_close(fast, twin)


def test_sample_bilinear_matches_grid_sample():
    from hvg_cli.backends.preview.raster import sample_bilinear, sample_bilinear_torch

    g = torch.Generator().manual_seed(0)
    tex = torch.rand(9, 13, 4, generator=g)
    u = torch.rand(7, 50, generator=g, dtype=torch.float64) * 17 - 2  # inside and beyond every border
    v = torch.rand(7, 50, generator=g, dtype=torch.float64) * 13 - 2
    fast = sample_bilinear(tex, u, v)
    assert fast.shape == (7, 50, 4) and fast.dtype == torch.float32
    torch.testing.assert_close(fast, sample_bilinear_torch(tex.double(), u, v).float())
    # float32 coordinates (the background's rays) take the same path
    torch.testing.assert_close(
        sample_bilinear(tex, u.float(), v.float()),
        sample_bilinear_torch(tex, u.float(), v.float()),
        atol=1e-5,
        rtol=1e-5,
    )


def test_compositing_kernels_equal_the_torch_expressions():
    from hvg_cli.backends.preview.kernels import composite_over, straight_alpha

    g = torch.Generator().manual_seed(0)
    cov = torch.rand(2, 6, 7, generator=g)
    cov[0, 0, :3] = torch.tensor([0.0, 1.0, 1e-8])
    colour = torch.rand(2, 6, 7, 3, generator=g) * cov[..., None]  # premultiplied
    back = torch.rand(2, 6, 7, 3, generator=g)
    out = np.zeros((2, 6, 7, 4), np.uint8)
    composite_over(colour.numpy(), cov.numpy(), back.numpy(), out)
    rgb = colour + (1 - cov[..., None]) * back  # the old renderer's compositing
    want = (torch.cat([rgb, torch.ones_like(cov)[..., None]], -1).clamp(0, 1) * 255 + 0.5).to(torch.uint8).numpy()
    np.testing.assert_array_equal(out, want)
    straight_alpha(colour.numpy(), cov.numpy(), out)
    rgba = torch.cat([colour / cov.clamp_min(1e-6)[..., None], cov[..., None]], -1)
    np.testing.assert_array_equal(out, (rgba.clamp(0, 1) * 255 + 0.5).to(torch.uint8).numpy())
    # a solid colour broadcast over the frame (zero strides) is a valid background
    solid = np.broadcast_to(np.float32([1.0, 0.0, 0.5]), (2, 6, 7, 3))
    composite_over(colour.numpy(), cov.numpy(), solid, out)
    assert tuple(out[0, 0, 0]) == (255, 0, 128, 255)


@pytest.fixture(scope="module")
def synth():
    from hvg_cli.backends.preview.render import build_preview_model

    s = synthetic_subject()
    return s, build_preview_model(s)


def _orbit_grid(W=96, H=120, views=3, frames=2):
    from hvg_cli.cameras.generators import orbit
    from hvg_cli.cameras.schedule import camera_grid

    path = orbit(views=views, degrees=270, elevation=10, radius=3.0, fov=45, width=W, height=H)
    return camera_grid(path, frames, mode="views")


@pytest.mark.parametrize("background", ["photo", "transparent", (20, 200, 90)])
def test_render_preview_fast_engine_matches_legacy(synth, background):
    from hvg_cli.backends.preview.render import render_preview
    from hvg_cli.body.skeleton import JOINT_INDEX

    s, model = synth
    grid = _orbit_grid()
    poses = np.repeat(s.photo_pose[None], 2, 0)
    poses[1, JOINT_INDEX["right_shoulder"]] = [0.0, 0.0, -0.6]  # the second frame moves an arm
    trans = np.repeat(np.asarray(s.photo_trans)[None], 2, 0)
    fast = render_preview(s, poses, trans, grid, background=background, model=model, engine="fast")
    old = render_preview(s, poses, trans, grid, background=background, model=model, engine="legacy")
    assert fast.shape == old.shape == (3, 2, 120, 96, 4) and fast.dtype == np.uint8
    assert (old[..., 3] > 0).sum() > 3000  # the person is there in every view
    diff = np.abs(fast.astype(np.int16) - old.astype(np.int16))
    # the same image up to float rounding (skinning sums in another order): at most one 8-bit step
    assert diff.max() <= 1, diff.max()
    assert (diff > 0).mean() < 1e-3


def test_render_preview_fast_is_the_same_on_any_number_of_threads(synth, monkeypatch):
    from hvg_cli.backends.preview.render import render_preview

    s, model = synth
    grid = _orbit_grid(64, 80, views=4, frames=3)
    poses = np.repeat(s.photo_pose[None], 3, 0)
    trans = np.repeat(np.asarray(s.photo_trans)[None], 3, 0) + np.array([[0.0, 0, 0], [0.05, 0, 0], [0.1, 0, 0]])
    monkeypatch.setenv("HVG_PREVIEW_WORKERS", "1")
    one = render_preview(s, poses, trans, grid, model=model)
    monkeypatch.setenv("HVG_PREVIEW_WORKERS", "3")
    three = render_preview(s, poses, trans, grid, model=model)
    assert not np.array_equal(one[0, 0], one[0, 2])  # the frames differ (the person moves)
    np.testing.assert_array_equal(one, three)


def test_fast_path_refuses_bad_indices_and_skips_non_finite_vertices():
    from hvg_cli.backends.preview.raster import rasterise, rasterise_fast, render_textured_fast

    v, faces, K, uv, tex, W, H = _scene(0)
    with pytest.raises(ValueError):
        rasterise_fast(v, torch.cat([faces, torch.tensor([[0, 1, 40]])]), K, W, H)  # vertex 40 of 40
    with pytest.raises(ValueError):
        render_textured_fast(v, faces, uv[:-1], tex, K, W, H)
    bad = v.clone()
    bad[0, faces[0, 0]] = float("nan")  # the faces on this vertex are skipped, the rest drawn as before
    fast = rasterise_fast(bad, faces, K, W, H)
    keep = ~(faces == faces[0, 0]).any(1)
    twin = rasterise(v, faces[keep], K, W, H)
    ids = torch.nonzero(keep)[:, 0]
    torch.testing.assert_close(fast.face[0], torch.where(twin.face[0] >= 0, ids[twin.face[0].clamp_min(0)], -1))


def test_render_preview_fast_takes_models_in_other_dtypes(synth):
    """A model saved with a float64 texture or int32 faces renders the same (converted once, not per frame)."""
    import dataclasses

    from hvg_cli.backends.preview.render import _kernel_ready, render_preview

    s, model = synth
    assert _kernel_ready(model) is model  # nothing to convert: the model itself
    other = dataclasses.replace(
        model,
        texture=model.texture.astype(np.float64),
        mesh=dataclasses.replace(model.mesh, faces=model.mesh.faces.astype(np.int32)),
    )
    grid = _orbit_grid(48, 64, views=2, frames=1)
    pose, trans = s.photo_pose[None], np.asarray(s.photo_trans)[None]
    np.testing.assert_array_equal(
        render_preview(s, pose, trans, grid, model=other), render_preview(s, pose, trans, grid, model=model)
    )
