"""The subject from the photo: MediaPipe detection, camera + pose fit, radii, body model files."""

from __future__ import annotations

import math
import pickle
from pathlib import Path

import numpy as np
import pytest

from hvg_cli.body import ik
from hvg_cli.body.kinematics import axis_angle_to_matrix, forward_kinematics, pose_joints
from hvg_cli.body.skeleton import JOINT_INDEX as J
from hvg_cli.body.skeleton import default_skeleton
from hvg_cli.body.smpl_model import load_body_model
from hvg_cli.body.subject import (
    camera_rotation,
    fit_photo,
    focal_from_fov,
    joint_observations,
    project,
    world_to_cam_matrix,
)
from hvg_cli.bonemap.parts import PART_INDEX, PARTS, default_radii, part_ellipsoids
from hvg_cli.bonemap.radii import fit_radii, radii_from_mesh
from hvg_cli.core.errors import BadInput, NoPerson
from hvg_cli.core.types import SMPL_PARENTS, Camera
from hvg_cli.pose.photo import PhotoDetection, detect_photo

PHOTOS = ["photo_woman_street.jpg", "photo_woman_studio.jpg"]
# Bound on the mean reprojection error of the fitted body's joints, as a fraction of the person's height in
# pixels. MediaPipe predicts its 3D and 2D landmarks separately (they disagree by a few per cent), the
# bone lengths are symmetrised left/right and fixed, so a perfect fit is impossible; 3% of a 1.7 m person
# is 5 cm, well under the width of a limb (the bone map's ellipsoids are 8-16 cm wide).
REPROJ_FRACTION = 0.03


def _read(path: Path) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(path).convert("RGB"))


@pytest.fixture(scope="module")
def photos(data_dir: Path) -> dict[str, tuple[np.ndarray, PhotoDetection]]:
    out = {}
    for name in PHOTOS:
        img = _read(data_dir / name)
        out[name] = (img, detect_photo(img, name))
    return out


# ---------------------------------------------------------------------------------------------
# detection
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", PHOTOS)
def test_detect_photo_finds_the_person(photos, name: str) -> None:
    img, d = photos[name]
    H, W = img.shape[:2]
    assert (d.width, d.height) == (W, H) and d.landmarks.shape == (33, 2) and d.world.shape == (33, 3)
    assert d.mask.shape == (H, W) and d.mask.dtype == np.float32
    assert not d.legs_guessed and np.all(d.visibility[[25, 26, 27, 28]] > 0.5)
    # hvg axes: head above the hips (+y), the person's left shoulder on +x, toes in front of the ankles (+z)
    assert d.world[0, 1] > d.world[[23, 24], 1].mean() + 0.3
    assert d.world[11, 0] > d.world[12, 0] and d.world[23, 0] > d.world[24, 0]
    assert d.world[[31, 32], 2].mean() > d.world[[27, 28], 2].mean()
    # image: the person's left shoulder on the image's right (facing the camera), feet below the head
    assert d.landmarks[11, 0] > d.landmarks[12, 0]
    assert d.landmarks[[27, 28], 1].min() > d.landmarks[0, 1] + 0.5 * H * 0.5
    # the mask covers the person: its box agrees with the landmarks' box, and the body landmarks lie in it
    m = d.mask > 0.5
    ys, xs = np.nonzero(m)
    mbox = np.array([xs.min(), ys.min(), xs.max(), ys.max()], float)
    lbox = np.r_[d.landmarks.min(0), d.landmarks.max(0)]
    ix = max(0.0, min(mbox[2], lbox[2]) - max(mbox[0], lbox[0])) * max(
        0.0, min(mbox[3], lbox[3]) - max(mbox[1], lbox[1])
    )
    area = lambda b: (b[2] - b[0]) * (b[3] - b[1])  # noqa: E731
    assert ix / (area(mbox) + area(lbox) - ix) > 0.6
    body = [11, 12, 23, 24, 25, 26, 27, 28]
    px = np.clip(d.landmarks[body].astype(int), 0, [W - 1, H - 1])
    assert m[px[:, 1], px[:, 0]].mean() >= 0.85


