"""The preview renderer's compiled kernels (numba): skinning into camera space, the triangle z-buffer and
the textured, supersampled resolve. Imported lazily by `raster.py`; their plain-PyTorch twins are
`skin.pose_vertices`, `raster.rasterise` and `raster.render_textured`, and tests/test_preview_raster.py
holds them to each other with `torch.testing.assert_close`.

Same rules as the torch rasteriser, operation for operation where it decides coverage, so face ids match
exactly: a face's screen box over pixel centres (pixel (x, y) samples (x + 0.5, y + 0.5)), its edge
functions and 1/z set up in float64 as affine functions of the offset from the box's first pixel, then
evaluated in float32 with the tolerance EDGE_EPS; the depth test keeps the nearest float32 depth, ties to
the lower face index (faces are visited in increasing order and only a strictly nearer one replaces).
Barycentrics, depth and texture coordinates of the winning face are then recomputed in float64.

Kernels run on one thread and release the GIL (`nogil`): the renderer puts whole frames on worker threads,
each with its own buffers, so no two threads write the same memory (render.py).
"""

from __future__ import annotations

import numpy as np
from numba import njit

EDGE_EPS32 = np.float32(-1e-5)  # -raster.EDGE_EPS in float32, as torch compares a float32 tensor to it


@njit(cache=True, nogil=True)
def _skin_frame(verts, joint_index, joint_weight, R, t, out):
    """Linear blend skinning of one frame straight into camera space.

    verts: [N, 3] f64 rest (photo-pose) world; joint_index / joint_weight: [N, K]
    R: [24, 3, 3], t: [24, 3] per-joint transforms already composed with world -> camera
    out: [N, 3] f64 camera-space vertices (written)
    """
    N, Kn = joint_index.shape
    for n in range(N):
        x, y, z = verts[n, 0], verts[n, 1], verts[n, 2]
        ox = 0.0
        oy = 0.0
        oz = 0.0
        for k in range(Kn):
            w = joint_weight[n, k]
            if w == 0.0:
                continue
            j = joint_index[n, k]
            ox += w * (R[j, 0, 0] * x + R[j, 0, 1] * y + R[j, 0, 2] * z + t[j, 0])
            oy += w * (R[j, 1, 0] * x + R[j, 1, 1] * y + R[j, 1, 2] * z + t[j, 1])
            oz += w * (R[j, 2, 0] * x + R[j, 2, 1] * y + R[j, 2, 2] * z + t[j, 2])
        out[n, 0] = ox
        out[n, 1] = oy
        out[n, 2] = oz


@njit(cache=True, nogil=True)
def skin_to_camera(verts, joint_index, joint_weight, R, t) -> np.ndarray:
    """[B, N, 3] f64 camera-space vertices; R: [B, 24, 3, 3], t: [B, 24, 3] (joint transform then world->camera)."""
    B = R.shape[0]
    out = np.empty((B, verts.shape[0], 3), np.float64)
    for b in range(B):
        _skin_frame(verts, joint_index, joint_weight, R[b], t[b], out[b])
    return out


@njit(cache=True, nogil=True)
def _project(verts, K, uv):
    """Pinhole projection as `raster.project`: verts [N, 3] camera metres, K [3, 3] -> uv [N, 2] px (written)."""
    fx, fy, cx, cy = K[0, 0], K[1, 1], K[0, 2], K[1, 2]
    for i in range(verts.shape[0]):
        z = verts[i, 2]
        if not z >= 1e-9:  # clamp_min(1e-9)
            z = 1e-9
        uv[i, 0] = fx * verts[i, 0] / z + cx
        uv[i, 1] = fy * verts[i, 1] / z + cy


