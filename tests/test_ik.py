"""Analytic IK from MediaPipe landmarks: exact on its own forward model, continuous, and a metric root path."""

from __future__ import annotations

import numpy as np
import pytest

from hvg_cli.body.ik import (
    estimate_skeleton,
    fit_landmarks,
    joints_from_landmarks,
    landmarks_from_pose,
    root_trajectory,
)
from hvg_cli.body.kinematics import axis_angle_to_matrix, forward_kinematics, pose_joints
from hvg_cli.body.skeleton import JOINT_INDEX as J
from hvg_cli.body.skeleton import default_skeleton, skeleton_from_lengths
from hvg_cli.core.errors import BadInput
from hvg_cli.core.types import SMPL_PARENTS, Skeleton

LIMB_BONES = (
    "left_knee",
    "right_knee",
    "left_ankle",
    "right_ankle",
    "left_elbow",
    "right_elbow",
    "left_wrist",
    "right_wrist",
)
NECK_BONE = J["neck"] - 1  # spine3 -> neck: the one bone the torso model does not reproduce exactly


def _skeleton(rng: np.random.Generator, scale: float = 1.05) -> Skeleton:
    """Default directions, torso scaled uniformly, thighs/shins/arms with their own random lengths."""
    lengths = default_skeleton().bone_lengths * scale
    for name in LIMB_BONES:
        lengths[J[name]] *= rng.uniform(0.85, 1.15)
    return skeleton_from_lengths(lengths)


def _random_poses(rng: np.random.Generator, T: int, rigid_torso: bool = True) -> np.ndarray:
    """Plausible poses [T, 24, 3]: any root orientation, moderate limbs; spine/collars/hands/feet fixed when
    rigid_torso (the part of pose space that landmarks determine completely)."""
    poses = rng.normal(0.0, 0.35, (T, 24, 3))
    root_axis = rng.normal(size=(T, 3))
    poses[:, 0] = root_axis / np.linalg.norm(root_axis, axis=-1, keepdims=True) * rng.uniform(0, np.pi, (T, 1))
    for name in ("left_knee", "right_knee"):  # bend backwards about x, 0..120 deg, plus a little play
        poses[:, J[name]] = rng.normal(0.0, 0.05, (T, 3))
        poses[:, J[name], 0] = rng.uniform(0.0, 2.1, T)
    for name in ("left_elbow", "right_elbow"):
        poses[:, J[name], 1] = rng.uniform(0.0, 2.0, T) * (-1 if name.startswith("left") else 1)
    poses[:, [J["neck"], J["head"]]] *= 0.5
    fixed = ["left_foot", "right_foot", "left_hand", "right_hand"]
    if rigid_torso:
        fixed += ["spine1", "spine2", "spine3", "left_collar", "right_collar"]
    poses[:, [J[n] for n in fixed]] = 0.0
    return poses


def _global(poses: np.ndarray, skeleton: Skeleton) -> np.ndarray:
    """[T, 24, 3, 3] global joint rotations."""
    G, _ = forward_kinematics(axis_angle_to_matrix(poses), skeleton.offsets, skeleton.parents)
    return G


def test_ik_recovers_a_synthetic_pose() -> None:
    rng = np.random.default_rng(0)
    skel = _skeleton(rng)
    poses = _random_poses(rng, 40)
    world = landmarks_from_pose(poses, skel)  # [40, 33, 3]
    fit = fit_landmarks(world, skel)

    truth = pose_joints(poses, skel.rest_joints, skel.parents)  # [40, 24, 3]
    assert fit.poses.shape == (40, 24, 3) and fit.joints.shape == (40, 24, 3)
    assert np.abs(fit.joints - truth).max() < 1e-6
    # joints whose rotation two observed directions fix: the whole orientation matches
    G_fit, G_true = _global(fit.poses, skel), _global(poses, skel)
    exact = [
        "pelvis",
        "spine1",
        "spine2",
        "spine3",
        "left_ankle",
        "right_ankle",
        "left_foot",
        "right_foot",
        "left_wrist",
        "right_wrist",
        "left_hand",
        "right_hand",
        "head",
    ]
    for name in exact:
        assert np.abs(G_fit[:, J[name]] - G_true[:, J[name]]).max() < 1e-6, name
    # the observed SMPL joints are the true ones wherever the model is exact (all of them here)
    assert np.abs(joints_from_landmarks(world) - truth).max() < 1e-6
    assert fit.fit_error_deg < 1e-6


