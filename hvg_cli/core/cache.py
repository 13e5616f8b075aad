"""The stage cache: content-hash keys, atomic writes.

A key is made of the stage name, the stage's version number, the content hash of its inputs
(bytes of files, never paths or mtimes) and its canonical settings. An entry is a folder
`<root>/<stage>/<digest>/` written by the stage into a temporary folder that is renamed into
place, so a killed run never leaves a half entry.
"""

from __future__ import annotations

import dataclasses
import enum
import errno
import fcntl
import hashlib
import json
import os
import re
import shutil
import socket
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from hvg_cli.core.errors import BadInput, OutputError

ENV_VAR = "HVG_CACHE_DIR"
_TMP_PREFIX = ".tmp-"
_LOCK_PREFIX = ".lock-"
_STAGE_NAME = re.compile(r"[a-z][a-z0-9_]*")
_ENTRY_NAME = re.compile(r"[0-9a-f]{64}(\.partial)?")


def _tmp_prefix() -> str:
    """Temporary entry folders carry their writer's host and pid, so an orphan of a killed run can be told
    from the work of a live process."""
    return f"{_TMP_PREFIX}{socket.gethostname()}-{os.getpid()}-"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists, owned by someone else
        return True
    return True


def sweep_orphans(stage_dir: Path) -> int:
    """Remove temporary folders left in `stage_dir` by killed runs of this host; return how many.

    A folder is an orphan when its writer (host and pid in its name) is this host and that process is gone.
    """
    host = socket.gethostname()
    removed = 0
    for p in stage_dir.glob(_TMP_PREFIX + "*"):
        rest = p.name[len(_TMP_PREFIX) :]
        h, _, tail = rest.rpartition("-")  # "<host>-<pid>-<random>": random has no '-'
        h, _, pid = h.rpartition("-")
        if h == host and pid.isdigit() and not _pid_alive(int(pid)):
            shutil.rmtree(p, ignore_errors=True)
            removed += 1
    return removed


_FULL = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)  # no room: whatever was being written, it was the entry
_DENIED = (errno.EACCES, errno.EPERM, errno.EROFS)  # counted as the cache's only for paths under its root


def _under(filename: object, root: Path) -> bool:
    if not isinstance(filename, (str, os.PathLike)):  # OSError.filename: str, bytes, an fd number or None
        return False
    try:
        Path(filename).resolve().relative_to(root.resolve())
        return True
    except (TypeError, ValueError, OSError):
        return False


def _cache_write_error(where: Path, e: OSError) -> OutputError:
    return OutputError(
        f"cannot write the stage cache under {where}: {e.strerror or e}",
        "free some disk space, point --cache-dir (or $HVG_CACHE_DIR) elsewhere, or run with --no-cache",
    )


@contextmanager
def _entry_lock(path: Path) -> Iterator[None]:
    """An exclusive lock on `path` across processes (flock), removed when released.

    The file is unlinked by its holder before release, so a waiter may wake holding a lock on a file that is no
    longer at `path`: it then takes the lock again on the current file.
    """
    while True:
        try:
            f = open(path, "a")
        except OSError as e:
            raise _cache_write_error(path.parent, e) from None
        fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        try:
            same = os.fstat(f.fileno()).st_ino == os.stat(path).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        f.close()
    try:
        yield
    finally:
        try:
            path.unlink(missing_ok=True)
        finally:
            f.close()


