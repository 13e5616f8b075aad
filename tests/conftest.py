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


PREVIEW_PHOTOS = ("photo_woman_street.jpg", "photo_woman_studio.jpg")


@pytest.fixture(scope="session")
def real(data_dir: Path) -> dict:
    """{name: (Subject, PreviewModel)} of both shared photos, built once per session (several preview test
    modules look at them from every side; each build costs seconds)."""
    from hvg_cli.backends.preview.render import build_preview_model
    from hvg_cli.core.settings import SubjectSettings
    from hvg_cli.io.image import read_image
    from hvg_cli.pipeline import compute_subject

    out = {}
    for name in PREVIEW_PHOTOS:
        subject, _ = compute_subject(read_image(data_dir / name), name, name, SubjectSettings())
        out[name] = (subject, build_preview_model(subject))
    return out


@pytest.fixture
def one_torch_thread():
    """The machine is shared: one torch thread is faster than two fighting for a core."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
