"""View-temporal alignment: the pelvis lands on the image centre, the scale holds still, warps invert."""

from __future__ import annotations

import numpy as np
import pytest

from hvg_cli.align import (
    aligned_intrinsics,
    apply_to_points,
    compute_alignment,
    image_centre,
    invert,
    project_points,
    subject_box,
    subject_extent,
    unwarp_image,
    warp_frames,
    warp_image,
)
from hvg_cli.body.kinematics import pose_joints
from hvg_cli.body.skeleton import DEFAULT_PELVIS_HEIGHT, JOINT_INDEX, default_skeleton
from hvg_cli.cameras.generators import orbit
from hvg_cli.cameras.schedule import camera_grid


def moving_motion(T: int = 24) -> tuple[np.ndarray, np.ndarray]:
    """A walk-like synthetic motion: the pelvis travels 1.2 m sideways and 0.6 m forward, bobs, turns;
    arms and legs swing. Returns poses [T, 24, 3] axis-angle and trans [T, 3] metres."""
    t = np.linspace(0.0, 1.0, T)
    poses = np.zeros((T, 24, 3))
    swing = 0.6 * np.sin(2 * np.pi * 2 * t)  # [T] radians
    poses[:, 0, 1] = 0.8 * t  # root turns about y
    poses[:, JOINT_INDEX["left_hip"], 0] = swing
    poses[:, JOINT_INDEX["right_hip"], 0] = -swing
    poses[:, JOINT_INDEX["left_knee"], 0] = 0.5 * np.maximum(swing, 0)
    poses[:, JOINT_INDEX["left_shoulder"], 2] = -1.2 + 0.4 * swing  # arms down-ish, swinging
    poses[:, JOINT_INDEX["right_shoulder"], 2] = 1.2 + 0.4 * swing
    trans = np.stack([-0.6 + 1.2 * t, DEFAULT_PELVIS_HEIGHT + 0.05 * np.sin(2 * np.pi * 4 * t), 0.6 * t], -1)
    return poses, trans


def project_job(grid, joints: np.ndarray) -> np.ndarray:
    """joints [T, 24, 3] seen by every camera of the grid -> [V, T, 24, 2] px."""
    V, T = grid.shape
    pts = np.broadcast_to(joints[None], (V, T, 24, 3))
    return project_points(pts, grid.K, grid.world_to_cam)


@pytest.mark.parametrize("mode", ["views", "moving"])
def test_pelvis_on_centre_for_every_view_and_frame(mode: str) -> None:
    poses, trans = moving_motion(24)
    skel = default_skeleton()
    joints = pose_joints(poses, skel.rest_joints, skel.parents, trans)  # [T, 24, 3]
    grid = camera_grid(
        orbit(views=8, degrees=360, elevation=15, radius=3.0, fov=45, width=160, height=128), 24, mode=mode
    )
    px = project_job(grid, joints)  # [V, T, 24, 2]
    # the subject moves off-centre in the raw views (otherwise the test proves nothing)
    centre = image_centre(160, 128)
    assert np.abs(px[..., 0, :] - centre).max() > 15.0

    al = compute_alignment(px[..., 0, :], subject_box(px), 160, 128, fill=0.75)
    K2 = aligned_intrinsics(grid.K, al)
    px2 = project_job(type(grid)(K2, grid.world_to_cam, 160, 128, grid.mode), joints)  # [V, T, 24, 2]
    err = np.linalg.norm(px2[..., 0, :] - centre, axis=-1)  # [V, T]
    assert err.max() < 1.0
    # the render with S @ K equals the similarity applied to the original projection
    np.testing.assert_allclose(px2, apply_to_points(px, al.scale, al.offset), atol=1e-6)
    # one scale per view: constant over time; the median box fills 75% of the height
    assert np.all(np.ptp(al.scale, axis=1) == 0.0)
    box2 = subject_box(px2)  # [V, T]
    np.testing.assert_allclose(np.median(box2, axis=1), 0.75 * 128, rtol=1e-6)


