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
   The rim: h is 0 on the outline and grows at most RIM_SLOPE per unit of image-plane length (texture
   stretch at most RIM_STRETCH), and only RIM_BAND_SLOPE within the mask's soft edge (RIM_BAND), whose
   pixels mix in the photo's background: seen from the side that band is nearly edge-on, not a bright line.
3. Both sides unproject through the photo camera, share the photo's texture coordinates (the back
   shows the mirrored front), and a strip of triangles joins them along the outline: a closed surface.
4. Labels: the body's part at each pixel (hand parts trimmed to the photo's hand landmarks, then grown to the
   hand's skin; forearms and hands keep only the pixels of their own colours, hands.relabel_arms, which also
   names the part of uncovered pixels it decided, maps["label_fill"]); other uncovered pixels take the nearest
   part relative to its size. Skinning later cuts the mesh between parts that
   are not joined (skin.cut_overlaps); the body stays closed when an arm leaves it:
   - where an arm lies beside the torso (both sheets cut there: hands in pockets), h is 0 on the cut as on
     the outline, so the torso and the arm each close on their own side of it;
   - where an arm covers the core body (the ellipsoids without the arms: an arm across or beside the
     torso, a hand on the hip), a closed core shell continues the body beneath it (front on the core's
     near surface, back on its far one, a strip where it ends), hidden at rest, textured from an
     inpainted copy of the photo, so moving the arm away shows torso with its depth, not a hole.

Everything here is in the photo camera's image coordinates, pixel centres at (j + 0.5, i + 0.5).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from .hands import MP_HAND

if TYPE_CHECKING:
    from scipy import sparse