def test_rest_pose_fits_to_zero_rotations() -> None:
    skel = default_skeleton()
    fit = fit_landmarks(landmarks_from_pose(np.zeros((1, 24, 3)), skel), skel)
    assert np.abs(fit.poses).max() < 1e-9
    assert np.abs(fit.joints[0] - skel.rest_joints).max() < 1e-9


def test_fk_of_poses_is_the_fitted_joints() -> None:
    rng = np.random.default_rng(1)
    skel = _skeleton(rng)
    world = landmarks_from_pose(_random_poses(rng, 20, rigid_torso=False), skel) + rng.normal(0, 0.02, (20, 33, 3))
    fit = fit_landmarks(world, skel)
    np.testing.assert_allclose(pose_joints(fit.poses, skel.rest_joints, skel.parents), fit.joints, rtol=0, atol=1e-12)
    np.testing.assert_allclose(fit.joints[:, 0], 0.0, atol=1e-12)


def test_bone_directions_match_the_observation() -> None:
    """On noisy landmarks with a bent spine, every bone but spine3->neck points exactly where observed."""
    rng = np.random.default_rng(2)
    skel = _skeleton(rng, scale=0.95)
    world = landmarks_from_pose(_random_poses(rng, 30, rigid_torso=False), skel) + rng.normal(0, 0.03, (30, 33, 3))
    fit = fit_landmarks(world, skel)

    observed = joints_from_landmarks(world)  # [30, 24, 3]
    parents = list(SMPL_PARENTS[1:])
    fitted_dir = fit.joints[:, 1:] - fit.joints[:, parents]  # [30, 23, 3]
    observed_dir = observed[:, 1:] - observed[:, parents]
    a, b = [d / np.linalg.norm(d, axis=-1, keepdims=True) for d in (fitted_dir, observed_dir)]
    angle = np.degrees(np.arctan2(np.linalg.norm(np.cross(a, b), axis=-1), np.sum(a * b, -1)))  # [30, 23]
    exact = [b for b in range(23) if b != NECK_BONE]
    assert angle[:, exact].max() < 1e-6
    np.testing.assert_allclose(fit.bone_error_deg, angle, atol=1e-6)
    # the neck bone does carry an error here (the spine is bent), and the mean reports it
    assert fit.bone_error_deg[:, NECK_BONE].max() > 0.5
    assert fit.fit_error_deg == pytest.approx(fit.bone_error_deg.mean())


def test_spin_past_180_degrees_stays_continuous() -> None:
    rng = np.random.default_rng(3)
    skel = default_skeleton()
    T = 135
    poses = np.repeat(_random_poses(rng, 1), T, axis=0)  # one body ...
    angle = np.radians(6.0) * np.arange(T)  # ... turning about y by 6 deg a frame: through 180, 360 (identity), 720
    poses[:, 0] = np.stack([np.zeros(T), angle, np.zeros(T)], -1)
    fit = fit_landmarks(landmarks_from_pose(poses, skel), skel)

    step = np.linalg.norm(np.diff(fit.poses, axis=0), axis=-1)  # [T-1, 24]
    assert step.max() < np.radians(7.0)
    # the root turns past pi without jumping back: its axis-angle grows steadily along y
    np.testing.assert_allclose(np.abs(fit.poses[:, 0, 1]), angle, atol=1e-6)
    G_fit, G_true = _global(fit.poses, skel), _global(poses, skel)
    assert np.abs(G_fit - G_true)[:, [0, J["spine3"], J["head"]]].max() < 1e-6


