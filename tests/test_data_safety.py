"""Issue 8's data-loss items: hvg never writes over an input, never empties a folder it did not write, and
`hvg cache clear` never reaches outside the cache. Each test failed on the code before its fix."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from hvg_cli.cli.main import app
from hvg_cli.core.cache import StageCache

runner = CliRunner()


def _digest(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


def _hvg(*args: object, cache: Path):
    return runner.invoke(app, [*map(str, args), "--cache-dir", str(cache)])


@pytest.fixture()
def inputs(data_dir: Path, tmp_path: Path) -> tuple[Path, Path]:
    """Private copies of the shared photo and dance video (the tests try to overwrite them)."""
    photo = tmp_path / "photo.jpg"
    video = tmp_path / "dance.mp4"
    shutil.copy(data_dir / "photo_woman_street.jpg", photo)
    shutil.copy(data_dir / "dance_red_skirt.mp4", video)
    return photo, video


@pytest.mark.parametrize("target", ["photo", "video"])
@pytest.mark.parametrize("command", ["animate", "bonemap"])
def test_output_equal_to_an_input_is_refused(
    inputs: tuple[Path, Path], cache_dir: Path, target: str, command: str
) -> None:
    photo, video = inputs
    before = {p: _digest(p) for p in inputs}
    out = photo if target == "photo" else video
    # a different spelling of the same path (relative parts) must be caught too
    spelled = out.parent / "." / out.name
    r = _hvg(
        command,
        photo,
        "--motion",
        video,
        "--frames",
        "2",
        "--resolution",
        "64",
        "-o",
        spelled,
        "--quiet",
        cache=cache_dir,
    )
    assert r.exit_code == 6, r.output
    assert "input" in r.output and "Traceback" not in r.output
    assert len(r.output.strip().splitlines()) == 1
    assert {p: _digest(p) for p in inputs} == before
    assert not cache_dir.exists() or not any(cache_dir.rglob("*.npz")), "refused before any work"


def test_output_hard_link_to_an_input_is_refused(inputs: tuple[Path, Path], tmp_path: Path, cache_dir: Path) -> None:
    photo, video = inputs
    link = tmp_path / "other-name.mp4"
    link.hardlink_to(video)
    before = _digest(video)
    r = _hvg(
        "animate",
        photo,
        "--motion",
        video,
        "--frames",
        "2",
        "--resolution",
        "64",
        "-o",
        link,
        "--quiet",
        cache=cache_dir,
    )
    assert r.exit_code == 6, r.output
    assert _digest(video) == before


def test_pose_output_equal_to_its_source_is_refused(inputs: tuple[Path, Path], tmp_path: Path, cache_dir: Path) -> None:
    _, video = inputs
    motion = tmp_path / "m.npz"
    assert _hvg("pose", "wave", "-o", motion, "--quiet", cache=cache_dir).exit_code == 0
    before = _digest(motion)
    r = _hvg("pose", motion, "-o", motion, "--quiet", cache=cache_dir)
    assert r.exit_code == 6, r.output
    assert _digest(motion) == before
    before_video = _digest(video)
    r = _hvg("pose", video, "-o", tmp_path / "x.npz", "--preview", video, "--quiet", cache=cache_dir)
    assert r.exit_code == 6, r.output
    assert _digest(video) == before_video


def test_non_empty_folder_that_hvg_did_not_write_is_kept(
    inputs: tuple[Path, Path], tmp_path: Path, cache_dir: Path
) -> None:
    photo, _ = inputs
    frames = tmp_path / "myframes"
    frames.mkdir()
    (frames / "holiday.png").write_bytes(b"not hvg's")
    (frames / "notes.txt").write_text("mine")
    r = _hvg(
        "animate",
        photo,
        "--motion",
        "wave",
        "--frames",
        "2",
        "--resolution",
        "64",
        "-o",
        frames,
        "--quiet",
        cache=cache_dir,
    )
    assert r.exit_code == 6, r.output
    assert "not empty" in r.output
    assert sorted(p.name for p in frames.iterdir()) == ["holiday.png", "notes.txt"]
    assert (frames / "notes.txt").read_text() == "mine"


def test_frames_folder_hvg_wrote_is_replaced_on_rerun(
    inputs: tuple[Path, Path], tmp_path: Path, cache_dir: Path
) -> None:
    """An empty folder or hvg's own earlier PNG output is fine to (re)write."""
    photo, _ = inputs
    frames = tmp_path / "frames"
    frames.mkdir()  # empty: fine
    args = ("animate", photo, "--motion", "wave", "--frames", "2", "--resolution", "64", "-o", frames, "--quiet")
    assert _hvg(*args, cache=cache_dir).exit_code == 0
    first = sorted(p.name for p in frames.iterdir() if p.suffix == ".png")
    assert len(first) == 2
    r = _hvg(*args[:-3], "--frames", "3", "-o", frames, "--quiet", cache=cache_dir)
    assert r.exit_code == 0, r.output
    assert len([p for p in frames.iterdir() if p.suffix == ".png"]) == 3