@pytest.mark.parametrize("image", ["grey", "noise"])
def test_no_person_raises(image: str) -> None:
    rng = np.random.default_rng(0)
    img = (
        np.full((360, 480, 3), 128, np.uint8)
        if image == "grey"
        else rng.integers(0, 256, (360, 480, 3), dtype=np.uint8)
    )
    with pytest.raises(NoPerson) as e:
        detect_photo(img, f"{image}.png")
    assert f"{image}.png" in str(e.value) and "whole person" in str(e.value)
    assert e.value.exit_code == 5


def test_bad_image_is_bad_input() -> None:
    with pytest.raises(BadInput):
        detect_photo(np.zeros((100, 100), np.uint8), "flat.png")


# ---------------------------------------------------------------------------------------------
# fit: camera, pose, floor
# ---------------------------------------------------------------------------------------------
def _check_fit(fit, d: PhotoDetection) -> float:
    """Common checks of a PhotoFit; returns the relative reprojection error."""
    # the lowest ankle/foot joint stands on the floor, the pelvis is at x = z = 0
    assert abs(fit.joints[[7, 8, 10, 11], 1].min()) < 1e-9
    assert fit.photo_trans[0] == 0.0 and fit.photo_trans[2] == 0.0 and 0.5 < fit.photo_trans[1] < 1.2
    np.testing.assert_allclose(
        fit.joints,
        pose_joints(fit.photo_pose[None], fit.skeleton.rest_joints, SMPL_PARENTS, fit.photo_trans[None])[0],
        atol=1e-9,
    )
    # the camera is in front of the person (+z side) looking at -z, and sees the pelvis in front of it
    cam = fit.camera
    assert cam.position[2] > 1.0 and cam.world_to_cam[2, 2] < -0.9
    assert (cam.world_to_cam @ np.r_[fit.photo_trans, 1.0])[2] > 1.0
    assert abs(fit.tilt_deg) < 15.0
    # FK joints reprojected onto the landmarks they sit on
    ids, obs, w = joint_observations(d.landmarks, d.visibility)
    ok = w > 0.5
    if fit.legs_guessed:
        ok &= ~np.isin(ids, [J["left_knee"], J["right_knee"], J["left_ankle"], J["right_ankle"]])
    err = np.linalg.norm(project(fit.joints, cam.K, cam.world_to_cam)[ids[ok]] - obs[ok], axis=-1)
    person_px = np.ptp(d.landmarks[d.visibility > 0.5, 1])
    return float(err.mean() / person_px)


@pytest.mark.parametrize("name", PHOTOS)
def test_fit_photo_reprojects_onto_the_landmarks(photos, name: str) -> None:
    img, d = photos[name]
    fit = fit_photo(d, img.shape[1], img.shape[0])
    rel = _check_fit(fit, d)
    assert rel < REPROJ_FRACTION, f"mean reprojection error {rel:.3%} of the person's height"
    assert fit.camera.width == img.shape[1] and fit.camera.height == img.shape[0]
    # a standing adult: head joint 1.2-1.9 m above the floor
    assert 1.2 < fit.joints[J["head"], 1] < 1.9


def test_fit_recovers_a_synthetic_camera() -> None:
    """Landmarks made by the IK's forward model and a known camera: the fit finds the camera and pose."""
    sk = default_skeleton()
    pose = np.zeros((24, 3))
    pose[0, 1] = 0.3
    pose[J["left_shoulder"], 2], pose[J["right_shoulder"], 2] = -1.1, 1.0
    pose[J["left_elbow"], 1] = 0.5
    pose[J["right_hip"], 0], pose[J["right_knee"], 0] = -0.3, 0.4
    world = ik.landmarks_from_pose(pose[None], sk)[0]  # [33, 3] hip-centred
    rel = pose_joints(pose[None], sk.rest_joints, sk.parents)[0]
    trans = np.array([0.0, -rel[[7, 8, 10, 11], 1].min(), 0.0])
    W, H = 600, 900
    f = focal_from_fov(50.0, W, H)
    K = np.array([[f, 0, W / 2], [0, f, H / 2], [0, 0, 1.0]])
    centre = np.array([0.15, 1.0, 2.6])
    w2c = world_to_cam_matrix(camera_rotation(math.radians(4), math.radians(-2)), centre)
    px = project(world + trans, K, w2c)
    d = PhotoDetection(px, np.ones(33), world, np.zeros((H, W), np.float32), W, H, "synthetic")
    fit = fit_photo(d)
    assert fit.reprojection_error_px < 1.0  # of ~700 px body height; the angle prior costs a little
    np.testing.assert_allclose(fit.camera.position, centre, atol=0.05)
    np.testing.assert_allclose(fit.photo_trans, trans, atol=2e-3)  # the ray refinement nudges the legs
    assert abs(fit.tilt_deg - 4.0) < 1.0
    np.testing.assert_allclose(fit.skeleton.bone_lengths, sk.bone_lengths, atol=1e-6)


