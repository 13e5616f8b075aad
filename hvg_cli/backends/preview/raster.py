"""A small triangle rasteriser with a depth test, on the CPU with torch, no display needed.

Why our own: the maintained renderers do not fit this project's set-up. nvdiffrast needs CUDA,
pytorch3d has no wheels on PyPI for this torch, and pyrender needs a system OpenGL (OSMesa/EGL) that
`pip install` cannot provide. Triangles here are small (a photo mesh at a few pixels' spacing), so a
bucketed, fully vectorised rasteriser is fast enough: every triangle enumerates only the pixels of
its screen box, the z-buffer is one `scatter_reduce(amin)` over packed (depth, face) keys.

Conventions: camera space is OpenCV (x right, y down, z forward, metres); pixel (column x, row y)
samples the image point (u, v) = (x + 0.5, y + 0.5), as hvg's intrinsics and the bone-map rasteriser. A pixel is covered by a
triangle when its centre lies inside it or on its edges (a small tolerance closes cracks). Ties in
depth go to the lower face index. Barycentrics are perspective-correct.

`rasterise_reference` is the plain twin: loops over faces and pixels, same rules.

The renderer's fast path is compiled (numba, `kernels.py`): `rasterise_fast`, `render_textured_fast` and
`skin_to_camera` follow the same rules, face ids bit for bit, and have the torch functions here
(`rasterise`, `render_textured`) and `skin.pose_vertices` as their plain twins.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from torch import Tensor

EDGE_EPS = 1e-5  # barycentric tolerance: pixels on a shared edge belong to both triangles (float32 work)
_FACE_BITS = 31


@dataclass(frozen=True, eq=False)
class Fragments:
    """What the rasteriser found (torch tensors): a dense face buffer, the rest for covered pixels only."""

    face: Tensor  # [B, H, W] int64 face index, -1 where empty
    index: tuple[Tensor, Tensor, Tensor]  # (b, y, x) int64 [n] each: the covered pixels, in row-major order
    bary: Tensor  # [n, 3] perspective-correct barycentrics of the winning face
    depth: Tensor  # [n] camera z, metres

    def dense_bary(self) -> Tensor:
        """[B, H, W, 3], 0 where empty."""
        import torch

        out = torch.zeros(self.face.shape + (3,), dtype=self.bary.dtype)
        out[self.index] = self.bary
        return out

    def dense_depth(self) -> Tensor:
        """[B, H, W] metres, 0 where empty."""
        import torch

        out = torch.zeros(self.face.shape, dtype=self.depth.dtype)
        out[self.index] = self.depth
        return out


def project(verts, K) -> Tensor:
    """Pinhole projection.

    verts:   [B, N, 3] camera space, metres
    K:       [B, 3, 3] pixels
    returns: [B, N, 2] pixels (u, v)
    """
    import torch

    z = verts[..., 2].clamp_min(1e-9)
    u = K[:, None, 0, 0] * verts[..., 0] / z + K[:, None, 0, 2]
    v = K[:, None, 1, 1] * verts[..., 1] / z + K[:, None, 1, 2]
    return torch.stack([u, v], dim=-1)


def _doubled_area(p0, p1, p2):
    """Signed doubled area of screen triangles (p0, p1, p2), each [..., 2] pixels."""
    return (p1[..., 0] - p0[..., 0]) * (p2[..., 1] - p0[..., 1]) - (p1[..., 1] - p0[..., 1]) * (p2[..., 0] - p0[..., 0])


def _barycentric(p0, p1, p2, px, py):
    """Screen-space barycentrics of points (px, py) in triangles (p0, p1, p2); any broadcastable shapes.

    p0..p2: [..., 2] pixels; px, py: [...]; returns (l0, l1, l2).
    """
    area = _doubled_area(p0, p1, p2)
    w0 = (p2[..., 0] - p1[..., 0]) * (py - p1[..., 1]) - (p2[..., 1] - p1[..., 1]) * (px - p1[..., 0])
    w1 = (p0[..., 0] - p2[..., 0]) * (py - p2[..., 1]) - (p0[..., 1] - p2[..., 1]) * (px - p2[..., 0])
    w2 = (p1[..., 0] - p0[..., 0]) * (py - p0[..., 1]) - (p1[..., 1] - p0[..., 1]) * (px - p0[..., 0])
    return w0 / area, w1 / area, w2 / area


def rasterise(
    verts, faces, K, width: int, height: int, near: float = 0.01, max_fragments: int = 40_000_000
) -> Fragments:
    """Rasterise triangle meshes with a z-buffer.

    verts:   [B, N, 3] camera space, metres (float64 recommended)
    faces:   [F, 3] int64 vertex indices (shared by the batch)
    K:       [B, 3, 3] intrinsics, pixels
    returns: Fragments: dense face buffer [B, H, W]; barycentrics [n, 3] and depth [n] of the n covered pixels
    Triangles with a vertex nearer than `near` are dropped (the subject never crosses the camera).
    """
    import torch

    B = verts.shape[0]
    dev = verts.device
    verts = verts.to(torch.float64)
    K = torch.as_tensor(K, dtype=torch.float64, device=dev)
    faces = torch.as_tensor(faces, dtype=torch.int64, device=dev)
    HW = height * width

    # 1. Project and gather per-face screen corners: [B, F, 3, 2] px and depths [B, F, 3]
    uv = project(verts, K)
    tri_uv = uv[:, faces]  # [B, F, 3, 2]
    tri_z = verts[:, faces, 2]  # [B, F, 3]

    # 2. Screen boxes over pixel centres, clipped to the image
    lo = torch.ceil(tri_uv.amin(dim=2) - 0.5 - 1e-9)  # [B, F, 2] pixel indices (centre = index + 0.5)
    hi = torch.floor(tri_uv.amax(dim=2) - 0.5 + 1e-9)
    lo[..., 0].clamp_(0, width - 1)
    lo[..., 1].clamp_(0, height - 1)
    hi[..., 0].clamp_(-1, width - 1)
    hi[..., 1].clamp_(-1, height - 1)
    size = (hi - lo + 1).clamp_min(0)  # [B, F, 2] pixels
    area = _doubled_area(tri_uv[:, :, 0], tri_uv[:, :, 1], tri_uv[:, :, 2])  # [B, F]
    valid = (tri_z.amin(dim=2) > near) & (size[..., 0] > 0) & (size[..., 1] > 0) & (area.abs() > 1e-12)
    b_idx, f_idx = torch.nonzero(valid, as_tuple=True)  # [M] each
    # Per face, barycentrics and 1/z are affine in the pixel: l_i = a_i dx + b_i dy + c_i with (dx, dy)
    # the offset from the face's first box pixel. Set up in float64, evaluated in float32.
    t = tri_uv[b_idx, f_idx]  # [M, 3, 2]
    zi = 1.0 / tri_z[b_idx, f_idx]  # [M, 3]
    o = lo[b_idx, f_idx] + 0.5  # [M, 2] centre of the first box pixel
    ar = area[b_idx, f_idx]  # [M]
    nxt = t[:, [1, 2, 0]]  # edge opposite corner i runs from corner i+1 to corner i+2
    nn = t[:, [2, 0, 1]]
    ea = -(nn[..., 1] - nxt[..., 1]) / ar[:, None]  # [M, 3]
    eb = (nn[..., 0] - nxt[..., 0]) / ar[:, None]
    ec = (
        (nn[..., 0] - nxt[..., 0]) * (o[:, None, 1] - nxt[..., 1])
        - (nn[..., 1] - nxt[..., 1]) * (o[:, None, 0] - nxt[..., 0])
    ) / ar[:, None]
    coef = torch.stack([ea, eb, ec], -1)  # [M, 3 corners, 3]
    zc = (coef * zi[..., None]).sum(1)  # [M, 3]: 1/z = za dx + zb dy + zc
    coef32, zc32 = coef.to(torch.float32), zc.to(torch.float32)
    sz = size[b_idx, f_idx].long()  # [M, 2]
    base = b_idx * HW + lo[b_idx, f_idx, 1].long() * width + lo[b_idx, f_idx, 0].long()  # [M] first box pixel

    # 3. Bucket faces by box size (powers of two) so each bucket is one dense [n, bh*bw] block
    bucket_w = _ceil_pow2(sz[:, 0])
    bucket_h = _ceil_pow2(sz[:, 1])
    zbuf = torch.full((B * HW,), torch.iinfo(torch.int64).max, dtype=torch.int64, device=dev)
    code = bucket_h * 65536 + bucket_w
    order = torch.argsort(code)
    codes, counts = torch.unique_consecutive(code[order], return_counts=True)
    start = 0
    for c, cnt in zip(codes.tolist(), counts.tolist()):
        sel_all = order[start : start + cnt]
        start += cnt
        bh, bw = c // 65536, c % 65536
        oy, ox = torch.meshgrid(torch.arange(bh, device=dev), torch.arange(bw, device=dev), indexing="ij")
        dx, dy = ox.reshape(1, -1), oy.reshape(1, -1)  # [1, bh*bw] int
        dxf, dyf = dx.to(torch.float32), dy.to(torch.float32)
        step = max(1, max_fragments // (bh * bw))  # one block stays under max_fragments
        for s0 in range(0, cnt, step):
            sel = sel_all[s0 : s0 + step]
            cf = coef32[sel]  # [n, 3, 3]
            inside = (dx < sz[sel, 0:1]) & (dy < sz[sel, 1:2])  # [n, bh*bw] inside the box
            for i in range(3):
                inside &= cf[:, i, 0:1] * dxf + cf[:, i, 1:2] * dyf + cf[:, i, 2:3] >= -EDGE_EPS
            rows, cols = torch.nonzero(inside, as_tuple=True)
            zq = zc32[sel[rows]]  # [k, 3]
            depth = 1.0 / (zq[:, 0] * dxf[0, cols] + zq[:, 1] * dyf[0, cols] + zq[:, 2])
            pix = base[sel[rows]] + dy[0, cols] * width + dx[0, cols]
            zbuf.scatter_reduce_(0, pix, _pack(depth, f_idx[sel[rows]]), reduce="amin")

    # 4. Decode the winning face per pixel and recompute its barycentrics there
    hit = zbuf != torch.iinfo(torch.int64).max
    face = torch.where(hit, zbuf & ((1 << _FACE_BITS) - 1), torch.full_like(zbuf, -1))  # [B*HW]
    face = face.view(B, height, width)
    return _fragments_from_faces(face, tri_uv, tri_z)


def _fragments_from_faces(face, tri_uv, tri_z) -> Fragments:
    """Barycentrics and depth of the given face at each covered pixel (float64).

    face: [B, H, W] int64 (-1 empty); tri_uv: [B, F, 3, 2] px; tri_z: [B, F, 3] metres
    """
    import torch

    b, y, x = torch.nonzero(face >= 0, as_tuple=True)
    f = face[b, y, x]
    t = tri_uv[b, f]  # [n, 3, 2]
    l0, l1, l2 = _barycentric(t[:, 0], t[:, 1], t[:, 2], x.to(tri_uv.dtype) + 0.5, y.to(tri_uv.dtype) + 0.5)
    z = tri_z[b, f]  # [n, 3]
    q = torch.stack([l0 / z[:, 0], l1 / z[:, 1], l2 / z[:, 2]], dim=-1)  # [n, 3]
    zinv = q.sum(-1)
    return Fragments(face=face, index=(b, y, x), bary=q / zinv[:, None], depth=1.0 / zinv)


def _ceil_pow2(n):
    import torch

    out = torch.ones_like(n)
    while True:
        small = out < n
        if not bool(small.any()):
            return out
        out = torch.where(small, out * 2, out)


def _pack(depth32, face):
    """Pack a positive float32 depth and a face index into one int64 whose order is (depth, face)."""
    import torch

    bits = depth32.contiguous().view(torch.int32).to(torch.int64)  # positive floats: bits are monotonic
    return (bits << _FACE_BITS) | face


def rasterise_reference(verts, faces, K, width: int, height: int, near: float = 0.01) -> Fragments:
    """The plain twin of `rasterise`: a loop over faces and over the pixels of each face's box."""
    import math

    import numpy as np
    import torch

    verts = np.asarray(torch.as_tensor(verts, dtype=torch.float64).cpu())
    K = np.asarray(torch.as_tensor(K, dtype=torch.float64).cpu())
    faces = np.asarray(torch.as_tensor(faces).cpu()).astype(np.int64)
    B = verts.shape[0]
    face_out = np.full((B, height, width), -1, dtype=np.int64)
    best = np.full((B, height, width), np.inf, dtype=np.float32)
    tri_uv = np.zeros((B, len(faces), 3, 2))
    tri_z = np.zeros((B, len(faces), 3))
    for b in range(B):
        fx, fy, cx, cy = K[b, 0, 0], K[b, 1, 1], K[b, 0, 2], K[b, 1, 2]
        for f, (i0, i1, i2) in enumerate(faces):
            pts = []
            for i in (i0, i1, i2):
                X, Y, Z = verts[b, i]
                pts.append((fx * X / max(Z, 1e-9) + cx, fy * Y / max(Z, 1e-9) + cy, Z))
            tri_uv[b, f] = [(p[0], p[1]) for p in pts]
            tri_z[b, f] = [p[2] for p in pts]
            if min(p[2] for p in pts) <= near:
                continue
            (x0, y0, z0), (x1, y1, z1), (x2, y2, z2) = pts
            area = (x1 - x0) * (y2 - y0) - (y1 - y0) * (x2 - x0)
            if abs(area) <= 1e-12:
                continue
            xa = max(math.ceil(min(x0, x1, x2) - 0.5 - 1e-9), 0)
            xb = min(math.floor(max(x0, x1, x2) - 0.5 + 1e-9), width - 1)
            ya = max(math.ceil(min(y0, y1, y2) - 0.5 - 1e-9), 0)
            yb = min(math.floor(max(y0, y1, y2) - 0.5 + 1e-9), height - 1)
            for yi in range(ya, yb + 1):
                for xi in range(xa, xb + 1):
                    x, y = xi + 0.5, yi + 0.5
                    w0 = (x2 - x1) * (y - y1) - (y2 - y1) * (x - x1)
                    w1 = (x0 - x2) * (y - y2) - (y0 - y2) * (x - x2)
                    w2 = (x1 - x0) * (y - y0) - (y1 - y0) * (x - x0)
                    l0, l1, l2 = w0 / area, w1 / area, w2 / area
                    if min(l0, l1, l2) < -EDGE_EPS:
                        continue
                    d = np.float32(1.0 / (l0 / z0 + l1 / z1 + l2 / z2))
                    if d < best[b, yi, xi] or (d == best[b, yi, xi] and f < face_out[b, yi, xi]):
                        best[b, yi, xi] = d
                        face_out[b, yi, xi] = f
    return _fragments_from_faces(torch.from_numpy(face_out), torch.from_numpy(tri_uv), torch.from_numpy(tri_z))


