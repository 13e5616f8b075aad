"""The photo mesh: the person's mask meshed, lifted to 3D with a front and a back, closed at the silhouette.

1. A lattice of vertices at a few pixels' spacing covers the mask; cells touching the mask are kept, and
   lattice points outside the mask are snapped onto its 0.5 contour, so the mesh's outline is the
   person's real silhouette (hair, skirt and clothes included).
2. Depth: the subject's ellipsoid body, posed as in the photo and seen by the photo camera, gives a near
   and a far surface where it covers the mask. Per vertex, the mid depth c = (near + far) / 2 and the
   half thickness h = (far - near) / 2 are known there and filled elsewhere by a Laplace fill over the
   mesh (c: free at the outline; h: zero at uncovered outline points), and h is at least a rounded
   inflation of the silhouette itself (sqrt of a Poisson solution: a strip of width w gets a circular
   cross-section), capped, so a skirt or hair has some volume. Front z = c - h, back z = c + h.
3. Both sides unproject through the photo camera, share the photo's texture coordinates (the back
   shows the mirrored front), and a strip of triangles joins them along the outline: a closed surface.
4. Labels: the body's part at each pixel (hand parts trimmed to the photo's hand landmarks); uncovered
   pixels take the nearest part relative to its size. Where a part covers one it is not joined to (an
   arm across the torso), an under-layer continues the hidden part's surface beneath it, textured from
   an inpainted copy of the photo, so moving the arm away shows torso rather than a hole.

Everything here is in the photo camera's image coordinates, pixel centres at (j + 0.5, i + 0.5).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from scipy import sparse

INFLATE_CAP = 0.12  # metres: the most half-thickness the silhouette inflation may add
INFLATE_GAIN = 0.6  # fraction of the circular cross-section used for uncovered regions
RIM_SLOPE = 3.0  # most half-thickness gained per unit of distance from the outline (a 71.6 degree rim)
HEAD_SEAM_FORWARD = 1.0  # fraction of the thickness removed at the head's rim by which its seam moves forward
RIM_STRETCH = float(np.sqrt(1.0 + RIM_SLOPE**2))  # the bound on texture stretch the rim's closing gives (3.16)


@dataclass(frozen=True, eq=False)
class LatticeMesh:
    """The front sheet of the photo mesh, in the photo's image plane (before depth)."""

    uv: np.ndarray  # [N, 2] image coordinates of every vertex, pixels
    faces: np.ndarray  # [F, 3] int64 triangles
    grid_index: np.ndarray  # [N, 2] int (row, col) of the lattice point each vertex came from
    snapped: np.ndarray  # [N] bool: the lattice point lay outside the mask and was moved onto its outline
    spacing: float  # pixels between lattice points


@dataclass(frozen=True, eq=False)
class PhotoMesh:
    """The closed photo mesh in the photo pose: front sheet [0, n), back sheet [n, 2n), under-layer after.

    Texture coordinates index the photo atlas [H, 3W] (render.PreviewModel): the photo, the photo with
    occluding parts inpainted (under-layer vertices use u + W), and a back panel (skinning adds 2W).
    """

    verts: np.ndarray  # [N, 3] world metres (the photo pose)
    faces: np.ndarray  # [F, 3] int64
    uv: np.ndarray  # [N, 2] photo image coordinates, pixels
    labels: np.ndarray  # [N] int part index (bonemap.parts order) each vertex belongs to
    covered: np.ndarray  # [N] bool: the label came from the ellipsoid body directly (not filled)
    back: np.ndarray  # [N] bool: vertex of the back sheet
    face_kind: np.ndarray  # [F] int8: 0 front sheet, 1 back sheet, 2 outline strip, 3 under-layer
    uv_inner: np.ndarray  # [N, 2] texture coordinates a few pixels inside the mask (for the outline strip)


