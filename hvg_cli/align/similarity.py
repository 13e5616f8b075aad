"""View-temporal alignment: a 2D similarity per view and frame that centres and scales the subject.

aligned = scale * pixel + offset (no rotation). Pixel coordinates are continuous image coordinates as
in hvg's intrinsics (principal point (W/2, H/2)): pixel (col i, row j) covers [i, i+1) x [j, j+1), its
centre is at (i + 0.5, j + 0.5), and a W x H image has its centre at (W/2, H/2).

For renders the similarity is folded into the intrinsics (S @ K: an exact render of the aligned
image, no resampling); for images (the photo, generated frames) it is applied by warping.
"""

from __future__ import annotations

import warnings

import numpy as np

from hvg_cli.core.types import Alignment

# A subject box's top: the SMPL head joint sits at the skull's base; the crown is about 12% of the
# joints' vertical extent higher for a standing adult (0.2 m over 1.53 m for hvg's default skeleton).
HEAD_MARGIN = 0.12


def image_centre(width: int, height: int) -> np.ndarray:
    """[2] centre of a width x height image in continuous pixel coordinates."""
    return np.array([width / 2.0, height / 2.0])


def project_points(points: np.ndarray, K: np.ndarray, world_to_cam: np.ndarray) -> np.ndarray:
    """Pinhole projection (OpenCV axes).

    points:       [..., N, 3] world metres
    K:            [..., 3, 3] pixels; world_to_cam: [..., 4, 4] (leading dims broadcast with points')
    returns:      [..., N, 2] pixels; nan for points at or behind the camera
    """
    R = world_to_cam[..., None, :3, :3]  # [..., 1, 3, 3]
    t = world_to_cam[..., None, :3, 3]  # [..., 1, 3]
    cam = (R @ points[..., None])[..., 0] + t  # [..., N, 3] camera space
    uvw = (K[..., None, :, :] @ cam[..., None])[..., 0]  # [..., N, 3]
    z = uvw[..., 2:3]
    return np.where(z > 1e-9, uvw[..., :2] / np.where(z > 1e-9, z, 1.0), np.nan)


def subject_box(joints_px: np.ndarray, head_margin: float = HEAD_MARGIN) -> np.ndarray:
    """Height of the subject's box in pixels from projected joints.

    joints_px: [..., 24, 2] pixels (e.g. [V, T, 24, 2])
    returns:   [...] pixels: vertical extent of the joints, grown by head_margin for the top of the head
    """
    y = joints_px[..., 1]  # [..., 24]
    return (y.max(axis=-1) - y.min(axis=-1)) * (1.0 + head_margin)


def subject_extent(joints_px: np.ndarray, head_margin: float = HEAD_MARGIN) -> np.ndarray:
    """How far the subject reaches from its pelvis (joint 0) in each direction, pixels.

    joints_px: [..., 24, 2] pixels
    returns:   [..., 4] distances (up, down, left, right) from the pelvis to the joints' box, the top grown
               by head_margin of the vertical extent (the crown above the head joint); never negative
    """
    p = joints_px[..., :1, :]  # [..., 1, 2] pelvis
    d = joints_px - p  # [..., 24, 2]
    height = d[..., 1].max(axis=-1) - d[..., 1].min(axis=-1)
    up = -d[..., 1].min(axis=-1) + head_margin * height
    down = d[..., 1].max(axis=-1)
    left = -d[..., 0].min(axis=-1)
    right = d[..., 0].max(axis=-1)
    return np.maximum(np.stack([up, down, left, right], axis=-1), 0.0)


def _gaussian_smooth(x: np.ndarray, sigma: float, axis: int) -> np.ndarray:
    """Gaussian smoothing along one axis with edge replication. sigma in samples."""
    if sigma <= 0 or x.shape[axis] < 2:
        return x
    r = int(np.ceil(3 * sigma))
    k = np.exp(-0.5 * (np.arange(-r, r + 1) / sigma) ** 2)
    k /= k.sum()
    pad = [(0, 0)] * x.ndim
    pad[axis] = (r, r)
    xp = np.moveaxis(np.pad(x, pad, mode="edge"), axis, 0)  # the smoothed axis first: slices are views
    n = x.shape[axis]
    out = np.zeros((n,) + xp.shape[1:], dtype=np.result_type(x.dtype, np.float32))
    for i, w in enumerate(k):  # a sum of shifted copies: vectorised over every other axis
        out += w * xp[i : i + n]
    return np.moveaxis(out, 0, axis)