def sample_bilinear(texture, u, v) -> Tensor:
    """Bilinear texture lookup with clamped borders (compiled for float32 textures on the CPU, else torch's grid_sample).

    texture: [Ht, Wt, C] float tensor
    u, v:    [...] image coordinates, texel (row i, column j) centred at (j + 0.5, i + 0.5)
    returns: [..., C] tensor of the texture's dtype (coordinates are used in float64 on the compiled path)
    """
    import torch

    if texture.dtype != torch.float32 or texture.device.type != "cpu" or texture.requires_grad or u.requires_grad:
        return sample_bilinear_torch(texture, u, v)
    from .kernels import sample_bilinear as _sample

    shape = u.shape
    out = _sample(_np(texture, np.float32), _np(u.reshape(-1), None), _np(v.reshape(-1), None))  # [n, C]
    return torch.from_numpy(out).reshape(tuple(shape) + (texture.shape[-1],))


def sample_bilinear_torch(texture, u, v) -> Tensor:
    """Bilinear texture lookup with clamped borders (torch's grid_sample): the twin of `sample_bilinear`.

    texture: [Ht, Wt, C] float tensor
    u, v:    [...] image coordinates, texel (row i, column j) centred at (j + 0.5, i + 0.5)
    returns: [..., C]
    """
    import torch
    import torch.nn.functional as F

    Ht, Wt, C = texture.shape
    shape = u.shape
    # align_corners=False: -1 and 1 are the outer edges of the border texels, i.e. u = 0 and u = Wt
    g = torch.stack([u.reshape(-1) * (2.0 / Wt) - 1.0, v.reshape(-1) * (2.0 / Ht) - 1.0], -1)  # [n, 2]
    g = g.to(texture.dtype)[None, None]  # [1, 1, n, 2]
    out = F.grid_sample(texture.permute(2, 0, 1)[None], g, mode="bilinear", padding_mode="border", align_corners=False)
    return out[0, :, 0].T.reshape(shape + (C,))  # [C, n] -> [..., C]


