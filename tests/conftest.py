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


@pytest.fixture()
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh stage cache for the test, also set as $HVG_CACHE_DIR for CLI runs."""
    d = tmp_path / "cache"
    monkeypatch.setenv("HVG_CACHE_DIR", str(d))
    return d


@pytest.fixture(scope="session")
def session_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A stage cache shared by the tests of one session, so the dance video is posed once."""
    return tmp_path_factory.mktemp("session-cache")