def compute_alignment(
    pelvis_px: np.ndarray,
    box_height_px: np.ndarray,
    width: int,
    height: int,
    fill: float = 0.75,
    smooth: str | float = "median",
    extent_px: np.ndarray | None = None,
    margin: float = 0.98,
) -> Alignment:
    """The similarity per view and frame that puts the pelvis at the image centre at a steady scale.

    pelvis_px:     [V, T, 2] pixels: the pelvis projected by each view's camera at each frame
    box_height_px: [V, T] pixels: the subject's box height in the same images (`subject_box`)
    width, height: size of the aligned images, pixels
    fill:          the box height as a fraction of the aligned image height
    smooth:        "median": one scale per view (median over time; the subject never pumps);
                   "none": a scale per frame; a float sigma: scale smoothed over time (frames, in log space)
    extent_px:     [V, T, 4] optional (up, down, left, right) reach of the subject from its pelvis, pixels
                   (`subject_extent`): the scale is lowered where needed so that, pelvis centred, the
                   subject stays inside `margin` of the half-image in every frame (a view keeps one scale)
    returns:       Alignment(scale [V, T], offset [V, T, 2]) with aligned = scale * pixel + offset
    """
    pelvis_px = np.asarray(pelvis_px, dtype=np.float64)
    box = np.asarray(box_height_px, dtype=np.float64)
    if pelvis_px.ndim != 3 or pelvis_px.shape[-1] != 2 or box.shape != pelvis_px.shape[:2]:
        raise ValueError(f"pelvis_px [V, T, 2] and box_height_px [V, T] expected, got {pelvis_px.shape}, {box.shape}")
    box = np.where(np.isfinite(box) & (box > 1e-6), box, np.nan)
    raw = fill * height / box  # [V, T] per-frame scale, nan where the subject was not seen
    if smooth == "median":
        with warnings.catch_warnings(), np.errstate(all="ignore"):  # a view that never saw the subject: nan
            warnings.simplefilter("ignore", RuntimeWarning)
            per_view = fill * height / np.nanmedian(box, axis=1, keepdims=True)  # [V, 1]: median box -> fill
        scale = np.broadcast_to(per_view, raw.shape).copy()
    elif smooth == "none":
        scale = raw.copy()
    else:
        sigma = float(smooth)
        log_s = np.log(raw)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            fill_in = np.nanmedian(log_s, axis=1, keepdims=True)  # [V, 1]
        log_s = np.where(np.isnan(log_s), fill_in, log_s)
        scale = np.exp(_gaussian_smooth(log_s, sigma, axis=1))
    if extent_px is not None:
        ext = np.asarray(extent_px, dtype=np.float64)  # [V, T, 4]
        with np.errstate(divide="ignore", invalid="ignore"):
            cap = margin * np.minimum(
                0.5 * height / np.maximum(ext[..., 0], ext[..., 1]), 0.5 * width / np.maximum(ext[..., 2], ext[..., 3])
            )  # [V, T]
        cap = np.where(np.isfinite(cap) & (cap > 0), cap, np.inf)
        if smooth == "median":
            scale = np.minimum(scale, cap.min(axis=1, keepdims=True))  # one scale per view, inside in every frame
        elif smooth == "none":
            scale = np.minimum(scale, cap)
        else:  # cap, smooth again (no jump), cap once more where the smoothing rose above it
            scale = np.minimum(np.exp(_gaussian_smooth(np.log(np.minimum(scale, cap)), float(smooth), axis=1)), cap)
    scale = np.where(np.isfinite(scale), scale, 1.0)  # a view that never saw the subject: identity scale
    centre = image_centre(width, height)  # [2]
    offset = centre - scale[..., None] * pelvis_px  # [V, T, 2]
    offset = np.where(np.isfinite(offset), offset, 0.0)
    return Alignment(scale=scale, offset=offset, width=int(width), height=int(height))


def similarity_matrix(scale: np.ndarray, offset: np.ndarray) -> np.ndarray:
    """S = [[s, 0, ox], [0, s, oy], [0, 0, 1]].

    scale: [...]; offset: [..., 2]; returns [..., 3, 3]
    """
    scale = np.asarray(scale, dtype=np.float64)
    offset = np.asarray(offset, dtype=np.float64)
    S = np.zeros(scale.shape + (3, 3))
    S[..., 0, 0] = scale
    S[..., 1, 1] = scale
    S[..., :2, 2] = offset
    S[..., 2, 2] = 1.0
    return S


def aligned_intrinsics(K: np.ndarray, alignment: Alignment) -> np.ndarray:
    """Intrinsics that render the aligned image directly: S @ K.

    K:       [V, T, 3, 3] pixels (OpenCV)
    returns: [V, T, 3, 3]; with them a renderer of size (alignment.width, alignment.height) gives the
             aligned image exactly, since S @ (u, v, 1) = (s u + ox, s v + oy, 1).
    """
    return similarity_matrix(alignment.scale, alignment.offset) @ np.asarray(K, dtype=np.float64)