def lattice_mesh(mask: np.ndarray, spacing: float) -> LatticeMesh:
    """Mesh a person mask with a lattice whose outline follows the mask's 0.5 contour.

    mask:    [H, W] float in [0, 1]
    spacing: pixels between lattice points
    """
    from scipy import ndimage

    H, W = mask.shape
    nx = max(2, int(round(W / spacing)) + 1)
    ny = max(2, int(round(H / spacing)) + 1)
    xs = np.linspace(0.5, W - 0.5, nx)  # image coordinates of lattice columns
    ys = np.linspace(0.5, H - 0.5, ny)
    gy, gx = np.meshgrid(ys, xs, indexing="ij")  # [ny, nx]
    mask32 = mask.astype(np.float32)
    m = ndimage.map_coordinates(mask32, [gy - 0.5, gx - 0.5], order=1, mode="nearest")
    inside = m > 0.5  # [ny, nx]
    # cells touching the mask: a corner inside, or the cell centre inside
    cy, cx = (ys[:-1] + ys[1:]) / 2, (xs[:-1] + xs[1:]) / 2
    mc = ndimage.map_coordinates(mask32, np.meshgrid(cy - 0.5, cx - 0.5, indexing="ij"), order=1, mode="nearest")
    corner = inside[:-1, :-1] | inside[:-1, 1:] | inside[1:, :-1] | inside[1:, 1:]
    keep = corner | (mc > 0.5)  # [ny-1, nx-1]
    used = np.zeros((ny, nx), bool)
    used[:-1, :-1] |= keep
    used[:-1, 1:] |= keep
    used[1:, :-1] |= keep
    used[1:, 1:] |= keep
    vid = -np.ones((ny, nx), np.int64)
    vid[used] = np.arange(int(used.sum()))
    rows, cols = np.nonzero(used)
    uv = np.stack([gx[rows, cols], gy[rows, cols]], -1)  # [N, 2]
    snapped = ~inside[rows, cols]
    if snapped.any():
        # nearest mask pixel of each outside point, then the 0.5 crossing on the segment between them
        inside_px = mask > 0.5
        _, idx = ndimage.distance_transform_edt(~inside_px, return_indices=True)  # [2, H, W]
        p = uv[snapped]
        pi = np.clip(np.floor(p).astype(int), 0, [W - 1, H - 1])
        q = np.stack([idx[1][pi[:, 1], pi[:, 0]], idx[0][pi[:, 1], pi[:, 0]]], -1) + 0.5  # [S, 2] pixel centres
        mp = m[rows[snapped], cols[snapped]]
        mq = mask[(q[:, 1] - 0.5).astype(int), (q[:, 0] - 0.5).astype(int)]
        t = np.clip((0.5 - mp) / np.maximum(mq - mp, 1e-6), 0.0, 1.0)[:, None]
        uv[snapped] = p + t * (q - p)
    # two triangles per kept cell: [ny-1, nx-1] -> [2K, 3]
    ci, cj = np.nonzero(keep)
    a, b = vid[ci, cj], vid[ci, cj + 1]
    c, d = vid[ci + 1, cj + 1], vid[ci + 1, cj]
    faces = np.concatenate([np.stack([a, b, c], -1), np.stack([a, c, d], -1)], 0)
    return LatticeMesh(
        uv=uv, faces=faces, grid_index=np.stack([rows, cols], -1), snapped=snapped, spacing=float(spacing)
    )


def auto_spacing(mask: np.ndarray, target_vertices: int = 25000) -> float:
    """Lattice spacing (pixels) giving about `target_vertices` vertices on the mask, at least 2 px."""
    area = float((mask > 0.5).sum())
    return float(max(2.0, np.sqrt(area / max(target_vertices, 1))))


def boundary_edges(faces: np.ndarray) -> np.ndarray:
    """[E, 2] edges used by exactly one face (the outline of a sheet), each as in its face's winding."""
    e = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]], 0)  # [3F, 2]
    key = np.sort(e, axis=1)
    _, inv, counts = np.unique(key, axis=0, return_inverse=True, return_counts=True)
    return e[counts[inv.reshape(-1)] == 1]


