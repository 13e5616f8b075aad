"""The world behind the person, second pass (issue 12): what the photo does not show stays soft and plausible.

- Beside the photo (the output frame is wider than the photo), the backdrop's continuation fades into the
  colour of the wall as a whole (its median) within a short reach, instead of carrying the photo's edge
  sideways (the street photo's door drew a large orange smear to the right of the door at 0 degrees).
- Where the ground meets the backdrop beyond the photo's footprint, the two meet softly: no hard line along
  the corner (at 45 and 90 degrees the street's floor-to-wall corner was a hard line with a dark wedge).
- The backdrop stands where the photo's floor meets its wall, also for a wall close behind the person (the
  street photo's wall is some 0.65 m behind her; the backdrop stood at 1.3 m, so the wall's foot and the
  door's step lay on the ground and were stretched across it from the side).
- Seen edge-on (the camera about to pass the backdrop), the backdrop shows no hard strip of the photo squeezed
  flat: rays that graze it see its plain colour.
Rendered on the shared photos along the pipeline's aligned orbit; which pixel sees which point of the planes
is computed here independently of the module's internals.
"""

from __future__ import annotations

import numpy as np
import pytest
from test_preview_look import NAMES, aligned_orbit
from test_preview_world import plane_hits as world_plane_hits

MARGIN = 0.15  # of the photo's width: "beyond the photo's side" starts this far out (the fade's reach)
WALL_ABOVE = 0.75  # metres: beside the photo, the backdrop is judged above this height (not the corner's band)
MAX_SMEAR = 0.05  # RGB distance (0-1 per channel) from the wall's median: 90th percentile beside the photo
MAX_STEP = 0.016  # brightness (0-1) across the ground-backdrop line, 4-6 px on either side at 512 px: 90th pct.


def plane_hits(bd, K: np.ndarray, world_to_cam: np.ndarray, size: int):
    """test_preview_world.plane_hits' (u, v) and the hit in front of the photo camera: any, on the ground, on the
    backdrop; and the world point [size, size, 3] metres."""
    u, v, _, ground, wall, front, X = world_plane_hits(bd, K, world_to_cam, size)
    return u, v, front, front & ground, front & wall, X


@pytest.mark.parametrize("name", NAMES)
def test_beside_the_photo_the_backdrop_fades_into_the_wall(real, name):
    """At 0 degrees, on the backdrop beyond either side of the photo (more than MARGIN of its width out, within
    its rows, higher than WALL_ABOVE), the 90th percentile of the colour's distance from the wall's median (the
    filled photo's upper 70%) stays below MAX_SMEAR. Measured on the old continuation (the edge column pushed
    outwards, fading over 0.6 m): street left 0.061, right 0.378 (the door's orange), studio right 0.022;
    here street 0.010 / 0.019, studio 0.003."""
    from hvg_cli.backends.preview.background import render_background

    s, model = real[name]
    bd = model.backdrop
    H, W = bd.image.shape[:2]
    wall = np.median(bd.image[: int(0.7 * H)].reshape(-1, 3), axis=0)  # [3]
    size = 256
    grid, _ = aligned_orbit(s, 8, size)
    bg = render_background(bd, grid.K[:1, 0], grid.world_to_cam[:1, 0], size, size).numpy()[0]  # [S, S, 3]
    u, v, _, _, on_wall, X = plane_hits(bd, grid.K[0, 0], grid.world_to_cam[0, 0], size)
    judged = 0
    for beyond in (u < -MARGIN * W, u > (1 + MARGIN) * W):
        sel = on_wall & beyond & (v > 0) & (v < H) & (X[..., 1] > WALL_ABOVE)
        if sel.sum() < 500:  # this side of the photo is hardly in view
            continue
        judged += 1
        smear = float(np.percentile(np.linalg.norm(bg[sel] - wall, axis=-1), 90))
        assert smear < MAX_SMEAR, (smear, int(sel.sum()))
    assert judged >= 1  # the frame is wider than the photo: something beside it is in view


def _off_line(grey: np.ndarray, ys: np.ndarray, xs: np.ndarray, normal: np.ndarray) -> np.ndarray:
    """[n] mean of grey [S, S] 4-6 px from the line pixels (ys, xs) [n] along normal [2] (x, y)."""
    S = grey.shape[0]
    vals = []
    for off in (4, 5, 6):
        yy = np.clip(np.rint(ys + off * normal[1]).astype(int), 0, S - 1)
        xx = np.clip(np.rint(xs + off * normal[0]).astype(int), 0, S - 1)
        vals.append(grey[yy, xx])
    return np.mean(vals, axis=0)