def supersampled_intrinsics(K, factor: int) -> Tensor:
    """Intrinsics of the same camera on a grid `factor` times finer (image coordinates scale exactly).

    K: [..., 3, 3] with pixel (x, y) centred at (x + 0.5, y + 0.5) at both resolutions.
    """
    K2 = K.clone()
    K2[..., :2, :] = K[..., :2, :] * factor
    return K2


def render_textured(
    verts, faces, uv, texture, K, width: int, height: int, ssaa: int = 2, rasteriser=None
) -> tuple[Tensor, Tensor, Tensor]:
    """Render textured meshes, anti-aliased by supersampling.

    verts:   [B, N, 3] camera space, metres
    faces:   [F, 3] int64
    uv:      [N, 2] texture image coordinates of every vertex (pixels)
    texture: [Ht, Wt, C] float32 tensor (any channels)
    K:       [B, 3, 3] pixels
    returns: (colour [B, H, W, C] premultiplied by coverage, coverage [B, H, W] in [0, 1],
              depth [B, H, W] metres, mean over covered samples, 0 where empty)
    """
    import torch

    rasteriser = rasteriser or rasterise
    K = torch.as_tensor(K, dtype=torch.float64)
    frags = rasteriser(verts, faces, supersampled_intrinsics(K, ssaa), width * ssaa, height * ssaa)
    B = verts.shape[0]
    C = texture.shape[-1]
    uv = torch.as_tensor(uv, dtype=torch.float64)
    faces = torch.as_tensor(faces, dtype=torch.int64)
    b, y, x = frags.index
    f = frags.face[b, y, x]
    tuv = uv[faces[f]]  # [n, 3, 2]
    puv = (frags.bary[..., None] * tuv).sum(1)  # [n, 2]
    col = sample_bilinear_torch(texture, puv[:, 0], puv[:, 1])  # [n, C]
    # accumulate the ssaa x ssaa samples of each output pixel
    dst = (b * height + torch.div(y, ssaa, rounding_mode="floor")) * width + torch.div(
        x, ssaa, rounding_mode="floor"
    )  # [n]
    n_px = B * height * width
    colour = torch.zeros(n_px, C, dtype=texture.dtype).index_add_(0, dst, col) / (ssaa * ssaa)
    count = torch.bincount(dst, minlength=n_px).to(texture.dtype)
    depth = torch.zeros(n_px, dtype=torch.float64).index_add_(0, dst, frags.depth) / count.clamp_min(1).to(
        torch.float64
    )
    return (
        colour.view(B, height, width, C),
        (count / (ssaa * ssaa)).view(B, height, width),
        depth.view(B, height, width),
    )