def test_estimate_skeleton_is_symmetric_and_recovers_lengths() -> None:
    rng = np.random.default_rng(4)
    skel = skeleton_from_lengths(default_skeleton().bone_lengths * 1.1)
    world = landmarks_from_pose(_random_poses(rng, 30), skel)
    est = estimate_skeleton(world)
    np.testing.assert_allclose(est.bone_lengths, skel.bone_lengths, atol=1e-9)

    # noisy, and the left leg badly seen in a third of the frames (garbage there, visibility 0)
    noisy = world + rng.normal(0, 0.01, world.shape)
    vis = np.ones((30, 33))
    noisy[:10, [25, 27]] += 0.4
    vis[:10, [25, 27]] = 0.0
    est = estimate_skeleton(noisy, vis)
    L = est.bone_lengths
    for name, i in J.items():
        if name.startswith("left_"):
            assert L[i] == pytest.approx(L[J["right_" + name[5:]]], abs=1e-12), name
    assert abs(L[J["left_knee"]] - skel.bone_lengths[J["left_knee"]]) < 0.02
    assert abs(L[J["left_ankle"]] - skel.bone_lengths[J["left_ankle"]]) < 0.02
    # directions are the default skeleton's
    d_est = est.offsets[1:] / np.linalg.norm(est.offsets[1:], axis=-1, keepdims=True)
    d_def = default_skeleton().offsets[1:] / np.linalg.norm(default_skeleton().offsets[1:], axis=-1, keepdims=True)
    np.testing.assert_allclose(d_est, d_def, atol=1e-12)


def _walk(noise_px: float, rng: np.random.Generator):
    """A person walking a curve away from a camera on +z; returns (image, world, truth root path)."""
    skel = default_skeleton()
    T = 48
    s = np.linspace(0, 1, T)
    poses = _random_poses(rng, T) * 0.3
    poses[:, 0] = np.stack([np.zeros(T), 0.6 * np.sin(2 * np.pi * s), np.zeros(T)], -1)  # facing about the camera
    world = landmarks_from_pose(poses, skel)  # [T, 33, 3] hip-centred
    trans = np.stack([0.6 * np.sin(np.pi * s), 0.05 * np.sin(6 * np.pi * s), -2.5 * s], -1)  # [T, 3]
    trans[:, 1] -= np.min(trans[:, 1:2] + world[:, 29:33, 1])  # the lowest foot of the clip on y = 0
    W, H, fov = 1080, 1920, 50.0
    f = 0.5 * H / np.tan(np.radians(fov) / 2)
    camera = np.array([0.3, 1.1, 4.0])  # on +z, looking at -z
    p = (world + trans[:, None]) - camera  # [T, 33, 3]
    cam = p * np.array([1.0, -1.0, -1.0])  # OpenCV axes
    image = f * cam[..., :2] / cam[..., 2:] + np.array([W / 2, H / 2])  # [T, 33, 2]
    image += rng.normal(0, noise_px, image.shape)
    truth = trans - np.array([trans[0, 0], 0.0, trans[0, 2]])
    return image, world, truth, (W, H, fov)


def test_root_trajectory_recovers_a_walk() -> None:
    rng = np.random.default_rng(5)
    image, world, truth, (W, H, fov) = _walk(0.0, rng)
    np.testing.assert_allclose(root_trajectory(image, world, W, H, fov), truth, atol=1e-6)
    image, world, truth, (W, H, fov) = _walk(1.5, rng)
    err = np.linalg.norm(root_trajectory(image, world, W, H, fov) - truth, axis=-1)
    assert err.max() < 0.05
    # a wrong field of view scales depth, so it must show
    err_fov = np.linalg.norm(root_trajectory(image, world, W, H, 70.0) - truth, axis=-1)
    assert err_fov.max() > 0.3