def test_photo_cut_at_the_knees_guesses_straight_legs(photos) -> None:
    img, d_full = photos["photo_woman_studio.jpg"]
    cut = int(d_full.landmarks[[25, 26], 1].mean()) + 10  # just below the knees: ankles are off the image
    crop = np.ascontiguousarray(img[:cut])
    d = detect_photo(crop, "cropped.jpg")
    assert d.legs_guessed
    fit = fit_photo(d)
    assert fit.legs_guessed
    # legs straight and standing: knees unbent, thighs and shins vertical, feet on the floor
    for knee in ("left_knee", "right_knee"):
        assert np.linalg.norm(fit.photo_pose[J[knee]]) < math.radians(10)
    for a, b in (
        ("left_hip", "left_knee"),
        ("left_knee", "left_ankle"),
        ("right_hip", "right_knee"),
        ("right_knee", "right_ankle"),
    ):
        v = fit.joints[J[b]] - fit.joints[J[a]]
        assert -v[1] / np.linalg.norm(v) > math.cos(math.radians(12))
    rel = _check_fit(fit, d)
    assert rel < REPROJ_FRACTION
    # leg lengths stay in proportion with the full photo's (guessed from the torso, within 20%)
    full = fit_photo(d_full)
    leg = lambda s: s.bone_lengths[[4, 7]].sum()  # noqa: E731
    assert 0.8 < leg(fit.skeleton) / leg(full.skeleton) < 1.2


# ---------------------------------------------------------------------------------------------
# radii
# ---------------------------------------------------------------------------------------------
def _posed(sk, pose, trans):
    G, joints = forward_kinematics(axis_angle_to_matrix(pose[None]), sk.offsets, sk.parents, trans[None])
    return G, joints


def _silhouette(sk, pose, trans, cam: Camera, radii) -> np.ndarray:
    from hvg_cli.bonemap.raster import rasterise

    G, joints = _posed(sk, pose, trans)
    c, a, s = part_ellipsoids(joints, G, radii)
    return rasterise(c, a, s, cam.K[None], cam.world_to_cam[None], cam.width, cam.height).label[0].numpy() >= 0


def test_fit_radii_recovers_a_wider_body() -> None:
    sk = default_skeleton()
    pose = np.zeros((24, 3))
    pose[J["left_shoulder"], 2], pose[J["right_shoulder"], 2] = -0.9, 0.9  # arms away from the body
    pose[J["left_hip"], 2], pose[J["right_hip"], 2] = 0.15, -0.15
    trans = np.array([0.0, 0.93, 0.0])
    W, H = 300, 450
    f = focal_from_fov(50.0, W, H)
    cam = Camera(
        np.array([[f, 0, W / 2], [0, f, H / 2], [0, 0, 1.0]]),
        world_to_cam_matrix(camera_rotation(0.03, 0.0), np.array([0.0, 0.9, 2.8])),
        W,
        H,
    )
    base = default_radii(sk)
    mask = _silhouette(sk, pose, trans, cam, 1.3 * base).astype(np.float32)
    r = fit_radii(sk, pose, trans, cam, mask, base)
    for name in ("left_thigh", "right_shin", "left_upper_arm", "right_forearm", "belly"):
        i = PART_INDEX[name]
        assert 1.2 < r[i, 0] / base[i, 0] < 1.4, name  # the width the camera sees
        assert 1.05 < r[i, 1] / base[i, 1] < 1.25, name  # the depth follows with the square root
    for name in ("head", "left_foot", "right_fingers", "neck"):  # not fitted
        np.testing.assert_array_equal(r[PART_INDEX[name]], base[PART_INDEX[name]])
    for i, p in enumerate(PARTS):
        if p.name.startswith("left_"):
            np.testing.assert_allclose(r[i], r[PART_INDEX["right_" + p.name[5:]]])
    # the same body seen with its own radii: nothing changes (ratios ~1)
    same = fit_radii(sk, pose, trans, cam, _silhouette(sk, pose, trans, cam, base).astype(np.float32), base)
    np.testing.assert_allclose(same, base, rtol=0.08)