def test_smoothed_scale_does_not_pump() -> None:
    T = 60
    rng = np.random.default_rng(0)
    pelvis = rng.uniform(40, 80, (1, T, 2))
    box = 60.0 * (1 + 0.3 * np.linspace(0, 1, T))[None] * (1 + 0.1 * rng.standard_normal((1, T)))  # a dolly + jitter
    raw = compute_alignment(pelvis, box, 128, 128, smooth="none")
    smooth = compute_alignment(pelvis, box, 128, 128, smooth=4.0)
    jump_raw = np.abs(np.diff(np.log(raw.scale), axis=1)).max()
    jump_smooth = np.abs(np.diff(np.log(smooth.scale), axis=1)).max()
    assert jump_smooth < 0.25 * jump_raw
    # the smoothed scale still follows the dolly: the box shrinks by ~1.3x over the clip
    ratio = smooth.scale[0, :10].mean() / smooth.scale[0, -10:].mean()
    assert 1.15 < ratio < 1.45
    # pelvis stays centred whatever the scale
    p2 = smooth.scale[..., None] * pelvis + smooth.offset
    np.testing.assert_allclose(p2, np.broadcast_to(image_centre(128, 128), p2.shape), atol=1e-9)


def _smooth_image(h: int, w: int) -> np.ndarray:
    y, x = np.mgrid[0:h, 0:w] / np.array([h, w])[:, None, None]
    img = np.stack([np.sin(6 * x) * np.cos(4 * y), x * y, np.cos(5 * (x + y))], -1)  # [h, w, 3] in [-1, 1]
    return ((img + 1) * 127.5).astype(np.uint8)


@pytest.mark.parametrize("scale", [1.6, 0.7])
def test_warp_then_unwarp_returns_the_image(scale: float) -> None:
    img = _smooth_image(96, 80)
    offset = np.array([12.3, -7.9])
    aligned = warp_image(img, scale, offset, 128, 144)
    assert aligned.shape == (144, 128, 3) and aligned.dtype == np.uint8
    back = unwarp_image(aligned, scale, offset, 80, 96)
    # interior: pixels whose footprint maps inside the aligned image, away from the borders
    ys, xs = np.mgrid[0:96, 0:80] + 0.5
    ax, ay = scale * xs + offset[0], scale * ys + offset[1]
    inner = (ax > 6) & (ax < 122) & (ay > 6) & (ay < 138) & (xs > 4) & (xs < 76) & (ys > 4) & (ys < 92)
    assert inner.mean() > 0.4
    diff = np.abs(back.astype(float) - img.astype(float))[inner]
    assert diff.mean() < 2.0 and diff.max() < 12.0
    # a point feature lands where the similarity says: brightest pixel of a blob
    blob = np.zeros((96, 80), np.float32)
    blob[40, 30] = 1.0
    w = warp_image(blob, scale, offset, 128, 144, antialias=False)
    iy, ix = np.unravel_index(np.argmax(w), w.shape)
    expect = scale * np.array([30.5, 40.5]) + offset
    assert np.all(np.abs(np.array([ix + 0.5, iy + 0.5]) - expect) <= 1.0)


def test_invert_and_warp_frames() -> None:
    rng = np.random.default_rng(1)
    al = compute_alignment(rng.uniform(20, 40, (2, 3, 2)), rng.uniform(30, 50, (2, 3)), 64, 48, smooth="none")
    inv = invert(al, 50, 60)
    p = rng.uniform(0, 50, (2, 3, 5, 2))
    there = apply_to_points(p, al.scale, al.offset)
    np.testing.assert_allclose(apply_to_points(there, inv.scale, inv.offset), p, atol=1e-9)
    frames = np.stack([np.stack([_smooth_image(60, 50)] * 3)] * 2)  # [2, 3, 60, 50, 3]
    fw = warp_frames(frames, al)
    assert fw.shape == (2, 3, 48, 64, 3)
    np.testing.assert_array_equal(fw[1, 2], warp_image(frames[1, 2], al.scale[1, 2], al.offset[1, 2], 64, 48))
    with pytest.raises(ValueError):
        warp_frames(fw, al, inverse=True)


