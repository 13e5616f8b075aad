"""The render cache's key holds every setting that changes the pictures (issue 10: `--sampling onepass` after a
progressive run returned the progressive video from the cache)."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from hvg_cli.backends.diffusion.weights import init_tiny
from hvg_cli.cli.main import app


def _invoke(data_dir: Path, out: Path, cache: Path, *args: str) -> dict:
    """`hvg animate` of the studio photo with `args`, its --json result."""
    r = CliRunner().invoke(
        app,
        [
            "animate",
            str(data_dir / "photo_woman_studio.jpg"),
            *args,
            "-o",
            str(out),
            "--cache-dir",
            str(cache),
            "--json",
            "--quiet",
        ],
    )
    assert r.exit_code == 0, r.output
    return json.loads(r.stdout)


def _animate(data_dir: Path, weights: Path, out: Path, cache: Path, *extra: str) -> dict:
    return _invoke(
        data_dir,
        out,
        cache,
        *("--motion", "wave", "--orbit", "90", "--views", "2", "--grid", "--backend", "diffusion"),
        *("--weights", str(weights), "--steps", "1", "-r", "32", "--frames", "3"),
        *extra,
    )


def _preview(data_dir: Path, out: Path, cache: Path) -> dict:
    return _invoke(data_dir, out, cache, "--motion", "wave", "--backend", "preview", "-r", "64", "--frames", "3")


def test_every_sampling_setting_is_in_the_render_key(data_dir: Path, tmp_path: Path) -> None:
    init_tiny(tmp_path / "w")
    cache = tmp_path / "cache"
    first = _animate(data_dir, tmp_path / "w", tmp_path / "a.mp4", cache)
    assert not first["cached"]
    assert _animate(data_dir, tmp_path / "w", tmp_path / "b.mp4", cache)["cached"]  # the same job: from the cache
    # the key holds DiffusionSettings.sampling_key() whole; three of its fields stand for the rest
    for extra in (["--sampling", "onepass"], ["--tile-frames", "2"], ["--anchor-stride", "2"]):
        again = _animate(data_dir, tmp_path / "w", tmp_path / "c.mp4", cache, *extra)
        assert not again["cached"], f"{extra} came from the cache"


def test_weights_resaved_with_the_same_shapes_render_anew(data_dir: Path, tmp_path: Path) -> None:
    """Fine-tuning re-saves weights with the same shapes and file sizes: the render key follows their contents."""
    import torch
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    init_tiny(tmp_path / "w")
    cache = tmp_path / "cache"
    assert not _animate(data_dir, tmp_path / "w", tmp_path / "a.mp4", cache)["cached"]
    f = next((tmp_path / "w" / "pose_encoder").glob("*.safetensors"))
    size = f.stat().st_size
    tensors = load_file(f)
    with safe_open(f, "pt") as g:
        meta = g.metadata()
    name = next(k for k, v in tensors.items() if v.is_floating_point() and v.numel() > 1)
    tensors[name] = tensors[name] + 0.01 * torch.ones_like(tensors[name])  # "one more training step"
    save_file(tensors, f, metadata=meta)
    assert f.stat().st_size == size
    assert not _animate(data_dir, tmp_path / "w", tmp_path / "b.mp4", cache)["cached"]


def test_a_new_preview_model_version_renders_anew(data_dir: Path, tmp_path: Path, monkeypatch) -> None:
    """A preview render is made of the preview model: when that stage's version changes (a better mesh), the same
    job renders anew instead of returning the old model's video from the cache."""
    from hvg_cli.pipeline import stages

    cache = tmp_path / "cache"
    assert not _preview(data_dir, tmp_path / "a.mp4", cache)["cached"]
    assert _preview(data_dir, tmp_path / "b.mp4", cache)["cached"]
    monkeypatch.setitem(stages.VERSIONS, "preview_model", stages.VERSIONS["preview_model"] + 1)
    assert not _preview(data_dir, tmp_path / "c.mp4", cache)["cached"]