def test_fit_radii_on_the_baggy_clothes_photo(photos) -> None:
    """Baggy trousers and sleeves: fitted radii make the ellipsoid silhouette match the person mask better."""
    img, d = photos["photo_woman_street.jpg"]
    fit = fit_photo(d)
    base = default_radii(fit.skeleton)
    r = fit_radii(fit.skeleton, fit.photo_pose, fit.photo_trans, fit.camera, d.mask, base)
    assert np.all(r >= 0.6 * base - 1e-12) and np.all(r <= 2.0 * base + 1e-12)
    m = d.mask > 0.5
    iou = lambda s: (s & m).sum() / (s | m).sum()  # noqa: E731
    iou_base = iou(_silhouette(fit.skeleton, fit.photo_pose, fit.photo_trans, fit.camera, base))
    iou_fit = iou(_silhouette(fit.skeleton, fit.photo_pose, fit.photo_trans, fit.camera, r))
    assert iou_fit > iou_base + 0.03, (iou_base, iou_fit)


# ---------------------------------------------------------------------------------------------
# body model files (synthetic, in the formats smplx reads)
# ---------------------------------------------------------------------------------------------
_RW, _RD = 0.060, 0.045  # radii (width, depth) of the synthetic upper arms' and thighs' cylinders
_CYLINDERS = {
    "left_upper_arm": ("left_shoulder", "left_elbow"),
    "right_upper_arm": ("right_shoulder", "right_elbow"),
    "left_thigh": ("left_hip", "left_knee"),
    "right_thigh": ("right_hip", "right_knee"),
}
_PELVIS_AT = np.array([0.003, -0.216, 0.028])  # where SMPL's template has its pelvis


def _synthetic_mesh(num_joints: int):
    """Vertices: one marker per joint (J_regressor picks them) and elliptic cylinders around four bones.

    returns v_template [V, 3], weights [V, num_joints], J_regressor [num_joints, V], joints [num_joints, 3]
    """
    sk = default_skeleton()
    rest = sk.rest_joints + _PELVIS_AT  # [24, 3]
    joints = np.zeros((num_joints, 3))
    joints[:24] = rest
    if num_joints == 55:  # SMPL-X: 22 body, jaw + eyes at the head, 15 finger joints per hand at SMPL's hand joint
        joints[22:25] = rest[J["head"]]
        joints[25:40] = rest[J["left_hand"]]
        joints[40:55] = rest[J["right_hand"]]
    verts, owner = [joints], list(range(num_joints))
    G = np.broadcast_to(np.eye(3), (1, 24, 3, 3))
    _, axes, _ = part_ellipsoids(sk.rest_joints[None], G, default_radii(sk))
    theta = np.linspace(0, 2 * np.pi, 72, endpoint=False)
    for part, (a, b) in _CYLINDERS.items():
        long, width, depth = axes[0, PART_INDEX[part]].T
        for t in np.linspace(0.15, 0.85, 8):
            c = rest[J[a]] + t * (rest[J[b]] - rest[J[a]])
            ring = c + _RW * np.cos(theta)[:, None] * width + _RD * np.sin(theta)[:, None] * depth
            verts.append(ring)
            owner += [J[a]] * len(theta)
    v = np.concatenate(verts)
    V = v.shape[0]
    weights = np.zeros((V, num_joints))
    weights[np.arange(V), owner] = 1.0
    Jr = np.zeros((num_joints, V))
    Jr[np.arange(num_joints), np.arange(num_joints)] = 1.0
    return v, weights, Jr, joints