# ----------------------------------------------------------------------------------------------
# the compiled fast path (numba; see kernels.py), same rules as the torch functions above
# ----------------------------------------------------------------------------------------------
def _np(x, dtype):
    """A C-contiguous numpy array of `dtype` from a tensor or array (no copy when it already is one)."""
    import torch

    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    return np.ascontiguousarray(x, dtype=dtype)  # dtype None: keep the array's own


def _check_mesh(verts: np.ndarray, faces: np.ndarray, uv: np.ndarray | None = None) -> None:
    """The compiled kernels do not check indices: a face outside the vertex list would read stray memory."""
    if verts.ndim != 3 or verts.shape[2] != 3 or faces.ndim != 2 or faces.shape[1] != 3:
        raise ValueError(f"verts must be [B, N, 3] and faces [F, 3], got {verts.shape} and {faces.shape}")
    if faces.size and (faces.min() < 0 or faces.max() >= verts.shape[1]):
        raise ValueError(f"faces index vertices outside 0..{verts.shape[1] - 1}")
    if uv is not None and uv.shape != (verts.shape[1], 2):
        raise ValueError(f"uv must be [N, 2] = [{verts.shape[1]}, 2], got {uv.shape}")


def rasterise_fast(verts, faces, K, width: int, height: int, near: float = 0.01) -> Fragments:
    """`rasterise` compiled: the same Fragments (face ids identical, barycentrics and depth in float64).

    verts: [B, N, 3] camera metres; faces: [F, 3]; K: [B, 3, 3] px
    """
    import torch

    from .kernels import rasterise_faces

    v = _np(verts, np.float64)
    Kn = _np(K, np.float64)
    f = _np(faces, np.int64)
    _check_mesh(v, f)
    face_np = rasterise_faces(v, f, Kn, int(width), int(height), float(near))  # [B, H*W] int32
    vt = torch.from_numpy(v)
    ft = torch.from_numpy(f)
    uv = project(vt, torch.from_numpy(Kn))  # [B, N, 2]
    face = torch.from_numpy(face_np).to(torch.int64).view(v.shape[0], height, width)  # [B, H, W]
    return _fragments_from_faces(face, uv[:, ft], vt[:, ft, 2])


