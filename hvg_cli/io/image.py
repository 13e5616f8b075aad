"""Reading still images (Pillow)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from hvg_cli.core.errors import BadInput
from hvg_cli.io import check_input_file


def read_image(path: str | os.PathLike) -> np.ndarray:
    """An image file as upright RGB: [H, W, 3] uint8.

    The EXIF orientation tag (phones) is applied, so the array looks like the photo does in a
    viewer; greyscale, palette, CMYK and alpha images are converted to RGB (alpha dropped).
    Raises BadInput naming the file when it is missing, empty or not an image Pillow can read.
    """
    from PIL import Image, ImageOps, UnidentifiedImageError

    p = Path(path)
    check_input_file(p, "an image", "a .jpg or .png file")
    try:
        with Image.open(p) as im:
            im.load()
            im = ImageOps.exif_transpose(im)
            if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
                im = im.convert("RGBA")
                bg = Image.new("RGBA", im.size, (255, 255, 255, 255))  # transparent parts on white
                im = Image.alpha_composite(bg, im)
            rgb = np.asarray(im.convert("RGB"), dtype=np.uint8)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        raise BadInput(f"{p} is not an image that can be read ({type(e).__name__})", "give a .jpg or .png file") from None
    return np.ascontiguousarray(rgb)  # [H, W, 3] uint8
