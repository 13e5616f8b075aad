"""Ellipsoid short radii fitted to a person: from the photo's silhouette, or from a body model's mesh.

fit_radii: the ellipsoid body is rasterised from the photo's camera (label map); for every bone part
seen in the photo, at a few points along its projected axis, the person mask's half-width across the
axis is compared with the model's own half-width at the same place, on each side where the model's
edge meets background (not another part) and the mask's run stays on pixels nearer to this part than
to any other (a Voronoi split of the mask over the model's parts, so an arm held against the body
does not count as the torso's width). The
median ratio scales the radius the camera sees (the one across the view ray); the radius along the
view ray follows with the square root of the ratio. Ratios are clamped to [RATIO_MIN, RATIO_MAX];
left and right parts are symmetrised; leaf parts (head: hair; hands, feet, toes), the neck (hair), the
palms and parts not seen keep their base radii.

radii_from_mesh: with a body model (`--body-model`), each part's radii are a percentile of the
distances of its skinned vertices from the part's axis, in the T-pose.
"""

from __future__ import annotations

import numpy as np

from hvg_cli.body.kinematics import axis_angle_to_matrix, forward_kinematics
from hvg_cli.bonemap.parts import NUM_PARTS, PART_INDEX, PART_JOINT, PARTS, part_ellipsoids
from hvg_cli.core.types import Camera, Skeleton

RATIO_MIN, RATIO_MAX = 0.6, 2.0
MESH_PERCENTILE = 90.0
SAMPLES_ALONG = (0.3, 0.5, 0.7)  # fractions along the bone (joint -> child) where widths are measured
MAX_RENDER = 640  # the label map is rendered with at most this many pixels on the long side
# not fitted to the silhouette: hair widens the neck, hands are too small and too often merged with the body
SKIPPED = frozenset({"neck", "left_palm", "right_palm"})


def symmetric_pairs() -> list[tuple[int, int]]:
    """[(left part index, right part index)] for every left_* part."""
    return [(i, PART_INDEX["right_" + p.name[5:]]) for i, p in enumerate(PARTS) if p.name.startswith("left_")]


def _symmetrise(radii: np.ndarray, measured: np.ndarray) -> np.ndarray:
    """Average left/right pairs that were both measured; copy a measured side onto an unmeasured one."""
    out = radii.copy()
    for li, ri in symmetric_pairs():
        if measured[li] and measured[ri]:
            out[li] = out[ri] = 0.5 * (radii[li] + radii[ri])
        elif measured[li]:
            out[ri] = radii[li]
        elif measured[ri]:
            out[li] = radii[ri]
    return out


def _walk(start: np.ndarray, direction: np.ndarray, inside, max_px: float) -> tuple[float, int]:
    """Step from `start` along `direction` (1 px steps) while inside(x, y) says 0 (continue).

    inside: callable (ix, iy) -> 0 continue, 1 stop at an edge, 2 blocked. Returns (distance, code).
    """
    for k in range(1, int(max_px) + 1):
        p = start + k * direction
        code = inside(int(np.floor(p[0])), int(np.floor(p[1])))
        if code:
            return k - 0.5, code
    return float(max_px), 2


