"""Reading still images (Pillow): any mode and bit depth to upright 8-bit RGB, optionally decoded small."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from hvg_cli.core.errors import BadInput
from hvg_cli.io import check_input_file, fit_size

if TYPE_CHECKING:
    from PIL import Image as PILImage

# EXIF orientations that turn the picture by 90° (width and height swap when applied)
_TRANSPOSING_ORIENTATIONS = (5, 6, 7, 8)


def read_image(path: str | os.PathLike, max_side: int | None = None) -> np.ndarray:
    """An image file as upright RGB: [H, W, 3] uint8.

    The EXIF orientation tag (phones) is applied, so the array looks like the photo does in a
    viewer. Every mode becomes 8-bit RGB by its meaning, not by clipping: 16-bit greyscale (PNG "I;16")
    and 32-bit integer images are scaled from 0..65535, float images from 0..1; greyscale, palette,
    bilevel and CMYK are converted; transparent parts (alpha, or a transparency key) are laid on white.
    max_side: when given and the image is larger, it is scaled down (never up) so its longer side is
    max_side (aspect kept, `fit_size`'s rounding). A JPEG is then decoded directly at 1/2, 1/4 or 1/8
    scale (the largest that is still at least the target size), so a 4500x8000 photo never exists at
    full size in memory.
    Raises BadInput naming the file when it is missing, empty or not an image Pillow can read.
    """
    from PIL import Image, ImageOps, UnidentifiedImageError

    p = Path(path)
    check_input_file(p, "an image", "a .jpg or .png file")
    try:
        with Image.open(p) as im:
            orientation = im.getexif().get(0x0112, 1)
            target = fit_size(im.width, im.height, max_side)  # (w, h) in the stored orientation
            if target != im.size:
                im.draft(None, target)  # JPEG only: decode at a reduced scale >= target (a no-op for others)
            im.load()
            ImageOps.exif_transpose(im, in_place=True)  # no copy of the picture
            rgb = _to_rgb8(im)
            if orientation in _TRANSPOSING_ORIENTATIONS:
                target = target[::-1]
            if rgb.size != target:
                # a reduce by whole factors first (box), then Lanczos for the last step
                rgb = rgb.resize(target, Image.Resampling.LANCZOS, reducing_gap=2.0)
            out = np.asarray(rgb, dtype=np.uint8)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        raise BadInput(
            f"{p} is not an image that can be read ({type(e).__name__})", "give a .jpg or .png file"
        ) from None
    return np.ascontiguousarray(out)  # [H, W, 3] uint8


def check_image(path: str | os.PathLike) -> None:
    """BadInput, as `read_image` words it, unless `path` is an image file Pillow can open (header only: cheap,
    for a job's step 0 before any work)."""
    from PIL import Image, UnidentifiedImageError

    p = Path(path)
    check_input_file(p, "an image", "a .jpg or .png file")
    try:
        with Image.open(p) as im:
            im.verify()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        raise BadInput(
            f"{p} is not an image that can be read ({type(e).__name__})", "give a .jpg or .png file"
        ) from None


def _to_rgb8(im: PILImage.Image) -> PILImage.Image:
    """Any Pillow image as mode "RGB", 8 bits per channel, transparent parts on white."""
    from PIL import Image

    if im.mode.startswith("I") or im.mode == "F":
        im = _high_depth_to_l(im)
    if im.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in im.info:
        im = im.convert("RGBA")
        bg = Image.new("RGBA", im.size, (255, 255, 255, 255))  # transparent parts on white
        im = Image.alpha_composite(bg, im)
    return im if im.mode == "RGB" else im.convert("RGB")


def _high_depth_to_l(im: PILImage.Image) -> PILImage.Image:
    """A 16/32-bit integer or float single-channel image as 8-bit "L".

    I;16* (16-bit PNG/TIFF): value / 257, so 65535 -> 255. "I" (32-bit): the same 16-bit scale when its
    values exceed 255 (Pillow's mode for 16-bit data in some versions and formats), else taken as 8-bit.
    "F": 0..1 -> 0..255 when its values lie in [0, 1], else clipped to 0..255.
    """
    from PIL import Image

    a = np.asarray(im)
    if im.mode == "F":
        a = a.astype(np.float64)  # [H, W]
        finite = a[np.isfinite(a)]
        scale = 255.0 if finite.size and finite.min() >= 0.0 and finite.max() <= 1.0 else 1.0
        a = np.nan_to_num(a * scale, nan=0.0, posinf=255.0, neginf=0.0)
    else:
        a = a.astype(np.float64)  # [H, W], I;16 arrives as uint16, I as int32
        if im.mode.startswith("I;16") or a.max(initial=0) > 255:
            a = a / 257.0
    return Image.fromarray(np.clip(np.rint(a), 0, 255).astype(np.uint8))  # [H, W] uint8 -> mode "L"