def vertex_adjacency(faces: np.ndarray, n: int) -> sparse.csr_matrix:
    """Sparse symmetric [n, n] 0/1 matrix of mesh edges."""
    from scipy import sparse

    e = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]], 0)
    A = sparse.coo_matrix((np.ones(len(e)), (e[:, 0], e[:, 1])), shape=(n, n)).tocsr()
    A = ((A + A.T) > 0).astype(np.float64)
    return A


def harmonic_fill(
    A,
    values: np.ndarray,
    known: np.ndarray,
    source: np.ndarray | float = 0.0,
    reg: float = 1e-6,
    default: float | None = None,
) -> np.ndarray:
    """Solve the graph Poisson problem L x = source on unknown vertices, x = values on known ones.

    A:      sparse [n, n] adjacency (graph Laplacian L = D - A; unknown vertices see only mesh neighbours,
            so outline vertices without a value have a free (Neumann) boundary)
    values: [n] values at known vertices (ignored elsewhere)
    known:  [n] bool
    source: [n] or scalar right-hand side per unknown vertex (0: Laplace fill)
    reg:    a tiny pull towards the mean of the known values (or `default`) so regions with no known
            vertex stay finite and take that value
    returns: [n]
    """
    from scipy import sparse
    from scipy.sparse.linalg import spsolve

    n = len(values)
    x = np.where(known, values, 0.0).astype(np.float64)
    unk = np.nonzero(~known)[0]
    if len(unk) == 0:
        return x
    mean = float(values[known].mean()) if known.any() else float(default or 0.0)
    deg = np.asarray(A.sum(axis=1)).ravel()
    Lu = (sparse.diags(deg) - A)[unk]  # [u, n] Laplacian rows of the unknown vertices
    Luu = Lu[:, unk] + sparse.identity(len(unk)) * reg
    rhs = -(Lu[:, np.nonzero(known)[0]] @ x[known]) + np.broadcast_to(source, (n,))[unk] + reg * mean
    x[unk] = spsolve(Luu.tocsc(), rhs)
    return x


def body_maps_at_photo(subject, width: int | None = None, height: int | None = None) -> dict[str, np.ndarray]:
    """Near and far surfaces of the subject's ellipsoid body seen by the photo camera.

    returns: dict of numpy arrays [H, W]: near (z, 0 empty), far, label_near, label_far (int, -1 empty)
    """
    import torch

    from hvg_cli.bonemap.raster import rasterise
    from hvg_cli.bonemap.render import posed_ellipsoids

    cam = subject.camera
    W, H = width or cam.width, height or cam.height
    scale = np.array([W / cam.width, H / cam.height])  # photo pixels -> render pixels
    K = cam.resized(W, H).K
    c, a, s = posed_ellipsoids(
        subject.photo_pose[None], np.asarray(subject.photo_trans)[None], subject.skeleton, subject.radii
    )  # [1, P, ...]
    out = {}
    for far in (False, True):
        r = rasterise(c, a, s, K[None], cam.world_to_cam[None], W, H, far=far, dtype=torch.float64)
        key = "far" if far else "near"
        out[key] = r.depth[0].numpy()
        out["label_" + key] = r.label[0].numpy()
    before = out["label_near"]
    out["label_near"] = trim_hands(
        before, out["label_far"], np.asarray(subject.landmarks) * scale, np.asarray(subject.visibility)
    )
    # pixels a hand gave up keep no depth: the hand's ellipsoid is in front of what they show (clothes, the
    # hip), so their depth is filled from the body around them (else they stand out as a plate from the side)
    dropped = out["label_near"] != before
    out["near"] = np.where(dropped, 0.0, out["near"])
    # the hands take the photo's own skin pixels around their landmarks (fingers included), hands.py
    image = np.asarray(subject.image)
    if image.shape[:2] == (H, W) and np.asarray(subject.mask).shape == (H, W):
        from .hands import grow_hands

        out = grow_hands(
            out,
            image.astype(np.float32) / 255.0,
            np.asarray(subject.mask, np.float32),
            np.asarray(subject.landmarks) * scale,
            np.asarray(subject.visibility),
        )
    return out