def test_bad_shapes_raise_bad_input() -> None:
    with pytest.raises(BadInput):
        fit_landmarks(np.zeros((5, 17, 3)), default_skeleton())
    bad = landmarks_from_pose(np.zeros((2, 24, 3)), default_skeleton())
    bad[1, 3, 0] = np.nan
    with pytest.raises(BadInput):
        joints_from_landmarks(bad)
    with pytest.raises(BadInput):
        root_trajectory(np.zeros((2, 33, 2)), bad[:1], 100, 100)
    coincident = landmarks_from_pose(np.zeros((3, 24, 3)), default_skeleton())
    coincident[2, 15] = coincident[2, 13]  # left wrist on the left elbow
    with pytest.raises(BadInput, match="frame"):
        fit_landmarks(coincident, default_skeleton())


def test_single_frame_fit_is_the_frame_of_a_clip() -> None:
    """The photo path (T = 1) fits a frame exactly as the clip does (up to the 2*pi unwrapping)."""
    rng = np.random.default_rng(6)
    skel = _skeleton(rng)
    world = landmarks_from_pose(_random_poses(rng, 5, rigid_torso=False), skel) + rng.normal(0, 0.01, (5, 33, 3))
    clip = fit_landmarks(world, skel)
    one = fit_landmarks(world[3:4], skel)
    assert one.poses.shape == (1, 24, 3)
    np.testing.assert_allclose(axis_angle_to_matrix(one.poses[0]), axis_angle_to_matrix(clip.poses[3]), atol=1e-9)
    np.testing.assert_allclose(one.joints[0], clip.joints[3], atol=1e-9)


def test_real_dance_landmarks_conventions() -> None:
    """MediaPipe's landmarks of 24 frames of dance_red_skirt.mp4 (saved in hvg axes by pose/): the dancer
    faces the camera, so the fitted pelvis looks along +z with the head above it; only spine3->neck misfits."""
    from pathlib import Path

    d = np.load(Path(__file__).parent / "data" / "ik_dance_landmarks.npz")
    world, image, vis = d["world"].astype(np.float64), d["image"].astype(np.float64), d["visibility"].astype(np.float64)
    skel = estimate_skeleton(world, vis)
    fit = fit_landmarks(world, skel, vis)
    G = _global(fit.poses, skel)
    forward, up = G[:, 0, :, 2], G[:, 0, :, 1]  # [T, 3] pelvis axes in the world
    assert np.median(forward[:, 2]) > 0.9 and forward[:, 2].min() > 0.5
    assert np.median(up[:, 1]) > 0.9
    head_above = fit.joints[:, J["head"], 1] - fit.joints[:, 0, 1]
    assert head_above.min() > 0.4
    assert fit.joints[:, J["left_shoulder"], 0].mean() > fit.joints[:, J["right_shoulder"], 0].mean()  # left = +x
    exact = [b for b in range(23) if b != NECK_BONE]
    assert fit.bone_error_deg[:, exact].max() < 1e-6
    assert 0.5 < fit.bone_error_deg[:, NECK_BONE].mean() < 15.0
    # a standing adult: legs and arms of human size, pelvis about a metre above the floor
    L = skel.bone_lengths
    assert 0.55 < L[J["left_knee"]] + L[J["left_ankle"]] < 1.0
    assert 0.35 < L[J["left_elbow"]] + L[J["left_wrist"]] < 0.7
    root = root_trajectory(image, world, int(d["width"]), int(d["height"]), 50.0)
    assert 0.7 < root[0, 1] < 1.2 and np.abs(root[:, [0, 2]]).max() < 1.0


def test_leg_along_the_foot_is_not_degenerate() -> None:
    """A leg kicked forward with the toes pointing along the thigh: the toe direction says nothing about the
    leg's twist, the fit must still be a valid rotation with exact joints."""
    skel = default_skeleton()
    poses = np.zeros((2, 24, 3))
    poses[:, J["left_hip"], 0] = -np.pi / 2  # thigh forward, horizontal
    poses[:, J["left_ankle"], 0] = [np.pi / 2, np.pi / 2 - 0.3]  # foot along the thigh (and nearly)
    fit = fit_landmarks(landmarks_from_pose(poses, skel), skel)
    np.testing.assert_allclose(fit.joints, pose_joints(poses, skel.rest_joints, skel.parents), atol=1e-9)
