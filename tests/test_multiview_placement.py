"""The body's placement in a calibrated capture (train.placement) and the transforms.json edge (cameras.capture):
exact recovery from clean projections, robustness to noise and a wrong landmark, and the axis conversion."""

from __future__ import annotations

import json

import numpy as np
import pytest

from hvg_cli.cameras.capture import CaptureCamera, cameras_from_transforms, read_transforms, to_transforms
from hvg_cli.cameras.generators import orbit
from hvg_cli.core.errors import BadInput
from hvg_cli.train.placement import project, solve_placement, triangulate, umeyama


def _rot(axis, deg):
    from scipy.spatial.transform import Rotation

    return Rotation.from_rotvec(np.radians(deg) * np.asarray(axis, float) / np.linalg.norm(axis)).as_matrix()


def _scene(seed=0, T=6, N=33):
    rng = np.random.default_rng(seed)
    body = rng.normal(size=(T, N, 3)) * [0.25, 0.5, 0.15] + [0.0, 0.9, 0.0]  # [T, N, 3] motion metres
    path = orbit(views=4, degrees=120, elevation=8, radius=3.0, fov=45, width=320, height=240)
    # a capture world in other units and orientation: 2.5 units per metre, z up, shifted
    s, R, t = 2.5, _rot([1, 0.3, 0], 90), np.array([1.0, -2.0, 0.5])
    # the capture's cameras see capture = s R body + t as the orbit camera sees body
    S = np.eye(4)
    S[:3, :3], S[:3, 3] = s * R, t
    E = path.world_to_cam @ np.linalg.inv(S)  # [V, 4, 4], top rows carry 1/s
    E[:, :3, :] *= s  # a rigid camera again (same projections)
    pix = np.stack([project(path.K[v], path.world_to_cam[v], body) for v in range(4)])  # [V, T, N, 2]
    return body, pix, path.K, E, (s, R, t), path


def test_clean_projections_give_the_placement_exactly():
    body, pix, K, E, (s, R, t), path = _scene()
    w = np.ones(pix.shape[:3])
    pl = solve_placement(body, pix, w, K, E)
    assert pl.scale == pytest.approx(s, rel=1e-6)
    np.testing.assert_allclose(pl.rotation, R, atol=1e-6)
    np.testing.assert_allclose(pl.translation, t, atol=1e-5)
    assert pl.camera_error_px.max() < 1e-4 and list(pl.camera_points) == [6 * 33] * 4
    # the cameras in the body's frame are the orbit's own cameras again
    np.testing.assert_allclose(pl.body_cameras(E), path.world_to_cam, atol=1e-6)


def test_noise_and_a_wrong_landmark_per_frame_move_the_placement_little():
    body, pix, K, E, (s, R, t), _ = _scene(seed=1)
    rng = np.random.default_rng(5)
    noisy = pix + rng.normal(scale=1.0, size=pix.shape)  # 1 px landmark noise
    noisy[1, :, 7] += 60.0  # camera 1 misplaces one landmark by 60 px on every frame
    w = np.ones(pix.shape[:3])
    w[2, :, :5] = 0.1  # unconfident: not used
    pl = solve_placement(body, noisy, w, K, E)
    assert abs(pl.scale / s - 1) < 0.01
    assert np.degrees(np.arccos(np.clip((np.trace(pl.rotation.T @ R) - 1) / 2, -1, 1))) < 0.5
    # camera 1 carries its wrong landmark (about 60 / 33 px on its mean); the others are near the noise
    assert pl.camera_error_px[[0, 2, 3]].max() < 2.0 and pl.camera_error_px[1] > 1.5
    assert pl.camera_points[2] == 6 * 33 - 6 * 5


def test_one_camera_cannot_place_the_body():
    body, pix, K, E, _, _ = _scene()
    w = np.zeros(pix.shape[:3])
    w[0] = 1.0
    with pytest.raises(BadInput, match="two or more cameras"):
        solve_placement(body, pix, w, K, E)


def test_triangulate_and_umeyama_are_exact_on_clean_data():
    body, pix, K, E, (s, R, t), _ = _scene(seed=2)
    X, ok = triangulate(pix.reshape(4, -1, 2), np.ones((4, pix.shape[1] * pix.shape[2])), K, E)
    assert ok.all()
    np.testing.assert_allclose(X, (s * body @ R.T + t).reshape(-1, 3), atol=1e-6)
    s2, R2, t2 = umeyama(body.reshape(-1, 3), X)
    assert s2 == pytest.approx(s) and np.allclose(R2, R) and np.allclose(t2, t)


def test_transforms_json_round_trip_and_opengl_axes(tmp_path):
    path = orbit(views=3, degrees=90, width=64, height=48)
    cams = [CaptureCamera(f"cam{v}.mp4", path.K[v], path.world_to_cam[v], 64, 48) for v in range(3)]
    doc = to_transforms(cams)
    # nerfstudio's camera looks down its -z axis: the c2w's third column points from the subject to the camera
    c2w = np.asarray(doc["frames"][0]["transform_matrix"])
    centre = c2w[:3, 3]
    to_cam = centre - np.array([0.0, 0.9, 0.0])
    assert np.dot(c2w[:3, 2], to_cam / np.linalg.norm(to_cam)) > 0.999
    assert c2w[1, 1] > 0.9  # its +y (image up) is the world's up
    (tmp_path / "transforms.json").write_text(json.dumps(doc))
    back = read_transforms(tmp_path / "transforms.json")
    for c, b in zip(cams, back):
        np.testing.assert_allclose(b.world_to_cam, c.world_to_cam, atol=1e-9)
        np.testing.assert_allclose(b.K, c.K)
        assert (b.file, b.width, b.height) == (c.file, 64, 48)
    # shared intrinsics at the top, 3x4 matrices, one focal length
    shared = {"fl_x": 50.0, "w": 64, "h": 48, "frames": [{"file_path": "a.mp4", "transform_matrix": c2w[:3].tolist()}]}
    (cam,) = cameras_from_transforms(shared)
    np.testing.assert_allclose(cam.K, [[50, 0, 32], [0, 50, 24], [0, 0, 1]])
    for bad, msg in [
        ({"frames": []}, "frames"),
        ({"fl_x": 50, "w": 64, "h": 48, "frames": [{"transform_matrix": c2w.tolist()}]}, "file_path"),
        ({"w": 64, "h": 48, "frames": [{"file_path": "a.mp4", "transform_matrix": c2w.tolist()}]}, "focal"),
        (
            {"fl_x": 50, "w": 64, "h": 48, "frames": [{"file_path": "a.mp4", "transform_matrix": (2 * c2w).tolist()}]},
            "rotation",
        ),
        ({"camera_model": "OPENCV_FISHEYE", "fl_x": 50, "frames": [{"file_path": "a.mp4"}]}, "not supported"),
    ]:
        with pytest.raises(BadInput, match=msg):
            cameras_from_transforms(bad)
    (tmp_path / "transforms.json").write_text("{ not json")
    with pytest.raises(BadInput, match="not valid JSON"):
        read_transforms(tmp_path / "transforms.json")