# MediaPipe hand landmarks per side: wrist, pinky, index, thumb
_MP_HAND = {"left": (15, 17, 19, 21), "right": (16, 18, 20, 22)}


def trim_hands(
    label_near: np.ndarray, label_far: np.ndarray, landmarks: np.ndarray, visibility: np.ndarray
) -> np.ndarray:
    """Hand parts keep only the pixels near the photo's own hand landmarks.

    The hand ellipsoids are coarse: a hand in a pocket or on the hip would otherwise claim a patch of
    the clothes and carry it away with the hand. Pixels given up show what lies behind (label_far).
    A hand MediaPipe could not see (visibility < 0.5) gives up all its pixels.
    label_near, label_far: [H, W] int; landmarks: [33, 2] px at this size; visibility: [33]
    """
    from hvg_cli.bonemap.parts import PART_INDEX

    out = label_near.copy()
    H, W = label_near.shape
    for side, idx in _MP_HAND.items():
        parts = [PART_INDEX[f"{side}_palm"], PART_INDEX[f"{side}_fingers"]]
        ys, xs = np.nonzero(np.isin(label_near, parts))
        if len(ys) == 0:
            continue
        pts = landmarks[list(idx)]  # [4, 2]
        if float(np.mean(visibility[list(idx)])) < 0.5:
            keep = np.zeros(len(ys), bool)
        else:
            size = max(float(np.max(np.linalg.norm(pts[:, None] - pts[None], axis=-1))), 4.0)
            p = np.stack([xs + 0.5, ys + 0.5], -1)  # [n, 2] pixel centres
            d = np.full(len(p), np.inf)
            for i in range(4):
                for j in range(i, 4):
                    a, b = pts[i], pts[j]
                    ab = b - a
                    t = np.clip(((p - a) @ ab) / max(float(ab @ ab), 1e-9), 0.0, 1.0)
                    d = np.minimum(d, np.linalg.norm(p - (a + t[:, None] * ab), axis=-1))
            keep = d <= 0.5 * size
        drop_y, drop_x = ys[~keep], xs[~keep]
        behind = label_far[drop_y, drop_x]
        out[drop_y, drop_x] = np.where(np.isin(behind, parts), -1, behind)
    return out


