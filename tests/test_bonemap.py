"""Bone maps: the ellipsoid body, the rasteriser against its reference twin and analytic cases, rendering."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from hvg_cli.body.kinematics import axis_angle_to_matrix, forward_kinematics
from hvg_cli.body.skeleton import DEFAULT_PELVIS_HEIGHT, JOINT_INDEX, default_skeleton
from hvg_cli.bonemap.parts import NUM_PARTS, PALETTE, PART_INDEX, PARTS, default_radii, part_ellipsoids
from hvg_cli.bonemap.raster import rasterise, rasterise_reference
from hvg_cli.bonemap.render import grid_images, render_bonemaps, to_images
from hvg_cli.cameras.generators import intrinsics as fov_intrinsics
from hvg_cli.cameras.generators import look_at
from hvg_cli.core.types import CameraGrid, Skeleton

F64 = torch.float64
BODY_CENTRE = (0.0, 0.9, 0.0)  # what the job cameras look at, metres


# ---------------------------------------------------------------------------------------------
# Scenes
# ---------------------------------------------------------------------------------------------
def intrinsics(width: int, height: int, f: float) -> np.ndarray:
    return np.array([[f, 0.0, width / 2], [0.0, f, height / 2], [0.0, 0.0, 1.0]])


def random_rotations(rng: np.random.Generator, n: int) -> np.ndarray:
    """[n, 3, 3] random rotations (QR of Gaussian matrices, det +1)."""
    q, r = np.linalg.qr(rng.normal(size=(n, 3, 3)))
    q = q * np.sign(np.diagonal(r, axis1=-2, axis2=-1))[:, None, :]
    q[np.linalg.det(q) < 0, :, 0] *= -1
    return q


def random_scene(seed: int, N: int = 3, P: int = 9, W: int = 64, H: int = 48):
    """Overlapping ellipsoids around the origin, some partly off-screen, cameras 2-4 m away at random angles."""
    rng = np.random.default_rng(seed)
    centers = rng.uniform(-0.9, 0.9, (N, P, 3))  # wider than the view: some ellipsoids leave the frame
    axes = random_rotations(rng, N * P).reshape(N, P, 3, 3)
    semi = rng.uniform(0.08, 0.45, (N, P, 3))
    K = np.stack([intrinsics(W, H, rng.uniform(45, 80)) for _ in range(N)])
    w2c = look_at(np.stack([_orbit(rng) for _ in range(N)]), np.zeros(3))  # [N, 4, 4]
    return centers, axes, semi, K, w2c, W, H


def _orbit(rng: np.random.Generator) -> np.ndarray:
    az, el, r = rng.uniform(0, 2 * math.pi), rng.uniform(-0.8, 0.8), rng.uniform(2.0, 4.0)
    return r * np.array([math.sin(az) * math.cos(el), math.sin(el), math.cos(az) * math.cos(el)])


def assert_same(fast, ref, check_normals: bool = True):
    torch.testing.assert_close(fast.label, ref.label, rtol=0, atol=0)
    torch.testing.assert_close(fast.depth, ref.depth, rtol=1e-7, atol=1e-7)  # metres
    if check_normals:
        torch.testing.assert_close(fast.normal, ref.normal, rtol=1e-6, atol=1e-6)


# ---------------------------------------------------------------------------------------------
# Fast rasteriser == reference twin
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("far", [False, True])
def test_rasterise_matches_reference_random_scenes(seed, far):
    scene = random_scene(seed)
    fast = rasterise(*scene, far=far, dtype=F64)
    ref = rasterise_reference(*scene, far=far, dtype=F64)
    covered = (ref.label >= 0).float().mean().item()
    assert 0.05 < covered < 0.95, covered  # a real scene: neither empty nor a full screen
    assert len(torch.unique(ref.label)) >= 5  # several ellipsoids visible: occlusion is exercised
    assert_same(fast, ref)


@pytest.mark.parametrize("tile", [4, 16, 64])
def test_rasterise_any_resolution_and_tile(tile):
    scene = random_scene(7, N=2, W=61, H=37)  # sizes that are not multiples of the tile
    fast = rasterise(*scene, dtype=F64, tile=tile, max_elements=2000)  # many small groups
    ref = rasterise_reference(*scene, dtype=F64)
    assert fast.depth.shape == (2, 37, 61) and fast.normal.shape == (2, 37, 61, 3)
    assert_same(fast, ref)


def test_rasterise_partly_off_screen_ellipsoid():
    W, H = 64, 48
    K = intrinsics(W, H, 60.0)[None]
    w2c = np.eye(4)[None]
    # an ellipsoid whose centre projects outside the image on the right, but which reaches into it
    centers = np.array([[[1.3, 0.0, 3.0], [0.0, 0.2, 3.5]]])
    axes = np.broadcast_to(np.eye(3), (1, 2, 3, 3)).copy()
    semi = np.array([[[0.9, 0.3, 0.3], [0.2, 0.3, 0.25]]])
    fast = rasterise(centers, axes, semi, K, w2c, W, H, dtype=F64)
    ref = rasterise_reference(centers, axes, semi, K, w2c, W, H, dtype=F64)
    assert (ref.label == 0).any() and (ref.label == 1).any()
    assert_same(fast, ref)


def test_rasterise_camera_inside_an_ellipsoid_and_nothing_in_view():
    W, H = 40, 30
    K = np.stack([intrinsics(W, H, 40.0)] * 2)
    w2c = np.stack([np.eye(4)] * 2)
    axes = np.broadcast_to(np.eye(3), (2, 3, 3, 3)).copy()
    # view 0: the camera sits inside ellipsoid 0 (a room), ellipsoid 1 stands in front of it, 2 crosses
    # the camera plane; view 1: everything behind the camera (nothing in view)
    centers = np.array(
        [[[0.1, 0.0, 0.3], [0.0, 0.1, 1.5], [0.8, 0.0, 0.2]], [[0.0, 0.0, -3.0], [0.5, 0.0, -2.0], [0.0, 0.4, -1.0]]]
    )
    semi = np.array(
        [[[3.0, 2.5, 4.0], [0.3, 0.4, 0.3], [0.3, 0.5, 0.6]], [[0.5, 0.5, 0.5], [0.3, 0.3, 0.3], [0.2, 0.2, 0.2]]]
    )
    for far in (False, True):
        fast = rasterise(centers, axes, semi, K, w2c, W, H, far=far, dtype=F64)
        ref = rasterise_reference(centers, axes, semi, K, w2c, W, H, far=far, dtype=F64)
        assert_same(fast, ref)
        assert (ref.label[0] >= 0).all()  # inside a closed ellipsoid every ray hits its wall
        assert (ref.label[1] == -1).all() and (ref.depth[1] == 0).all() and (ref.normal[1] == 0).all()
    near = rasterise(centers, axes, semi, K, w2c, W, H, dtype=F64)
    assert (near.label[0] == 1).any() and (near.label[0] == 0).any()


def test_rasterise_float32_default_close_to_reference():
    scene = random_scene(3)
    fast = rasterise(*scene)  # production precision
    ref = rasterise_reference(*scene, dtype=F64)
    assert fast.depth.dtype == torch.float32
    same = fast.label == ref.label
    assert same.float().mean() > 0.998
    torch.testing.assert_close(fast.depth.double()[same], ref.depth[same], rtol=0, atol=2e-3)


# ---------------------------------------------------------------------------------------------
# Analytic cases (both implementations)
# ---------------------------------------------------------------------------------------------
RASTERISERS = [pytest.param(rasterise, id="fast"), pytest.param(rasterise_reference, id="reference")]


def _axis_scene(spheres, W=65, H=49, f=70.0):
    """Spheres (radius, z) on the optical axis of a camera at the origin (OpenCV, looking down +z)."""
    P = len(spheres)
    centers = np.array([[[0.0, 0.0, z] for _, z in spheres]])
    axes = np.broadcast_to(np.eye(3), (1, P, 3, 3)).copy()
    semi = np.array([[[r, r, r] for r, _ in spheres]])
    return centers, axes, semi, intrinsics(W, H, f)[None], np.eye(4)[None], W, H


@pytest.mark.parametrize("rast", RASTERISERS)
def test_sphere_depth_at_centre_pixel(rast):
    r, d = 0.3, 2.0
    scene = _axis_scene([(r, d)])
    W, H = scene[-2], scene[-1]
    near = rast(*scene, dtype=F64)
    far = rast(*scene, far=True, dtype=F64)
    i, j = H // 2, W // 2  # odd sizes: this pixel's centre is the principal point
    assert near.depth[0, i, j].item() == pytest.approx(d - r, abs=1e-12)
    assert far.depth[0, i, j].item() == pytest.approx(d + r, abs=1e-12)
    torch.testing.assert_close(near.normal[0, i, j], torch.tensor([0.0, 0.0, 1.0], dtype=F64))
    torch.testing.assert_close(far.normal[0, i, j], torch.tensor([0.0, 0.0, -1.0], dtype=F64))
    # silhouette: a disc of radius f r / sqrt(d^2 - r^2) pixels
    area = (near.label[0] == 0).sum().item()
    expect = math.pi * (70.0 * r / math.sqrt(d * d - r * r)) ** 2
    assert abs(area - expect) < 0.05 * expect
    # everywhere: the hit point lies on the sphere, and the normal is (hit - centre) / r
    ys, xs = torch.nonzero(near.label[0] == 0, as_tuple=True)
    z = near.depth[0, ys, xs]
    X = torch.stack([(xs + 0.5 - W / 2) / 70.0 * z, (ys + 0.5 - H / 2) / 70.0 * z, z], -1)  # camera space
    torch.testing.assert_close(
        torch.linalg.norm(X - torch.tensor([0, 0, d], dtype=F64), dim=-1), torch.full_like(z, r), rtol=0, atol=1e-7
    )
    n_cv = (X - torch.tensor([0, 0, d], dtype=F64)) / r
    torch.testing.assert_close(
        near.normal[0, ys, xs], n_cv * torch.tensor([1.0, -1.0, -1.0], dtype=F64), rtol=1e-6, atol=1e-6
    )


@pytest.mark.parametrize("rast", RASTERISERS)
def test_normals_unit_and_facing_the_camera(rast):
    scene = random_scene(5)
    out = rast(*scene, dtype=F64)
    m = out.label >= 0
    norms = torch.linalg.norm(out.normal[m], dim=-1)
    torch.testing.assert_close(norms, torch.ones_like(norms))
    # facing the camera: the normal points against the pixel's ray (ray in the y-up, z-to-viewer axes)
    centers, axes, semi, K, w2c, W, H = scene
    ys, xs = torch.meshgrid(torch.arange(H, dtype=F64) + 0.5, torch.arange(W, dtype=F64) + 0.5, indexing="ij")
    fx, cx, cy = torch.as_tensor(K[:, 0, 0]), torch.as_tensor(K[:, 0, 2]), torch.as_tensor(K[:, 1, 2])
    ray = torch.stack(
        [
            (xs - cx[:, None, None]) / fx[:, None, None],
            -(ys - cy[:, None, None]) / fx[:, None, None],
            -torch.ones_like(xs).expand(len(K), H, W),
        ],
        -1,
    )  # [N, H, W, 3]
    assert ((out.normal * ray).sum(-1)[m] < 0).all()
    assert (out.normal[m][:, 2] > 0).float().mean() > 0.9  # y-up / z-toward-viewer: front faces have z > 0
    assert (out.normal[~m] == 0).all() and (out.depth[~m] == 0).all()
    # a sphere on the optical axis: z > 0 everywhere; image "up" is normal +y (its top rim points up)
    sph = _axis_scene([(0.3, 2.0)])
    o = rast(*sph, dtype=F64)
    assert (o.normal[o.label >= 0][:, 2] > 0).all()
    col = o.label[0, :, sph[-2] // 2]
    top = int(torch.nonzero(col == 0)[0])
    assert o.normal[0, top, sph[-2] // 2, 1] > 0.5


@pytest.mark.parametrize("rast", RASTERISERS)
def test_nearer_ellipsoid_hides_farther_one(rast):
    scene = _axis_scene([(0.8, 4.0), (0.2, 2.0)])  # a big far sphere (0) and a small near one (1)
    W, H = scene[-2], scene[-1]
    out = rast(*scene, dtype=F64)
    assert out.label[0, H // 2, W // 2] == 1
    assert out.depth[0, H // 2, W // 2].item() == pytest.approx(1.8, abs=1e-12)
    assert out.label[0, H // 2, W // 2 + 13] == 0  # outside the small one, inside the big one
    far = rast(*scene, far=True, dtype=F64)
    assert far.label[0, H // 2, W // 2] == 0 and far.depth[0, H // 2, W // 2].item() == pytest.approx(4.8, abs=1e-12)


# ---------------------------------------------------------------------------------------------
# Parts and palette
# ---------------------------------------------------------------------------------------------
def test_parts_table_and_palette():
    assert 25 <= NUM_PARTS <= 32 and len(PARTS) == NUM_PARTS == len(PALETTE)
    names = [p.name for p in PARTS]
    assert len(set(names)) == NUM_PARTS
    colours = [tuple(int(x) for x in c) for c in PALETTE]
    assert len(set(colours)) == NUM_PARTS
    d = np.linalg.norm(PALETTE[:, None].astype(float) - PALETTE[None].astype(float), axis=-1)
    assert d[~np.eye(NUM_PARTS, dtype=bool)].min() >= 50  # clearly distinct on a video
    pairs = [(n, "right_" + n[5:]) for n in names if n.startswith("left_")]
    assert len(pairs) >= 10
    for left, right in pairs:
        cl, cr = PALETTE[PART_INDEX[left]].astype(int), PALETTE[PART_INDEX[right]].astype(int)
        assert np.abs(cl - cr).sum() >= 150, (left, right)
        assert cl[0] > cl[2] and cr[2] > cr[0], (left, right)  # left warm, right cool: never mirrored
    for p in PARTS:  # the part's joint lies on its side of the body
        side = "left_" if p.name.startswith("left_") else "right_" if p.name.startswith("right_") else None
        joint_name = [k for k, v in JOINT_INDEX.items() if v == (p.child if p.child is not None else p.joint)][0]
        if side and p.joint != JOINT_INDEX["pelvis"]:
            assert joint_name.startswith(side), p.name


def _posed(poses: np.ndarray, skel: Skeleton):
    G, J = forward_kinematics(axis_angle_to_matrix(poses), skel.offsets, skel.parents)
    return J, G


def _inside(points: np.ndarray, centers, axes, semi) -> np.ndarray:
    """[K] whether each point [K, 3] lies inside at least one ellipsoid [P, ...]."""
    local = np.einsum("pji,kpj->kpi", axes, points[:, None] - centers[None]) / semi[None]  # [K, P, 3]
    return (np.sum(local**2, -1) <= 1.0).any(-1)


def test_part_ellipsoids_geometry_and_closed_body():
    skel = default_skeleton()
    radii = default_radii(skel)
    rng = np.random.default_rng(0)
    poses = np.zeros((3, 24, 3))
    poses[1] = rng.normal(0, 0.35, (24, 3))
    poses[2, 3] = [0, math.pi / 2, 0]  # spine1 turned a quarter about the vertical
    J, G = _posed(poses, skel)
    c, a, s = part_ellipsoids(J, G, radii)
    assert c.shape == (3, NUM_PARTS, 3) and a.shape == (3, NUM_PARTS, 3, 3) and s.shape == (3, NUM_PARTS, 3)
    np.testing.assert_allclose(a.transpose(0, 1, 3, 2) @ a, np.broadcast_to(np.eye(3), a.shape), atol=1e-9)
    np.testing.assert_allclose(np.linalg.det(a), 1.0, atol=1e-9)
    assert (s > 0.005).all() and (s < 0.35).all()
    for i, p in enumerate(PARTS):
        if p.child is not None:  # long axis along the bone, centred on it
            bone = J[:, p.child] - J[:, p.joint]
            np.testing.assert_allclose(
                np.abs(np.sum(a[:, i, :, 0] * bone, -1)), np.linalg.norm(bone, axis=-1), rtol=1e-9
            )
    for f in range(3):
        # every joint and the whole spine line lie inside the body (a closed volume, overlapping at joints)
        pts = np.concatenate([J[f], np.linspace(J[f, 0], J[f, 12], 30)])
        assert _inside(pts, c[f], a[f], s[f]).all()
    # twist shows: the belly's depth axis follows the spine1 rotation (from +z to +x)
    belly = PART_INDEX["belly"]
    np.testing.assert_allclose(a[0, belly, :, 2], [0, 0, 1], atol=0.1)
    assert abs(a[2, belly, 0, 2]) > 0.95
    # leaves follow their joint: a foot rotated about the ankle points along the rotated forward axis
    poses = np.zeros((1, 24, 3))
    poses[0, JOINT_INDEX["left_ankle"]] = [0, math.pi / 2, 0]
    J, G = _posed(poses, skel)
    c, a, s = part_ellipsoids(J, G, radii)
    np.testing.assert_allclose(np.abs(a[0, PART_INDEX["left_foot"], :, 0]), [1, 0, 0], atol=1e-9)


def test_default_radii_scale_with_the_skeleton():
    skel = default_skeleton()
    base = default_radii(skel)
    assert base.shape == (NUM_PARTS, 2) and (base > 0.01).all() and (base < 0.2).all()
    big = default_radii(Skeleton(rest_joints=skel.rest_joints * 1.2))
    np.testing.assert_allclose(big, base * 1.2, rtol=1e-9)
    # longer forearms only: the forearms get thicker, but the head does not
    rest = skel.rest_joints.copy()
    for w, e in (("left_wrist", "left_elbow"), ("right_wrist", "right_elbow")):
        shift = 0.5 * (rest[JOINT_INDEX[w]] - rest[JOINT_INDEX[e]])
        for j in (w, w.replace("wrist", "hand")):
            rest[JOINT_INDEX[j]] += shift
    long_arms = default_radii(Skeleton(rest_joints=rest))
    fa = PART_INDEX["left_forearm"]
    assert long_arms[fa, 0] > base[fa, 0] * 1.05
    np.testing.assert_allclose(long_arms[PART_INDEX["head"]], base[PART_INDEX["head"]], rtol=1e-9)


# ---------------------------------------------------------------------------------------------
# Rendering a job
# ---------------------------------------------------------------------------------------------
def _grid(positions, T: int, W: int = 64, H: int = 48, fov: float = 45.0) -> CameraGrid:
    K = np.broadcast_to(fov_intrinsics(fov, W, H), (len(positions), T, 3, 3)).copy()
    M = np.repeat(look_at(np.asarray(positions, float), BODY_CENTRE)[:, None], T, axis=1)  # [V, T, 4, 4]
    return CameraGrid(K=K, world_to_cam=M, width=W, height=H, mode="views")


def _arms_down(T: int) -> np.ndarray:
    poses = np.zeros((T, 24, 3))
    poses[:, JOINT_INDEX["left_shoulder"]] = [0, 0, -0.6]
    poses[:, JOINT_INDEX["right_shoulder"]] = [0, 0, 0.6]
    poses[:, JOINT_INDEX["left_hip"], 0] = np.linspace(-0.4, 0.4, T)  # a step
    return poses


class RecordingReporter:
    def __init__(self):
        self.tasks = []

    def task(self, description, total, unit="frames"):
        import contextlib

        rec = {"description": description, "total": total, "unit": unit, "done": 0}
        self.tasks.append(rec)

        class _T:
            def advance(self, n=1):
                rec["done"] += n

        return contextlib.nullcontext(_T())

    def note(self, message):
        pass


def test_render_bonemaps_front_and_back_left_right():
    skel = default_skeleton()
    radii = default_radii(skel)
    T = 2
    trans = np.tile([0.0, DEFAULT_PELVIS_HEIGHT, 0.0], (T, 1))
    grid = _grid([(0.0, 0.9, 3.5), (0.0, 0.9, -3.5)], T)  # front (+z), back (-z)
    rep = RecordingReporter()
    maps = render_bonemaps(_arms_down(T), trans, skel, radii, grid, progress=rep, chunk=3)
    V, H, W = 2, 48, 64
    assert maps.shape == (V, T, H, W)
    assert maps.semantic.dtype == np.uint8 and maps.normal.dtype == np.float16
    assert maps.depth.dtype == np.float32 and maps.label.dtype == np.int8 and maps.mask.dtype == bool
    assert rep.tasks == [{"description": "bone maps", "total": V * T, "unit": "maps", "done": V * T}]
    np.testing.assert_array_equal(maps.mask, maps.label >= 0)
    lab = maps.label.astype(int)
    expect = np.where(lab[..., None] >= 0, PALETTE[np.maximum(lab, 0)], 0)
    np.testing.assert_array_equal(maps.semantic, expect)
    assert 0.02 < maps.mask.mean() < 0.3
    cols = np.arange(W)
    for v, sign in ((0, 1), (1, -1)):  # front: the subject's left is on the image's right; back: mirrored
        for t in range(T):
            la = maps.label[v, t] == PART_INDEX["left_upper_arm"]
            ra = maps.label[v, t] == PART_INDEX["right_upper_arm"]
            assert la.sum() > 5 and ra.sum() > 5
            lx = (la * cols).sum() / la.sum()
            rx = (ra * cols).sum() / ra.sum()
            assert sign * (lx - W / 2) > 3 and sign * (rx - W / 2) < -3
    # the subject is 3.5 m away; the head is at the top of the image, the feet at the bottom
    d = maps.depth[maps.mask]
    assert d.min() > 2.8 and d.max() < 4.2
    rows = np.arange(H)[:, None]
    head = maps.label[0, 0] == PART_INDEX["head"]
    foot = np.isin(maps.label[0, 0], [PART_INDEX["left_foot"], PART_INDEX["right_foot"]])
    assert (head * rows).sum() / head.sum() < H / 3 < 2 * H / 3 < (foot * rows).sum() / foot.sum()
    # chunking does not change the result
    again = render_bonemaps(_arms_down(T), trans, skel, radii, grid, chunk=1)
    np.testing.assert_array_equal(again.label, maps.label)
    np.testing.assert_array_equal(again.depth, maps.depth)


def test_render_matches_reference_on_the_body():
    skel = default_skeleton()
    radii = default_radii(skel)
    trans = np.array([[0.0, DEFAULT_PELVIS_HEIGHT, 0.0]])
    grid = _grid([(1.5, 1.2, 2.5)], 1)
    maps = render_bonemaps(_arms_down(1), trans, skel, radii, grid)
    from hvg_cli.bonemap.render import posed_ellipsoids

    c, a, s = posed_ellipsoids(_arms_down(1), trans, skel, radii)
    ref = rasterise_reference(c, a, s, grid.K[0], grid.world_to_cam[0], 64, 48, dtype=F64)
    same = maps.label[0, 0] == ref.label[0].numpy()
    assert same.mean() > 0.995
    np.testing.assert_allclose(maps.depth[0, 0][same], ref.depth[0].numpy()[same], atol=2e-3)
    err = np.abs(maps.normal[0, 0][same].astype(float) - ref.normal[0].numpy()[same])  # float32 maths, float16 storage
    assert err.max() < 2e-2 and err.mean() < 1e-3


def test_to_images_and_grid():
    skel = default_skeleton()
    T = 2
    trans = np.tile([0.0, DEFAULT_PELVIS_HEIGHT, 0.0], (T, 1))
    pos = [(3.0 * math.sin(a), 1.0, 3.0 * math.cos(a)) for a in np.linspace(0, 2 * math.pi, 5, endpoint=False)]
    maps = render_bonemaps(_arms_down(T), trans, skel, default_radii(skel), _grid(pos, T))
    V, _, H, W = maps.shape
    img = to_images(maps)
    assert img.shape == (V, T, H, 4 * W, 3) and img.dtype == np.uint8
    sem, nor, dep, msk = (img[..., i * W : (i + 1) * W, :] for i in range(4))
    np.testing.assert_array_equal(sem, maps.semantic)
    np.testing.assert_array_equal(msk[..., 0] == 255, maps.mask)
    np.testing.assert_array_equal(msk[..., 0] == 0, ~maps.mask)
    m = maps.mask
    n = maps.normal.astype(np.float32)
    assert np.abs(nor[m].astype(float) / 255 * 2 - 1 - n[m]).max() < 0.02
    assert (nor[~m] == 0).all() and (dep[~m] == 0).all()
    # near bright, far dim
    d = np.where(m, maps.depth, np.nan)
    near, far = np.unravel_index(np.nanargmin(d), d.shape), np.unravel_index(np.nanargmax(d), d.shape)
    assert dep[near][0] > dep[far][0] + 100
    only = to_images(maps, channels=("mask",))
    assert only.shape == (V, T, H, W, 3)
    g = grid_images(img)  # 5 views: 3 columns, 2 rows
    assert g.shape == (T, 2 * H, 3 * 4 * W, 3)
    np.testing.assert_array_equal(g[1, H:, 4 * W : 8 * W], img[4, 1])  # view 4: row 1, column 1
    np.testing.assert_array_equal(g[0, :H, 8 * W :], img[2, 0])
    assert (g[:, H:, 8 * W :] == 0).all()  # the empty cell