def render_textured_fast(
    verts, faces, uv, texture, K, width: int, height: int, ssaa: int = 2, near: float = 0.01
) -> tuple[Tensor, Tensor, Tensor]:
    """`render_textured` compiled, fused (z-buffer, then one resolve pass per output pixel; no fragment lists).

    verts:   [B, N, 3] camera space, metres; faces: [F, 3]; uv: [N, 2] texture px; K: [B, 3, 3] px
    texture: [Ht, Wt, C] float32 (numpy or torch)
    returns: torch (colour [B, H, W, C] float32 premultiplied by coverage, coverage [B, H, W] float32 in [0, 1],
              depth [B, H, W] float64 metres, mean over covered samples, 0 where empty), as `render_textured`
    """
    import torch

    from .kernels import render_textured_batch

    v, f, t = _np(verts, np.float64), _np(faces, np.int64), _np(uv, np.float64)
    tex = _np(texture, np.float32)
    _check_mesh(v, f, t)
    if tex.ndim != 3 or 0 in tex.shape or int(ssaa) < 1:
        raise ValueError(f"texture must be [Ht, Wt, C] and non-empty (got {tex.shape}), ssaa >= 1 (got {ssaa})")
    colour, cover, depth = render_textured_batch(
        v, f, t, tex, _np(K, np.float64), int(width), int(height), int(ssaa), float(near)
    )
    return torch.from_numpy(colour), torch.from_numpy(cover), torch.from_numpy(depth)