def lift(
    lat: LatticeMesh, maps: dict, K: np.ndarray, cam_to_world: np.ndarray, mask: np.ndarray, body_depth: float
) -> PhotoMesh:
    """Give the lattice mesh depth, a back sheet and the outline strip; see the module doc.

    maps: from `body_maps_at_photo` at the mask's resolution. K: [3, 3] photo intrinsics. cam_to_world: [4, 4].
    mask: [H, W] float person mask. body_depth: photo-camera z of the pelvis, metres (the depth of mask
    regions that no ellipsoid reaches, e.g. when the body fit missed the person entirely).
    """
    H, W = mask.shape
    n = len(lat.uv)
    pix = np.clip(np.floor(lat.uv).astype(int), 0, [W - 1, H - 1])
    near = maps["near"][pix[:, 1], pix[:, 0]]
    far = maps["far"][pix[:, 1], pix[:, 0]]
    lab_n = maps["label_near"][pix[:, 1], pix[:, 0]].astype(np.int64)
    lab_f = maps["label_far"][pix[:, 1], pix[:, 0]].astype(np.int64)
    covered = (lab_n >= 0) & (near > 0) & (far > 0)
    A = vertex_adjacency(lat.faces, n)
    be = boundary_edges(lat.faces)  # [E, 2] the sheet's outline edges
    outline = np.zeros(n, bool)
    outline[be.ravel()] = True

    # depth: mid-surface c (Laplace, free at the outline) and half thickness h (zero at uncovered outline)
    c = harmonic_fill(A, 0.5 * (near + far), covered, default=body_depth)
    h_known = covered | outline
    h = harmonic_fill(A, np.where(covered, 0.5 * (far - near), 0.0), h_known)
    # inflation of the silhouette itself: Poisson with unit source (pixels^2), zero on the outline
    phi = harmonic_fill(A, np.zeros(n), outline, source=lat.spacing**2)
    fx = K[0, 0]
    inflate = np.sqrt(2.0 * np.maximum(phi, 0.0)) * c / fx  # metres
    h = np.maximum(h, np.minimum(INFLATE_GAIN * inflate, INFLATE_CAP))
    # the rim: front and back meet on the outline (h = 0 there), and the half thickness changes by at most
    # RIM_SLOPE metres per metre across the image plane along every mesh edge, so closing the rim stretches
    # the photo's texture by at most sqrt(1 + RIM_SLOPE^2) (the body's own tilt comes on top)
    h_body = np.where(outline, 0.0, np.maximum(h, 0.0))
    h = lipschitz_minorant(lat.faces, h_body, lat.uv, c / fx, RIM_SLOPE)

    # labels: the body's own where it covers, else the nearest covered vertex's (over the image)
    lab_n, lab_f = _fill_labels(lat, lab_n, covered), _fill_labels(lat, np.where(lab_f >= 0, lab_f, lab_n), covered)
    # the head's seam sits forward: its rim moves towards the camera by HEAD_SEAM_FORWARD of the thickness the
    # rim took away, so the back sheet (hair) wraps round the sides and the photo's face, ears and earrings
    # face forward (seen from behind at 135-225 degrees they stay hidden)
    from hvg_cli.bonemap.parts import PART_INDEX

    head = lab_n == PART_INDEX["head"]
    c = np.where(head, c - HEAD_SEAM_FORWARD * (h_body - h), c)
    z_front, z_back = c - h, c + h
    z_front, z_back = rest_hands_on_body(A, z_front, z_back, lab_n, lab_f, body_depth)

    rays = np.concatenate([(lat.uv - K[:2, 2]) / np.diag(K)[:2], np.ones((n, 1))], 1)  # [n, 3] camera, z = 1

    def unproject(z):
        return (rays * z[:, None]) @ cam_to_world[:3, :3].T + cam_to_world[:3, 3]

    verts = np.concatenate([unproject(z_front), unproject(z_back)], 0)
    # back sheet: reversed winding; outline strip: quads (a, b) front -> (b, a) back
    front = lat.faces
    back = lat.faces[:, ::-1] + n
    strip = np.concatenate(
        [np.stack([be[:, 1], be[:, 0], be[:, 0] + n], -1), np.stack([be[:, 1], be[:, 0] + n, be[:, 1] + n], -1)], 0
    )
    # under-layer: where a part lies in front of a part it is not joined to (an arm across the torso),
    # a copy of the front sheet sits on the hidden part's surface, continued smoothly under the occluder,
    # and is textured from the inpainted photo (second half of the texture atlas, u + W). Hidden at rest;
    # it shows when the arm moves away, instead of a hole.
    from .skin import part_adjacency

    adj = part_adjacency()
    occ = ~adj[lab_n, lab_f]  # [n] front vertices that occlude an unrelated part
    under_lab = np.where(occ, lab_f, lab_n)
    fl = under_lab[lat.faces]  # [F, 3]
    joined = adj[fl[:, 0], fl[:, 1]] & adj[fl[:, 1], fl[:, 2]] & adj[fl[:, 2], fl[:, 0]]
    uf = lat.faces[occ[lat.faces].any(1) & joined]  # [U, 3] lattice faces of the under-layer
    n_new = 0
    new_verts, new_uv, new_lab, new_cov = [], [], [], []
    if len(uf):
        # the hidden surface, filled under the occluder from the body around it (not from the arm and hand
        # themselves, which stand in front of it: a hand on the hip left a flap standing out of the hip)
        from hvg_cli.bonemap.parts import PARTS

        arm = np.isin(lab_n, [i for i, p in enumerate(PARTS) if p.name.endswith(("forearm", "palm", "fingers"))])
        z_under = harmonic_fill(A, z_front, ~occ & ~arm, default=body_depth)
        z_under = np.clip(np.maximum(z_under, z_front + 0.01), None, np.maximum(z_back, z_front + 0.01))
        ids = np.unique(uf[occ[uf]])
        remap = np.arange(n)
        remap[ids] = 2 * n + np.arange(len(ids))
        uf = remap[uf]
        n_new = len(ids)
        new_verts = unproject(z_under)[ids]
        new_uv = lat.uv[ids] + np.array([W, 0.0])
        new_lab, new_cov = lab_f[ids], covered[ids]
    faces = np.concatenate([front, back, strip, uf.reshape(-1, 3)], 0).astype(np.int64)
    kind = np.concatenate(
        [np.zeros(len(front)), np.ones(len(back)), np.full(len(strip), 2), np.full(len(uf), 3)]
    ).astype(np.int8)
    uv_inner = inner_uv(lat.uv, outline, mask, depth_px=max(2.0, 0.003 * H))
    uv_all = np.concatenate([lat.uv, lat.uv, np.reshape(new_uv, (-1, 2))], 0)
    return PhotoMesh(
        face_kind=kind,
        uv_inner=np.concatenate([uv_inner, uv_inner, np.reshape(new_uv, (-1, 2))], 0),
        verts=np.concatenate([verts, np.reshape(new_verts, (-1, 3))], 0),
        faces=faces,
        uv=uv_all,
        labels=np.concatenate([lab_n, lab_f, np.asarray(new_lab, np.int64)]),
        covered=np.concatenate([covered, covered, np.asarray(new_cov, bool)]),
        back=np.concatenate([np.zeros(n, bool), np.ones(n, bool), np.zeros(n_new, bool)]),
    )


