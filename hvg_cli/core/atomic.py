"""Atomic file writes: a temporary file beside the target, renamed into place only when complete."""

from __future__ import annotations

import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Iterator

from hvg_cli.core.errors import OutputError


@contextmanager
def atomic_file(path: str | os.PathLike, mode: str = "wb", encoding: str | None = None) -> Iterator[IO]:
    """Open a temporary file beside `path` for writing; on success it replaces `path`.

    On any failure the temporary file is removed and an existing file at `path` is left untouched;
    OSErrors (no space, no permission) become OutputError naming `path`.
    """
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    except OSError as e:
        raise OutputError(f"cannot write {path}: {e.strerror or e}", hint="choose a writable output folder with -o") from e
    try:
        with os.fdopen(fd, mode, encoding=encoding) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        mask = os.umask(0)
        os.umask(mask)
        os.chmod(tmp, 0o666 & ~mask)  # mkstemp makes 0600; give the file the usual permissions
        os.replace(tmp, path)
    except BaseException as e:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(e, OSError):
            raise OutputError(f"cannot write {path}: {e.strerror or e}", hint="check free disk space and permissions") from e
        raise


FRAMES_MARKER = ".hvg-frames"  # inside every PNG-frame folder hvg writes: "this folder is hvg's to replace"


def is_hvg_frames_folder(folder: Path) -> bool:
    """True for a folder that hvg wrote as PNG frames (it holds the marker and only PNGs besides)."""
    if not (folder / FRAMES_MARKER).is_file():
        return False
    return all(p.name == FRAMES_MARKER or (p.is_file() and p.suffix.lower() == ".png") for p in folder.iterdir())


def atomic_copy(src: Path, dst: Path) -> None:
    """Copy a finished file, or a folder of PNG frames, to `dst` atomically: staged beside `dst`, then renamed.

    A failure keeps any previous output at `dst`. A folder at `dst` is replaced only when it is empty or
    hvg's own frames (never a folder of the user's files); a copied folder gets the frames marker.
    OSErrors become OutputError naming `dst` and the reason.
    """
    dst = Path(dst)
    try:
        dst.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{dst.name}.tmp-", dir=dst.parent))
    except OSError as e:
        raise OutputError(f"cannot write {dst}: {e.strerror or e}", "choose another output path") from None
    try:
        staged = tmp / dst.name
        if src.is_dir():
            shutil.copytree(src, staged)
            (staged / FRAMES_MARKER).touch()
        else:
            shutil.copy2(src, staged)
        if dst.is_dir() and not dst.is_symlink():
            if any(dst.iterdir()) and not is_hvg_frames_folder(dst):
                raise OutputError(f"{dst} is a folder that is not empty and was not written by hvg",
                                  "give a new or empty folder")
            os.rename(dst, tmp / "old")
        os.replace(staged, dst)
    except OSError as e:
        raise OutputError(f"cannot write {dst}: {e.strerror or e}", "check free disk space and permissions") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