def fit_radii(
    skeleton: Skeleton,
    photo_pose: np.ndarray,
    photo_trans: np.ndarray,
    camera: Camera,
    mask: np.ndarray,
    base_radii: np.ndarray,
) -> np.ndarray:
    """Short radii per part adapted to the person's silhouette in the photo.

    skeleton:    rest skeleton with the photo's bone lengths
    photo_pose:  [24, 3] axis-angle of the photo's pose; photo_trans: [3] pelvis, world metres
    camera:      the photo's source camera (K in the photo's pixels)
    mask:        [H, W] float person mask in [0, 1], photo resolution
    base_radii:  [P, 2] metres (width, depth), e.g. bonemap.parts.default_radii(skeleton)
    returns:     [P, 2] metres
    """
    from hvg_cli.bonemap.raster import rasterise

    base = np.asarray(base_radii, dtype=np.float64)
    H, W = mask.shape
    # 1. Posed ellipsoids and a label map at a working resolution (K scaled with the image)
    G, joints = forward_kinematics(
        axis_angle_to_matrix(np.asarray(photo_pose)[None]),
        skeleton.offsets,
        skeleton.parents,
        np.asarray(photo_trans, dtype=np.float64)[None],
    )  # [1, 24, ...]
    centers, axes, semi = part_ellipsoids(joints, G, base)  # [1, P, 3], [1, P, 3, 3], [1, P, 3]
    f = min(1.0, MAX_RENDER / max(H, W))
    w, h = max(8, int(round(W * f))), max(8, int(round(H * f)))
    sx, sy = w / W, h / H
    Kw = np.diag([sx, sy, 1.0]) @ camera.K  # [3, 3] continuous coordinates scale with the image
    label = rasterise(centers, axes, semi, Kw[None], camera.world_to_cam[None], w, h).label[0].numpy()  # [h, w]
    ys = (np.arange(h) + 0.5) / sy
    xs = (np.arange(w) + 0.5) / sx
    iy = np.clip(ys.astype(int), 0, H - 1)
    ix = np.clip(xs.astype(int), 0, W - 1)
    person = np.asarray(mask)[iy[:, None], ix[None, :]] > 0.5  # [h, w] nearest-neighbour resample

    # every pixel belongs to the nearest part of the model (Voronoi over the label map): a mask pixel that
    # no ellipsoid covers (clothes, hair, a hand the model misses) counts for the part it is nearest to
    from scipy.ndimage import distance_transform_edt

    if np.any(label >= 0):
        _, (ny, nx) = distance_transform_edt(label < 0, return_indices=True)
        owner = label[ny, nx]  # [h, w]
    else:
        owner = label
    R, t = camera.world_to_cam[:3, :3], camera.world_to_cam[:3, 3]

    def project(p: np.ndarray) -> np.ndarray:
        c = R @ p + t
        return (Kw @ c)[:2] / c[2]

    ratios = np.full(NUM_PARTS, np.nan)
    for pi, part in enumerate(PARTS):
        if part.child is None or part.name in SKIPPED:
            continue
        a, b = joints[0, part.joint], joints[0, part.child]

        def model_edge(x: int, y: int, pi: int = pi) -> int:
            if not (0 <= x < w and 0 <= y < h):
                return 2
            lab = label[y, x]
            return 0 if lab == pi else (1 if lab == -1 else 2)

        def mask_edge(x: int, y: int, pi: int = pi) -> int:
            if not (0 <= x < w and 0 <= y < h):
                return 2  # the person runs off the image: no edge seen
            if not person[y, x]:
                return 1
            return 0 if owner[y, x] == pi else 2  # another part's pixels (or nearer to another part)

        vals = []
        for s in SAMPLES_ALONG:
            p3 = a + s * (b - a)
            u0, u1 = project(p3), project(p3 + 0.01 * (b - a))
            d = u1 - u0
            if not np.all(np.isfinite(d)) or np.linalg.norm(d) < 1e-6:
                continue
            d /= np.linalg.norm(d)
            n = np.array([-d[1], d[0]])  # [2] across the projected axis
            x0, y0 = int(np.floor(u0[0])), int(np.floor(u0[1]))
            if not (0 <= x0 < w and 0 <= y0 < h) or label[y0, x0] != pi or not person[y0, x0]:
                continue
            for sign in (1.0, -1.0):
                dm, cm = _walk(u0, sign * n, model_edge, 0.5 * max(w, h))
                if cm != 1:
                    continue
                dp, cp = _walk(u0, sign * n, mask_edge, RATIO_MAX * 2 * dm + 2)
                if cp == 1 and dm >= 2.0:
                    vals.append(dp / dm)
        if len(vals) >= 2:
            ratios[pi] = float(np.clip(np.median(vals), RATIO_MIN, RATIO_MAX))

    # 2. The seen radius (across the view ray) takes the ratio; the one along the ray its square root
    out = base.copy()
    cam_pos = camera.position
    for pi in np.nonzero(np.isfinite(ratios))[0].tolist():
        long, width, depth = axes[0, pi, :, 0], axes[0, pi, :, 1], axes[0, pi, :, 2]
        ray = centers[0, pi] - cam_pos
        e = np.cross(long, ray)
        e /= max(np.linalg.norm(e), 1e-12)
        aw, ad = np.dot(width, e) ** 2, np.dot(depth, e) ** 2
        tot = max(aw + ad, 1e-12)
        aw, ad = aw / tot, ad / tot
        k = ratios[pi]
        out[pi, 0] = base[pi, 0] * k ** (aw + 0.5 * ad)
        out[pi, 1] = base[pi, 1] * k ** (ad + 0.5 * aw)
    return _symmetrise(out, np.isfinite(ratios))


def radii_from_mesh(
    vertices: np.ndarray,
    weights: np.ndarray,
    rest_joints: np.ndarray,
    base_radii: np.ndarray,
    percentile: float = MESH_PERCENTILE,
) -> np.ndarray:
    """Short radii per part from a skinned T-pose mesh.

    vertices:    [V, 3] rest vertices, metres (same frame as rest_joints)
    weights:     [V, 24] skinning weights; a vertex belongs to its strongest joint
    rest_joints: [24, 3] metres
    base_radii:  [P, 2] metres: fallback for parts with too few vertices, and the shape used to split a
                 joint's vertices among its parts (nearest ellipsoid in normalised distance)
    returns:     [P, 2] metres (width, depth), each the percentile of |offset| along that axis of the
                 part's vertices that lie within the part's long extent; clamped to [0.4, 2.5] x base
    """
    base = np.asarray(base_radii, dtype=np.float64)
    owner = np.argmax(weights, axis=1)  # [V]
    G = np.broadcast_to(np.eye(3), (1, 24, 3, 3))
    centers, axes, semi = part_ellipsoids(np.asarray(rest_joints, dtype=np.float64)[None], G, base)
    centers, axes, semi = centers[0], axes[0], semi[0]  # [P, 3], [P, 3, 3], [P, 3]
    local = np.einsum("pji,pvj->pvi", axes, vertices[None] - centers[:, None])  # [P, V, 3] in each part's axes
    norm_d = np.linalg.norm(local / semi[:, None], axis=-1)  # [P, V] normalised ellipsoid distance
    eligible = PART_JOINT[:, None] == owner[None, :]  # [P, V]
    cost = np.where(eligible, norm_d, np.inf)
    assign = np.argmin(cost, axis=0)  # [V] part of each vertex (among its joint's parts)
    has_part = np.isfinite(cost.min(axis=0))
    out = base.copy()
    for pi in range(NUM_PARTS):
        sel = has_part & (assign == pi) & (np.abs(local[pi, :, 0]) <= semi[pi, 0])
        if sel.sum() < 8:
            continue
        r = np.percentile(np.abs(local[pi, sel, 1:]), percentile, axis=0)  # [2] width, depth
        out[pi] = np.clip(r, 0.4 * base[pi], 2.5 * base[pi])
    return out