@njit(cache=True, nogil=True)
def _zbuffer(uv, z, faces, width, height, near, best, face_out):
    """Depth-test every face of one frame into `best` [H*W] f32 (+inf) and `face_out` [H*W] i32 (-1).

    returns: (x0, y0, x1, y1) the pixel box (inclusive) of every face box drawn, (0, 0, -1, -1) for none
    """
    one = np.float32(1.0)
    bx_lo = width
    by_lo = height
    bx_hi = -1
    by_hi = -1
    for f in range(faces.shape[0]):
        i0, i1, i2 = faces[f, 0], faces[f, 1], faces[f, 2]
        z0, z1, z2 = z[i0], z[i1], z[i2]
        if not min(z0, z1, z2) > near:
            continue
        x0, y0 = uv[i0, 0], uv[i0, 1]
        x1, y1 = uv[i1, 0], uv[i1, 1]
        x2, y2 = uv[i2, 0], uv[i2, 1]
        # 1. Screen box over pixel centres, clipped to the image (first pixel clamped as the torch twin does)
        lox = min(max(np.ceil(min(x0, x1, x2) - 0.5 - 1e-9), 0.0), width - 1.0)
        loy = min(max(np.ceil(min(y0, y1, y2) - 0.5 - 1e-9), 0.0), height - 1.0)
        hix = min(np.floor(max(x0, x1, x2) - 0.5 + 1e-9), width - 1.0)
        hiy = min(np.floor(max(y0, y1, y2) - 0.5 + 1e-9), height - 1.0)
        if not (lox <= hix and loy <= hiy):  # empty box, or a non-finite corner (NaN compares false)
            continue
        ar = (x1 - x0) * (y2 - y0) - (y1 - y0) * (x2 - x0)
        if not abs(ar) > 1e-12:
            continue
        # 2. Edge functions l_i = a_i dx + b_i dy + c_i (edge opposite corner i: corner i+1 -> i+2), and
        #    1/z = za dx + zb dy + zc, from the centre (ox, oy) of the box's first pixel; f64 set-up
        ox = lox + 0.5
        oy = loy + 0.5
        zi0, zi1, zi2 = 1.0 / z0, 1.0 / z1, 1.0 / z2
        # corner 0: nxt = 1, nn = 2
        a0 = -(y2 - y1) / ar
        b0 = (x2 - x1) / ar
        c0 = ((x2 - x1) * (oy - y1) - (y2 - y1) * (ox - x1)) / ar
        # corner 1: nxt = 2, nn = 0
        a1 = -(y0 - y2) / ar
        b1 = (x0 - x2) / ar
        c1 = ((x0 - x2) * (oy - y2) - (y0 - y2) * (ox - x2)) / ar
        # corner 2: nxt = 0, nn = 1
        a2 = -(y1 - y0) / ar
        b2 = (x1 - x0) / ar
        c2 = ((x1 - x0) * (oy - y0) - (y1 - y0) * (ox - x0)) / ar
        za = np.float32(a0 * zi0 + a1 * zi1 + a2 * zi2)
        zb = np.float32(b0 * zi0 + b1 * zi1 + b2 * zi2)
        zc = np.float32(c0 * zi0 + c1 * zi1 + c2 * zi2)
        fa0, fb0, fc0 = np.float32(a0), np.float32(b0), np.float32(c0)
        fa1, fb1, fc1 = np.float32(a1), np.float32(b1), np.float32(c1)
        fa2, fb2, fc2 = np.float32(a2), np.float32(b2), np.float32(c2)
        # 3. The box's pixels, in float32 as the twin
        bx0 = int(lox)
        by0 = int(loy)
        nx = int(hix) - bx0 + 1
        ny = int(hiy) - by0 + 1
        bx_lo = min(bx_lo, bx0)
        by_lo = min(by_lo, by0)
        bx_hi = max(bx_hi, bx0 + nx - 1)
        by_hi = max(by_hi, by0 + ny - 1)
        for dy in range(ny):
            dyf = np.float32(dy)
            e0 = fb0 * dyf
            e1 = fb1 * dyf
            e2 = fb2 * dyf
            ez = zb * dyf
            row = (by0 + dy) * width + bx0
            for dx in range(nx):
                dxf = np.float32(dx)
                # branch-free (inside or not is data, not control flow: measured 1.5x faster here)
                inside = (
                    (fa0 * dxf + e0 + fc0 >= EDGE_EPS32)
                    & (fa1 * dxf + e1 + fc1 >= EDGE_EPS32)
                    & (fa2 * dxf + e2 + fc2 >= EDGE_EPS32)
                )
                d = one / (za * dxf + ez + zc)
                p = row + dx
                old = best[p]
                best[p] = min(d, old) if inside else old
                keep = face_out[p]
                face_out[p] = f if inside & (d < old) else keep
    if bx_hi < 0:
        return 0, 0, -1, -1
    return bx_lo, by_lo, bx_hi, by_hi