def default_cache_dir() -> Path:
    """`$HVG_CACHE_DIR`, else `$XDG_CACHE_HOME/hvg`, else `~/.cache/hvg`."""
    if os.environ.get(ENV_VAR):
        return Path(os.environ[ENV_VAR]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "hvg"


HASH_MEMO_FILE = "file-hashes.json"
HASH_MEMO_MAX = 4096  # entries kept in the memo file (oldest dropped first)
RACY_NS = 2_000_000_000  # a file modified this recently (ns) is hashed but not remembered
_HASH_MEMO: dict[str, str] = {}


def _memo_key(p: Path, st: os.stat_result) -> str:
    return f"{p.resolve()}|{st.st_size}|{st.st_mtime_ns}"


def _read_memo(memo: Path) -> dict[str, str]:
    try:
        data = json.loads(memo.read_text())
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def _remember(memo: Path, key: str, digest: str) -> None:
    """Add one entry to the memo file: read it again (other processes may have added theirs), add,
    drop the oldest beyond HASH_MEMO_MAX, write atomically. A memo that cannot be written is no error."""
    from hvg_cli.core.atomic import atomic_file
    from hvg_cli.core.errors import OutputError

    entries = _read_memo(memo)
    entries.pop(key, None)
    entries[key] = digest
    keep = dict(list(entries.items())[-HASH_MEMO_MAX:])
    try:
        with atomic_file(memo, "w", encoding="utf-8") as f:
            json.dump(keep, f, separators=(",", ":"))
    except OutputError:
        pass


def file_hash(path: str | os.PathLike, memo: str | os.PathLike | None = None) -> str:
    """sha256 of a file's bytes, hashed once and remembered by (resolved path, size, mtime_ns).

    The memo lives in this process and in a small JSON file shared by processes (`memo`, default
    `<default_cache_dir()>/file-hashes.json`), so a multi-GB weights file is read once per change, not
    once per run. A file modified less than RACY_NS ago is hashed but not remembered: it may still be
    changing within the file system's timestamp resolution (git's "racily clean" rule), so a later
    change with the same size and mtime could otherwise hide behind the memo.
    """
    p = Path(path)
    st = p.stat()
    key = _memo_key(p, st)
    if key in _HASH_MEMO:
        return _HASH_MEMO[key]
    memo_path = Path(memo) if memo is not None else default_cache_dir() / HASH_MEMO_FILE
    digest = _read_memo(memo_path).get(key)
    if digest is None:
        h = hashlib.sha256()
        with open(p, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 22), b""):
                h.update(chunk)
        digest = h.hexdigest()
        if time.time_ns() - st.st_mtime_ns < RACY_NS or p.stat().st_mtime_ns != st.st_mtime_ns:
            return digest  # too fresh (or changed while read) to vouch for
        _remember(memo_path, key, digest)
    _HASH_MEMO[key] = digest
    return digest


