"""Shared fixtures: the real photos and video in ../shared/data, a private cache per test."""

from __future__ import annotations

from pathlib import Path

import pytest

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture(scope="session")
def data_dir() -> Path:
    if not DATA.exists():
        raise FileNotFoundError(f"test data not found at {DATA}: clone the project beside ../shared")
    return DATA


@pytest.fixture(scope="session", autouse=True)
def _private_default_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Nothing a test runs writes into the user's ~/.cache/hvg (the file-hash memo included)."""
    import os

    os.environ.setdefault("HVG_CACHE_DIR", str(tmp_path_factory.mktemp("default-cache")))


@pytest.fixture()
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh stage cache for the test, also set as $HVG_CACHE_DIR for CLI runs."""
    d = tmp_path / "cache"
    monkeypatch.setenv("HVG_CACHE_DIR", str(d))
    return d


def session_cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The one stage cache shared by every test of a session that poses the dance video (MediaPipe runs over
    the 288 frames once per session, whichever test module asks first)."""
    d = tmp_path_factory.getbasetemp() / "session-cache"
    d.mkdir(exist_ok=True)
    return d


@pytest.fixture(scope="session")
def session_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`session_cache_dir` as a fixture."""
    return session_cache_dir(tmp_path_factory)