def _cache_with_entries(root: Path) -> StageCache:
    cache = StageCache(root)
    for stage in ("subject", "render"):
        key = cache.key(stage, 1, stage)
        cache.get_or_compute(key, lambda folder: (folder / "x.bin").write_bytes(b"1"))
    return cache


@pytest.mark.parametrize("stage", ["..", "/", "../..", "subject/..", ".", "bogus"])
def test_cache_clear_rejects_what_is_not_a_stage(tmp_path: Path, stage: str) -> None:
    root = tmp_path / "area" / "cache"
    _cache_with_entries(root)
    precious = tmp_path / "area" / "precious.txt"
    precious.write_text("keep me")
    r = runner.invoke(app, ["cache", "clear", "--stage", stage, "--cache-dir", str(root)])
    assert r.exit_code == 2, r.output
    assert precious.read_text() == "keep me"
    assert StageCache(root).info()["subject"]["entries"] == 1


def test_cache_clear_removes_only_cache_entries(tmp_path: Path) -> None:
    """A cache folder pointed at a folder holding other things: clear removes entries, nothing else."""
    root = tmp_path / "shared-folder"
    (root / "photos").mkdir(parents=True)
    (root / "photos" / "me.jpg").write_bytes(b"jpeg")
    cache = _cache_with_entries(root)
    assert cache.clear("subject") == 1
    assert cache.info().get("subject", {"entries": 0})["entries"] == 0 and cache.info()["render"]["entries"] == 1
    assert cache.clear() == 1
    assert (root / "photos" / "me.jpg").read_bytes() == b"jpeg"


def test_library_clear_refuses_a_path_as_stage(tmp_path: Path) -> None:
    from hvg_cli.core.errors import BadInput

    cache = _cache_with_entries(tmp_path / "c")
    with pytest.raises(BadInput):
        cache.clear("..")
    with pytest.raises(BadInput):
        cache.clear("/")


def test_orphaned_temporary_folders_of_killed_runs_are_swept(tmp_path: Path) -> None:
    """A run killed while writing an entry leaves `.tmp-<host>-<pid>-*`; the next write to that stage removes
    it, and a live process's folder is left alone."""
    import os
    import socket
    import subprocess
    import sys

    cache = _cache_with_entries(tmp_path / "c")
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stage_dir = cache.root / "subject"
    orphan = stage_dir / f".tmp-{socket.gethostname()}-{dead.pid}-abc123"
    live = stage_dir / f".tmp-{socket.gethostname()}-{os.getpid()}-def456"
    for d in (orphan, live):
        d.mkdir()
        (d / "half.npz").write_bytes(b"x")
    cache.get_or_compute(cache.key("subject", 1, "another"), lambda f: (f / "y.bin").write_bytes(b"2"))
    assert not orphan.exists() and live.exists()
    assert cache.info()["subject"]["entries"] == 2