@njit(cache=True, nogil=True)
def rasterise_faces(verts, faces, K, width, height, near) -> np.ndarray:
    """Face buffer of a batch: verts [B, N, 3] f64 camera metres, faces [F, 3], K [B, 3, 3]
    -> [B, H*W] i32 face index (-1 empty)."""
    B, N = verts.shape[0], verts.shape[1]
    face_out = np.empty((B, height * width), np.int32)
    for b in range(B):
        uv = np.empty((N, 2), np.float64)
        _project(verts[b], K[b], uv)
        best = np.full(height * width, np.inf, np.float32)
        face_out[b, :] = -1
        _zbuffer(uv, verts[b, :, 2], faces, width, height, near, best, face_out[b])
    return face_out


@njit(cache=True, nogil=True)
def _resolve(face_buf, uv, inv_z, faces, tex_uv, texture, width, height, ssaa, box, colour, cover, depth):
    """Shade one frame: every covered sample of the (W*ssaa) x (H*ssaa) face buffer takes the winning face's
    perspective-correct barycentrics (float64), interpolates texture coordinates and samples the texture
    bilinearly (border clamped); each output pixel averages its ssaa x ssaa samples.

    face_buf: [H*s * W*s] i32; uv: [N, 2] px at the fine grid; inv_z: [N] 1/z, 1/metres; tex_uv: [N, 2] texture px;
    texture: [Ht, Wt, C] f32; box: (x0, y0, x1, y1) the fine-grid pixels that may be covered (from `_zbuffer`).
    Writes colour [H, W, C] f32 (premultiplied by coverage), cover [H, W] f32,
    depth [H, W] f64 (mean over covered samples, 0 where empty).
    """
    Ht, Wt, C = texture.shape
    W2 = width * ssaa
    inv_n = 1.0 / (ssaa * ssaa)
    acc = np.empty(C, np.float64)
    last = -1  # the face whose set-up is held below (neighbouring samples mostly share one)
    x0 = y0 = za = zb = zc = ua = ub = uc = va = vb = vc = 0.0
    colour[:] = 0.0
    cover[:] = 0.0
    depth[:] = 0.0
    for y in range(box[1] // ssaa, min(box[3] // ssaa + 1, height)):
        for x in range(box[0] // ssaa, min(box[2] // ssaa + 1, width)):
            for c in range(C):
                acc[c] = 0.0
            cnt = 0
            dsum = 0.0
            for sy in range(ssaa):
                Y = y * ssaa + sy
                for sx in range(ssaa):
                    X = x * ssaa + sx
                    f = face_buf[Y * W2 + X]
                    if f < 0:
                        continue
                    if f != last:
                        # a new face: 1/z, u/z and v/z are affine in the pixel offset (dx, dy) from corner 0,
                        # from the screen barycentrics l_i = w_i / area (w_i the edge functions, w_0 = area at corner 0)
                        last = f
                        i0, i1, i2 = faces[f, 0], faces[f, 1], faces[f, 2]
                        x0, y0 = uv[i0, 0], uv[i0, 1]
                        x1, y1 = uv[i1, 0], uv[i1, 1]
                        x2, y2 = uv[i2, 0], uv[i2, 1]
                        ia = 1.0 / ((x1 - x0) * (y2 - y0) - (y1 - y0) * (x2 - x0))
                        g0, g1, g2 = inv_z[i0] * ia, inv_z[i1] * ia, inv_z[i2] * ia  # 1/(z_i area)
                        a0, b0 = -(y2 - y1) * g0, (x2 - x1) * g0  # d(l_0 / z_0)/d(dx, dy)
                        a1, b1 = -(y0 - y2) * g1, (x0 - x2) * g1
                        a2, b2 = -(y1 - y0) * g2, (x1 - x0) * g2
                        za, zb, zc = a0 + a1 + a2, b0 + b1 + b2, inv_z[i0]
                        u0, u1, u2 = tex_uv[i0, 0], tex_uv[i1, 0], tex_uv[i2, 0]
                        v0, v1, v2 = tex_uv[i0, 1], tex_uv[i1, 1], tex_uv[i2, 1]
                        ua, ub, uc = a0 * u0 + a1 * u1 + a2 * u2, b0 * u0 + b1 * u1 + b2 * u2, zc * u0
                        va, vb, vc = a0 * v0 + a1 * v1 + a2 * v2, b0 * v0 + b1 * v1 + b2 * v2, zc * v0
                    dx = X + 0.5 - x0
                    dy = Y + 0.5 - y0
                    zs = 1.0 / (za * dx + zb * dy + zc)  # the sample's depth, metres (perspective-correct)
                    dsum += zs
                    cnt += 1
                    # texture coordinates -> texel space (texel (i, j) centred at (j + 0.5, i + 0.5)), border clamp
                    tu = (ua * dx + ub * dy + uc) * zs - 0.5
                    tv = (va * dx + vb * dy + vc) * zs - 0.5
                    tu = min(max(tu, 0.0), Wt - 1.0)
                    tv = min(max(tv, 0.0), Ht - 1.0)
                    ju = int(tu)
                    iv = int(tv)
                    wu = tu - ju
                    wv = tv - iv
                    ju1 = min(ju + 1, Wt - 1)
                    iv1 = min(iv + 1, Ht - 1)
                    for c in range(C):
                        top = texture[iv, ju, c] * (1.0 - wu) + texture[iv, ju1, c] * wu
                        bot = texture[iv1, ju, c] * (1.0 - wu) + texture[iv1, ju1, c] * wu
                        acc[c] += top * (1.0 - wv) + bot * wv
            for c in range(C):
                colour[y, x, c] = acc[c] * inv_n
            cover[y, x] = cnt * inv_n
            depth[y, x] = dsum / cnt if cnt > 0 else 0.0


@njit(cache=True, nogil=True)
def render_textured_batch(
    verts, faces, tex_uv, texture, K, width, height, ssaa, near
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rasterise and shade a batch at `ssaa` x supersampling.

    verts: [B, N, 3] f64 camera metres; faces: [F, 3] int; tex_uv: [N, 2] f64 texture px;
    texture: [Ht, Wt, C] f32; K: [B, 3, 3] f64 intrinsics of the OUTPUT grid (scaled here by ssaa)
    returns: colour [B, H, W, C] f32 premultiplied, cover [B, H, W] f32, depth [B, H, W] f64
    """
    B, N = verts.shape[0], verts.shape[1]
    C = texture.shape[2]
    W2 = width * ssaa
    H2 = height * ssaa
    colour = np.empty((B, height, width, C), np.float32)
    cover = np.empty((B, height, width), np.float32)
    depth = np.empty((B, height, width), np.float64)
    for b in range(B):
        Kb = K[b].copy()
        for r in range(2):
            for c in range(3):
                Kb[r, c] = K[b, r, c] * ssaa  # the same camera on a grid ssaa times finer
        uv = np.empty((N, 2), np.float64)
        _project(verts[b], Kb, uv)
        zb = verts[b, :, 2].copy()
        best = np.full(H2 * W2, np.inf, np.float32)
        face_buf = np.full(H2 * W2, -1, np.int32)
        box = _zbuffer(uv, zb, faces, W2, H2, near, best, face_buf)
        _resolve(
            face_buf, uv, 1.0 / zb, faces, tex_uv, texture, width, height, ssaa, box, colour[b], cover[b], depth[b]
        )
    return colour, cover, depth


@njit(cache=True, nogil=True)
def sample_bilinear(texture, u, v) -> np.ndarray:
    """Bilinear lookup with clamped borders, as `raster.sample_bilinear_torch` (grid_sample, border padding).

    texture: [Ht, Wt, C] f32; u, v: [n] image coordinates (texel (i, j) centred at (j + 0.5, i + 0.5))
    returns: [n, C] f32
    """
    Ht, Wt, C = texture.shape
    n = u.shape[0]
    out = np.empty((n, C), np.float32)
    for k in range(n):
        tu = min(max(np.float64(u[k]) - 0.5, 0.0), Wt - 1.0)
        tv = min(max(np.float64(v[k]) - 0.5, 0.0), Ht - 1.0)
        if not (tu == tu and tv == tv):  # NaN: grid_sample's border padding reads 0
            for c in range(C):
                out[k, c] = 0.0
            continue
        ju = int(tu)
        iv = int(tv)
        wu = tu - ju
        wv = tv - iv
        ju1 = min(ju + 1, Wt - 1)
        iv1 = min(iv + 1, Ht - 1)
        for c in range(C):
            top = texture[iv, ju, c] * (1.0 - wu) + texture[iv, ju1, c] * wu
            bot = texture[iv1, ju, c] * (1.0 - wu) + texture[iv1, ju1, c] * wu
            out[k, c] = top * (1.0 - wv) + bot * wv
    return out


@njit(cache=True, nogil=True)
def composite_over(colour, cover, back, out) -> None:
    """The person over an opaque background, to 8 bits, float32 arithmetic as the torch twin in render.py.

    colour: [B, H, W, 3] f32 premultiplied; cover: [B, H, W] f32; back: [B, H, W, 3] f32 (any strides)
    out:    [B, H, W, 4] uint8 (written): rgb = colour + (1 - cover) back, alpha 255
    """
    one = np.float32(1.0)
    zero = np.float32(0.0)
    s = np.float32(255.0)
    half = np.float32(0.5)
    B, H, W, C = colour.shape
    for b in range(B):
        for y in range(H):
            for x in range(W):
                a = one - cover[b, y, x]
                for c in range(C):
                    val = colour[b, y, x, c] + a * back[b, y, x, c]
                    val = min(max(val, zero), one)
                    out[b, y, x, c] = np.uint8(val * s + half)
                out[b, y, x, C] = 255


@njit(cache=True, nogil=True)
def straight_alpha(colour, cover, out) -> None:
    """The person alone: straight colour and coverage as alpha, to 8 bits (float32 as the torch twin).

    colour: [B, H, W, 3] f32 premultiplied; cover: [B, H, W] f32; out: [B, H, W, 4] uint8 (written)
    """
    one = np.float32(1.0)
    zero = np.float32(0.0)
    s = np.float32(255.0)
    half = np.float32(0.5)
    eps = np.float32(1e-6)
    B, H, W, C = colour.shape
    for b in range(B):
        for y in range(H):
            for x in range(W):
                a = cover[b, y, x]
                d = max(a, eps)
                for c in range(C):
                    val = min(max(colour[b, y, x, c] / d, zero), one)
                    out[b, y, x, c] = np.uint8(val * s + half)
                out[b, y, x, C] = np.uint8(min(max(a, zero), one) * s + half)