def apply_to_points(points_px: np.ndarray, scale: np.ndarray, offset: np.ndarray) -> np.ndarray:
    """aligned = scale * points + offset. points_px [..., N, 2], scale [...], offset [..., 2] -> [..., N, 2]."""
    return np.asarray(scale)[..., None, None] * points_px + np.asarray(offset)[..., None, :]


def invert(alignment: Alignment, width: int | None = None, height: int | None = None) -> Alignment:
    """The similarity that takes aligned images back to the camera's frame (the subject's true trajectory).

    width, height: size of the camera's (unaligned) images (default: the aligned size, the usual case
    where renders and camera images share one size).
    pixel = (aligned - offset) / scale  =>  scale' = 1 / scale, offset' = -offset / scale.
    """
    inv_s = 1.0 / alignment.scale
    return Alignment(
        scale=inv_s,
        offset=-alignment.offset * inv_s[..., None],
        width=int(alignment.width if width is None else width),
        height=int(alignment.height if height is None else height),
    )


# ---------------------------------------------------------------------------------------------
# image warping (numpy, bilinear)
# ---------------------------------------------------------------------------------------------
def _blur(image: np.ndarray, sigma: float) -> np.ndarray:
    """Separable gaussian blur over the first two axes of [H, W, C] float (anti-aliasing before downscaling)."""
    try:
        from scipy.ndimage import gaussian_filter1d
    except ImportError:  # pragma: no cover - scipy ships with hvg's dependencies
        return _gaussian_smooth(_gaussian_smooth(image, sigma, axis=0), sigma, axis=1)
    out = gaussian_filter1d(image, sigma, axis=0, mode="nearest", truncate=3.0)
    return gaussian_filter1d(out, sigma, axis=1, mode="nearest", truncate=3.0)


def _sample_affine(image: np.ndarray, a: float, b: np.ndarray, out_w: int, out_h: int, fill: float) -> np.ndarray:
    """out[y, x] = image at index (a * x + b[0], a * y + b[1]), bilinear; `fill` outside the image.

    image: [H, W, C] float32 or float64; returns [out_h, out_w, C] of the same dtype
    """
    H, W, C = image.shape
    xs = a * np.arange(out_w) + b[0]  # [out_w] source columns
    ys = a * np.arange(out_h) + b[1]  # [out_h] source rows
    x0 = np.floor(xs).astype(np.int64)
    y0 = np.floor(ys).astype(np.int64)
    fx = (xs - x0).astype(image.dtype)[None, :, None]  # [1, out_w, 1]
    fy = (ys - y0).astype(image.dtype)[:, None, None]  # [out_h, 1, 1]
    # pad by one pixel of `fill` so samples straddling the border blend towards it
    padded = np.full((H + 2, W + 2, C), fill, dtype=image.dtype)
    padded[1:-1, 1:-1] = image
    cx0 = np.clip(x0 + 1, 0, W + 1)
    cx1 = np.clip(x0 + 2, 0, W + 1)
    cy0 = np.clip(y0 + 1, 0, H + 1)
    cy1 = np.clip(y0 + 2, 0, H + 1)
    row0, row1 = padded[cy0], padded[cy1]  # [out_h, W + 2, C] each, gathered once
    top = row0[:, cx0] * (1 - fx) + row0[:, cx1] * fx  # [out_h, out_w, C]
    bot = row1[:, cx0] * (1 - fx) + row1[:, cx1] * fx
    out = top * (1 - fy) + bot * fy
    outside = ((xs < -1) | (xs > W))[None, :] | ((ys < -1) | (ys > H))[:, None]  # [out_h, out_w]
    out[outside] = fill
    return out