def test_align_job_centres_the_pelvis_of_a_moving_body() -> None:
    from hvg_cli import pipeline

    poses, trans = moving_motion(16)
    skel = default_skeleton()
    grid = camera_grid(
        orbit(views=4, degrees=360, elevation=10, radius=3.0, fov=40, width=96, height=128), 16, mode="views"
    )
    al, aligned = pipeline.align_job(poses, trans, skel, grid)
    assert aligned.shape == grid.shape and aligned.width == 96 and aligned.height == 128
    np.testing.assert_array_equal(aligned.world_to_cam, grid.world_to_cam)
    joints = pose_joints(poses, skel.rest_joints, skel.parents, trans)
    px = project_job(aligned, joints)
    assert np.linalg.norm(px[..., 0, :] - image_centre(96, 128), axis=-1).max() < 1.0
    assert np.all(np.ptp(al.scale, axis=1) == 0.0)
    # the whole body stays in the picture in every view and frame
    assert px[..., 1].min() > 0 and px[..., 1].max() < 128


def test_extent_cap_keeps_the_body_inside() -> None:
    poses, trans = moving_motion(16)
    skel = default_skeleton()
    joints = pose_joints(poses, skel.rest_joints, skel.parents, trans)
    grid = camera_grid(
        orbit(views=4, degrees=360, elevation=10, radius=3.0, fov=40, width=96, height=128), 16, mode="views"
    )
    px = project_job(grid, joints)  # [V, T, 24, 2]
    free = compute_alignment(px[..., 0, :], subject_box(px), 96, 128)
    capped = compute_alignment(px[..., 0, :], subject_box(px), 96, 128, extent_px=subject_extent(px))
    a_free = apply_to_points(px, free.scale, free.offset)
    a_cap = apply_to_points(px, capped.scale, capped.offset)
    assert a_free[..., 1].max() > 128  # the median scale alone lets the feet leave the frame here
    assert a_cap[..., 1].max() < 128 and a_cap[..., 1].min() > 0
    assert a_cap[..., 0].max() < 96 and a_cap[..., 0].min() > 0
    assert np.all(capped.scale <= free.scale) and np.all(np.ptp(capped.scale, axis=1) == 0.0)
    # smoothed scales are capped too
    sm = compute_alignment(px[..., 0, :], subject_box(px), 96, 128, smooth=2.0, extent_px=subject_extent(px))
    a_sm = apply_to_points(px, sm.scale, sm.offset)
    assert a_sm[..., 1].max() < 128


@pytest.mark.parametrize("shrink", [8.0, 33.75])
def test_big_shrink_box_prefilter_matches_the_plain_gaussian(data_dir, shrink: float) -> None:
    """A video frame shrunk to a training clip (1080 px -> 32 px is ~34x): the box-then-gaussian prefilter
    gives the plain gaussian's result (its twin) to within a grey level or two."""
    from hvg_cli.align.similarity import _warp
    from hvg_cli.io.image import read_image

    img = read_image(data_dir / "photo_woman_street.jpg")  # [H, W, 3] uint8, a real photo's detail
    out_w, out_h = int(img.shape[1] / shrink) - 2, int(img.shape[0] / shrink) - 2
    b = np.array([0.7 * shrink, 1.3 * shrink])  # sub-pixel offsets, samples well inside the photo
    fast = _warp(img, shrink, b, out_w, out_h, 0.0, antialias=True).astype(float)
    plain = _warp(img, shrink, b, out_w, out_h, 0.0, antialias=True, prefilter=False).astype(float)
    assert fast.shape == plain.shape == (out_h, out_w, 3)
    diff = np.abs(fast - plain)
    assert diff.mean() < 1.0 and np.percentile(diff, 99) < 4.0, (diff.mean(), np.percentile(diff, 99))
    # and the blur is real: without anti-aliasing the same shrink is far from both
    raw = _warp(img, shrink, b, out_w, out_h, 0.0, antialias=False).astype(float)
    assert np.abs(raw - plain).mean() > 2 * diff.mean()