@pytest.mark.parametrize("name", NAMES)
def test_ground_meets_the_backdrop_softly_beyond_the_photo(real, name):
    """At 0, 45 and 90 degrees (512 px), along the line where the ground meets the backdrop, beyond the photo's
    sides (more than MARGIN of its width out: the photo does not show that corner), the brightness 4-6 px on
    one side of the line and 4-6 px on the other differ by less than MAX_STEP (90th percentile along the line).
    Measured on the old world (the backdrop's colour starting from the ground's over 0.3 m, the ground flat up to
    the line): street 0.004 / 0.028 / 0.029, studio 0.002 / 0.005 / 0.005; here street 0.002 / 0.010 / 0.009,
    studio 0.001 / 0.002 / 0.002."""
    from scipy import ndimage

    from hvg_cli.backends.preview.background import render_background

    s, model = real[name]
    bd = model.backdrop
    W = bd.image.shape[1]
    size = 512
    grid, az = aligned_orbit(s, 8, size)
    views = [0, 1, 2]  # 0, 45, 90 degrees
    bg = render_background(bd, grid.K[views, 0], grid.world_to_cam[views, 0], size, size).numpy().mean(-1)
    for k, i in enumerate(views):
        u, _, _, ground, wall, _ = plane_hits(bd, grid.K[i, 0], grid.world_to_cam[i, 0], size)
        line = ground & ndimage.binary_dilation(wall, structure=np.ones((3, 3), bool))  # ground pixels at the line
        sel = line & ((u < -MARGIN * W) | (u > (1 + MARGIN) * W))
        assert sel.sum() > 50, (az[i], int(sel.sum()))  # the corner beyond the photo is in view
        ys, xs = np.nonzero(sel)
        P = np.stack([xs, ys], 1).astype(np.float64)
        along = np.linalg.svd(P - P.mean(0), full_matrices=False)[2][0]  # [2] the line's direction (it is straight)
        normal = np.array([-along[1], along[0]])
        across = _off_line(bg[k], ys, xs, normal) - _off_line(bg[k], ys, xs, -normal)  # [n]
        step = float(np.percentile(np.abs(across), 90))
        assert step < MAX_STEP, (az[i], step)


@pytest.mark.parametrize("depth", [0.6, 1.5, 3.0])
def test_backdrop_distance_finds_the_wall(depth):
    """A synthetic photo of a person 0.6, 1.5 or 3 m in front of a wall (a lighter wall over a darker floor, a
    little seeded noise, the person's columns masked), seen by a camera like the street photo's: the backdrop
    stands within 10% of the wall. The old search started at 0.8 m and put a wall at 0.6 m at 0.8 m."""
    from hvg_cli.backends.preview.background import backdrop_distance

    H, W = 960, 540
    K = np.array([[1030.0, 0, W / 2], [0, 1030.0, H / 2], [0, 0, 1]])
    centre = np.array([0.0, 0.8, 2.1])  # camera, metres; looking along -z, y up in the world (OpenCV: y down)
    R = np.diag([1.0, -1.0, -1.0])
    world_to_cam = np.eye(4)
    world_to_cam[:3, :3], world_to_cam[:3, 3] = R, -R @ centre
    pelvis = np.array([0.0, 0.85, 0.0])
    # every photo pixel's ray, cut with the floor (y = 0) and the wall (z = -depth)
    ys, xs = np.mgrid[0:H, 0:W] + 0.5
    d = np.stack([xs, ys, np.ones_like(xs)], -1) @ (R.T @ np.linalg.inv(K)).T  # [H, W, 3]
    t_floor = np.where(d[..., 1] < 0, -centre[1] / np.minimum(d[..., 1], -1e-9), np.inf)
    t_wall = np.where(d[..., 2] < 0, (centre[2] + depth) / np.maximum(-d[..., 2], 1e-9), np.inf)
    on_floor = t_floor < t_wall
    rng = np.random.default_rng(0)
    img = np.where(on_floor[..., None], [0.55, 0.52, 0.51], [0.84, 0.79, 0.78]) + rng.normal(0, 0.01, (H, W, 3))
    mask = np.zeros((H, W), np.float32)
    mask[int(0.1 * H) : int(0.95 * H), int(0.4 * W) : int(0.6 * W)] = 1.0
    found = backdrop_distance(img.astype(np.float32), K, world_to_cam, pelvis, mask)
    assert abs(found - depth) < 0.1 * depth, (found, depth)


MAX_STRIP = 0.02  # brightness per pixel: a vertical edge along the upper half of the view, seen near the backdrop


@pytest.mark.parametrize("name", NAMES)
def test_no_hard_strip_where_the_backdrop_is_seen_edge_on(real, name):
    """Along a fine orbit (2.5 degrees apart, 256 px), in the views whose camera is less than 0.5 m in front of
    the backdrop (about to pass it: its rays graze the backdrop), no column carries a vertical edge: the median
    over the upper half's rows of |d/dx| (grey, smoothed over 1 px) stays below MAX_STRIP in every column.
    Seen edge-on, the photo's detail on the backdrop (the street's door) is squeezed into a hard vertical strip;
    grazing rays see the backdrop's plain colour. Measured with the backdrop at the street's wall but without the
    grazing fade: 0.044 / 0.034 / 0.028 / 0.015 (95-102.5 degrees); here 0.011 / 0.003 / 0 / 0. (The old world
    passes: its backdrop stood 1.3 m behind her, and the camera passed it looking away from it.)"""
    from scipy import ndimage

    from hvg_cli.backends.preview.background import render_background

    s, model = real[name]
    bd = model.backdrop
    size = 256
    grid, az = aligned_orbit(s, 144, size)
    M = grid.world_to_cam[:, 0]  # [V, 4, 4]
    centres = -np.einsum("vji,vj->vi", M[:, :3, :3], M[:, :3, 3])  # [V, 3] camera centres, world
    side = centres @ bd.plane[:3] - bd.plane[3]  # [V] metres in front of the backdrop
    near = np.nonzero((side > 0.05) & (side < 0.5) & (az < 180))[0]
    assert len(near) >= 3, side.round(2).tolist()
    bg = render_background(bd, grid.K[near, 0], M[near], size, size).numpy().mean(-1)  # [n, S, S]
    for k, i in enumerate(near):
        gx = np.abs(np.gradient(ndimage.gaussian_filter(bg[k], 1.0), axis=1))  # [S, S]
        strip = float(np.median(gx[: size // 2], axis=0).max())
        assert strip < MAX_STRIP, (az[i], round(float(side[i]), 2), strip)