def _box_shrink(image: np.ndarray, k: int) -> np.ndarray:
    """Mean of k x k boxes: [H, W, C] -> [ceil(H / k), ceil(W / k), C]; the last row and column of boxes are
    completed by repeating the edge pixels (the gaussian's 'nearest' border)."""
    H, W, C = image.shape
    Hk, Wk = -(-H // k), -(-W // k)
    padded = np.pad(image, ((0, Hk * k - H), (0, Wk * k - W), (0, 0)), mode="edge")  # [Hk * k, Wk * k, C]
    return padded.reshape(Hk, k, Wk, k, C).mean(axis=(1, 3), dtype=image.dtype)  # [Hk, Wk, C]


def _warp(
    image: np.ndarray,
    a: float,
    b: np.ndarray,
    out_w: int,
    out_h: int,
    fill: float,
    antialias: bool,
    prefilter: bool = True,
) -> np.ndarray:
    """Sample image at source = a * target + b (continuous coordinates); a > 1 shrinks (blurred first if antialias).

    Pixel index k has its centre at coordinate k + 0.5, so in index space: src = a * k + (b + 0.5 a - 0.5).
    The anti-aliasing blur is a gaussian of sigma 0.5·sqrt(a² - 1) source pixels; for shrinks of 8x and more
    (prefilter) a box average of k = floor(a / 4) pixels stands in for part of it, which keeps the cost per
    output pixel flat instead of growing with a² (the plain gaussian, prefilter=False, is the twin it is tested
    against).
    """
    image = np.asarray(image)
    dtype = image.dtype
    img = image.astype(
        np.float32 if image.dtype in (np.uint8, np.uint16, np.float32, np.float16, np.bool_) else np.float64
    )
    squeeze = img.ndim == 2
    if squeeze:
        img = img[..., None]  # [H, W, 1]
    b_idx = np.asarray(b, dtype=np.float64) + 0.5 * a - 0.5  # [2] index-space shift
    if antialias and a > 1.0:
        sigma = 0.5 * np.sqrt(a * a - 1.0)
        # blur only the part that is sampled (plus the kernel's reach): same result, far less work
        m = int(np.ceil(3 * sigma)) + 2
        H, W = img.shape[:2]
        x0 = int(np.clip(np.floor(b_idx[0]) - m, 0, W))
        x1 = int(np.clip(np.ceil(a * (out_w - 1) + b_idx[0]) + m + 1, 0, W))
        y0 = int(np.clip(np.floor(b_idx[1]) - m, 0, H))
        y1 = int(np.clip(np.ceil(a * (out_h - 1) + b_idx[1]) + m + 1, 0, H))
        if x1 > x0 and y1 > y0:
            img = img[y0:y1, x0:x1]  # [y1 - y0, x1 - x0, C]
            b_idx = b_idx - np.array([x0, y0])
            k = int(a // 4) if prefilter else 1
            if k >= 2:
                # a big shrink (a 1080p video frame to a 32 px training clip: a ~ 30, a 90-tap gaussian) first
                # averages k x k boxes, then blurs what is left of the gaussian's variance in the small image
                img, b_idx, a = _box_shrink(img, k), (b_idx - 0.5 * (k - 1)) / k, a / k
                sigma = np.sqrt(max(sigma * sigma - (k * k - 1) / 12.0, 0.0)) / k  # box variance (k² - 1) / 12
            if sigma > 0:
                img = _blur(img, sigma)
    out = _sample_affine(img, float(a), b_idx, int(out_w), int(out_h), fill)
    if squeeze:
        out = out[..., 0]
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        return np.clip(np.rint(out), info.min, info.max).astype(dtype)
    return out.astype(dtype)


def warp_image(
    image: np.ndarray,
    scale: float,
    offset: np.ndarray,
    out_w: int,
    out_h: int,
    fill: float = 0.0,
    antialias: bool = True,
) -> np.ndarray:
    """Camera image -> aligned image: out(scale * p + offset) = image(p).

    image:  [H, W, C] or [H, W] (uint8 or float); scale float; offset [2] pixels
    returns [out_h, out_w, C] (same dtype); `fill` where the source has no pixel
    """
    offset = np.asarray(offset, dtype=np.float64)
    return _warp(image, 1.0 / scale, -offset / scale, out_w, out_h, fill, antialias)


def unwarp_image(
    image: np.ndarray,
    scale: float,
    offset: np.ndarray,
    out_w: int,
    out_h: int,
    fill: float = 0.0,
    antialias: bool = True,
) -> np.ndarray:
    """Aligned image -> camera image (the inverse of `warp_image` with the same scale and offset).

    image:  [h, w, C] or [h, w] aligned; returns [out_h, out_w, C] in the camera's frame
    """
    return _warp(image, float(scale), np.asarray(offset, dtype=np.float64), out_w, out_h, fill, antialias)


def warp_frames(
    frames: np.ndarray,
    alignment: Alignment,
    out_w: int | None = None,
    out_h: int | None = None,
    inverse: bool = False,
    fill: float = 0.0,
) -> np.ndarray:
    """Warp every view and frame: frames [V, T, H, W, C] -> [V, T, out_h, out_w, C].

    inverse=False: camera frames -> aligned (default size: alignment's); inverse=True: aligned -> camera
    (out_w/out_h then name the camera's size and are required).
    """
    V, T = alignment.scale.shape
    if inverse and (out_w is None or out_h is None):
        raise ValueError("unwarping needs the camera image size")
    out_w = alignment.width if out_w is None else out_w
    out_h = alignment.height if out_h is None else out_h
    fn = unwarp_image if inverse else warp_image
    rows = [
        [fn(frames[v, t], alignment.scale[v, t], alignment.offset[v, t], out_w, out_h, fill) for t in range(T)]
        for v in range(V)
    ]
    return np.stack([np.stack(r) for r in rows])
