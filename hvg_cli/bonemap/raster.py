"""Exact ray-cast rasteriser of ellipsoids (torch), with a plain reference twin.

Conventions (shared by `rasterise` and `rasterise_reference`):

- Cameras are OpenCV pinholes: world_to_cam [4, 4] (x right, y down, z forward), K [3, 3] in pixels with
  last row (0, 0, 1). Pixel (row i, column j) is sampled at its centre, (u, v) = (j + 0.5, i + 0.5), so a
  principal point (W / 2, H / 2) is the exact image centre.
- depth: the camera-space z of the surface point, metres (not the distance along the ray); 0 where empty.
- normal: unit outward surface normal in camera space, in the common normal-map convention
  x right, y up, z towards the viewer (i.e. OpenCV's (x, -y, -z)); a front surface seen from outside has
  z > 0. Zero where empty.
- label: int64 index of the ellipsoid that owns the pixel, -1 where empty.
- Near mode (default): the nearest surface point in front of the camera (z > NEAR) over all ellipsoids
  (inside an ellipsoid, that is its far wall). `far=True`: the farthest surface point in front of the camera
  over all ellipsoids, i.e. the back surface of the union (used by the preview backend for back sides).

Ellipsoid p of view n: points x with (x - c)^T A (x - c) <= 1, A = R diag(1 / s^2) R^T, where c =
centers[n, p], R = axes[n, p] (columns = unit axes, world) and s = semi[n, p].

The fast path (`rasterise`) follows HARD-PARTS.md: in camera space, with q = (u, v, 1) and the ray
x = t K^-1 q (t is the camera z since K's last row is (0, 0, 1)), the hit solves
    a t^2 - 2 b t + k = 0,   a = q^T Q q,  b = g^T q,  k = c^T A c - 1,
    Q = K^-T A K^-1 (a quadratic polynomial in u, v),  g = K^-T A c (linear in u, v),
and the silhouette is the conic where b^2 - a k >= 0, whose tight screen box comes from the dual conic
C* = K (A^-1 - c c^T) K^T. The screen is cut in small tiles (8 x 8 pixels); each ellipsoid is evaluated
only on the tiles its box touches, with the polynomial expanded at the tile's corner so per-tile
coefficients broadcast against constant per-pixel offsets (no per-pixel gathers, no allocations in the
loop). The winner per pixel is found by a scatter-min (scatter-max when far) of an int64 key packing the
depth's float bits above the label; depth is read back from the key and the normal, the gradient
A (x - c), is computed for the winning pixels only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    import torch

NEAR = 1e-6  # metres: surfaces at camera z <= NEAR are not seen
_LABEL_BITS = 8  # labels packed in the low bits of the depth key: at most 255 ellipsoids


class Raster(NamedTuple):
    """Rasterised ellipsoids of N views (torch tensors)."""

    depth: torch.Tensor  # [N, H, W] camera z, metres; 0 where empty
    normal: torch.Tensor  # [N, H, W, 3] unit, camera space, x right / y up / z to viewer; 0 where empty
    label: torch.Tensor  # [N, H, W] int64 ellipsoid index, -1 where empty
    color: torch.Tensor | None = None  # [N, H, W, C] colors[label], 0 where empty (when colours are given)


def _inputs(centers, axes, semi, K, world_to_cam, dtype):
    import torch

    def t(x):
        return torch.as_tensor(x).to(dtype)

    centers, axes, semi, K, world_to_cam = t(centers), t(axes), t(semi), t(K), t(world_to_cam)
    N, P = centers.shape[:2]
    if axes.shape != (N, P, 3, 3) or semi.shape != (N, P, 3) or K.shape != (N, 3, 3) or world_to_cam.shape != (N, 4, 4):
        raise ValueError(
            f"rasterise: shapes centers {tuple(centers.shape)}, axes {tuple(axes.shape)}, semi {tuple(semi.shape)}, "
            f"K {tuple(K.shape)}, world_to_cam {tuple(world_to_cam.shape)} do not agree with [N, P, ...]"
        )
    if N and not torch.equal(K[:, 2], torch.tensor([0.0, 0.0, 1.0], dtype=dtype).expand(N, 3)):
        raise ValueError("rasterise: intrinsics must have last row (0, 0, 1)")
    if not bool((semi > 0).all()):
        raise ValueError("rasterise: semi-axes must be positive")
    if P >= 2**_LABEL_BITS:
        raise ValueError(f"rasterise: at most {2**_LABEL_BITS - 1} ellipsoids, got {P}")
    return centers, axes, semi, K, world_to_cam


def _empty(N: int, H: int, W: int, dtype, device) -> Raster:
    import torch

    return Raster(
        torch.zeros(N, H, W, dtype=dtype, device=device),
        torch.zeros(N, H, W, 3, dtype=dtype, device=device),
        torch.full((N, H, W), -1, dtype=torch.int64, device=device),
    )


# ---------------------------------------------------------------------------------------------
# Fast path
# ---------------------------------------------------------------------------------------------
def _camera_quadrics(centers, axes, semi, K, world_to_cam):
    """Per view and ellipsoid, camera-space quadric terms.

    returns dict: c [N,P,3] camera-space centre; A [N,P,3,3]; Q [N,P,3,3] = K^-T A K^-1; g [N,P,3];
                  k [N,P]; Cs [N,P,3,3] dual conic; zext [N,P] half z extent; Kinv [N,3,3]
    """
    import torch

    Rw = world_to_cam[:, :3, :3]  # [N, 3, 3]
    tw = world_to_cam[:, :3, 3]  # [N, 3]
    c = torch.einsum("nij,npj->npi", Rw, centers) + tw[:, None]  # [N, P, 3]
    Rc = Rw[:, None] @ axes  # [N, P, 3, 3] ellipsoid axes in camera space
    A = (Rc / semi[..., None, :] ** 2) @ Rc.transpose(-1, -2)  # [N, P, 3, 3]
    S = (Rc * semi[..., None, :] ** 2) @ Rc.transpose(-1, -2)  # [N, P, 3, 3] = A^-1
    Kinv = torch.linalg.inv(K)  # [N, 3, 3]
    KinvT = Kinv.transpose(-1, -2)[:, None]  # [N, 1, 3, 3]
    Q = KinvT @ A @ Kinv[:, None]  # [N, P, 3, 3]
    Ac = (A @ c[..., None])[..., 0]  # [N, P, 3]
    g = (KinvT @ Ac[..., None])[..., 0]  # [N, P, 3]
    k = (c * Ac).sum(-1) - 1.0  # [N, P]
    Kn = K[:, None]  # [N, 1, 3, 3]
    Cs = Kn @ (S - c[..., :, None] * c[..., None, :]) @ Kn.transpose(-1, -2)  # [N, P, 3, 3] dual conic
    zext = torch.sqrt(S[..., 2, 2])  # [N, P]
    return {"c": c, "A": A, "Q": Q, "g": g, "k": k, "Cs": Cs, "zext": zext, "Kinv": Kinv}


def _screen_boxes(q: dict, width: int, height: int):
    """Inclusive pixel boxes [N, P] (x0, x1, y0, y1) int64 of each ellipsoid; empty boxes have x1 < x0.

    An ellipsoid wholly in front of the camera gets the tight box of its silhouette conic (padded by a
    pixel against rounding); one crossing the camera plane z = NEAR gets the whole image; one behind it none.
    """
    import torch

    Cs, cz, ze = q["Cs"], q["c"][..., 2], q["zext"]
    front = cz - ze > NEAR  # [N, P] wholly in front
    behind = cz + ze <= NEAR
    c22 = Cs[..., 2, 2]  # < 0 when wholly in front
    safe = torch.where(front, c22, -torch.ones_like(c22))

    def extent(c_ii, c_i2):
        # lines x = x0 tangent to the silhouette: c22 x0^2 - 2 c_i2 x0 + c_ii = 0
        disc = torch.sqrt(torch.clamp(c_i2 * c_i2 - c_ii * safe, min=0.0))
        r1, r2 = (c_i2 - disc) / safe, (c_i2 + disc) / safe
        return torch.minimum(r1, r2), torch.maximum(r1, r2)

    u0, u1 = extent(Cs[..., 0, 0], Cs[..., 0, 2])
    v0, v1 = extent(Cs[..., 1, 1], Cs[..., 1, 2])
    big = float(4 * max(width, height) + 16)  # clamp before the integer cast (far-off or huge boxes)

    def to_px(lo, hi, size):
        a = torch.ceil(torch.clamp(lo - 0.5, -big, big)).to(torch.int64) - 1  # pixel centre j + 0.5 >= lo
        b = torch.floor(torch.clamp(hi - 0.5, -big, big)).to(torch.int64) + 1
        a = torch.where(front, a, torch.zeros_like(a))
        b = torch.where(front, b, torch.full_like(b, size - 1))
        return torch.clamp(a, min=0), torch.clamp(b, max=size - 1)

    x0, x1 = to_px(u0, u1, width)
    y0, y1 = to_px(v0, v1, height)
    x1 = torch.where(behind, x0 - 1, x1)
    return x0, x1, y0, y1, front


def _solve(coef, u, v, far: bool):
    """Depth t (camera z) of the visible root at pixel centres (u, v), coefficients broadcasting against them.

    coef: 10 tensors Q00, 2Q01, Q11, 2Q02, 2Q12, Q22, g0, g1, g2, k (see `_coef_table`)
    returns: t, hit (bool), broadcast shape of u, v and the coefficients
    """
    import torch

    Q00, Q01, Q11, Q02, Q12, Q22, g0, g1, g2, k = coef
    a = (Q00 * u + Q01 * v + Q02) * u + (Q11 * v + Q12) * v + Q22
    b = g0 * u + g1 * v + g2
    disc = b * b - a * k
    hit = disc >= 0
    sq = torch.sqrt(torch.clamp(disc, min=0.0))
    t_far = (b + sq) / a
    if far:
        t = t_far
    else:
        t_near = (b - sq) / a
        t = torch.where(t_near > NEAR, t_near, t_far)
    return t, hit & (t > NEAR)


class _Workspace:
    """Buffers of the hot loop, allocated once per call: fresh multi-megabyte tensors per step cost page
    faults that dwarf the arithmetic."""

    def __init__(self, rows: int, cols: int, dtype, device):
        import torch

        self.a = torch.empty(rows, cols, dtype=dtype, device=device)
        self.b = torch.empty(rows, cols, dtype=dtype, device=device)
        self.d = torch.empty(rows, cols, dtype=dtype, device=device)
        self.key = torch.empty(rows, cols, dtype=torch.int64, device=device)
        self.hit = torch.empty(rows, cols, dtype=torch.bool, device=device)
        self.pix = torch.empty(rows, cols, dtype=torch.int64, device=device)


def _tile_keys(coef, u0, v0, label, far: bool, dtype, sentinel: int, du, ws: _Workspace):
    """Packed keys of ellipsoids wholly in front of the camera on blocks of pixels (the hot loop).

    Lean version of `_solve` for such ellipsoids: the camera is outside them and every hit has z > NEAR,
    so the visible root is always the near one (far: the far one). The quadratic's coefficients are
    expanded at each tile's first pixel centre (u0, v0), so per-tile terms are [r, 1] and the per-pixel
    offsets du = (du, dv, du^2, du dv, dv^2) are constant [1, TS*TS] rows; every full-size step is done
    in place in the workspace `ws`.
    coef: 10 x [r, 1] (see `_coef_table`);  u0, v0, label: [r, 1]
    returns: [r, TS*TS] int64 keys (`sentinel` where the ray misses), a view into ws
    """
    import torch

    Q00, Q01, Q11, Q02, Q12, Q22, g0, g1, g2, k = coef
    DU, DV, DU2, DUV, DV2 = du
    r = u0.shape[0]
    a, b, d, key, hit = ws.a[:r], ws.b[:r], ws.d[:r], ws.key[:r], ws.hit[:r]
    a0 = (Q00 * u0 + Q01 * v0 + Q02) * u0 + (Q11 * v0 + Q12) * v0 + Q22  # [r, 1]
    au = 2 * Q00 * u0 + Q01 * v0 + Q02
    av = 2 * Q11 * v0 + Q01 * u0 + Q12
    torch.mul(au, DU, out=a)
    a.addcmul_(av, DV).addcmul_(Q00, DU2).addcmul_(Q01, DUV).addcmul_(Q11, DV2).add_(a0)  # a(u, v)
    torch.mul(g0, DU, out=b)
    b.addcmul_(g1, DV).add_(g0 * u0 + g1 * v0 + g2)  # b(u, v)
    torch.mul(a, k, out=d)
    d.neg_().addcmul_(b, b)  # discriminant b^2 - a k
    torch.ge(d, 0, out=hit)
    d.clamp_(min=1e-30).sqrt_()  # (sqrt of exact zeros is several times slower here)
    (b.add_(d) if far else b.sub_(d)).div_(a)  # b := t, the camera z
    if dtype == torch.float64:
        torch.bitwise_right_shift(b.view(torch.int64), _LABEL_BITS, out=key)
    else:
        key.copy_(b.view(torch.int32))
    key <<= _LABEL_BITS
    key |= label
    return key.masked_fill_(torch.logical_not(hit, out=hit), sentinel)


def _coef_table(q: dict):
    """[N*P, 10] per-ellipsoid coefficients for `_solve`."""
    import torch

    Q, g, k = q["Q"], q["g"], q["k"]
    N, P = k.shape
    coef = torch.stack(
        [
            Q[..., 0, 0],
            2 * Q[..., 0, 1],
            Q[..., 1, 1],
            2 * Q[..., 0, 2],
            2 * Q[..., 1, 2],
            Q[..., 2, 2],
            g[..., 0],
            g[..., 1],
            g[..., 2],
            k,
        ],
        dim=-1,
    )  # [N, P, 10]
    return coef.reshape(N * P, 10)  # [N*P, 10]


def _pack(t, label, dtype):
    """int64 keys ordered like t (t > 0), the label in the low bits."""
    import torch

    if dtype == torch.float64:
        bits = (
            t.contiguous().view(torch.int64) >> _LABEL_BITS
        )  # a new tensor  # drops 8 of 52 mantissa bits: 6e-14 relative
    else:
        bits = t.to(torch.float32).contiguous().view(torch.int32).to(torch.int64)
    bits <<= _LABEL_BITS
    bits |= label
    return bits


def _unpack(keys, dtype):
    """Depths from packed keys (float32: exact; float64: to 6e-14 relative)."""
    import torch

    if dtype == torch.float64:
        return ((keys >> _LABEL_BITS) << _LABEL_BITS).view(torch.float64)
    return (keys >> _LABEL_BITS).to(torch.int32).view(torch.float32)


def rasterise(
    centers,
    axes,
    semi,
    K,
    world_to_cam,
    width: int,
    height: int,
    far: bool = False,
    dtype=None,
    tile: int = 8,
    max_elements: int = 1 << 21,
    out: Raster | None = None,
    colors=None,
) -> Raster:
    """Rasterise N views of P ellipsoids with exact occlusion (fast path: conic boxes, tiles, scatter-min).

    centers:      [N, P, 3] world metres
    axes:         [N, P, 3, 3] world, columns = unit axes
    semi:         [N, P, 3] semi-axes along those columns, metres
    K:            [N, 3, 3] pixels (last row 0, 0, 1)
    world_to_cam: [N, 4, 4] OpenCV
    far:          False: nearest front surface; True: farthest back surface
    dtype:        working precision (default float32; float64 for tests)
    tile:         a power of two: the screen is cut in tile x tile pixel blocks; an ellipsoid is evaluated
                  on every pixel of the blocks its screen box touches
    max_elements: pixels x ellipsoids evaluated at once (bounds the memory)
    colors:       optional [P, C] per-ellipsoid colours: also fill `color` = colors[label] (0 where empty)
    out:          optional Raster of caller-owned CPU tensors to fill (any float dtype for depth and normal,
                  any signed integer dtype for label, e.g. views of the numpy arrays of `BoneMaps`)
    returns:      Raster(depth [N, H, W], normal [N, H, W, 3], label [N, H, W] int64) — see the module doc
                  for units and conventions (depth = camera z in metres; normals x right, y up, z to viewer)
    """
    import torch

    dtype = dtype or torch.float32
    centers, axes, semi, K, world_to_cam = _inputs(centers, axes, semi, K, world_to_cam, dtype)
    N, P = centers.shape[:2]
    H, W = int(height), int(width)
    device = centers.device
    if out is None:
        out = _empty(N, H, W, dtype, device)
    else:
        out.depth.zero_()
        out.normal.zero_()
        out.label.fill_(-1)
    if colors is not None:
        colors = torch.as_tensor(colors, device=device)
        if out.color is None:
            out = out._replace(color=torch.zeros(N, H, W, colors.shape[-1], dtype=colors.dtype, device=device))
        else:
            out.color.zero_()
    if N == 0 or P == 0:
        return out
    B = N * P
    q = _camera_quadrics(centers, axes, semi, K, world_to_cam)
    coef = _coef_table(q)  # [B, 10]
    x0, x1, y0, y1, front = (b.reshape(B) for b in _screen_boxes(q, W, H))  # [B] inclusive pixel boxes

    # 1. (ellipsoid, tile) pairs: every tile that an ellipsoid's box touches
    TS = int(tile)
    if TS < 1 or TS & (TS - 1):
        raise ValueError(f"rasterise: tile must be a power of two, got {tile}")
    th, tw = -(-H // TS), -(-W // TS)  # tiles per column / row
    tx0, tx1, ty0, ty1 = x0 // TS, x1 // TS, y0 // TS, y1 // TS
    ntx = torch.where(x1 >= x0, tx1 - tx0 + 1, torch.zeros_like(x0))
    nty = torch.where(y1 >= y0, ty1 - ty0 + 1, torch.zeros_like(y0))
    npairs = ntx * nty  # [B]
    ends = torch.cumsum(npairs, 0)  # [B]
    pair_box = torch.repeat_interleave(torch.arange(B, device=device), npairs)  # [R] box of each pair
    local = torch.arange(pair_box.numel(), device=device) - (ends - npairs)[pair_box]
    ptx = tx0[pair_box] + local % ntx[pair_box]  # [R] tile column
    pty = ty0[pair_box] + local // ntx[pair_box]  # [R] tile row
    # keys live only on the tiles some box touches: [U, TS, TS], U unique tiles
    tile_id = ((pair_box // P) * th + pty) * tw + ptx  # [R] in [N * th * tw]
    tiles, slot = torch.unique(tile_id, return_inverse=True)  # [U] sorted tile ids, [R] each pair's tile slot
    inner = torch.arange(TS * TS, device=device)  # [TS*TS] pixel offset inside a tile, row-major
    DU = (inner & (TS - 1)).to(dtype)[None]  # [1, TS*TS] column offset
    DV = (inner >> (TS.bit_length() - 1)).to(dtype)[None]  # [1, TS*TS] row offset
    du = (DU, DV, DU * DU, DU * DV, DV * DV)

    # 2. winner per pixel: scatter-min (far: max) of packed (depth bits, label) keys;
    #    ellipsoids wholly in front of the camera take the lean path, the rare others the general one
    sentinel = torch.iinfo(torch.int64).max if not far else -1
    keys = torch.full((tiles.numel() * TS * TS,), sentinel, dtype=torch.int64, device=device)
    step = max(1, max_elements // (TS * TS))
    ws = _Workspace(min(step, max(1, pair_box.numel())), TS * TS, dtype, device)
    simple_pair = front[pair_box]  # [R]
    for simple in (True, False):
        sel = simple_pair.nonzero()[:, 0] if simple else (~simple_pair).nonzero()[:, 0]  # [R']
        for lo in range(0, sel.numel(), step):
            idx = sel[lo : lo + step]
            pb = pair_box[idx]
            c = coef.index_select(0, pb)[:, :, None].unbind(1)  # 10 x [r, 1]
            u0 = (ptx[idx] * TS).to(dtype)[:, None] + 0.5  # [r, 1] first pixel centre of the tile
            v0 = (pty[idx] * TS).to(dtype)[:, None] + 0.5
            label = (pb % P)[:, None]  # [r, 1]
            if simple:
                key = _tile_keys(c, u0, v0, label, far, dtype, sentinel, du, ws)  # [r, TS*TS]
            else:
                t, hit = _solve(c, u0 + DU, v0 + DV, far)
                key = torch.where(hit, _pack(t, label, dtype), sentinel)
            pix = torch.add(slot[idx, None] * (TS * TS), inner[None], out=ws.pix[: idx.numel()])  # [r, TS*TS]
            keys.scatter_reduce_(0, pix.view(-1), key.reshape(-1), reduce="amax" if far else "amin", include_self=True)

    # 3. depth (from the key's bits) and normal of the winners; edge tiles reach past the image
    sh = TS.bit_length() - 1  # log2(TS)
    tile_n = tiles // (th * tw)  # [U] view of each tile
    tile_y = ((tiles // tw) % th) << sh  # [U] top row
    tile_x = (tiles % tw) << sh  # [U] left column
    i = torch.arange(TS, device=device)
    inside = ((tile_y[:, None, None] + i[None, :, None]) < H) & ((tile_x[:, None, None] + i[None, None, :]) < W)
    won = ((keys != sentinel) & inside.view(-1)).nonzero()[:, 0]  # [M] index into keys
    tk = won >> (2 * sh)  # [M] tile slot
    ys = tile_y.index_select(0, tk) + ((won >> sh) & (TS - 1))  # [M] pixel row
    xs = tile_x.index_select(0, tk) + (won & (TS - 1))  # [M] pixel column
    n = tile_n.index_select(0, tk)  # [M] view
    if won.numel() == 0:
        return out
    flat = (n * H + ys) * W + xs  # [M] index into [N*H*W]
    kw = keys.index_select(0, won)  # [M]
    lab = kw & ((1 << _LABEL_BITS) - 1)
    t = _unpack(kw, dtype)  # [M] camera z, metres
    # gradient A (x - c) at x = t K^-1 (u, v, 1) is t (A K^-1)(u, v, 1) - A c: one 12-number row per ellipsoid
    AK = (q["A"] @ q["Kinv"][:, None]).reshape(B, 9)  # [B, 9] row-major 3x3
    Ac = (q["A"] @ q["c"][..., None]).reshape(B, 3)  # [B, 3]
    g = torch.cat([AK, Ac], 1).t().contiguous().index_select(1, n * P + lab)  # [12, M]: contiguous rows
    u, v = xs.to(dtype) + 0.5, ys.to(dtype) + 0.5
    gx = (g[0] * u + g[1] * v + g[2]) * t - g[9]
    gy = (g[3] * u + g[4] * v + g[5]) * t - g[10]
    gz = (g[6] * u + g[7] * v + g[8]) * t - g[11]
    inv = (gx * gx + gy * gy + gz * gz).rsqrt_()  # 1 / |gradient|
    flip = -inv  # OpenCV (x right, y down, z forward) -> normal map (x right, y up, z towards the viewer)
    normal = torch.stack([gx * inv, gy * flip, gz * flip], 1)  # [M, 3] unit
    out.depth.view(-1).index_copy_(0, flat, t.to(out.depth.dtype))
    out.normal.view(-1, 3).index_copy_(0, flat, normal.to(out.normal.dtype))
    out.label.view(-1).index_copy_(0, flat, lab.to(out.label.dtype))
    if colors is not None:
        assert out.color is not None  # allocated above whenever colours are given
        out.color.view(-1, colors.shape[-1]).index_copy_(0, flat, colors.index_select(0, lab).to(out.color.dtype))
    return out


# ---------------------------------------------------------------------------------------------
# Reference twin: every pixel x every ellipsoid, a ray-ellipsoid intersection in world space
# ---------------------------------------------------------------------------------------------
def rasterise_reference(
    centers, axes, semi, K, world_to_cam, width: int, height: int, far: bool = False, dtype=None
) -> Raster:
    """Plain and slow twin of `rasterise` (same signature, same outputs), written independently of it.

    For every pixel it casts the world-space ray from the camera centre through the pixel centre, maps it
    into each ellipsoid's unit-sphere frame, solves |o + t d|^2 = 1 and keeps the nearest (far: farthest)
    hit in front of the camera.
    """
    import torch

    dtype = dtype or torch.float64
    centers, axes, semi, K, world_to_cam = _inputs(centers, axes, semi, K, world_to_cam, dtype)
    N, P = centers.shape[:2]
    H, W = int(height), int(width)
    cam_to_world = torch.linalg.inv(world_to_cam)  # [N, 4, 4]
    origin = cam_to_world[:, :3, 3]  # [N, 3] camera centre, world
    jj, ii = torch.meshgrid(torch.arange(W, dtype=dtype), torch.arange(H, dtype=dtype), indexing="xy")  # [H, W]
    pix = torch.stack([jj + 0.5, ii + 0.5, torch.ones_like(jj)], -1)  # [H, W, 3]
    d_cam = torch.linalg.solve(K[:, None, None], pix[None, ..., None])[..., 0]  # [N, H, W, 3]
    d_world = torch.einsum("nij,nhwj->nhwi", cam_to_world[:, :3, :3], d_cam)  # [N, H, W, 3]

    best_z = torch.full((N, H, W), -float("inf") if far else float("inf"), dtype=dtype)
    best_label = torch.full((N, H, W), -1, dtype=torch.int64)
    best_normal = torch.zeros(N, H, W, 3, dtype=dtype)
    for p in range(P):
        c, R, s = centers[:, p], axes[:, p], semi[:, p]  # [N, 3], [N, 3, 3], [N, 3]
        o_loc = torch.einsum("nji,nj->ni", R, origin - c) / s  # [N, 3] camera centre in the unit-sphere frame
        d_loc = torch.einsum("nji,nhwj->nhwi", R, d_world) / s[:, None, None]  # [N, H, W, 3]
        qa = (d_loc * d_loc).sum(-1)
        qb = 2.0 * (d_loc * o_loc[:, None, None]).sum(-1)
        qc = (o_loc * o_loc).sum(-1)[:, None, None] - 1.0
        disc = qb * qb - 4.0 * qa * qc
        root = torch.sqrt(torch.clamp(disc, min=0.0))
        t1 = (-qb - root) / (2.0 * qa)
        t2 = (-qb + root) / (2.0 * qa)
        z1, z2 = t1 * d_cam[..., 2], t2 * d_cam[..., 2]  # camera z of the two hits
        if far:
            z, ok = z2, (disc >= 0) & (z2 > NEAR)
            better = ok & (z > best_z)
        else:
            z = torch.where(z1 > NEAR, z1, z2)
            ok = (disc >= 0) & (z > NEAR)
            better = ok & (z < best_z)
        t = torch.where(z1 > NEAR, t1, t2) if not far else t2
        x = origin[:, None, None] + t[..., None] * d_world  # [N, H, W, 3] world hit point
        local = torch.einsum("nji,nhwj->nhwi", R, x - c[:, None, None]) / (s * s)[:, None, None]
        n_world = torch.einsum("nij,nhwj->nhwi", R, local)  # A (x - c) in world
        n_cam = torch.einsum("nij,nhwj->nhwi", world_to_cam[:, :3, :3], n_world)
        n_map = torch.stack([n_cam[..., 0], -n_cam[..., 1], -n_cam[..., 2]], -1)
        n_map = n_map / torch.linalg.norm(n_map, dim=-1, keepdim=True)
        best_z = torch.where(better, z, best_z)
        best_label = torch.where(better, torch.full_like(best_label, p), best_label)
        best_normal = torch.where(better[..., None], n_map, best_normal)
    empty = best_label < 0
    depth = torch.where(empty, torch.zeros_like(best_z), best_z)
    return Raster(depth, best_normal, best_label)
