"""Camera paths: generators, presets (strict YAML), scheduling (views / moving), nerfstudio JSON, plot, CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from hvg_cli.cameras import generators as gen
from hvg_cli.cameras.nerfstudio import from_nerfstudio, load_nerfstudio, to_nerfstudio
from hvg_cli.cameras.presets import list_camera_presets, load_camera, presets_dir
from hvg_cli.cameras.schedule import camera_grid, common_focus, orbit_flags
from hvg_cli.core.errors import BadInput
from hvg_cli.core.types import CameraPath

PRESET_NAMES = {"static", "orbit-360", "orbit", "arc", "dolly-in", "spiral", "sv3d-21", "sv4d2-4", "sv4d2-8"}


def project(K: np.ndarray, w2c: np.ndarray, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """[..., 3, 3], [..., 4, 4], [3] -> pixels [..., 2], depth [...]."""
    cam = np.einsum("...ij,j->...i", w2c[..., :3, :3], X) + w2c[..., :3, 3]
    uv = np.einsum("...ij,...j->...i", K, cam)
    return uv[..., :2] / uv[..., 2:3], cam[..., 2]


def centres(path_or_w2c) -> np.ndarray:
    w2c = path_or_w2c.world_to_cam if isinstance(path_or_w2c, CameraPath) else path_or_w2c
    return np.linalg.inv(w2c)[..., :3, 3]


def azimuths(pos: np.ndarray, target=gen.DEFAULT_TARGET) -> np.ndarray:
    return gen.spherical_coordinates(pos, target)[:, 0]


def ang_diff(a, b):
    """Signed difference a - b wrapped to (-180, 180]."""
    d = np.asarray(a) - np.asarray(b)
    return d - 360 * np.round(d / 360)


# ------------------------------------------------------------------------------------------------
# Generators
# ------------------------------------------------------------------------------------------------
def test_orbit_on_circle_and_looking_at_target():
    target = np.array([0.2, 1.0, -0.3])
    path = gen.orbit(views=12, degrees=360, elevation=15, radius=2.7, fov=35, width=320, height=240, target=target)
    assert path.num_views == 12 and path.closed and (path.width, path.height) == (320, 240)
    pos = centres(path)
    d = pos - target
    np.testing.assert_allclose(np.linalg.norm(d, axis=1), 2.7, atol=1e-9)
    np.testing.assert_allclose(d[:, 1], 2.7 * np.sin(np.radians(15)), atol=1e-9)  # on the circle at 15°
    np.testing.assert_allclose(np.linalg.norm(d[:, [0, 2]], axis=1), 2.7 * np.cos(np.radians(15)), atol=1e-9)
    np.testing.assert_allclose(ang_diff(azimuths(pos, target), np.arange(12) * 30.0), 0, atol=1e-9)
    # every camera looks at the target: it projects to the image centre, in front of the camera
    uv, z = project(path.K, path.world_to_cam, target)
    np.testing.assert_allclose(uv, np.tile([160.0, 120.0], (12, 1)), atol=1e-9)
    np.testing.assert_allclose(z, 2.7, atol=1e-9)
    # rigid, right-handed, upright: a point above the target is higher in the picture
    R = path.world_to_cam[:, :3, :3]
    np.testing.assert_allclose(R @ np.swapaxes(R, 1, 2), np.broadcast_to(np.eye(3), R.shape), atol=1e-12)
    np.testing.assert_allclose(np.linalg.det(R), 1.0, atol=1e-12)
    uv_up, _ = project(path.K, path.world_to_cam, target + [0, 0.3, 0])
    assert np.all(uv_up[:, 1] < 120 - 10) and np.allclose(uv_up[:, 0], 160, atol=1e-6)
    # vertical fov: a point at the top edge of the view of camera 0
    np.testing.assert_allclose(gen.vertical_fov(path.K[0], 240), 35.0, atol=1e-12)


def test_front_camera_sees_subject_left_on_image_right_and_positive_azimuth_goes_left():
    path = gen.orbit(views=4, elevation=0, radius=3.0)
    pos = centres(path)
    np.testing.assert_allclose(pos[0], [0, 0.9, 3.0], atol=1e-12)  # azimuth 0: on +z, in front
    np.testing.assert_allclose(pos[1], [3.0, 0.9, 0], atol=1e-12)  # azimuth 90: on the subject's left (+x)
    uv, _ = project(path.K[0], path.world_to_cam[0], np.array([0.3, 0.9, 0.0]))  # subject's left hand side
    assert uv[0] > 256 + 20  # person facing the camera: their left is on the image's right


def test_closed_orbit_neighbours_and_partial_orbit_ends():
    full = gen.orbit(views=8, degrees=360)
    az = azimuths(centres(full))
    steps = ang_diff(np.roll(az, -1), az)  # includes last -> first
    np.testing.assert_allclose(steps, 45.0, atol=1e-9)  # the first view is not repeated at the end
    assert full.closed
    part = gen.orbit(views=7, degrees=90)
    az = azimuths(centres(part))
    assert not part.closed
    np.testing.assert_allclose(az, np.linspace(0, 90, 7), atol=1e-9)
    back = gen.orbit(views=5, degrees=-360)
    np.testing.assert_allclose(ang_diff(azimuths(centres(back))[1], 0), -72.0, atol=1e-9)
    assert back.closed


def test_arc_dolly_spiral_view_set_and_static():
    arc = gen.arc(views=5, degrees=120, center=10, elevation=0, rise=20, radius=2.0)
    sph = gen.spherical_coordinates(centres(arc))
    np.testing.assert_allclose(sph[:, 0], [-50, -20, 10, 40, 70], atol=1e-9)
    np.testing.assert_allclose(sph[:, 1], [0, 5, 10, 15, 20], atol=1e-9)
    np.testing.assert_allclose(sph[:, 2], 2.0, atol=1e-9)

    dolly = gen.dolly(views=5, start_radius=4.0, radius=2.0, azimuth=30, elevation=5)
    sph = gen.spherical_coordinates(centres(dolly))
    np.testing.assert_allclose(sph[:, 2], [4.0, 3.5, 3.0, 2.5, 2.0], atol=1e-9)
    np.testing.assert_allclose(sph[:, :2], np.tile([30, 5], (5, 1)), atol=1e-9)
    np.testing.assert_allclose(
        dolly.world_to_cam[:, :3, :3], np.broadcast_to(dolly.world_to_cam[0, :3, :3], (5, 3, 3)), atol=1e-12
    )  # one view axis: only the distance changes

    sp = gen.spiral(views=8, degrees=360, elevation=10, amplitude=15, cycles=1)
    sph = gen.spherical_coordinates(centres(sp))
    assert sp.closed
    np.testing.assert_allclose(sph[:, 1], 10 + 15 * np.sin(2 * np.pi * np.arange(8) / 8), atol=1e-9)
    np.testing.assert_allclose(ang_diff(sph[:, 0], np.arange(8) * 45.0), 0, atol=1e-9)
    assert not gen.spiral(views=8, rise=10).closed

    vs = gen.view_set([0, 90, 200], [0, 10, -5], radius=2.2)
    sph = gen.spherical_coordinates(centres(vs))
    np.testing.assert_allclose(ang_diff(sph[:, 0], [0, 90, 200]), 0, atol=1e-9)
    np.testing.assert_allclose(sph[:, 1:], [[0, 2.2], [10, 2.2], [-5, 2.2]], atol=1e-9)

    st = gen.static(azimuth=-90, elevation=0, radius=2.0)
    np.testing.assert_allclose(centres(st)[0], [-2.0, 0.9, 0.0], atol=1e-12)


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(views=0),
        dict(radius=-1.0),
        dict(fov=180.0),
        dict(elevation=90.0),
        dict(views=2, degrees=360),
        dict(degrees=0),
        dict(width=0),
    ],
)
def test_generator_bad_values_are_bad_input(kwargs):
    with pytest.raises(BadInput):
        gen.orbit(**kwargs)


# ------------------------------------------------------------------------------------------------
# Presets
# ------------------------------------------------------------------------------------------------
def test_every_preset_loads_and_looks_at_the_subject():
    presets = list_camera_presets()
    assert {p.name for p in presets} == PRESET_NAMES
    for p in presets:
        path = load_camera(p.name)
        assert path.name == p.name and p.description
        uv, z = project(path.K, path.world_to_cam, np.array(gen.DEFAULT_TARGET))
        np.testing.assert_allclose(uv, np.tile([path.width / 2, path.height / 2], (path.num_views, 1)), atol=1e-9)
        assert np.all(z > 0.5)


def test_sv3d_21_view_set():
    path = load_camera("sv3d-21")
    assert path.num_views == 21 and path.closed
    sph = gen.spherical_coordinates(centres(path))
    np.testing.assert_allclose(sph[:, 1], 10.0, atol=1e-9)
    steps = ang_diff(np.roll(sph[:, 0], -1), sph[:, 0])
    np.testing.assert_allclose(steps, 360.0 / 21, atol=1e-9)  # evenly spaced, wrap included
    np.testing.assert_allclose(sph[0, 0], 0.0, atol=1e-9)  # starts on the front view


def test_sv4d2_view_sets():
    for name, expected in [("sv4d2-4", [60, 120, 180, 240]), ("sv4d2-8", [30, 75, 120, 165, 210, 255, 300, 330])]:
        path = load_camera(name)
        sph = gen.spherical_coordinates(centres(path))
        assert path.num_views == len(expected)
        np.testing.assert_allclose(ang_diff(sph[:, 0], expected), 0, atol=1e-9)
        np.testing.assert_allclose(sph[:, 1], 0.0, atol=1e-9)


def test_overrides():
    path = load_camera("orbit-360", views=6, elevation=20, radius=2.0, fov=30, width=64, height=48)
    sph = gen.spherical_coordinates(centres(path))
    assert path.num_views == 6 and (path.width, path.height) == (64, 48)
    np.testing.assert_allclose(sph[:, 1:], np.tile([20, 2.0], (6, 1)), atol=1e-9)
    np.testing.assert_allclose(gen.vertical_fov(path.K[0], 48), 30.0, atol=1e-9)
    part = load_camera("orbit", degrees=180, views=3)
    np.testing.assert_allclose(azimuths(centres(part)), [0, 90, 180], atol=1e-9)
    vs = load_camera("sv4d2-4", elevation=12)
    np.testing.assert_allclose(gen.spherical_coordinates(centres(vs))[:, 1], 12, atol=1e-9)
    with pytest.raises(BadInput, match="views"):
        load_camera("sv4d2-4", views=3)
    with pytest.raises(BadInput, match="degrees"):
        load_camera("static", degrees=90)


def _write(folder: Path, name: str, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    f = folder / f"{name}.yaml"
    f.write_text(text)
    return f


@pytest.mark.parametrize(
    "text, key",
    [
        ("description: x\ngenerator: orbit\nargs: {views: 8}\ncolour: red\n", "colour"),
        ("description: x\ngenerator: orbit\nargs: {views: 8, radiuss: 2.0}\n", "args.radiuss"),
        ("description: x\ngenerator: orbit\nargs: {views: ten}\n", "args.views"),
        ("description: x\ngenerator: orbit\nargs: {views: 8.5}\n", "args.views"),
        ("description: x\ngenerator: orbit\nargs: {radius: true}\n", "args.radius"),
        ("description: x\ngenerator: orbit\nargs: {target: [0, 1]}\n", "args.target"),
        ("description: x\ngenerator: view_set\nargs: {azimuths: 30}\n", "args.azimuths"),
        ("description: x\ngenerator: helix\nargs: {}\n", "helix"),
        ("generator: orbit\nargs: {}\n", "description"),
        ("description: [1, 2]\ngenerator: orbit\n", "description"),
    ],
)
def test_strict_yaml_validation_names_file_and_key(tmp_path, text, key):
    f = _write(tmp_path, "bad", text)
    with pytest.raises(BadInput) as e:
        load_camera(str(f))
    msg = str(e.value)
    assert str(f) in msg and key in msg


def test_bad_value_and_bad_yaml_name_the_file(tmp_path):
    f = _write(tmp_path, "neg", "description: x\ngenerator: orbit\nargs: {radius: -2.0}\n")
    with pytest.raises(BadInput, match="radius") as e:
        load_camera(str(f))
    assert str(f) in str(e.value)
    g = _write(tmp_path, "broken", "description: x\ngenerator: [orbit\n")
    with pytest.raises(BadInput) as e:
        load_camera(str(g))
    assert str(g) in str(e.value)


def test_unknown_preset_lists_presets():
    with pytest.raises(BadInput) as e:
        load_camera("nope")
    msg = str(e.value)
    assert "nope" in msg and all(n in msg for n in PRESET_NAMES)


def test_presets_dir_from_env(tmp_path, monkeypatch):
    _write(tmp_path / "cameras", "mine", "description: my own\ngenerator: orbit\nargs: {views: 5, degrees: 60}\n")
    monkeypatch.setenv("HVG_PRESETS_DIR", str(tmp_path))
    assert presets_dir() == tmp_path / "cameras"
    assert [p.name for p in list_camera_presets()] == ["mine"]
    np.testing.assert_allclose(azimuths(centres(load_camera("mine"))), [0, 15, 30, 45, 60], atol=1e-9)


# ------------------------------------------------------------------------------------------------
# Scheduling
# ------------------------------------------------------------------------------------------------
def test_views_mode_repeats_each_view_over_time():
    path = gen.orbit(views=5, degrees=360)
    grid = camera_grid(path, 7, "views")
    assert grid.shape == (5, 7) and grid.mode == "views" and grid.closed
    for v in range(5):
        np.testing.assert_array_equal(grid.world_to_cam[v], np.broadcast_to(path.world_to_cam[v], (7, 4, 4)))
        np.testing.assert_array_equal(grid.K[v], np.broadcast_to(path.K[v], (7, 3, 3)))


def test_moving_orbit_passes_keyframes_and_loops():
    path = gen.orbit(views=8, degrees=360, elevation=12, radius=2.4)
    k = 3
    T = 8 * k + 1
    grid = camera_grid(path, T, "moving")
    assert grid.shape == (1, T) and grid.mode == "moving"
    w2c = grid.world_to_cam[0]
    for j in range(8):  # frame j*k is keyframe j
        np.testing.assert_allclose(w2c[j * k], path.world_to_cam[j], atol=1e-9)
    np.testing.assert_allclose(w2c[-1], path.world_to_cam[0], atol=1e-9)  # 360° at the last frame
    sph = gen.spherical_coordinates(centres(w2c))
    np.testing.assert_allclose(sph[:, 1:], np.tile([12, 2.4], (T, 1)), atol=1e-9)  # stays on the circle
    steps = ang_diff(sph[1:, 0], sph[:-1, 0])
    np.testing.assert_allclose(steps, 360.0 / (T - 1), atol=1e-9)  # constant angular speed, toward +x
    uv, _ = project(grid.K[0], w2c, np.array(gen.DEFAULT_TARGET))
    np.testing.assert_allclose(uv, np.tile([256, 256], (T, 1)), atol=1e-9)


def test_moving_partial_orbit_ends_on_last_keyframe():
    path = gen.orbit(views=4, degrees=90)
    grid = camera_grid(path, 10, "moving")
    az = azimuths(centres(grid.world_to_cam[0]))
    np.testing.assert_allclose(az, np.linspace(0, 90, 10), atol=1e-9)


def _max_turn(pos: np.ndarray) -> float:
    """Largest change of direction (degrees) between consecutive steps of a polyline [T, 3]."""
    v = np.diff(pos, axis=0)
    v = v / np.linalg.norm(v, axis=1, keepdims=True)
    return float(np.degrees(np.arccos(np.clip(np.sum(v[1:] * v[:-1], axis=1), -1, 1))).max())


def test_moving_spiral_is_smooth_and_passes_keyframes():
    path = gen.spiral(views=12, degrees=360, elevation=10, amplitude=15, cycles=2)
    k = 20
    T = 12 * k + 1
    w2c = camera_grid(path, T, "moving").world_to_cam[0]
    for j in range(12):
        np.testing.assert_allclose(w2c[j * k], path.world_to_cam[j], atol=1e-9)
    pos = centres(w2c)
    # smooth: the direction of motion turns by small amounts per frame, also at keyframes and across the seam
    loop = np.concatenate([pos, pos[1:3]])
    smooth = _max_turn(loop)
    # the same keyframes joined piecewise-linearly in azimuth/elevation kink by tens of degrees at keyframes
    sph = gen.spherical_coordinates(centres(path))
    u, s = np.arange(13) / 12, np.linspace(0, 1, T)
    az = np.interp(s, u, np.arange(13) * 30.0)
    el = np.interp(s, u, np.append(sph[:, 1], sph[0, 1]))
    kinked = gen.spherical_positions(az, el, np.full(T, 2.5))
    kinks = _max_turn(np.concatenate([kinked, kinked[1:3]]))
    assert smooth < 4.0 and kinks > 15.0, (smooth, kinks)
    np.testing.assert_allclose(np.linalg.norm(pos - gen.DEFAULT_TARGET, axis=1), 2.5, atol=1e-9)


def test_moving_dolly_stays_on_axis():
    path = gen.dolly(views=4, start_radius=4.0, radius=2.0, azimuth=20, elevation=5)
    w2c = camera_grid(path, 13, "moving").world_to_cam[0]
    sph = gen.spherical_coordinates(centres(w2c))
    np.testing.assert_allclose(sph[:, :2], np.tile([20, 5], (13, 1)), atol=1e-9)
    np.testing.assert_allclose(sph[:, 2], np.linspace(4.0, 2.0, 13), atol=1e-9)


def test_moving_free_path_uses_slerp_and_passes_keyframes():
    # cameras that do not share a focus point: a sideways track while panning
    pos = np.array([[-1.0, 1.5, 3.0], [0.0, 1.5, 3.2], [1.0, 1.6, 3.0]])
    tgt = np.array([[-0.5, 0.9, 0.0], [0.8, 0.9, 0.0], [0.0, 1.4, 0.0]])
    w2c = np.concatenate([gen.look_at(pos[i : i + 1], tgt[i]) for i in range(3)])
    assert common_focus(pos, np.linalg.inv(w2c)[:, :3, 2]) is None
    K = np.broadcast_to(gen.intrinsics(40, 64, 64), (3, 3, 3)).copy()
    path = CameraPath(K=K, world_to_cam=w2c, width=64, height=64, times=np.array([0.0, 0.25, 1.0]))
    grid = camera_grid(path, 9, "moving")  # frames at 0, 1/8, ..., 1: keyframes at frames 0, 2, 8
    out = grid.world_to_cam[0]
    for f, j in [(0, 0), (2, 1), (8, 2)]:
        np.testing.assert_allclose(out[f], w2c[j], atol=1e-9)
    R = out[:, :3, :3]
    np.testing.assert_allclose(R @ np.swapaxes(R, 1, 2), np.broadcast_to(np.eye(3), R.shape), atol=1e-9)


def test_moving_preserves_roll():
    base = gen.orbit(views=6, degrees=360)
    a = np.radians(10.0)
    Rz = np.array([[np.cos(a), np.sin(a), 0, 0], [-np.sin(a), np.cos(a), 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]])
    rolled = CameraPath(K=base.K, world_to_cam=Rz @ base.world_to_cam, width=512, height=512, closed=True)
    out = camera_grid(rolled, 13, "moving").world_to_cam[0]
    for j in range(6):
        np.testing.assert_allclose(out[2 * j], rolled.world_to_cam[j], atol=1e-9)
    # in between too, the camera is the upright one rolled by the same 10° about its view axis
    upright = camera_grid(base, 13, "moving").world_to_cam[0]
    np.testing.assert_allclose(out, Rz @ upright, atol=1e-9)
    assert np.abs(out - upright).max() > 0.1


def test_orbit_flags():
    full = orbit_flags(360)
    assert full.closed and full.num_views == 21
    part = orbit_flags(90, views=4, elevation=0, radius=2.0, fov=30, width=64, height=32)
    sph = gen.spherical_coordinates(centres(part))
    np.testing.assert_allclose(sph[:, 0], [0, 30, 60, 90], atol=1e-9)
    np.testing.assert_allclose(sph[:, 1:], np.tile([0, 2.0], (4, 1)), atol=1e-9)
    assert (part.width, part.height) == (64, 32)
    still = orbit_flags(0)
    assert still.num_views == 1
    np.testing.assert_allclose(azimuths(centres(still)), [0], atol=1e-9)
    with pytest.raises(BadInput):
        camera_grid(full, 0)
    with pytest.raises(BadInput):
        camera_grid(full, 4, "sideways")


# ------------------------------------------------------------------------------------------------
# nerfstudio
# ------------------------------------------------------------------------------------------------
def test_nerfstudio_known_camera_is_translation_only():
    path = gen.static(azimuth=0, elevation=0, radius=3.0, target=(0, 0, 0), fov=50, width=640, height=480)
    doc = to_nerfstudio(path)
    c2w = np.array(doc["camera_path"][0]["camera_to_world"]).reshape(4, 4)
    expected = np.eye(4)
    expected[2, 3] = 3.0
    np.testing.assert_allclose(c2w, expected, atol=1e-12)
    assert doc["camera_path"][0]["fov"] == pytest.approx(50.0, abs=1e-12)
    assert doc["camera_path"][0]["aspect"] == pytest.approx(640 / 480)
    assert (doc["render_width"], doc["render_height"]) == (640, 480)
    # and back: a nerfstudio identity camera at +z looks down -z at the origin, upright
    back = from_nerfstudio(
        {
            "render_width": 640,
            "render_height": 480,
            "camera_path": [{"camera_to_world": expected.reshape(-1).tolist(), "fov": 50}],
        }
    )
    uv, z = project(back.K[0], back.world_to_cam[0], np.zeros(3))
    np.testing.assert_allclose(uv, [320, 240], atol=1e-9)
    assert z == pytest.approx(3.0)
    uv_up, _ = project(back.K[0], back.world_to_cam[0], np.array([0, 0.5, 0]))
    assert uv_up[1] < 240


def test_nerfstudio_round_trip(tmp_path):
    path = gen.spiral(views=10, degrees=270, elevation=5, amplitude=10, cycles=1.5, width=96, height=64, fov=33)
    path = CameraPath(
        K=path.K,
        world_to_cam=path.world_to_cam,
        width=96,
        height=64,
        closed=False,
        name="s",
        times=np.linspace(0, 1, 10) ** 1.5,
    )
    f = tmp_path / "p.json"
    f.write_text(json.dumps(to_nerfstudio(path, fps=30)))
    back = load_camera(str(f))
    np.testing.assert_allclose(back.world_to_cam, path.world_to_cam, atol=1e-9)
    np.testing.assert_allclose(back.K, path.K, atol=1e-9)
    np.testing.assert_allclose(back.times, path.times, atol=1e-12)
    assert (back.width, back.height, back.closed) == (96, 64, False)
    closed = gen.orbit(views=6)
    again = from_nerfstudio(json.loads(json.dumps(to_nerfstudio(closed))))
    assert again.closed and again.num_views == 6
    np.testing.assert_allclose(again.world_to_cam, closed.world_to_cam, atol=1e-9)


@pytest.mark.parametrize(
    "doc, word",
    [
        ({"render_height": 10}, "camera_path"),
        ({"render_height": 10, "render_width": 10, "camera_path": [{"fov": 40}]}, "camera_to_world"),
        ({"render_height": 10, "render_width": 10, "camera_path": [{"camera_to_world": [1, 2, 3], "fov": 40}]}, "16"),
        (
            {
                "render_height": 10,
                "render_width": 10,
                "camera_path": [{"camera_to_world": (2 * np.eye(4)).reshape(-1).tolist(), "fov": 40}],
            },
            "rotation",
        ),
        ({"render_width": 10, "camera_path": [{"camera_to_world": np.eye(4).reshape(-1).tolist()}]}, "render_height"),
    ],
)
def test_nerfstudio_bad_files(tmp_path, doc, word):
    f = tmp_path / "bad.json"
    f.write_text(json.dumps(doc))
    with pytest.raises(BadInput, match=word) as e:
        load_nerfstudio(f)
    assert str(f) in str(e.value)
    f.write_text("{not json")
    with pytest.raises(BadInput, match="JSON"):
        load_camera(str(f))


# ------------------------------------------------------------------------------------------------
# Plot
# ------------------------------------------------------------------------------------------------
def test_plot_puts_cameras_where_the_caption_says(tmp_path):
    from PIL import Image

    from hvg_cli.cameras.plot import PANEL, _colour, plot_cameras

    first = np.array(_colour(0, 2))
    spots = {}
    for az in (0, 90):
        out = plot_cameras(gen.view_set([az, az + 180], 0.0, radius=2.5), tmp_path / f"c{az}.png")
        img = np.asarray(Image.open(out).convert("RGB")).astype(int)
        assert img.shape == (PANEL + 40, 2 * PANEL, 3)
        mask = np.all(img == first, axis=-1)  # camera 0's colour
        left, right = mask[:, :PANEL], mask[:, PANEL:]
        assert left.sum() > 20 and right.sum() > 20
        ys, xs = np.nonzero(left)
        spots[az] = (xs.mean() - PANEL / 2, ys.mean() - (40 + PANEL / 2))
    # top-down panel: the front camera (+z) below the subject, the left-side camera (+x) to its right
    assert spots[0][1] > 100 and abs(spots[0][0]) < 30
    assert spots[90][0] > 100 and abs(spots[90][1]) < 30


# ------------------------------------------------------------------------------------------------
# CLI
# ------------------------------------------------------------------------------------------------
@pytest.fixture()
def runner() -> CliRunner:
    return CliRunner()


def test_cli_list_show_export(runner, tmp_path):
    from hvg_cli.cli.main import app

    r = runner.invoke(app, ["cameras", "list", "--json"])
    assert r.exit_code == 0, r.output
    assert {p["name"] for p in json.loads(r.stdout)} == PRESET_NAMES

    r = runner.invoke(app, ["cameras", "list"])
    assert r.exit_code == 0 and "sv3d-21" in r.stdout

    png = tmp_path / "o.png"
    r = runner.invoke(app, ["cameras", "show", "orbit-360", "--json", "--plot", str(png)])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert doc["num_views"] == 24 and doc["closed"]
    np.testing.assert_allclose([v["azimuth"] for v in doc["views"]], np.arange(24) * 15.0, atol=1e-6)
    np.testing.assert_allclose([v["radius"] for v in doc["views"]], 3.0, atol=1e-9)
    assert png.stat().st_size > 1000

    r = runner.invoke(app, ["cameras", "show", "sv4d2-4"])
    assert r.exit_code == 0 and "240.0" in r.stdout

    out = tmp_path / "path.json"
    r = runner.invoke(
        app,
        [
            "cameras",
            "export",
            "orbit-360",
            "--format",
            "nerfstudio",
            "-o",
            str(out),
            "--views",
            "12",
            "--resolution",
            "64x48",
        ],
    )
    assert r.exit_code == 0, r.output
    back = load_camera(str(out))
    ref = load_camera("orbit-360", views=12, width=64, height=48)
    np.testing.assert_allclose(back.world_to_cam, ref.world_to_cam, atol=1e-9)
    np.testing.assert_allclose(back.K, ref.K, atol=1e-9)
    assert back.closed

    r = runner.invoke(app, ["cameras", "show", str(out), "--json"])
    assert r.exit_code == 0 and json.loads(r.stdout)["num_views"] == 12


def test_cli_unknown_preset_is_one_line_exit_3(runner):
    from hvg_cli.cli.main import app

    r = runner.invoke(app, ["cameras", "show", "nope"])
    assert r.exit_code == 3
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "nope" in lines[0] and "orbit-360" in lines[0]
    assert r.stdout == ""


def test_cli_export_unknown_format(runner, tmp_path):
    from hvg_cli.cli.main import app

    r = runner.invoke(app, ["cameras", "export", "orbit", "--format", "colmap", "-o", str(tmp_path / "x.json")])
    assert r.exit_code == 2 and "colmap" in r.stderr  # a bad choice is a usage error, as every enum flag
    assert not (tmp_path / "x.json").exists()
    r = runner.invoke(app, ["cameras", "show", "orbit", "--resolution", "abc"])
    assert r.exit_code == 2 and "--resolution" in r.stderr  # a usage error, reported by the parser
