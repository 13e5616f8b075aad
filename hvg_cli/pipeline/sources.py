"""Where `hvg prepare`'s sources come from: photo and video files, folders and .txt lists, and multi-view capture
folders (a folder holding transforms.json) told apart from monocular videos."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Hashable
from pathlib import Path
from typing import Any

import numpy as np

from hvg_cli.core.cache import file_hash
from hvg_cli.core.errors import BadInput
from hvg_cli.core.types import BoneMaps, CameraGrid

PHOTO_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp")
VIDEO_SUFFIXES = (".mp4", ".mov", ".mkv", ".avi", ".webm", ".m4v")


def listed_paths(txt: Path) -> list[Path]:
    """The paths a .txt list names: one a line, relative to the list's folder; blank lines and # comments skipped."""
    lines = [ln.strip() for ln in txt.read_text().splitlines()]
    return [txt.parent / ln for ln in lines if ln and not ln.startswith("#")]


def expand_files(sources, suffixes: tuple[str, ...], what: str) -> list[Path]:
    """Files from files, folders (their files with one of `suffixes`, sorted) and .txt lists (one path a line,
    # comments, relative to the list); `what` names them in the error ("photo", "video")."""
    out: list[Path] = []
    for s in sources:
        p = Path(s).expanduser()
        if p.is_dir():
            out += sorted(q for q in p.iterdir() if q.suffix.lower() in suffixes)
        elif p.suffix.lower() == ".txt" and p.is_file():
            out += expand_files(listed_paths(p), suffixes, what)
        elif p.is_file():
            out.append(p)
        else:
            raise BadInput(f"{p}: no such file or folder", f"give {what} files, folders of {what}s or a .txt list")
    return out


def expand_photos(sources) -> list[Path]:
    """Photos from files, folders (their images, sorted) and .txt lists; BadInput when there are none."""
    out = expand_files(sources, PHOTO_SUFFIXES, "photo")
    if not out:
        raise BadInput("no photos found in " + ", ".join(map(str, sources)), "give .jpg/.png files or a folder of them")
    return out


def expand_videos(sources) -> list[Path]:
    """Videos from files, folders (their videos, sorted) and .txt lists (one path a line, # comments)."""
    return expand_files(sources, VIDEO_SUFFIXES, "video")


def file_key(path: Path) -> str:
    """The first 12 hex digits of a source file's sha256 (core.cache.file_hash, memoised): part of clip ids."""
    return file_hash(path)[:12]


def expand_sources(sources) -> tuple[list[Path], list[Path]]:
    """(captures, videos) from `hvg prepare`'s positional sources.

    A folder holding transforms.json is one multi-view capture; a folder whose sub-folders hold one is a folder
    of captures (videos lying directly in it are monocular); any other folder, file or .txt list (one path a
    line, # comments) is read as by expand_videos."""
    from hvg_cli.cameras.capture import TRANSFORMS

    captures: list[Path] = []
    videos: list[Path] = []
    for s in sources:
        p = Path(s).expanduser()
        if p.is_dir() and (p / TRANSFORMS).is_file():
            captures.append(p)
        elif p.is_dir():
            captures += sorted(q for q in p.iterdir() if q.is_dir() and (q / TRANSFORMS).is_file())
            videos += sorted(q for q in p.iterdir() if q.is_file() and q.suffix.lower() in VIDEO_SUFFIXES)
        elif p.suffix.lower() == ".txt" and p.is_file():
            more_c, more_v = expand_sources(listed_paths(p))
            captures += more_c
            videos += more_v
        else:
            videos += expand_videos([p])
    return captures, videos


class LastBuilt:
    """The value built for the last key asked for: a source's clip set (seconds to build, every frame of it) stays in
    memory while its windows are written, one source at a time. The previous value is dropped before a build, and
    a build that raises leaves nothing behind."""

    def __init__(self) -> None:
        self._key: Hashable | None = None
        self._value: Any = None

    def get(self, key: Hashable, build: Callable[[], Any]) -> Any:
        if self._key != key:  # (a failed build left no key)
            self._key, self._value = None, None
            self._value = build()
            self._key = key
        return self._value


def slice_clip(render, frames: tuple[int, ...]) -> tuple[np.ndarray, BoneMaps, CameraGrid]:
    """(frames [V, t, H, W, 3], BoneMaps [V, t, ...], CameraGrid [V, t]) of the window's track frames.

    render: anything with frames [V, T, H, W, 3], maps (BoneMaps [V, T]) and grid (CameraGrid [V, T]): a synthetic
    render, a monocular or a multi-view clip set."""
    idx = list(frames)
    m = render.maps
    maps = BoneMaps(
        semantic=m.semantic[:, idx],
        normal=m.normal[:, idx],
        depth=m.depth[:, idx],
        mask=m.mask[:, idx],
        label=m.label[:, idx],
    )
    grid = dataclasses.replace(
        render.grid, K=render.grid.K[:, idx], world_to_cam=render.grid.world_to_cam[:, idx], closed=False
    )
    return render.frames[:, idx], maps, grid
