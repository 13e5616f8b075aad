"""Reading and writing images, videos, AMASS .npz and BVH files. Imports only core."""

from __future__ import annotations

from pathlib import Path

from hvg_cli.core.errors import BadInput


def check_input_file(path: Path, kind: str, example: str) -> None:
    """BadInput naming `path` unless it is an existing, non-empty file.

    kind: what the file should be ("an image", "a video file"); example: what to give instead.
    """
    if not path.exists():
        raise BadInput(f"{path}: no such file", "check the path")
    if path.is_dir():
        raise BadInput(f"{path} is a folder, not {kind}", f"give {example}")
    if path.stat().st_size == 0:
        raise BadInput(f"{path} is empty (0 bytes)", f"give {example}")


def fit_size(width: int, height: int, max_side: int | None) -> tuple[int, int]:
    """(w, h) scaled down (never up) so the longer side is at most max_side; None or 0: unchanged."""
    if max_side is not None and max_side < 0:
        raise ValueError(f"max_side must be >= 0 or None, got {max_side}")
    if not max_side or max(width, height) <= max_side:
        return width, height
    s = max_side / max(width, height)
    return max(1, int(round(width * s))), max(1, int(round(height * s)))