def skin_to_camera(mesh, transforms, world_to_cam) -> np.ndarray:
    """Linear blend skinning straight into camera space (compiled; twin: `skin.pose_vertices` + world->camera).

    mesh:         skin.SkinnedMesh (verts [N, 3], joint_index / joint_weight [N, K])
    transforms:   [B, 24, 3, 4] per-joint world transforms from `skin.joint_transforms`
    world_to_cam: [B, 4, 4]
    returns:      numpy [B, N, 3] float64 camera-space metres
    """
    from .kernels import skin_to_camera as _skin

    A = _np(transforms, np.float64)  # [B, 24, 3, 4]
    w2c = _np(world_to_cam, np.float64)  # [B, 4, 4]
    ji = _np(mesh.joint_index, np.int64)
    if ji.size and (ji.min() < 0 or ji.max() >= A.shape[1]):
        raise ValueError(f"joint_index outside 0..{A.shape[1] - 1}")
    # compose: x_cam = Rc (R_j x + t_j) + tc = (Rc R_j) x + (Rc t_j + tc)
    R = np.einsum("bik,bjkl->bjil", w2c[:, :3, :3], A[..., :3])  # [B, 24, 3, 3]
    t = np.einsum("bik,bjk->bji", w2c[:, :3, :3], A[..., 3]) + w2c[:, None, :3, 3]  # [B, 24, 3]
    return _skin(
        _np(mesh.verts, np.float64),
        ji,
        _np(mesh.joint_weight, np.float64),
        np.ascontiguousarray(R),
        np.ascontiguousarray(t),
    )