def array_hash(*arrays: np.ndarray) -> str:
    """sha256 of arrays' dtypes, shapes and bytes."""
    h = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(f"{a.dtype.str}{a.shape}".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def _canonical(obj: Any) -> Any:
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {
            "__type__": type(obj).__name__,
            **{f.name: _canonical(getattr(obj, f.name)) for f in dataclasses.fields(obj)},
        }
    if isinstance(obj, dict):
        return {str(k): _canonical(v) for k, v in sorted(obj.items(), key=lambda kv: str(kv[0]))}
    if isinstance(obj, (list, tuple)):
        return [_canonical(v) for v in obj]
    if isinstance(obj, Fraction):
        return f"{obj.numerator}/{obj.denominator}"
    if isinstance(obj, float):
        return repr(obj)
    if isinstance(obj, enum.Enum):
        return obj.value
    if isinstance(obj, Path):
        raise TypeError("paths never enter a cache key: hash the file's bytes with file_hash()")
    if isinstance(obj, np.ndarray):
        return array_hash(obj)
    if isinstance(obj, (str, int, bool)) or obj is None:
        return obj
    raise TypeError(f"cannot put {type(obj).__name__} into a cache key")


def canonical_json(obj: Any) -> str:
    """Settings as a canonical JSON string (sorted keys, exact floats, dataclasses by field)."""
    return json.dumps(_canonical(obj), sort_keys=True, separators=(",", ":"))


@dataclass(frozen=True)
class StageKey:
    stage: str
    digest: str

    @property
    def short(self) -> str:
        return f"{self.stage}/{self.digest[:12]}"


class StageCache:
    """Folders of stage results under `root`, addressed by `StageKey`."""

    def __init__(self, root: str | os.PathLike | None = None, enabled: bool = True):
        self.root = Path(root).expanduser() if root is not None else default_cache_dir()
        self.enabled = enabled
        self.hits = 0  # stage results served from the cache by this instance
        self.computed = 0  # stage results this instance computed and stored

    # keys -------------------------------------------------------------------------------
    @staticmethod
    def key(stage: str, version: int, *parts: Any) -> StageKey:
        """Key of a stage result: name, version, input hashes and settings (all canonicalised)."""
        payload = canonical_json({"stage": stage, "version": version, "parts": list(parts)})
        return StageKey(stage, hashlib.sha256(payload.encode()).hexdigest())

    def path(self, key: StageKey) -> Path:
        return self.root / key.stage / key.digest

    def lookup(self, key: StageKey) -> Path | None:
        p = self.path(key)
        if self.enabled and (p / ".complete").exists():
            self.hits += 1
            return p
        return None

    # writing ----------------------------------------------------------------------------
    def get_or_compute(self, key: StageKey, produce: Callable[[Path], None]) -> tuple[Path, bool]:
        """Return (entry folder, was_cached). `produce(folder)` writes the entry's files.

        If `produce` raises, nothing is left behind. With the cache disabled, the entry is
        produced into a fresh temporary folder that the caller must remove (`entry` does it).
        """
        hit = self.lookup(key)
        if hit is not None:
            return hit, True
        if not self.enabled:
            tmp = Path(tempfile.mkdtemp(prefix="hvg-nocache-"))
            produce(tmp)
            return tmp, False
        stage_dir = self.root / key.stage
        try:
            stage_dir.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise _cache_write_error(stage_dir, e) from None
        with _entry_lock(stage_dir / f"{_LOCK_PREFIX}{key.digest}"):
            # one writer per entry across processes: the others wait here, then find the entry done
            hit = self.lookup(key)
            if hit is not None:
                return hit, True
            return self._produce_entry(key, stage_dir, produce)

    def _produce_entry(self, key: StageKey, stage_dir: Path, produce: Callable[[Path], None]) -> tuple[Path, bool]:
        """Write an entry into a temporary folder and rename it into place (the caller holds the entry's lock)."""
        try:
            sweep_orphans(stage_dir)
            tmp = Path(tempfile.mkdtemp(prefix=_tmp_prefix(), dir=stage_dir))
        except OSError as e:
            raise _cache_write_error(stage_dir, e) from None
        try:
            try:
                produce(tmp)
                (tmp / ".complete").write_text(json.dumps({"created": time.time()}))
                self.computed += 1
            except OSError as e:
                if e.errno in _FULL or (e.errno in _DENIED and _under(e.filename, self.root)):
                    raise _cache_write_error(stage_dir, e) from None
                raise
            final = self.path(key)
            try:
                os.rename(tmp, final)
            except OSError:  # another process finished the same entry first: keep theirs
                if not (final / ".complete").exists():
                    shutil.rmtree(final, ignore_errors=True)
                    os.rename(tmp, final)
            return final, False
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)

    @contextmanager
    def entry(self, key: StageKey, produce: Callable[[Path], None]) -> Iterator[tuple[Path, bool]]:
        """`get_or_compute` for reading: yields (entry folder, was_cached) and, with the cache disabled,
        removes the temporary folder once the caller has read it."""
        folder, cached = self.get_or_compute(key, produce)
        try:
            yield folder, cached
        finally:
            if not self.enabled:
                shutil.rmtree(folder, ignore_errors=True)

    def clear_entry(self, key: StageKey) -> None:
        """Remove one entry (if present)."""
        p = self.path(key)
        if p.is_dir():
            shutil.rmtree(p, ignore_errors=True)

    def scratch(self, key: StageKey) -> Path:
        """A persistent folder for a stage's partial state (e.g. a resumable sampler), keyed like an entry."""
        p = self.root / key.stage / (key.digest + ".partial")
        p.mkdir(parents=True, exist_ok=True)
        return p

    # housekeeping -----------------------------------------------------------------------
    def info(self) -> dict[str, dict[str, int]]:
        """{stage: {"entries": n, "bytes": size}} for every stage folder under the root."""
        out: dict[str, dict[str, int]] = {}
        if not self.root.exists():
            return out
        for stage_dir in self._stage_dirs():
            entries = [
                p
                for p in stage_dir.iterdir()
                if _ENTRY_NAME.fullmatch(p.name) and p.is_dir() and (p / ".complete").exists()
            ]
            size = sum(f.stat().st_size for e in entries for f in e.rglob("*") if f.is_file())
            out[stage_dir.name] = {"entries": len(entries), "bytes": size}
        return out

    def _stage_dirs(self, stage: str | None = None) -> list[Path]:
        """The stage folders under the root (all of them, or the one named), never anything else."""
        if stage is not None and not _STAGE_NAME.fullmatch(stage):
            raise BadInput(f"{stage!r} is not a stage name", "see `hvg cache info` for the stages")
        if not self.root.is_dir():
            return []
        if stage is not None:
            d = self.root / stage
            return [d] if d.is_dir() and not d.is_symlink() else []
        return sorted(
            p for p in self.root.iterdir() if _STAGE_NAME.fullmatch(p.name) and p.is_dir() and not p.is_symlink()
        )

    def clear(self, stage: str | None = None) -> int:
        """Remove every entry (or those of one stage); return how many finished entries were removed.

        Only what the cache wrote goes: entry folders named by their digest, resumable `.partial` states and
        temporary folders, inside stage folders. Anything else under the root (a user's files, if the cache
        folder was pointed at a folder in use) stays, and so does the stage folder that holds it.
        """
        removed = 0
        for stage_dir in self._stage_dirs(stage):
            for p in list(stage_dir.iterdir()):
                if p.is_symlink() or not p.is_dir():
                    continue
                if _ENTRY_NAME.fullmatch(p.name):
                    removed += int((p / ".complete").exists())
                    shutil.rmtree(p)
                elif p.name.startswith(_TMP_PREFIX):
                    shutil.rmtree(p, ignore_errors=True)
            for p in stage_dir.glob(_LOCK_PREFIX + "*"):
                if p.is_file() and _ENTRY_NAME.fullmatch(p.name[len(_LOCK_PREFIX) :]):
                    p.unlink(missing_ok=True)
            try:
                stage_dir.rmdir()  # only when nothing else is left in it
            except OSError:
                pass
        return removed