HAND_REST = 0.04  # metres: the most a hand (or forearm) over the body stands in front of it


def rest_hands_on_body(
    A, z_front: np.ndarray, z_back: np.ndarray, lab_n: np.ndarray, lab_f: np.ndarray, body_depth: float
) -> tuple[np.ndarray, np.ndarray]:
    """Move hands and forearms that lie over the body back onto it, along their photo rays.

    The body fit places a hand on the hip or in a pocket where its landmarks say, often a hand's length in
    front of the body; lifted there, the hand and the clothes its ellipsoid covers stand out as a flat plate
    when seen from the side. Where a hand or forearm part hides an unrelated part (the body behind it), the
    front is moved back to at most HAND_REST in front of that hidden surface (continued under the hand by a
    Laplace fill); the shift fades along the rest of the hand and forearm (Laplace fill, 0 on other parts).
    Vertices move along their rays, so the photo view is unchanged.
    A: [n, n] mesh adjacency; z_*: [n] photo-camera depths; lab_n, lab_f: [n] near and far parts.
    returns: (z_front, z_back) shifted
    """
    from hvg_cli.bonemap.parts import PART_INDEX

    from .skin import part_adjacency

    limb = np.isin(lab_n, [PART_INDEX[f"{s}_{p}"] for s in ("left", "right") for p in ("palm", "fingers", "forearm")])
    over = limb & ~part_adjacency()[lab_n, lab_f]  # [n] a hand or forearm in front of the body
    if not over.any():
        return z_front, z_back
    hidden = harmonic_fill(A, z_front, ~limb, default=body_depth)  # the body around, filled under the arm
    shift = np.where(over, np.maximum(hidden - HAND_REST - z_front, 0.0), 0.0)
    shift = harmonic_fill(A, shift, over | ~limb)  # fades along the rest of the limb, 0 off it
    return z_front + shift, z_back + shift


