"""The stage cache and the kinematics every room leans on."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from hvg_cli.body.kinematics import (
    axis_angle_to_matrix,
    forward_kinematics,
    matrix_to_axis_angle,
    rotation_between,
    unwrap_axis_angle,
)
from hvg_cli.body.skeleton import default_skeleton, skeleton_from_lengths
from hvg_cli.core.cache import StageCache, canonical_json, file_hash


@dataclass(frozen=True)
class _Settings:
    stride: int = 1
    smooth: float = 0.5


def test_cache_key_depends_on_content_not_path(tmp_path: Path) -> None:
    a, b, c = tmp_path / "a.bin", tmp_path / "b.bin", tmp_path / "c.bin"
    a.write_bytes(b"same")
    b.write_bytes(b"same")
    c.write_bytes(b"other")
    k = lambda p, s=_Settings(): StageCache.key("pose", 1, file_hash(p), s)  # noqa: E731
    assert k(a) == k(b)
    assert k(a) != k(c)
    assert k(a) != k(a, _Settings(stride=2))
    assert StageCache.key("pose", 1, file_hash(a)) != StageCache.key("pose", 2, file_hash(a))


def test_canonical_json_refuses_paths() -> None:
    with pytest.raises(TypeError):
        canonical_json({"video": Path("x.mp4")})


def test_cache_atomic_write_and_hit(tmp_path: Path) -> None:
    cache = StageCache(tmp_path)
    key = StageCache.key("demo", 1, "x")
    calls = []

    def produce(folder: Path) -> None:
        calls.append(1)
        (folder / "out.txt").write_text("hello")

    p1, hit1 = cache.get_or_compute(key, produce)
    p2, hit2 = cache.get_or_compute(key, produce)
    assert (hit1, hit2) == (False, True) and p1 == p2 and len(calls) == 1
    assert (p2 / "out.txt").read_text() == "hello"
    assert cache.info() == {
        "demo": {"entries": 1, "bytes": (p2 / "out.txt").stat().st_size + (p2 / ".complete").stat().st_size}
    }


def test_cache_failed_stage_leaves_nothing(tmp_path: Path) -> None:
    cache = StageCache(tmp_path)
    key = StageCache.key("demo", 1, "y")

    def produce(folder: Path) -> None:
        (folder / "half.txt").write_text("partial")
        raise ValueError("boom")

    with pytest.raises(ValueError):
        cache.get_or_compute(key, produce)
    assert cache.lookup(key) is None
    assert os.listdir(tmp_path / "demo") == []
    assert cache.clear() == 0


def test_disabled_cache_entry_leaves_no_folder(tmp_path: Path) -> None:
    cache = StageCache(tmp_path / "never", enabled=False)
    key = StageCache.key("demo", 1, "z")
    seen = []
    for _ in range(2):  # computed afresh every time, readable inside the block, removed after it
        with cache.entry(key, lambda folder: (folder / "out.txt").write_text("x")) as (folder, cached):
            assert not cached and (folder / "out.txt").read_text() == "x"
            seen.append(folder)
    assert not any(f.exists() for f in seen)
    assert not (tmp_path / "never").exists()


def test_axis_angle_round_trip() -> None:
    rng = np.random.default_rng(0)
    aa = rng.normal(size=(500, 3))
    aa *= rng.uniform(0, np.pi - 1e-3, size=(500, 1)) / np.linalg.norm(aa, axis=-1, keepdims=True)
    np.testing.assert_allclose(matrix_to_axis_angle(axis_angle_to_matrix(aa)), aa, atol=1e-9)


def test_rotation_between_maps_a_to_b() -> None:
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(200, 3)), rng.normal(size=(200, 3))
    b[0] = -a[0]  # opposite vectors
    out = (rotation_between(a, b) @ a[..., None])[..., 0]
    np.testing.assert_allclose(
        out / np.linalg.norm(out, axis=-1, keepdims=True), b / np.linalg.norm(b, axis=-1, keepdims=True), atol=1e-9
    )


def test_forward_kinematics_rest_pose_and_lengths() -> None:
    sk = default_skeleton()
    T = 3
    rots = np.broadcast_to(np.eye(3), (T, 24, 3, 3))
    trans = np.array([[0, 0.93, 0], [1, 0.93, 0], [0, 1, 2.0]])
    _, joints = forward_kinematics(rots, sk.offsets, sk.parents, trans)
    np.testing.assert_allclose(joints - trans[:, None], np.broadcast_to(sk.rest_joints, (T, 24, 3)), atol=1e-12)
    # a random pose keeps every bone length
    rng = np.random.default_rng(2)
    R = axis_angle_to_matrix(rng.normal(scale=0.6, size=(T, 24, 3)))
    _, joints = forward_kinematics(R, sk.offsets, sk.parents, trans)
    lengths = np.linalg.norm(joints[:, 1:] - joints[:, list(sk.parents[1:])], axis=-1)
    np.testing.assert_allclose(lengths, np.broadcast_to(sk.bone_lengths[1:], (T, 23)), atol=1e-12)
    sk2 = skeleton_from_lengths(sk.bone_lengths * 1.1)
    np.testing.assert_allclose(sk2.bone_lengths, sk.bone_lengths * 1.1, atol=1e-12)


def test_unwrap_axis_angle_removes_flips() -> None:
    angles = np.linspace(0.5, 3 * np.pi, 50)  # a steady spin about y, past pi
    aa = matrix_to_axis_angle(axis_angle_to_matrix(np.stack([np.zeros(50), angles, np.zeros(50)], -1)))
    assert np.abs(np.diff(aa, axis=0)).max() > 1.0  # raw track flips
    un = unwrap_axis_angle(aa)
    assert np.abs(np.diff(un, axis=0)).max() < 0.2
    np.testing.assert_allclose(axis_angle_to_matrix(un), axis_angle_to_matrix(aa), atol=1e-9)


def _race_worker(root: str, counter: str) -> str:
    """One process of the race below: compute the same entry; the work is counted in `counter`."""
    import time as _time

    from hvg_cli.core.cache import StageCache as _Cache

    def produce(folder: Path) -> None:
        with open(counter, "a") as f:
            f.write("x\n")
        _time.sleep(0.5)
        (folder / "value.txt").write_text("42")

    folder, _ = _Cache(root).get_or_compute(_Cache.key("race", 1, "same"), produce)
    return (folder / "value.txt").read_text()


def test_two_processes_computing_one_entry_do_the_work_once(tmp_path: Path) -> None:
    """Processes sharing a cache take a lock per entry: the second waits and reads the first one's result."""
    import multiprocessing as mp

    counter = tmp_path / "counter.txt"
    with mp.get_context("spawn").Pool(3) as pool:
        values = pool.starmap(_race_worker, [(str(tmp_path / "c"), str(counter))] * 3)
    assert values == ["42"] * 3
    assert counter.read_text().count("x") == 1
    assert StageCache(tmp_path / "c").info()["race"]["entries"] == 1
    assert not list((tmp_path / "c" / "race").glob(".lock-*")) and not list((tmp_path / "c" / "race").glob(".tmp-*"))
