"""A picture of a camera path around the subject, drawn with PIL: top-down and side views side by side.

Left panel, top-down: seen from above, x to the right, +z (the subject's front) toward the bottom.
Right panel, side: seen from the subject's right (-x), +z to the right, y up.
Each camera is a small frustum (apex at its centre, its image rectangle ahead of it), coloured from the first
(blue) to the last (orange); the subject is a stick figure standing on y = 0 facing +z.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from hvg_cli.core.atomic import atomic_file
from hvg_cli.core.types import CameraPath

PANEL = 520  # pixels per panel side
MARGIN = 46
BG, GRID, INK, SUBJECT, TARGET = (255, 255, 255), (228, 228, 232), (40, 40, 48), (90, 90, 100), (200, 40, 40)

# a standing stick figure facing +z (metres): segments and the head
_J = {
    "pelvis": (0, 0.92, 0),
    "neck": (0, 1.45, 0),
    "l_sh": (0.19, 1.42, 0),
    "r_sh": (-0.19, 1.42, 0),
    "l_el": (0.24, 1.15, 0),
    "r_el": (-0.24, 1.15, 0),
    "l_wr": (0.26, 0.9, 0.03),
    "r_wr": (-0.26, 0.9, 0.03),
    "l_hip": (0.1, 0.9, 0),
    "r_hip": (-0.1, 0.9, 0),
    "l_kn": (0.11, 0.48, 0.02),
    "r_kn": (-0.11, 0.48, 0.02),
    "l_an": (0.12, 0.07, 0),
    "r_an": (-0.12, 0.07, 0),
    "l_toe": (0.13, 0.0, 0.16),
    "r_toe": (-0.13, 0.0, 0.16),
}
_SEGMENTS = [
    ("pelvis", "neck"),
    ("l_sh", "r_sh"),
    ("l_sh", "l_el"),
    ("l_el", "l_wr"),
    ("r_sh", "r_el"),
    ("r_el", "r_wr"),
    ("l_hip", "r_hip"),
    ("l_hip", "l_kn"),
    ("l_kn", "l_an"),
    ("l_an", "l_toe"),
    ("r_hip", "r_kn"),
    ("r_kn", "r_an"),
    ("r_an", "r_toe"),
]
_HEAD = (np.array([0.0, 1.6, 0.02]), 0.11)
_NOSE = np.array([0.0, 1.6, 0.16])


def _font(size: int):
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1: fixed bitmap font
        return ImageFont.load_default()


def frustum_points(path: CameraPath, depth: float) -> tuple[np.ndarray, np.ndarray]:
    """Camera centres and the corners of each image rectangle `depth` metres ahead.

    returns: centres [V, 3], corners [V, 4, 3] world metres (top-left, top-right, bottom-right, bottom-left)
    """
    c2w = np.linalg.inv(path.world_to_cam)  # [V, 4, 4]
    px = np.array([[0, 0], [path.width, 0], [path.width, path.height], [0, path.height]], dtype=np.float64)  # [4, 2]
    rays = np.einsum("vij,cj->vci", np.linalg.inv(path.K), np.concatenate([px, np.ones((4, 1))], 1))  # [V, 4, 3] z=1
    pts_cam = rays * depth
    corners = np.einsum("vij,vcj->vci", c2w[:, :3, :3], pts_cam) + c2w[:, None, :3, 3]
    return c2w[:, :3, 3], corners


def plot_cameras(path: CameraPath, out_png: Path, title: str | None = None) -> Path:
    """Draw the cameras of `path` around the subject (top-down and side views) into a PNG."""
    from PIL import Image, ImageDraw

    centres, _ = frustum_points(path, 1.0)
    extent = max(1.2, float(np.abs(centres[:, [0, 2]]).max()) if len(centres) else 1.0)  # metres, half-width
    depth = 0.12 * extent
    centres, corners = frustum_points(path, depth)
    V = path.num_views

    W, H = 2 * PANEL, PANEL + 40
    img = Image.new("RGB", (W, H), BG)
    draw = ImageDraw.Draw(img)
    font, small = _font(15), _font(12)
    draw.text(
        (10, 8),
        title
        or f"camera path '{path.name}': {V} view{'s' if V != 1 else ''}"
        f"{' (closed)' if path.closed else ''}, {path.width}x{path.height}",
        fill=INK,
        font=font,
    )

    # panel axes: (horizontal world axis, sign), (vertical world axis, sign of "down" in the image)
    ys = np.concatenate([centres[:, 1], corners[..., 1].reshape(-1), [0.0, 1.8]])
    panels = [
        ("top-down (from above): x right, front (+z) down", 0, 0, 2, +1, (0.0, 0.0), extent),
        (
            "side (from the subject's right): front (+z) right, y up",
            PANEL,
            2,
            1,
            -1,
            (0.0, float(ys.min() + ys.max()) / 2),
            max(extent, float(ys.max() - ys.min()) / 2 + 0.2),
        ),
    ]
    for label, x0, ax_h, ax_v, sgn_v, centre, half in panels:
        half *= 1.12
        scale = (PANEL - 2 * MARGIN) / (2 * half)  # pixels per metre
        ox, oy = x0 + PANEL / 2, 40 + PANEL / 2

        def to_px(p: np.ndarray, ax_h=ax_h, ax_v=ax_v, sgn_v=sgn_v, scale=scale, ox=ox, oy=oy, centre=centre):
            p = np.asarray(p, dtype=np.float64)
            u = ox + (p[..., ax_h] - centre[0]) * scale
            v = oy + sgn_v * (p[..., ax_v] - centre[1]) * scale
            return np.stack([u, v], -1)

        # 1. grid every 0.5 m and the floor line in the side view
        step = 0.5 if half < 4 else 1.0
        lo, hi = -half - step, half + step
        for g in np.arange(np.floor((centre[0] + lo) / step) * step, centre[0] + hi, step):
            u = ox + (g - centre[0]) * scale
            if x0 + 4 < u < x0 + PANEL - 4:
                draw.line([(u, 44), (u, H - 4)], fill=GRID)
        for g in np.arange(np.floor((centre[1] + lo) / step) * step, centre[1] + hi, step):
            v = oy + sgn_v * (g - centre[1]) * scale
            if 44 < v < H - 4:
                draw.line([(x0 + 4, v), (x0 + PANEL - 4, v)], fill=GRID)
        if ax_v == 1:
            v = oy + sgn_v * (0 - centre[1]) * scale
            draw.line([(x0 + 4, v), (x0 + PANEL - 4, v)], fill=(170, 170, 178), width=2)
        draw.text((x0 + 10, 28), label, fill=INK, font=small)
        draw.text((x0 + PANEL - 70, H - 20), f"grid {step:g} m", fill=(150, 150, 160), font=small)

        # 2. the subject
        for a, b in _SEGMENTS:
            pa, pb = to_px(np.array(_J[a])), to_px(np.array(_J[b]))
            draw.line([tuple(pa), tuple(pb)], fill=SUBJECT, width=3)
        hc, hr = to_px(_HEAD[0]), _HEAD[1] * scale
        draw.ellipse([hc[0] - hr, hc[1] - hr, hc[0] + hr, hc[1] + hr], outline=SUBJECT, width=3)
        draw.line([tuple(hc), tuple(to_px(_NOSE))], fill=TARGET, width=2)  # facing direction

        # 3. the path (centres in order) and the frusta
        pc = to_px(centres)  # [V, 2]
        if V > 1:
            pts = [tuple(p) for p in pc] + ([tuple(pc[0])] if path.closed else [])
            draw.line(pts, fill=(180, 180, 190), width=1)
        for i in range(V):
            col = _colour(i, V)
            pk = to_px(corners[i])  # [4, 2]
            for k in range(4):
                draw.line([tuple(pc[i]), tuple(pk[k])], fill=col, width=1)
            draw.polygon([tuple(p) for p in pk], outline=col)
            draw.line([tuple(pk[0]), tuple(pk[1])], fill=col, width=3)  # the image's top edge
            r = 4 if i == 0 else 2.5
            draw.ellipse([pc[i][0] - r, pc[i][1] - r, pc[i][0] + r, pc[i][1] + r], fill=col)
            if V <= 12 or (ax_v == 2 and (i % max(1, V // 8) == 0 or i == V - 1)):  # side view: few labels
                d = pc[i] - np.array([ox, oy])
                d = d / (np.linalg.norm(d) + 1e-9) * 14
                draw.text((pc[i][0] + d[0] - 4, pc[i][1] + d[1] - 6), str(i), fill=col, font=small)
    draw.line([(PANEL, 44), (PANEL, H - 4)], fill=(200, 200, 205), width=1)

    out_png = Path(out_png)
    with atomic_file(out_png, "wb") as f:
        img.save(f, format="PNG")
    return out_png


def _colour(i: int, n: int) -> tuple[int, int, int]:
    """Blue for the first camera to orange for the last."""
    a = i / max(1, n - 1)
    c0, c1 = np.array([30, 100, 220]), np.array([240, 130, 20])
    r, g, b = (int(v) for v in (c0 + a * (c1 - c0)))
    return r, g, b