INFLATE_CAP = 0.12  # metres: the most half-thickness the silhouette inflation may add
INFLATE_GAIN = 0.6  # fraction of the circular cross-section used for uncovered regions
RIM_SLOPE = 3.0  # most half-thickness gained per unit of distance from the outline (a 71.6 degree rim)
HEAD_SEAM_FORWARD = 1.0  # fraction of the thickness removed at the head's rim by which its seam moves forward
RIM_STRETCH = float(np.sqrt(1.0 + RIM_SLOPE**2))  # the bound on texture stretch the rim's closing gives (3.16)
# the mask's soft edge: its outermost pixels (this fraction of the photo height) often mix in the photo's
# background (a white wall beside a dark sleeve). The front sheet must show them at rest (the photo), but a
# steep rim there turns them into bright lines seen from the side, so within this band the sheets rise only
# RIM_BAND_SLOPE (nearly edge-on from the side, 1/30 of the steep rim's width) and the steep part samples
# the clean colours further in; the outline strip samples them from the band's inner edge too.
RIM_BAND = 0.004
RIM_BAND_SLOPE = 0.1


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
    """The closed photo mesh in the photo pose: front sheet [0, n), back sheet [n, 2n), the core shell after
    (its front copies, then its back copies; face kind 3 for its front, back and strip).

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


def photo_landmarks(subject, width: int, height: int) -> np.ndarray:
    """[33, 2] the subject's MediaPipe landmarks in pixels of an image of width x height (the photo camera's
    pixels scaled; the mask and the preview's maps are at the photo's own size, where this is the identity)."""
    cam = subject.camera
    return np.asarray(subject.landmarks, np.float64) * np.array([width / cam.width, height / cam.height])


def body_maps_at_photo(subject, width: int | None = None, height: int | None = None) -> dict[str, np.ndarray]:
    """Near and far surfaces of the subject's ellipsoid body seen by the photo camera.

    returns: dict of numpy arrays [H, W]: near (z, 0 empty), far, label_near, label_far (int, -1 empty)
    """
    import torch

    from hvg_cli.bonemap.raster import rasterise
    from hvg_cli.bonemap.render import posed_ellipsoids

    cam = subject.camera
    W, H = width or cam.width, height or cam.height
    landmarks = photo_landmarks(subject, W, H)  # [33, 2] render pixels
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
    # the core body: the same without the arms and hands (what an arm hanging beside the torso, or lying across
    # it, hides in the photo, though the union's near and far both belong to the arm there)
    core = np.array([not is_arm_part(i) for i in range(c.shape[1])])
    for far in (False, True):
        r = rasterise(
            c[:, core], a[:, core], s[:, core], K[None], cam.world_to_cam[None], W, H, far=far, dtype=torch.float64
        )
        key = "core_far" if far else "core_near"
        lab = r.label[0].numpy()
        out[key] = r.depth[0].numpy()
        out["label_" + key] = np.where(lab >= 0, np.nonzero(core)[0][np.maximum(lab, 0)], -1)
    out["label_fill"] = np.full((H, W), -1, np.int64)  # parts for pixels no ellipsoid covers (hands.relabel_arms)
    before = out["label_near"]
    out["label_near"] = trim_hands(before, out["label_far"], landmarks, np.asarray(subject.visibility))
    # pixels a hand gave up keep no depth: the hand's ellipsoid is in front of what they show (clothes, the
    # hip), so their depth is filled from the body around them (else they stand out as a plate from the side)
    dropped = out["label_near"] != before
    out["near"] = np.where(dropped, 0.0, out["near"])
    # the hands take the photo's own skin pixels around their landmarks (fingers included), hands.py
    image = np.asarray(subject.image)
    if image.shape[:2] == (H, W) and np.asarray(subject.mask).shape == (H, W):
        from .hands import grow_hands, relabel_arms

        photo = (
            image.astype(np.float32) / 255.0,
            np.asarray(subject.mask, np.float32),
            landmarks,
            np.asarray(subject.visibility),
        )
        out = grow_hands(out, *photo)
        # the arms keep only the pixels of their own colours (the clothes beside them stay with the body)
        out = relabel_arms(out, *photo)
    out["arm_over_body"] = arms_over_body(out)  # [H, W] bool (lift)
    return out


OVER_BODY_PARTS = ("forearm", "palm", "fingers")


def arms_over_body(maps: dict) -> np.ndarray:
    """[H, W] bool: the forearm and hand pixels that lie over the body (their far part is not an arm's nor joined to
    theirs): a hand resting on the hip, a forearm across the belly. maps: body_maps_at_photo's (label_near,
    label_far, near)."""
    from hvg_cli.bonemap.parts import PART_INDEX, PARTS

    from .skin import part_adjacency

    ids = [PART_INDEX[f"{s}_{p}"] for s in ("left", "right") for p in OVER_BODY_PARTS]
    ln, lf = maps["label_near"], maps["label_far"]
    adj = part_adjacency()
    arm = np.array([is_arm_part(i) for i in range(len(PARTS))])
    over = np.isin(ln, ids) & (lf >= 0) & (maps["near"] > 0)
    over[over] &= ~adj[ln[over], lf[over]] & ~arm[lf[over]]
    return over


ARM_PARTS = ("upper_arm", "forearm", "palm", "fingers")


def is_arm_part(index: int) -> bool:
    """Whether bone-map part `index` belongs to an arm (upper arm, forearm, hand): what may leave the core body."""
    from hvg_cli.bonemap.parts import PARTS

    return any(PARTS[index].name.endswith(k) for k in ARM_PARTS)


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
    for side, idx in MP_HAND.items():
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

    # labels: the body's own where it covers, else the nearest covered vertex's (over the image)
    lab_n, lab_f = _fill_labels(lat, lab_n, covered), _fill_labels(lat, np.where(lab_f >= 0, lab_f, lab_n), covered)
    if "label_fill" in maps:  # uncovered pixels whose part the arms' colour test decided (hands.relabel_arms)
        hint = maps["label_fill"][pix[:, 1], pix[:, 0]].astype(np.int64)
        use = ~covered & (hint >= 0)
        lab_n, lab_f = np.where(use, hint, lab_n), np.where(use, hint, lab_f)
    # depth: mid-surface c (Laplace, free at the outline) and half thickness h (zero at uncovered outline)
    c = harmonic_fill(A, 0.5 * (near + far), covered, default=body_depth)
    h_known = covered | outline
    h = harmonic_fill(A, np.where(covered, 0.5 * (far - near), 0.0), h_known)
    # uncovered pixels of the body (the clothes beyond its ellipsoids) take their depth from the body alone: filled
    # from the arms too, the shorts beside a hand resting on the hip took the hand's depth and, the hand raised,
    # stuck out of the hip as flaps
    arm_ids = np.array([is_arm_part(i) for i in range(max(int(lab_n.max()), 0) + 1)])
    arm_v = arm_ids[np.maximum(lab_n, 0)]  # [n] an arm's (lab_n is filled: the covered keep their own part)
    body_known = covered & ~arm_v
    body_free = ~covered & ~arm_v
    if "arm_over_body" in maps and maps["arm_over_body"].any():  # only round an arm that lay over the body
        from scipy import ndimage

        d = ndimage.distance_transform_edt(~maps["arm_over_body"])  # [H, W] pixels to the nearest such arm pixel
        body_free &= d[pix[:, 1], pix[:, 0]] <= UNDER_ARM_REACH * H
    else:
        body_free[:] = False
    if body_known.any() and body_free.any():
        c_body = harmonic_fill(A, 0.5 * (near + far), body_known, default=body_depth)
        c = np.where(body_free, np.maximum(c, c_body), c)
    # inflation of the silhouette itself: Poisson with unit source (pixels^2), zero on the outline
    phi = harmonic_fill(A, np.zeros(n), outline, source=lat.spacing**2)
    fx = K[0, 0]
    inflate = np.sqrt(2.0 * np.maximum(phi, 0.0)) * c / fx  # metres
    h = np.maximum(h, np.minimum(INFLATE_GAIN * inflate, INFLATE_CAP))
    # seams through the body: where an arm lies beside the torso (hands in pockets), both sheets are cut between
    # parts that are not joined (skin.cut_overlaps), and the torso's side would stay open when the arm moves
    # away: seen from the side, its front and back sheets edge-on, two thin lines. There the thickness goes to
    # zero like on the outline, so each part closes on its own side of the seam.
    seam = through_seams(lat.faces, lab_n, lab_f, n)
    # the rim: front and back meet on the outline (h = 0 there), and the half thickness changes by at most
    # RIM_SLOPE metres per metre across the image plane along every mesh edge, so closing the rim stretches
    # the photo's texture by at most sqrt(1 + RIM_SLOPE^2) (the body's own tilt comes on top)
    h_body = np.where(outline | seam, 0.0, np.maximum(h, 0.0))
    if RIM_BAND * H >= 2.0:  # a narrower soft edge lies within the outline's own triangles (spacing >= 2 px)
        h_body = np.minimum(h_body, rim_band_profile(lat.uv, mask, c / fx, RIM_BAND * H))
    h = lipschitz_minorant(lat.faces, h_body, lat.uv, c / fx, RIM_SLOPE)

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
    # under-layer: where an arm lies over the core body and is not joined to it (an arm across the torso, an arm
    # hanging beside it, a hand on the hip), the core body continues beneath it as a closed shell of its own: a
    # front on the core's near surface, a back on its far surface (behind the arm's own sheets, so hidden at
    # rest), attached to the visible body's front and back sheets, and a strip closing it where it ends. When
    # the arm moves away the body keeps its depth there (Photo Wake-Up: the body's depth at every point)
    # instead of the arm carrying the torso's sides away and leaving two sheets seen edge-on. Textured from the
    # inpainted photo (second half of the texture atlas, u + W).
    uf, ub, us, new_verts, new_uv, new_lab, new_cov, n_new = _core_shell(
        lat, maps, pix, lab_n, lab_f, covered, z_front, z_back, unproject
    )
    new_uv = new_uv + np.array([W, 0.0])
    faces = np.concatenate([front, back, strip, uf, ub, us], 0).astype(np.int64)
    kind = np.concatenate(
        [np.zeros(len(front)), np.ones(len(back)), np.full(len(strip), 2), np.full(len(uf) + len(ub) + len(us), 3)]
    ).astype(np.int8)
    uv_inner = inner_uv(lat.uv, outline, mask, depth_px=max(2.0, RIM_BAND * H))
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


UNDER_ARM_REACH = 0.04  # fraction of the photo height: the body's clothes this near an arm lying over the body
#                         take their depth from the body alone (lift)
UNDER_GAP = 0.01  # metres: the core shell stays at least this far behind the arm's front and inside its back


def _core_shell(lat, maps, pix, lab_n, lab_f, covered, z_front, z_back, unproject):
    """The core body's shell beneath the arms (see `lift`).

    pix: [n, 2] int pixel of each lattice vertex; lab_n, lab_f: [n] filled parts of the front and back sheets;
    z_front, z_back: [n] their photo-camera depths; unproject: z [n] -> world [n, 3]. New vertices are numbered from 2n: occluded front copies, then back copies.
    returns: (front faces [U, 3], back faces [U, 3], strip faces [S, 3], new verts [m, 3], their uv [m, 2]
    photo pixels, labels [m], covered [m], m)
    """
    from .skin import part_adjacency

    n = len(lat.uv)
    adj = part_adjacency()
    core_near = maps["core_near"][pix[:, 1], pix[:, 0]]
    core_far = maps["core_far"][pix[:, 1], pix[:, 0]]
    cl_n = maps["label_core_near"][pix[:, 1], pix[:, 0]].astype(np.int64)
    cl_f = maps["label_core_far"][pix[:, 1], pix[:, 0]].astype(np.int64)
    has_core = (cl_n >= 0) & (cl_f >= 0) & (core_near > 0) & (core_far > 0)
    occ = np.zeros(n, bool)  # [n] front vertices of an arm over a core part it is not joined to
    occ[has_core] = ~adj[lab_n[has_core], cl_n[has_core]]
    empty = (np.zeros((0, 3), np.int64),) * 3 + (np.zeros((0, 3)), np.zeros((0, 2)), np.zeros(0, np.int64))
    if not occ.any():
        return empty + (np.zeros(0, bool), 0)
    lab_uf = np.where(occ, cl_n, lab_n)  # [n] parts of the shell's front, the visible sheets elsewhere
    lab_ub = np.where(occ, cl_f, lab_f)
    fl, bl = lab_uf[lat.faces], lab_ub[lat.faces]  # [F, 3]
    joined = np.ones(len(lat.faces), bool)
    for a, b in ((0, 1), (1, 2), (2, 0)):
        joined &= adj[fl[:, a], fl[:, b]] & adj[bl[:, a], bl[:, b]]
    faces = lat.faces[occ[lat.faces].any(1) & joined]  # [U, 3] lattice faces of the shell
    if len(faces) == 0:
        return empty + (np.zeros(0, bool), 0)
    ids = np.unique(faces[occ[faces]])  # [m] the shell's own vertices
    m = len(ids)
    # depths: the core's own surfaces, kept behind the arm's front and inside its back, front before back
    zf = np.maximum(np.where(occ, core_near, z_front), z_front + UNDER_GAP)
    zb = np.where(occ, core_far, z_back)
    zb = np.maximum(np.minimum(zb, z_back - UNDER_GAP), zf + UNDER_GAP)
    front_id = np.arange(n)  # [n] shell front vertex of each lattice vertex
    back_id = np.arange(n) + n
    front_id[ids] = 2 * n + np.arange(m)
    back_id[ids] = 2 * n + m + np.arange(m)
    uf = front_id[faces]
    ub = back_id[faces][:, ::-1]
    # strip: the shell's open edges (its faces' outline edges with a vertex of its own), front copy to back copy
    e = boundary_edges(faces)
    e = e[occ[e].any(1)]
    us = np.concatenate(
        [
            np.stack([front_id[e[:, 1]], front_id[e[:, 0]], back_id[e[:, 0]]], -1),
            np.stack([front_id[e[:, 1]], back_id[e[:, 0]], back_id[e[:, 1]]], -1),
        ],
        0,
    )
    verts = np.concatenate([unproject(zf)[ids], unproject(zb)[ids]], 0)
    uv = np.concatenate([lat.uv[ids], lat.uv[ids]], 0)
    labels = np.concatenate([cl_n[ids], cl_f[ids]])
    cov = np.concatenate([covered[ids], covered[ids]])
    return uf, ub, us, verts, uv, labels, cov, 2 * m


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


def rim_band_profile(uv: np.ndarray, mask: np.ndarray, scale: np.ndarray, band_px: float) -> np.ndarray:
    """The most half thickness a vertex may have given its distance d inside the mask's outline: RIM_BAND_SLOPE * d
    within the soft-edge band (band_px), RIM_SLOPE beyond it (both per unit of image-plane length, metres).

    uv: [n, 2] pixels; mask: [H, W]; scale: [n] metres per pixel at each vertex; returns [n] metres
    """
    from scipy import ndimage

    H, W = mask.shape
    inside = ndimage.distance_transform_edt(mask > 0.5)  # [H, W] pixels to the nearest outside pixel
    p = np.clip(np.floor(uv).astype(int), 0, [W - 1, H - 1])
    d = np.maximum(inside[p[:, 1], p[:, 0]] - 0.5, 0.0)  # [n] pixels inside the 0.5 contour (about)
    d_band = np.minimum(d, band_px)
    return (RIM_BAND_SLOPE * d_band + RIM_SLOPE * (d - d_band)) * scale


SEAM_RINGS = 3  # lattice steps: how far apart the front's and the back's cuts may lie and still cut through


def through_seams(faces: np.ndarray, lab_n: np.ndarray, lab_f: np.ndarray, n: int) -> np.ndarray:
    """[n] bool: vertices on a cut through the body: a front-sheet (parts lab_n) or back-sheet (lab_f) triangle
    joins parts that are not neighbours in the body (skin.cut_overlaps separates them), and the other sheet is
    cut too within SEAM_RINGS lattice steps (an arm beside the torso; not an arm lying across it, whose back
    is the torso's own).

    faces: [F, 3] the sheet's triangles; lab_n, lab_f: [n] parts.
    """
    from .skin import part_adjacency

    adj = part_adjacency()
    A = vertex_adjacency(faces, n) + _identity(n)
    cuts = []
    for lab in (lab_n, lab_f):
        fl = lab[faces]  # [F, 3]
        cut = ~(adj[fl[:, 0], fl[:, 1]] & adj[fl[:, 1], fl[:, 2]] & adj[fl[:, 2], fl[:, 0]])  # [F]
        v = np.zeros(n, bool)
        v[faces[cut].ravel()] = True
        cuts.append(v)
    near = []
    for v in cuts:
        x = v.astype(np.float64)
        for _ in range(SEAM_RINGS):
            x = A @ x
        near.append(x > 0)
    return (cuts[0] | cuts[1]) & near[0] & near[1]


def _identity(n: int):
    from scipy import sparse

    return sparse.identity(n, format="csr")


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
    """[H, W] bool: pixels where the nearest part hides a core part it is not joined to (photo camera): an arm
    over or beside the torso, where the core shell of `lift` shows once the arm moves away."""
    from .skin import part_adjacency

    adj = part_adjacency()
    ln, lf = maps["label_near"], maps["label_core_near"]
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