def lipschitz_minorant(
    faces: np.ndarray, values: np.ndarray, uv: np.ndarray, scale: np.ndarray, slope: float
) -> np.ndarray:
    """The largest function below `values` that changes by at most `slope` per unit length along mesh edges.

    out(v) = min over u of values(u) + slope * (shortest path from u to v), by one Dijkstra run from a
    virtual source joined to every vertex u with the weight values(u).
    faces: [F, 3]; values: [N] >= 0; uv: [N, 2] pixels; scale: [N] metres per pixel at each vertex (an
    edge's length is |d uv| times its two ends' mean scale); returns [N]
    """
    from scipy import sparse
    from scipy.sparse.csgraph import dijkstra

    n = len(values)
    e = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]], 0)  # [3F, 2]
    e = np.unique(np.sort(e, axis=1), axis=0)
    length = np.linalg.norm(uv[e[:, 0]] - uv[e[:, 1]], axis=1) * 0.5 * (scale[e[:, 0]] + scale[e[:, 1]])  # [E] metres
    w = slope * length + 1e-15  # (0 would drop the edge)
    src = np.full(n, n)
    rows = np.concatenate([e[:, 0], e[:, 1], src])
    cols = np.concatenate([e[:, 1], e[:, 0], np.arange(n)])
    vals = np.concatenate([w, w, np.asarray(values, np.float64) + 1e-15])
    G = sparse.coo_matrix((vals, (rows, cols)), shape=(n + 1, n + 1)).tocsr()
    return np.minimum(dijkstra(G, directed=True, indices=n)[:n], values)


def occluded_pixels(maps: dict) -> np.ndarray:
    """[H, W] bool: pixels where the nearest part hides a part it is not joined to (photo camera)."""
    from .skin import part_adjacency

    adj = part_adjacency()
    ln, lf = maps["label_near"], maps["label_far"]
    ok = (ln >= 0) & (lf >= 0)
    out = np.zeros(ln.shape, bool)
    out[ok] = ~adj[ln[ok], lf[ok]]
    return out


def inner_uv(uv: np.ndarray, outline: np.ndarray, mask: np.ndarray, depth_px: float) -> np.ndarray:
    """Outline vertices' texture coordinates moved `depth_px` pixels into the mask (off its soft edge).

    uv: [N, 2]; outline: [N] bool; mask: [H, W]. Others are returned unchanged.
    """
    from scipy import ndimage

    H, W = mask.shape
    core = ndimage.distance_transform_edt(mask > 0.5) > depth_px
    if not core.any() or not outline.any():
        return uv.copy()
    _, idx = ndimage.distance_transform_edt(~core, return_indices=True)  # nearest core pixel of each pixel
    p = np.clip(np.floor(uv[outline]).astype(int), 0, [W - 1, H - 1])
    out = uv.copy()
    out[outline] = np.stack([idx[1][p[:, 1], p[:, 0]], idx[0][p[:, 1], p[:, 0]]], -1) + 0.5
    return out


def _fill_labels(lat: LatticeMesh, labels: np.ndarray, covered: np.ndarray) -> np.ndarray:
    """Labels of uncovered vertices (skirt, hair, loose sleeves) from the nearby parts.

    Each uncovered lattice point takes the part with the smallest distance to that part's covered
    points divided by the part's size (radius of a disc of its covered area), so a wide skirt goes to
    the pelvis and thighs rather than to a small hand that happens to rest on it.
    labels: [N] (-1 allowed); covered: [N] bool. Distances in lattice steps.
    """
    from scipy import ndimage

    if covered.all() or not covered.any():
        return np.where(labels >= 0, labels, 0)
    r, cidx = lat.grid_index[:, 0], lat.grid_index[:, 1]
    grid = np.full((r.max() + 1, cidx.max() + 1), -1, np.int64)
    grid[r[covered], cidx[covered]] = labels[covered]
    unc = np.nonzero(~covered)[0]  # [U] vertices to label
    ur, uc = r[unc], cidx[unc]  # [U] their lattice cells
    best = np.full(len(unc), np.inf)
    out = labels.copy()
    for p in np.unique(labels[covered]):
        region = grid == p
        size = np.sqrt(region.sum() / np.pi) + 1.0
        d = ndimage.distance_transform_edt(~region)[ur, uc] / size  # [U]
        take = d < best
        best[take] = d[take]
        out[unc[take]] = p
    return out
