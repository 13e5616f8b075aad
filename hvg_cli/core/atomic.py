"""Atomic writes: everything is written under a temporary name beside the target and renamed into place
only when complete, so a failure or a kill never leaves a half output nor destroys a previous one.

- `atomic_file(path)`: an open temporary file (for Python writers: npz, json, bvh, png).
- `atomic_path(path)`: a temporary file *name* with the target's suffix (for writers that take a path,
  such as ffmpeg).
- `atomic_folder(path, previous_output=...)`: a temporary folder (a folder of PNG frames); it replaces
  an existing folder only when that folder is empty or `previous_output` recognises it as an earlier
  output of the same writer, never a folder of someone else's files.
- `atomic_copy(src, dst)`: a finished file or folder (e.g. from the stage cache) copied to dst atomically.

Every OSError on the way (no space, no permission, a folder where a file should go) becomes an
OutputError naming the target and the reason. What is written gets the usual permissions (0666 / 0777
less the process umask), not the 0600 / 0700 of `tempfile`.
"""

from __future__ import annotations

import errno
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from hvg_cli.core.errors import OutputError

_DISK_HINT = "check free disk space and permissions, or choose another output path"


def current_umask() -> int:
    """The process umask, read without changing it where the OS allows (Linux /proc), else set and restored."""
    try:
        with open("/proc/self/status", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def os_reason(e: BaseException) -> str:
    """Why an OSError happened, in words: its strerror, the first reason of a shutil.Error, or its text."""
    if isinstance(e, shutil.Error) and e.args and isinstance(e.args[0], list) and e.args[0]:
        first = e.args[0][0]  # (src, dst, reason) from copytree
        return str(first[-1]) if isinstance(first, tuple) else str(first)
    if isinstance(e, OSError) and e.strerror:
        return e.strerror
    if isinstance(e, OSError) and e.errno:
        return os.strerror(e.errno)
    return str(e) or type(e).__name__


def output_error(path: str | os.PathLike, e: BaseException, hint: str = _DISK_HINT) -> OutputError:
    """OutputError "cannot write PATH: REASON" for an OSError met while writing PATH."""
    return OutputError(f"cannot write {path}: {os_reason(e)}", hint)


def _parent(path: Path) -> Path:
    return path.parent if str(path.parent) else Path(".")


def _make_parent(path: Path) -> Path:
    folder = _parent(path)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise OutputError(f"cannot create the folder {folder} for {path}: {os_reason(e)}", _DISK_HINT) from None
    return folder


def _unlink_quietly(p: Path) -> None:
    try:
        p.unlink()
    except OSError:
        pass


@contextmanager
def atomic_path(path: str | os.PathLike, fsync: bool = True) -> Iterator[Path]:
    """A temporary file name beside `path` (same suffix, so a writer such as ffmpeg picks the format from it).

    The writer fills the file; on success it gets the umask's permissions and replaces `path`.
    On any failure the temporary file is removed and an existing file at `path` is left untouched.
    OSErrors (creating, finishing or renaming) become OutputError naming `path`.
    """
    path = Path(path)
    folder = _make_parent(path)
    if path.is_dir() and not path.is_symlink():
        raise OutputError(f"cannot write {path}: it is a folder", "give a file name, or remove the folder")
    try:
        fd, name = tempfile.mkstemp(prefix=f".{path.name}.tmp-", suffix=path.suffix, dir=folder)
        os.close(fd)
    except OSError as e:
        raise output_error(path, e) from None
    tmp = Path(name)
    try:
        yield tmp
        if fsync:
            fd = os.open(tmp, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        os.chmod(tmp, 0o666 & ~current_umask())  # mkstemp made it 0600
        os.replace(tmp, path)
    except OSError as e:
        _unlink_quietly(tmp)
        raise output_error(path, e) from None
    except BaseException:
        _unlink_quietly(tmp)
        raise


@contextmanager
def atomic_file(path: str | os.PathLike, mode: str = "wb", encoding: str | None = None) -> Iterator[IO]:
    """Open a temporary file beside `path` for writing; on success it replaces `path`.

    On any failure the temporary file is removed and an existing file at `path` is left untouched;
    OSErrors (no space, no permission) become OutputError naming `path`.
    """
    path = Path(path)
    with atomic_path(path, fsync=False) as tmp:  # fsynced below, through the open file
        try:
            with open(tmp, mode, encoding=encoding) as f:
                yield f
                f.flush()
                os.fsync(f.fileno())
        except OSError as e:
            raise output_error(path, e) from None


def _is_empty_dir(path: Path) -> bool:
    with os.scandir(path) as it:
        return next(it, None) is None


def _check_folder_target(path: Path, previous_output: Callable[[Path], bool] | None) -> None:
    """OutputError unless `path` is free, an empty folder, or a folder `previous_output` recognises."""
    if path.is_symlink() or (path.exists() and not path.is_dir()):
        raise OutputError(
            f"cannot write the folder {path}: {path} exists and is not a folder", "remove it or give another name"
        )
    if path.is_dir() and not _is_empty_dir(path) and not (previous_output and previous_output(path)):
        raise OutputError(
            f"cannot write the folder {path}: it holds files hvg did not write",
            "give a new or empty folder, or move those files away",
        )


def _swap_in(tmp: Path, path: Path, previous_output: Callable[[Path], bool] | None) -> None:
    """Rename the finished folder `tmp` to `path`; a previous output there is moved aside and then removed."""
    _check_folder_target(path, previous_output)
    try:
        os.rename(tmp, path)  # atomic; POSIX lets a folder replace an empty one
        return
    except OSError as e:
        if e.errno not in (errno.ENOTEMPTY, errno.EEXIST):
            raise
    # `path` holds a previous output (checked above): move it aside under a fresh name, swap, remove it
    old = Path(tempfile.mkdtemp(prefix=f".{path.name}.old-", dir=_parent(path)))
    os.rename(path, old)  # onto the empty placeholder
    try:
        os.rename(tmp, path)
    except OSError:
        os.rename(old, path)  # put the previous output back
        raise
    if previous_output is not None and previous_output(old):
        shutil.rmtree(old, ignore_errors=True)
    # else someone added files in the moment between the check and the swap: keep them (in `old`)


@contextmanager
def atomic_folder(path: str | os.PathLike, previous_output: Callable[[Path], bool] | None = None) -> Iterator[Path]:
    """A temporary folder beside `path` to fill; on success it is renamed to `path`.

    An existing `path` is replaced only when it is an empty folder or `previous_output(path)` is True
    (an earlier output of the same writer, e.g. a folder holding only PNG frames); any other existing
    folder or file raises OutputError before the body runs, and again at the end if one appeared
    meanwhile: nothing hvg did not write is ever deleted. On failure the temporary folder is removed
    and `path` is untouched. The folder gets 0777 less the umask (mkdtemp makes 0700).
    """
    path = Path(path)
    folder = _make_parent(path)
    _check_folder_target(path, previous_output)
    try:
        tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.tmp-", dir=folder))
        os.chmod(tmp, 0o777 & ~current_umask())
    except OSError as e:
        raise output_error(path, e) from None
    try:
        yield tmp
        _swap_in(tmp, path, previous_output)
    except OSError as e:
        shutil.rmtree(tmp, ignore_errors=True)
        raise output_error(path, e) from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def atomic_copy(
    src: str | os.PathLike, dst: str | os.PathLike, previous_output: Callable[[Path], bool] | None = None
) -> Path:
    """Copy a finished file or folder `src` to `dst` atomically; return dst.

    Files get the umask's permissions whatever src's are (a cache entry may be private). A folder is
    copied through `atomic_folder(dst, previous_output)`, so it never replaces a folder of other files.
    Raises OutputError naming dst for every OSError (a missing src included).
    """
    src, dst = Path(src), Path(dst)
    if src.is_dir():
        with atomic_folder(dst, previous_output) as tmp:
            for root, dirs, files in os.walk(src):
                rel = Path(root).relative_to(src)
                for d in dirs:
                    (tmp / rel / d).mkdir()
                for f in files:
                    shutil.copyfile(Path(root) / f, tmp / rel / f)  # new files: umask permissions
        return dst
    with atomic_path(dst) as tmp:
        shutil.copyfile(src, tmp)
    return dst
