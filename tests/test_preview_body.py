"""The preview body's geometry seen from the side (issue 12, preview-body): the body keeps its depth when the
arms leave it, the rim shows no bright lines, loose clothes keep volume.

- Depth: both shared photos, posed as in the photo but with the arms raised (what every dance does; the
  photos have their hands in pockets or on the hips, so the arms cover the torso's sides in the photo),
  seen at 90 and 270 degrees. The silhouette's width at the chest, waist, hips and thighs is compared with
  the ellipsoid body's (the bone map's) width at the same rows and pose: the body's own depth.
- Rim: at 90 and 270 degrees (photo pose), the pixels showing the mask's soft edge (its outer band, where
  the photo mixes in its background) must not stand out brighter than the person's pixels around them.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from test_preview_look import NAMES, aligned_orbit

SIZE = 512
ROWS = ("chest", "waist", "hips", "thigh")
# the bound on silhouette / body width at those rows, seen from the side. The ellipsoid body is the body's
# depth; the mesh reaches it everywhere but within the rim (thickness tapering to the outline, at most a few
# centimetres) and at the seams where an arm was cut away, and the ellipsoid fit's own error against the
# photo's outline is some 10-20 per cent: 0.75 leaves that room. Measured: 1.00-1.35 here; before the torso
# was closed under the arms, street 0.56 (chest) and 0.26 (waist), studio 0.59 (chest) and 0.68 (waist).
MIN_SIDE_RATIO = 0.75
RIM_BAND = 0.004  # fraction of the photo height: the mask's soft edge, where the photo mixes in its background
RIM_BRIGHT = 0.15  # luminance (0-1) by which a rim pixel counts as a bright line against its neighbours
# the bound on bright rim pixels per person pixel at 90/270 degrees. Measured 0.017-0.035 before the rim band,
# 0.001-0.006 after; a bright drawstring or plaid line seen edge-on makes a few of them legitimately.
MAX_BRIGHT_RIM = 0.015


def arms_raised(subject) -> np.ndarray:
    """The photo pose with both arms raised out to the sides, a little above horizontal, straight. [24, 3]"""
    from hvg_cli.core.types import SMPL_JOINT_NAMES

    J = {n: i for i, n in enumerate(SMPL_JOINT_NAMES)}
    pose = np.array(subject.photo_pose, np.float64)
    for side, sign in (("left", 1.0), ("right", -1.0)):
        pose[J[f"{side}_shoulder"]] = [0.0, 0.0, sign * 0.3]  # SMPL's T-pose arm, raised 17 degrees
        pose[J[f"{side}_elbow"]] = 0.0
        pose[J[f"{side}_wrist"]] = 0.0
    return pose


def side_widths(subject, model, pose, views=(4, 12), n_views=16, size=SIZE):
    """Silhouette and ellipsoid-body widths (pixels) at the chest/waist/hips/thigh rows, seen from the side.

    returns: (widths {view: {row: (silhouette, body)}}, coverage [V, H, W] of the chosen views)
    """
    import torch

    from hvg_cli.backends.preview.render import render_preview
    from hvg_cli.body.kinematics import pose_joints
    from hvg_cli.bonemap.raster import rasterise
    from hvg_cli.bonemap.render import posed_ellipsoids

    grid, _ = aligned_orbit(subject, n_views, size)
    v = list(views)
    sub = dataclasses.replace(grid, K=grid.K[v], world_to_cam=grid.world_to_cam[v])  # [len(v), 1]
    trans = np.asarray(subject.photo_trans, np.float64)[None]
    rgba = render_preview(subject, pose[None], trans, sub, background="transparent", model=model)[:, 0]
    cov = rgba[..., 3] > 127  # [V, H, W]
    c, a, s = posed_ellipsoids(pose[None], trans, subject.skeleton, subject.radii)
    sk = subject.skeleton
    joints = pose_joints(pose[None], sk.rest_joints, sk.parents, trans)[0]  # [24, 3] world
    out = {}
    for k, view in enumerate(v):
        K, w2c = sub.K[k, 0], sub.world_to_cam[k, 0]
        body = rasterise(c, a, s, K[None], w2c[None], size, size, dtype=torch.float64).label[0].numpy() >= 0
        p = (joints @ w2c[:3, :3].T + w2c[:3, 3]) @ K.T
        uv = p[:, :2] / p[:, 2:]  # [24, 2] pixels
        at = {
            "chest": uv[9],  # spine3
            "waist": uv[3],  # spine1
            "hips": uv[0],  # pelvis
            "thigh": 0.5 * (uv[[1, 2]].mean(0) + uv[[4, 5]].mean(0)),  # between hips and knees
        }
        out[view] = {
            row: (
                float(np.median([_run(cov[k, i], x) for i in range(int(y) - 2, int(y) + 3)])),
                float(np.median([_run(body[i], x) for i in range(int(y) - 2, int(y) + 3)])),
            )
            for row, (x, y) in at.items()
        }
    return out, cov


def _run(row: np.ndarray, x: float) -> int:
    """Length of the run of True in a [W] bool row through column x (or through its nearest True pixel)."""
    idx = np.nonzero(row)[0]
    if len(idx) == 0:
        return 0
    j = int(np.clip(x, 0, len(row) - 1))
    if not row[j]:
        j = int(idx[np.argmin(np.abs(idx - j))])
    lo, hi = j, j
    while lo > 0 and row[lo - 1]:
        lo -= 1
    while hi < len(row) - 1 and row[hi + 1]:
        hi += 1
    return hi - lo + 1


def bright_rim(subject, model, views=(2, 6), n_views=8, size=SIZE) -> list[float]:
    """Per view: rendered pixels showing the mask's outer band (RIM_BAND) that are brighter by RIM_BRIGHT than
    the mean of the other person pixels within 4 pixels, per person pixel (photo pose)."""
    from scipy import ndimage

    from hvg_cli.backends.preview.render import render_preview

    mask = np.asarray(subject.mask, np.float32)
    inside = ndimage.distance_transform_edt(mask > 0.5)  # [H, W] pixels
    band = ((inside > 0) & (inside <= max(2.0, RIM_BAND * mask.shape[0]))).astype(np.float32)
    flag_tex = np.repeat(np.tile(band, (1, 3))[..., None], 3, -1)  # [H, 3W, 3]: the band in every atlas panel
    grid, _ = aligned_orbit(subject, n_views, size)
    v = list(views)
    sub = dataclasses.replace(grid, K=grid.K[v], world_to_cam=grid.world_to_cam[v])
    pose, trans = subject.photo_pose[None], np.asarray(subject.photo_trans)[None]
    real = render_preview(subject, pose, trans, sub, background="transparent", model=model)[:, 0]
    flag = render_preview(
        subject, pose, trans, sub, background="transparent", model=dataclasses.replace(model, texture=flag_tex)
    )[:, 0]
    out = []
    for r, f in zip(real, flag):
        full = r[..., 3] == 255  # fully covered pixels
        lum = r[..., :3].astype(np.float32).mean(-1) / 255.0  # [H, W]
        rim, other = full & (f[..., 0] > 127), full & (f[..., 0] < 30)
        box = np.ones((9, 9))
        num = ndimage.convolve(np.where(other, lum, 0.0), box, mode="constant")
        den = ndimage.convolve(other.astype(np.float64), box, mode="constant")
        judged = rim & (den >= 5)
        excess = lum[judged] - num[judged] / den[judged]
        out.append(float((excess > RIM_BRIGHT).sum() / max(int(full.sum()), 1)))
    return out


@pytest.mark.parametrize("name", NAMES)
def test_side_view_keeps_the_body_depth_with_arms_raised(real, name):
    """Seen from the side with the arms raised, the torso and thighs are as deep as the ellipsoid body (not two
    sheets seen edge-on where the arms took the torso's sides away), and the silhouette is one piece."""
    from scipy import ndimage

    s, model = real[name]
    widths, cov = side_widths(s, model, arms_raised(s))
    ratios = {v: {r: w / max(b, 1.0) for r, (w, b) in rows.items()} for v, rows in widths.items()}
    assert all(b >= 15 for rows in widths.values() for _, b in rows.values()), widths  # the rows were found
    assert all(x >= MIN_SIDE_RATIO for rows in ratios.values() for x in rows.values()), ratios
    pieces = [ndimage.label(c, structure=np.ones((3, 3)))[1] for c in cov]
    assert pieces == [1] * len(cov), pieces


@pytest.mark.parametrize("name", NAMES)
def test_rim_has_no_bright_lines_from_the_side(real, name):
    s, model = real[name]
    frac = bright_rim(s, model)
    assert max(frac) <= MAX_BRIGHT_RIM, frac
