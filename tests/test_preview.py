"""The preview backend: triangle rasteriser against its plain twin, photo mesh, skinning, rendering checks.

Fidelity checks follow issue 4: at rest (photo pose, photo camera) the render reproduces the photo
(mask IoU >= 0.95, PSNR >= 25 dB inside the mask); in a 360-degree orbit no pixel inside the body's
silhouette is empty; poses move the limbs.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hvg_cli.align.similarity import project_points
from hvg_cli.body.kinematics import axis_angle_to_matrix, forward_kinematics
from hvg_cli.body.skeleton import DEFAULT_PELVIS_HEIGHT, JOINT_INDEX, default_skeleton
from hvg_cli.core.types import Camera, CameraGrid, Subject

J = JOINT_INDEX


# ----------------------------------------------------------------------------------------------
# helpers
# ----------------------------------------------------------------------------------------------
def _random_scene(seed: int, B=2, N=30, F=24):
    g = torch.Generator().manual_seed(seed)
    v = torch.rand(B, N, 3, generator=g, dtype=torch.float64) * torch.tensor([2.0, 2.0, 1.0], dtype=torch.float64)
    v = v - torch.tensor([1.0, 1.0, -1.5], dtype=torch.float64)  # x, y in [-1, 1], z in [1.5, 2.5]
    faces = torch.randint(0, N, (F, 3), generator=g)
    K = torch.tensor([[30.0, 0, 20], [0, 30, 16], [0, 0, 1]], dtype=torch.float64).expand(B, 3, 3).clone()
    return v, faces, K


def _body_silhouette(subject, poses, trans, K, world_to_cam, W, H):
    """[B, H, W] bool: the ellipsoid body of the subject seen by each camera."""
    from hvg_cli.bonemap.raster import rasterise
    from hvg_cli.bonemap.render import posed_ellipsoids

    c, a, s = posed_ellipsoids(poses, trans, subject.skeleton, subject.radii)
    return (rasterise(c, a, s, K, world_to_cam, W, H).label >= 0).numpy()


def synthetic_subject(W=180, H=240, across=True) -> Subject:
    """A person made of the bone-map ellipsoids plus a skirt and hair, in a striped texture.

    The left forearm crosses in front of the body when `across` (the overlap case).
    """
    from scipy import ndimage

    from hvg_cli.bonemap.parts import default_radii
    from hvg_cli.cameras.generators import static

    sk = default_skeleton()
    pose = np.zeros((24, 3))
    pose[J["left_shoulder"]] = [0, 0, -1.2]
    pose[J["right_shoulder"]] = [0, 0, 1.2]
    if across:
        pose[J["left_elbow"]] = [0, 1.5, 0]
    trans = np.array([0.0, DEFAULT_PELVIS_HEIGHT, 0.0])
    path = static(views=1, azimuth=0, elevation=0, radius=3.0, fov=45, width=W, height=H)
    cam = Camera(K=path.K[0], world_to_cam=path.world_to_cam[0], width=W, height=H)
    radii = default_radii(sk)
    body = _body_silhouette(
        Subject(None, None, None, None, sk, pose, trans, cam, radii, ""),
        pose[None],
        trans[None],
        cam.K[None],
        cam.world_to_cam[None],
        W,
        H,
    )[0]
    _, P = forward_kinematics(axis_angle_to_matrix(pose[None]), sk.offsets, sk.parents, trans[None])
    yy, xx = np.mgrid[0:H, 0:W] + 0.5
    pel, knee, head = project_points(P[0, [0, J["left_knee"], J["head"]]], cam.K, cam.world_to_cam)  # [3, 2] px
    t = (yy - pel[1]) / (knee[1] - pel[1])
    skirt = (t >= 0) & (t <= 1.0) & (np.abs(xx - pel[0]) < (0.075 + 0.06 * t) * W)
    hair = (xx - head[0]) ** 2 + (yy - head[1] - 0.015 * H) ** 2 < (0.06 * H) ** 2
    m = ndimage.gaussian_filter((body | skirt | hair).astype(np.float32), 0.8)
    img = np.stack([0.5 + 0.4 * np.sin(xx / 7.0), 0.5 + 0.4 * np.cos(yy / 5.0), yy / H], -1)
    img = img * m[..., None] + np.array([0.2, 0.6, 0.3]) * (1 - m[..., None])
    img = (np.clip(img, 0, 1) * 255).astype(np.uint8)
    return Subject(
        image=img,
        mask=m,
        landmarks=np.zeros((33, 2)),
        visibility=np.ones(33),
        skeleton=sk,
        photo_pose=pose,
        photo_trans=trans,
        camera=cam,
        radii=radii,
        source_hash="synthetic",
    )


def _box_down(a: np.ndarray, f: int) -> np.ndarray:
    """Average f x f blocks: [H, W, ...] -> [H/f, W/f, ...] (H, W divisible by f)."""
    H, W = a.shape[:2]
    return a.reshape(H // f, f, W // f, f, *a.shape[2:]).mean(axis=(1, 3))


def rest_fidelity(subject, model=None, down: int = 1):
    """(mask IoU, PSNR dB inside the mask) of the rest-pose render from the photo camera.

    down: render at 1/down of the photo's size and compare with the photo and mask box-averaged alike.
    """
    from hvg_cli.backends.preview.render import render_preview

    c = subject.camera
    W, H = c.width // down, c.height // down
    K = c.K * np.array([W / c.width, H / c.height, 1.0])[:, None]
    grid = CameraGrid(K=K[None, None], world_to_cam=c.world_to_cam[None, None], width=W, height=H, mode="moving")
    out = render_preview(
        subject,
        subject.photo_pose[None],
        np.asarray(subject.photo_trans)[None],
        grid,
        background="transparent",
        model=model,
    )[0, 0]
    photo = _box_down(subject.image.astype(np.float64), down)
    alpha = out[..., 3] / 255.0
    mk = _box_down(subject.mask.astype(np.float64), down) > 0.5
    iou = ((alpha > 0.5) & mk).sum() / ((alpha > 0.5) | mk).sum()
    # the person's pixels only (the render's straight colour against the photo)
    diff = out[..., :3].astype(np.float64) - photo
    inner = mk & (alpha > 0.5)
    mse = (diff[inner] ** 2).mean()
    return float(iou), float(10 * np.log10(255.0**2 / max(mse, 1e-9)))


def orbit_empty_pixels(subject, model, views=8, size=(144, 192)):
    """Per view: (pixels inside the body's silhouette, of which empty in the render)."""
    from scipy import ndimage

    from hvg_cli.backends.preview.render import render_preview
    from hvg_cli.cameras.generators import orbit
    from hvg_cli.cameras.schedule import camera_grid

    W, H = size
    path = orbit(views=views, degrees=360, elevation=10, radius=3.0, fov=45, width=W, height=H)
    grid = camera_grid(path, 1, mode="views")
    out = render_preview(
        subject,
        subject.photo_pose[None],
        np.asarray(subject.photo_trans)[None],
        grid,
        background="transparent",
        model=model,
    )
    body = _body_silhouette(
        subject,
        np.repeat(subject.photo_pose[None], views, 0),
        np.repeat(np.asarray(subject.photo_trans)[None], views, 0),
        grid.K[:, 0],
        grid.world_to_cam[:, 0],
        W,
        H,
    )
    res = []
    for v in range(views):
        cov = out[v, 0, ..., 3] > 127
        inside = ndimage.binary_fill_holes(cov) & ndimage.binary_erosion(body[v], iterations=2)
        res.append((int(inside.sum()), int((inside & ~cov).sum())))
    return res, out


@pytest.fixture(scope="module")
def synth():
    from hvg_cli.backends.preview.render import build_preview_model

    s = synthetic_subject()
    return s, build_preview_model(s)


# ----------------------------------------------------------------------------------------------
# rasteriser
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_rasterise_matches_reference(seed):
    from hvg_cli.backends.preview.raster import rasterise, rasterise_reference

    v, faces, K = _random_scene(seed)
    fast = rasterise(v, faces, K, 40, 32)
    slow = rasterise_reference(v, faces, K, 40, 32)
    assert (fast.face >= 0).sum() > 200  # the scene covers a good part of the image
    torch.testing.assert_close(fast.face, slow.face)
    torch.testing.assert_close(fast.dense_bary(), slow.dense_bary())
    torch.testing.assert_close(fast.dense_depth(), slow.dense_depth())


def test_rasterise_depth_test_and_perspective():
    """A near square hides a far one; depth and barycentrics are exact on a tilted plane."""
    from hvg_cli.backends.preview.raster import rasterise

    quad = torch.tensor([[-1, -1, 0], [1, -1, 0], [1, 1, 0], [-1, 1, 0]], dtype=torch.float64)
    near = quad * torch.tensor([0.5, 0.5, 1]) + torch.tensor([0, 0, 2.0])
    far = quad * torch.tensor([3.0, 3.0, 1]) + torch.tensor([0, 0, 4.0])
    verts = torch.cat([far, near])[None]
    faces = torch.tensor([[0, 1, 2], [0, 2, 3], [4, 5, 6], [4, 6, 7]])
    K = torch.tensor([[[40.0, 0, 32], [0, 40, 32], [0, 0, 1]]], dtype=torch.float64)
    fr = rasterise(verts, faces, K, 64, 64)
    assert fr.face[0, 32, 32] >= 2 and fr.face[0, 5, 32] in (0, 1)
    d = fr.dense_depth()
    assert abs(d[0, 32, 32].item() - 2.0) < 1e-9 and abs(d[0, 5, 32].item() - 4.0) < 1e-9
    # a plane tilted in depth: z = 3 + 0.5 x; perspective-correct interpolation recovers z exactly
    tilt = torch.tensor([[-1, -1, 2.5], [1, -1, 3.5], [1, 1, 3.5], [-1, 1, 2.5]], dtype=torch.float64)[None]
    ft = rasterise(tilt, faces[:2], K, 64, 64)
    b, y, x = ft.index
    u = (x.double() + 0.5 - 32) / 40  # X / Z
    z_true = 3.0 / (1 - 0.5 * u)  # Z = 3 + 0.5 X, X = u Z
    torch.testing.assert_close(ft.depth, z_true)


def test_render_textured_supersampling_gives_partial_coverage():
    from hvg_cli.backends.preview.raster import render_textured

    # a triangle whose hypotenuse crosses pixels diagonally: edge pixels get coverage strictly between 0 and 1
    verts = torch.tensor([[[-1.0, -1.0, 2.0], [1.0, -1.0, 2.0], [-1.0, 1.0, 2.0]]], dtype=torch.float64)
    faces = torch.tensor([[0, 1, 2]])
    uv = torch.tensor([[0.5, 0.5], [1.5, 0.5], [0.5, 1.5]], dtype=torch.float64)
    tex = torch.tensor([[[1.0], [0.0]], [[0.0], [0.0]]])  # [2, 2, 1]
    K = torch.tensor([[[10.3, 0, 16], [0, 10.3, 16], [0, 0, 1]]], dtype=torch.float64)
    col, cov, depth = render_textured(verts, faces, uv, tex, K, 32, 32, ssaa=4)
    edge = (cov > 0) & (cov < 1)
    assert edge.sum() >= 5
    assert cov[0, 16, 14].item() == 1.0 and cov[0, 2, 30].item() == 0.0
    assert (col[..., 0] <= cov + 1e-6).all()  # premultiplied
    assert abs(depth[0, 16, 14].item() - 2.0) < 1e-9


# ----------------------------------------------------------------------------------------------
# mesh, background, skinning
# ----------------------------------------------------------------------------------------------
def test_lattice_mesh_outline_follows_mask():
    from scipy import ndimage

    from hvg_cli.backends.preview.mesh import boundary_edges, lattice_mesh

    H, W = 90, 70
    yy, xx = np.mgrid[0:H, 0:W] + 0.5
    mask = ndimage.gaussian_filter((((xx - 35) / 22) ** 2 + ((yy - 45) / 33) ** 2 < 1).astype(np.float32), 1.0)
    lat = lattice_mesh(mask, 4.0)
    out = lat.uv[np.unique(boundary_edges(lat.faces))]
    # outline vertices lie on the mask's 0.5 contour to within a pixel
    m_at = ndimage.map_coordinates(mask, [out[:, 1] - 0.5, out[:, 0] - 0.5], order=1)
    assert np.abs(m_at - 0.5).max() < 0.35
    r = np.sqrt(((out[:, 0] - 35) / 22) ** 2 + ((out[:, 1] - 45) / 33) ** 2)
    assert np.abs(r - 1).max() < 0.06


def test_harmonic_fill_is_linear_on_a_strip():
    from hvg_cli.backends.preview.mesh import harmonic_fill, lattice_mesh, vertex_adjacency

    lat = lattice_mesh(np.ones((9, 41), np.float32), 2.0)
    A = vertex_adjacency(lat.faces, len(lat.uv))
    x = lat.uv[:, 0]
    known = (x < 1) | (x > 40)
    f = harmonic_fill(A, np.where(x < 1, 1.0, 3.0), known)
    np.testing.assert_array_equal(f[known], np.where(x < 1, 1.0, 3.0)[known])
    # near a linear ramp (exact in the interior rows; the free outline rows bend it a little), monotone
    np.testing.assert_allclose(f, 1.0 + 2.0 * (x - x.min()) / (x.max() - x.min()), atol=0.15)
    rows = lat.grid_index[:, 0]
    for r in np.unique(rows):
        order = np.argsort(x[rows == r])
        assert (np.diff(f[rows == r][order]) > 0).all()


def test_push_pull_fill_keeps_known_and_fills_smoothly():
    from hvg_cli.backends.preview.background import push_pull_fill

    img = np.zeros((40, 50, 3), np.float32)
    img[:, :25] = 0.2
    img[:, 25:] = 0.8
    known = np.ones((40, 50), bool)
    known[10:30, 15:35] = False
    out = push_pull_fill(img, known)
    np.testing.assert_array_equal(out[known], img[known])
    hole = out[10:30, 15:35, 0]
    assert 0.2 <= hole.min() and hole.max() <= 0.8
    assert hole[:, 0].mean() < hole[:, -1].mean()  # left side of the hole stays darker


def test_remove_person_continues_the_background_across_the_hole():
    from hvg_cli.backends.preview.background import remove_person

    H, W = 120, 90
    yy, xx = np.mgrid[0:H, 0:W]
    bg = np.stack([yy / H, 0.3 + 0.4 * (xx / W), np.full_like(yy, 0.5, dtype=float)], -1)  # smooth in x and y
    mask = ((np.abs(xx - 45) < 12) & (np.abs(yy - 60) < 40)).astype(np.float32)
    image = np.where(mask[..., None] > 0, np.array([1.0, 0.0, 1.0]), bg)  # a magenta person
    out = remove_person((image * 255).astype(np.uint8), mask)
    # no magenta left and the wall's own colours continue inside the hole (within the 8-bit quantisation)
    assert np.abs(out - bg).max() < 0.03


def _backdrop_scene(W=40, H=60, distance=1.5):
    """A smooth synthetic photo, its camera on an orbit (radius 3 m, looking at the origin), the backdrop."""
    from hvg_cli.backends.preview.background import build_backdrop
    from hvg_cli.cameras.generators import orbit

    yy, xx = np.mgrid[0:H, 0:W] + 0.5
    photo = np.stack([xx / W, yy / H, 0.5 + 0.5 * np.sin(xx / 5)], -1).astype(np.float32)
    path = orbit(views=4, degrees=360, elevation=0, radius=3.0, fov=45, width=W, height=H)
    bd = build_backdrop(photo, path.K[0], path.world_to_cam[0], np.array([0.0, 0.9, 0.0]), distance=distance)
    return photo, path, bd


def test_background_photo_camera_sees_the_photo():
    from hvg_cli.backends.preview.background import render_background
    from hvg_cli.cameras.generators import orbit

    photo, path, bd = _backdrop_scene()
    same = render_background(bd, path.K[:1], path.world_to_cam[:1], 40, 60)
    # exactly the photo, except within PHOTO_BAND (0.3 m, up to ~8 px here) of its frame's edges, where the photo
    # fades into the soft world (so that no edge of its footprint shows from other views)
    np.testing.assert_allclose(same[0].numpy()[10:-10, 10:-10], photo[10:-10, 10:-10], atol=1e-4)
    # a full turn: every view is filled, and the background is continuous all the way round
    turn = orbit(views=180, degrees=360, elevation=0, radius=3.0, fov=45, width=40, height=60)
    bg = render_background(bd, turn.K, turn.world_to_cam, 40, 60).numpy()
    assert np.isfinite(bg).all() and bg.min() >= 0 and bg.max() <= 1
    centre = bg[:, 30, 20]  # [180, 3] the centre pixel over the turn
    step = np.abs(np.diff(np.concatenate([centre, centre[:1]])[:, 0])).max()  # includes the wrap 358 -> 0 degrees
    assert step < 0.15
    assert centre[:, 0].max() - centre[:, 0].min() > 0.3  # and it really changes with the view


def test_backdrop_and_ground_stay_in_place():
    """A point of the backdrop and a point of the ground are drawn where another camera sees them in 3D
    (the photo is on planes of the scene, not on a sphere around each camera)."""
    from hvg_cli.align.similarity import project_points
    from hvg_cli.backends.preview.background import render_background
    from hvg_cli.cameras.generators import orbit

    W, H = 80, 120
    photo, path, bd = _backdrop_scene(W, H)
    n, c = bd.plane[:3], bd.plane[3]
    assert abs(n @ np.array([0.0, 0.9, 0.0]) - c - 1.5) < 1e-9  # 1.5 m behind the person, facing the camera
    side = orbit(views=3, degrees=360, elevation=5, radius=3.0, fov=45, width=W, height=H, start=35.0)
    out = render_background(bd, side.K, side.world_to_cam, W, H)[0].numpy()
    # on the backdrop; on the ground (both deeper than PHOTO_BAND inside the photo's footprint)
    for X in (np.array([0.2, 1.4, 0.0]) - 1.5 * n, np.array([0.3, 0.0, 0.1])):
        u, v = project_points(X[None], path.K[0], path.world_to_cam[0])[0]  # where the photo shows it
        x, y = project_points(X[None], side.K[0], side.world_to_cam[0])[0]  # where the turned camera sees it
        assert 0 <= x < W and 0 <= y < H
        expect = photo[int(v), int(u)]
        np.testing.assert_allclose(out[int(y), int(x)], expect, atol=0.06)


def test_lbs_is_identity_at_rest_and_moves_the_arm(synth):
    from hvg_cli.backends.preview.skin import joint_transforms, pose_vertices
    from hvg_cli.bonemap.parts import PART_INDEX

    s, model = synth
    m = model.mesh
    A = joint_transforms(s.photo_pose[None], s.photo_trans[None], s.skeleton, s.photo_pose, s.photo_trans)
    torch.testing.assert_close(pose_vertices(m, A)[0], torch.from_numpy(m.verts))
    # raise the right arm: its forearm vertices move by tens of centimetres, the head stays put
    pose = s.photo_pose.copy()
    pose[J["right_shoulder"]] = [0, 0, -0.3]
    v = pose_vertices(m, joint_transforms(pose[None], s.photo_trans[None], s.skeleton, s.photo_pose, s.photo_trans))[
        0
    ].numpy()
    move = np.linalg.norm(v - m.verts, axis=1)
    fore = m.labels == PART_INDEX["right_forearm"]
    head = m.labels == PART_INDEX["head"]
    assert fore.sum() > 20 and np.median(move[fore]) > 0.3
    assert move[head].max() < 1e-9


def test_overlapping_forearm_is_cut_from_the_torso(synth):
    """The left forearm lies across the body in the photo: no triangle joins it to torso parts."""
    from hvg_cli.backends.preview.skin import part_adjacency
    from hvg_cli.bonemap.parts import PART_INDEX

    s, model = synth
    m = model.mesh
    lab = m.labels[m.faces]  # [F, 3]
    fore = PART_INDEX["left_forearm"]
    torso = [PART_INDEX[n] for n in ("belly", "ribs", "pelvis")]
    has_fore = (lab == fore).any(1)
    has_torso = np.isin(lab, torso).any(1)
    assert has_fore.sum() > 10 and not (has_fore & has_torso).any()
    assert not part_adjacency()[fore, PART_INDEX["belly"]]


# ----------------------------------------------------------------------------------------------
# rendering checks on the synthetic subject
# ----------------------------------------------------------------------------------------------
def test_rest_pose_reproduces_the_photo_synthetic(synth):
    s, model = synth
    iou, psnr = rest_fidelity(s, model)
    assert iou >= 0.95 and psnr >= 25.0, (iou, psnr)


def test_orbit_has_no_holes_synthetic(synth):
    s, model = synth
    res, out = orbit_empty_pixels(s, model)
    assert all(n > 500 for n, _ in res), res
    assert all(e == 0 for _, e in res), res


def test_render_preview_backgrounds_and_static_frames_identical(synth):
    from hvg_cli.backends.preview.render import render_preview
    from hvg_cli.cameras.generators import static
    from hvg_cli.cameras.schedule import camera_grid
    from hvg_cli.core.errors import BadInput

    s, model = synth
    path = static(views=1, azimuth=30, elevation=5, radius=3.0, fov=45, width=64, height=80)
    grid = camera_grid(path, 3, mode="moving")
    poses = np.repeat(s.photo_pose[None], 3, 0)
    trans = np.repeat(np.asarray(s.photo_trans)[None], 3, 0)
    photo = render_preview(s, poses, trans, grid, background="photo", model=model)
    assert photo.shape == (1, 3, 80, 64, 4) and photo.dtype == np.uint8
    np.testing.assert_array_equal(photo[0, 0], photo[0, 2])  # nothing moves: identical frames
    assert (photo[..., 3] == 255).all()
    red = render_preview(s, poses, trans, grid, background=(255, 0, 0), model=model)
    assert tuple(red[0, 0, 0, 0, :3]) == (255, 0, 0)
    clear = render_preview(s, poses, trans, grid, background="transparent", model=model)
    a = clear[0, 0, ..., 3]
    assert a[0, 0] == 0 and (a == 255).sum() > 200
    # the person's pixels are the same whatever the background
    full = a == 255
    np.testing.assert_array_equal(clear[0, 0][full][:, :3], red[0, 0][full][:, :3])
    with pytest.raises(BadInput):
        render_preview(s, poses[:2], trans[:2], grid, model=model)
    with pytest.raises(BadInput):
        render_preview(s, poses, trans, grid, background="plaid", model=model)


def test_a_raised_arm_is_drawn_where_the_skeleton_puts_it(synth):
    """Motion moves the limbs: with the right arm raised overhead, the render covers the projected
    elbow and wrist of the target skeleton, where the photo pose had background."""
    from hvg_cli.backends.preview.render import render_preview

    s, model = synth
    pose = s.photo_pose.copy()
    pose[J["right_shoulder"]] = [0, 0, -1.3]  # from hanging down to above the horizontal
    c = s.camera
    grid = CameraGrid(
        K=np.stack([c.K] * 2)[None],
        world_to_cam=np.stack([c.world_to_cam] * 2)[None],
        width=c.width,
        height=c.height,
        mode="moving",
    )
    out = render_preview(
        s,
        np.stack([s.photo_pose, pose]),
        np.repeat(np.asarray(s.photo_trans)[None], 2, 0),
        grid,
        background="transparent",
        model=model,
    )[0]
    _, P = forward_kinematics(
        axis_angle_to_matrix(pose[None]), s.skeleton.offsets, s.skeleton.parents, s.photo_trans[None]
    )
    names = ("right_elbow", "right_wrist")
    for j, (u, v) in zip(names, project_points(P[0, [J[n] for n in names]], c.K, c.world_to_cam)):
        x, y = int(u), int(v)
        assert out[1, y - 1 : y + 2, x - 1 : x + 2, 3].min() > 200, j  # the arm is drawn there now
        assert out[0, y, x, 3] < 50, j  # and was not there in the photo pose


# ----------------------------------------------------------------------------------------------
# the real photos through the real pipeline pieces (MediaPipe subject, bone-map body)
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name,down", [("photo_woman_street.jpg", 2), ("photo_woman_studio.jpg", 1)])
def test_rest_pose_reproduces_the_photo(real, name, down):
    """Issues 4 and 12: mask IoU >= 0.98 and PSNR >= 30 dB inside the mask (street: at half size to keep the run
    short). Measured here: street 0.981 / 40.9 dB at half size, studio 0.989 / 31.3 dB at full size; both were
    0.996 / 0.995 before the mask's own background (the street's cast shadow under the shoes, the studio's grey gap
    between wrist and shorts) was left out of the mesh, which this test still counts as person."""
    s, model = real[name]
    assert model.mesh.verts.shape[0] > 20000  # a fine mesh, not a few big triangles
    iou, psnr = rest_fidelity(s, model, down=down)
    assert iou >= 0.98 and psnr >= 30.0, (iou, psnr)


def test_orbit_has_no_holes_street(real):
    s, model = real["photo_woman_street.jpg"]
    res, _ = orbit_empty_pixels(s, model, views=8, size=(192, 192))
    assert all(n > 1000 for n, _ in res), res
    assert all(e == 0 for _, e in res), res


def test_mask_far_from_the_body_still_renders_at_rest():
    """The body fit can miss: with the ellipsoids moved off the person, the mesh still lifts (at the
    pelvis depth) and the photo comes back at rest."""
    import dataclasses

    from hvg_cli.backends.preview.render import build_preview_model

    s = synthetic_subject()
    moved = dataclasses.replace(s, photo_trans=s.photo_trans + np.array([3.0, 0.0, 0.0]))
    model = build_preview_model(moved)
    assert not np.isnan(model.mesh.verts).any()
    iou, psnr = rest_fidelity(moved, model)
    assert iou >= 0.95 and psnr >= 25.0, (iou, psnr)


def test_hand_parts_keep_only_pixels_near_the_hand_landmarks():
    from hvg_cli.backends.preview.mesh import trim_hands
    from hvg_cli.bonemap.parts import PART_INDEX

    H, W = 60, 60
    near = np.full((H, W), -1, np.int64)
    near[10:50, 10:50] = PART_INDEX["left_fingers"]  # a coarse hand ellipsoid over the clothes
    far = np.full((H, W), PART_INDEX["pelvis"], np.int64)
    lm = np.zeros((33, 2))
    lm[[15, 17, 19, 21]] = [[20, 20], [26, 20], [20, 26], [26, 26]]  # the real hand: a 6 px square
    vis = np.ones(33)
    out = trim_hands(near, far, lm, vis)
    kept = out == PART_INDEX["left_fingers"]
    assert kept[23, 23] and kept.sum() < 200  # the hand itself stays, a small area around it
    assert out[45, 45] == PART_INDEX["pelvis"]  # far from the hand: what lies behind
    vis[[15, 17, 19, 21]] = 0.1  # a hand MediaPipe did not see gives everything up
    assert not (trim_hands(near, far, lm, vis) == PART_INDEX["left_fingers"]).any()


def test_back_of_head_shows_hair_not_a_second_face() -> None:
    """The back panel covers the face ellipse with the hair's colour and leaves the rest of the person alone."""
    from hvg_cli.backends.preview.render import back_of_head
    from hvg_cli.bonemap.parts import PART_INDEX

    H, W = 200, 160
    tex = np.zeros((H, W, 3), np.float32)
    tex[:] = (0.2, 0.4, 0.9)  # clothes
    label = np.full((H, W), -1)
    label[20:100, 50:110] = PART_INDEX["head"]
    tex[20:100, 50:110] = (0.3, 0.2, 0.1)  # hair
    tex[45:90, 62:98] = (0.95, 0.8, 0.7)  # skin of the face
    mask = np.zeros((H, W), np.float32)
    mask[20:190, 40:120] = 1.0
    lm = np.zeros((33, 2))
    lm[0] = (80, 68)  # nose
    lm[2], lm[5] = (90, 58), (70, 58)  # eyes
    lm[7], lm[8] = (100, 62), (60, 62)  # ears
    lm[9], lm[10] = (86, 78), (74, 78)  # mouth
    lm[[1, 3, 4, 6]] = lm[[2, 2, 5, 5]]
    vis = np.ones(33)
    out = back_of_head(tex, lm, vis, label, mask)
    np.testing.assert_allclose(out[68, 80], (0.3, 0.2, 0.1), atol=0.05)  # face centre -> hair
    np.testing.assert_array_equal(out[150:, :], tex[150:, :])  # the body below is untouched
    np.testing.assert_array_equal(back_of_head(tex, lm, np.zeros(33), label, mask), tex)  # face not seen: unchanged


def test_back_sheet_samples_the_back_panel(real) -> None:
    _, model = real["photo_woman_street.jpg"]
    W = model.background.shape[1]
    assert model.texture.shape[1] == 3 * W
    assert model.mesh.back.any() and (~model.mesh.back).any()
    assert (model.mesh.uv[model.mesh.back, 0] >= 2 * W - 1).all()
    assert (model.mesh.uv[~model.mesh.back, 0] < 2 * W).all()
