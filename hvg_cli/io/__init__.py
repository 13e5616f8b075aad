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