def _kintree(num_joints: int) -> np.ndarray:
    parents = list(SMPL_PARENTS[:22])
    if num_joints == 24:
        parents += [20, 21]
    else:
        parents += [15, 15, 15]  # jaw, eyes
        for wrist in (20, 21):
            for _finger in range(5):
                parents += [wrist, len(parents), len(parents) + 1]
    k = np.array([parents, list(range(num_joints))], dtype=np.int64)
    k[0, 0] = 4294967295  # as in SMPL's files
    return k


def _model_dict(num_joints: int, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    v, w, Jr, joints = _synthetic_mesh(num_joints)
    V = v.shape[0]
    return {
        "v_template": v,
        "shapedirs": 0.01 * rng.standard_normal((V, 3, 10)),
        "posedirs": np.zeros((V, 3, 9 * (num_joints - 1))),
        "J_regressor": Jr,
        "weights": w,
        "kintree_table": _kintree(num_joints),
        "f": rng.integers(0, V, (50, 3)),
    }, joints


def test_smpl_pkl_gives_joints_and_mesh_radii(tmp_path: Path) -> None:
    import scipy.sparse

    data, joints = _model_dict(24)
    data["J_regressor"] = scipy.sparse.csc_matrix(data["J_regressor"])  # as in SMPL's own files
    path = tmp_path / "SMPL_NEUTRAL.pkl"
    path.write_bytes(pickle.dumps(data, protocol=2))
    model = load_body_model(path)
    assert model.kind == "smpl"
    np.testing.assert_allclose(model.joints, joints - joints[0], atol=1e-9)  # pelvis moved to the origin
    np.testing.assert_allclose(model.skeleton.rest_joints, default_skeleton().rest_joints, atol=1e-9)
    # radii from the mesh: the cylinders' radii (90th percentile of |cos| over a ring: cos 9 deg = 0.988)
    base = default_radii(model.skeleton)
    r = radii_from_mesh(model.vertices, model.weights, model.joints, base)
    for part in _CYLINDERS:
        np.testing.assert_allclose(r[PART_INDEX[part]], [_RW, _RD], rtol=0.03)
    np.testing.assert_array_equal(r[PART_INDEX["head"]], base[PART_INDEX["head"]])  # too few vertices: default
    # shape blending: betas move the joints by J_regressor @ shapedirs @ betas
    betas = np.linspace(-1, 1, 10)
    shaped = load_body_model(path, betas=betas)
    moved = data["v_template"] + data["shapedirs"] @ betas
    expect = moved[:24] - moved[0]
    np.testing.assert_allclose(shaped.joints, expect, atol=1e-9)


def test_smplx_npz_folds_onto_smpl_24(tmp_path: Path) -> None:
    data, joints = _model_dict(55, seed=1)
    path = tmp_path / "SMPLX_NEUTRAL.npz"
    np.savez(path, **data)
    model = load_body_model(path)
    assert model.kind == "smplx" and model.joints.shape == (24, 3) and model.weights.shape[1] == 24
    np.testing.assert_allclose(model.joints, default_skeleton().rest_joints, atol=1e-9)
    np.testing.assert_allclose(model.weights.sum(axis=1), 1.0)
    # every finger-joint marker vertex now follows SMPL's hand joint, jaw and eyes the head
    owner = model.vertex_joint
    assert np.all(owner[25:40] == J["left_hand"]) and np.all(owner[40:55] == J["right_hand"])
    assert np.all(owner[22:25] == J["head"])
    r = radii_from_mesh(model.vertices, model.weights, model.joints, default_radii(model.skeleton))
    np.testing.assert_allclose(r[PART_INDEX["left_thigh"]], [_RW, _RD], rtol=0.03)


def test_fit_body_model_finds_the_betas_of_longer_legs(tmp_path: Path) -> None:
    from hvg_cli.body.retarget import leg_length
    from hvg_cli.body.smpl_model import body_size, fit_body_model

    data, joints = _model_dict(24)
    v = data["v_template"]
    pelvis_y = joints[0, 1]
    shapedirs = 0.002 * np.random.default_rng(3).standard_normal(data["shapedirs"].shape)
    shapedirs[:, 1, 0] = 0.1 * np.minimum(v[:, 1] - pelvis_y, 0.0)  # beta 0: legs 10% longer per unit
    shapedirs[:, 0, 1] = 0.1 * v[:, 0]  # beta 1: everything 10% wider per unit
    data["shapedirs"] = shapedirs
    path = tmp_path / "model.npz"
    np.savez(path, **data)
    sk = default_skeleton()
    L = sk.bone_lengths.copy()
    for name in ("left_knee", "right_knee", "left_ankle", "right_ankle"):
        L[J[name]] *= 1.2  # the photo's person: 20% longer thighs and shins
    from hvg_cli.body.skeleton import skeleton_from_lengths

    target = skeleton_from_lengths(L)
    model, betas = fit_body_model(path, target)
    ratio = lambda s: leg_length(s) / body_size(s)  # noqa: E731
    start = abs(ratio(default_skeleton()) - ratio(target))
    assert (
        abs(ratio(model.skeleton) - ratio(target)) < 0.3 * start
    )  # most of the legs' share recovered (beta 0 also moves the hips)
    assert 1.2 < betas[0] < 2.5 and abs(betas[1]) < 0.3
    np.testing.assert_allclose(body_size(model.skeleton), body_size(target), rtol=1e-9)


def test_body_model_files_that_are_not_models(tmp_path: Path) -> None:
    import os

    evil = tmp_path / "evil.pkl"
    evil.write_bytes(pickle.dumps({"v_template": os.getcwd}))  # a callable: the unpickler must refuse it
    with pytest.raises(BadInput):
        load_body_model(evil)
    data, _ = _model_dict(24)
    del data["weights"]
    partial = tmp_path / "partial.npz"
    np.savez(partial, **data)
    with pytest.raises(BadInput, match="weights"):
        load_body_model(partial)
    with pytest.raises(BadInput):
        load_body_model(tmp_path / "missing.pkl")


# ---------------------------------------------------------------------------------------------
# pipeline: the cached subject stage, and the photo aligned like the bone maps
# ---------------------------------------------------------------------------------------------
def test_subject_stage_is_cached_and_aligns_with_its_photo(data_dir: Path, cache_dir: Path, tmp_path: Path) -> None:
    from hvg_cli import pipeline
    from hvg_cli.align import aligned_intrinsics, apply_to_points, image_centre, project_points, warp_image
    from hvg_cli.core.cache import StageCache
    from hvg_cli.core.progress import SilentReporter
    from hvg_cli.core.settings import SubjectSettings

    photo = tmp_path / "studio.jpg"
    photo.write_bytes((data_dir / "photo_woman_studio.jpg").read_bytes())
    cache = StageCache(cache_dir)
    s1 = pipeline.subject(photo, SubjectSettings(), cache, SilentReporter())
    assert cache.info()["subject"]["entries"] == 1
    s2 = pipeline.subject(photo, SubjectSettings(), cache, SilentReporter())  # from the cache
    for k in ("image", "mask", "landmarks", "photo_pose", "photo_trans", "radii"):
        np.testing.assert_array_equal(getattr(s1, k), getattr(s2, k))
    np.testing.assert_array_equal(s1.camera.world_to_cam, s2.camera.world_to_cam)
    np.testing.assert_array_equal(s1.skeleton.rest_joints, s2.skeleton.rest_joints)
    assert s2.image.shape == (1101, 750, 3) and s2.radii.shape == (len(PARTS), 2) and not s2.legs_guessed
    from hvg_cli.io.records import load_subject_report
    from hvg_cli.pipeline.stages import subject_key

    report = load_subject_report(cache.path(subject_key(photo, SubjectSettings())))  # stored beside the subject
    assert report["reprojection_error_px"] / report["body_height_px"] < REPROJ_FRACTION

    # the photo aligned from its own camera: its landmarks land where the aligned camera draws the body
    al = pipeline.photo_alignment(s2, 256, 256)
    s, o = al.scale[0, 0], al.offset[0, 0]
    K2 = aligned_intrinsics(s2.camera.K[None, None], al)[0, 0]
    joints = pose_joints(s2.photo_pose[None], s2.skeleton.rest_joints, s2.skeleton.parents, s2.photo_trans[None])[0]
    drawn = project_points(joints, K2, s2.camera.world_to_cam)  # [24, 2] in the aligned 256 x 256 image
    assert np.linalg.norm(drawn[0] - image_centre(256, 256)) < 1.0
    ids, obs, w = joint_observations(s2.landmarks, s2.visibility)
    warped = apply_to_points(obs, s, o)  # photo landmarks moved by the same similarity as the photo
    err = np.linalg.norm(drawn[ids] - warped, axis=-1)[w > 0.5].mean()
    assert err < REPROJ_FRACTION * 0.75 * 256  # same bound as the fit, at the aligned size (box = 75%)
    ref = warp_image(s2.image, s, o, 256, 256)
    mask = warp_image(s2.mask, s, o, 256, 256)
    c = np.round(drawn[0] - 0.5).astype(int)
    assert ref.shape == (256, 256, 3) and mask[c[1], c[0]] > 0.5  # the person's pelvis is at the centre

    # a body model file changes the key (its bytes, not its path), and its proportions are used
    data, _ = _model_dict(24)
    model = tmp_path / "SMPL_NEUTRAL.pkl"
    model.write_bytes(pickle.dumps(data, protocol=2))
    s3 = pipeline.subject(photo, SubjectSettings(body_model=str(model)), cache, SilentReporter())
    assert cache.info()["subject"]["entries"] == 2
    from hvg_cli.body.smpl_model import body_size, fit_body_model

    expect, _ = fit_body_model(model, s1.skeleton)  # s1's skeleton: the photo's own proportions
    np.testing.assert_allclose(body_size(s3.skeleton), body_size(s1.skeleton), rtol=1e-9)  # the photo's size
    np.testing.assert_allclose(s3.skeleton.rest_joints, expect.joints, atol=1e-9)  # the model's fitted shape
    with pytest.raises(BadInput, match="not found"):
        pipeline.subject(photo, SubjectSettings(body_model=str(tmp_path / "nope.npz")), cache, SilentReporter())


def test_two_people_one_is_chosen_and_the_mask_is_theirs(photos) -> None:
    img, _ = photos["photo_woman_studio.jpg"]
    two = np.ascontiguousarray(np.concatenate([img, img[:, ::-1]], axis=1))  # the same woman twice, mirrored
    d = detect_photo(two, "two.jpg")
    W = img.shape[1]
    side = d.landmarks[[11, 12, 23, 24, 27, 28], 0] < W  # every body landmark on one person's side
    assert side.all() or (~side).all()
    m = d.mask > 0.5
    mine, theirs = (m[:, :W], m[:, W:]) if side.all() else (m[:, W:], m[:, :W])
    assert mine.sum() > 0.1 * img.shape[0] * W * 0.5 and theirs.sum() < 0.01 * mine.sum()
    assert not d.legs_guessed


def test_keep_person_cuts_other_regions() -> None:
    from hvg_cli.pose.photo import keep_person

    mask = np.zeros((100, 160), np.float32)
    mask[10:90, 20:50] = 1.0  # the person
    mask[10:90, 100:140] = 0.9  # someone else
    lm = np.tile([[35.0, 50.0]], (33, 1)) + np.linspace(-10, 10, 33)[:, None]
    out, others = keep_person(mask, lm, np.ones(33))
    assert others and out[:, 90:].max() == 0.0
    np.testing.assert_array_equal(out[:, :60], mask[:, :60])
    alone, others = keep_person(mask[:, :80], lm, np.ones(33))
    assert not others
    np.testing.assert_array_equal(alone, mask[:, :80])
