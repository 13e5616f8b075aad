"""Output paths checked once, before any work: hvg never writes over one of its inputs, never over a folder
it did not write, and never writes two outputs to the same place.

Every job resolves its outputs and its inputs here, at its step 0 (DESIGN.md: bad input fails first and
never destroys a file hvg did not write).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path

from hvg_cli.core.errors import OutputError


def _resolved(p: str | os.PathLike) -> Path:
    return Path(os.path.abspath(os.path.expanduser(os.fspath(p)))).resolve()


def _same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)  # hard links and bind mounts, beyond equal spellings
    except OSError:
        return False


def _inside(child: Path, folder: Path) -> bool:
    try:
        child.relative_to(folder)
        return True
    except ValueError:
        return False


def check_outputs(outputs: Sequence[tuple[str | os.PathLike, str]], inputs: Iterable[str | os.PathLike | None]) -> None:
    """Raise OutputError (exit 6) naming the path unless every output can be written safely.

    outputs: (path, kind) with kind "file" (a video, .gif, .npz, .bvh, .json ...) or "frames" (a folder of PNGs)
    inputs:  the files and folders the job reads (None entries and names that are not paths, such as
             preset names, are ignored)
    Refused: an output that is an input (any spelling, symlink or hard link), a folder holding an input, two
    outputs at one place, a file output where a folder stands, and a frames folder that exists, is not empty
    and was not written by hvg.
    """
    from hvg_cli.io.video import is_frames_folder

    ins = []
    for i in inputs:
        if i is None:
            continue
        p = Path(i)
        if p.exists():
            ins.append((p, _resolved(p)))
    seen: dict[Path, Path] = {}
    for raw, kind in outputs:
        out = Path(raw)
        res = _resolved(out)
        if res in seen:
            raise OutputError(f"{out} is given as two outputs (also {seen[res]})", "give each output its own path")
        seen[res] = out
        for given, r in ins:
            if res == r or (out.exists() and _same_file(out, given)):
                raise OutputError(
                    f"{out} is also an input ({given}); hvg never writes over its inputs",
                    "choose another output path with -o",
                )
            if kind == "frames" and _inside(r, res):
                raise OutputError(
                    f"{out} holds an input ({given}); hvg never writes over its inputs", "choose another output folder"
                )
        if kind == "frames":
            if out.exists() and not out.is_dir():
                raise OutputError(f"{out} exists and is not a folder", "remove it or give another folder name")
            if out.is_dir() and any(out.iterdir()) and not is_frames_folder(out):
                raise OutputError(
                    f"{out} is a folder that is not empty and was not written by hvg",
                    "give a new or empty folder (hvg replaces only its own frame folders)",
                )
        elif out.is_dir():
            raise OutputError(f"{out} is a folder", "give a file name with a suffix, e.g. out.mp4")
