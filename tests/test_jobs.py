"""`hvg bonemap` and `hvg animate` end to end on the shared photos and dance video (real MediaPipe, real ffmpeg)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from hvg_cli import pipeline
from hvg_cli.cli.main import app
from hvg_cli.core.cache import StageCache
from hvg_cli.core.settings import AnimateSettings, Backend, CameraSpec, Timing
from hvg_cli.io.video import probe_video, read_frames

runner = CliRunner()


def _hvg(*args: str, cache: Path) -> object:
    return runner.invoke(app, [*map(str, args), "--cache-dir", str(cache)], catch_exceptions=False)


def test_bonemap_orbit_keeps_subject_in_frame(data_dir: Path, session_cache: Path, tmp_path: Path) -> None:
    """A 360° orbit of the shared photo + dance: every view and frame shows the subject, none touches the border."""
    out, maps = tmp_path / "bones.mp4", tmp_path / "maps.npz"
    r = _hvg(
        "bonemap",
        data_dir / "photo_woman_street.jpg",
        "--motion",
        data_dir / "dance_red_skirt.mp4",
        "--camera",
        "orbit-360",
        "--views",
        "8",
        "--grid",
        "--frames",
        "12",
        "--resolution",
        "96",
        "--export",
        maps,
        "-o",
        out,
        "--json",
        "--quiet",
        cache=session_cache,
    )
    assert r.exit_code == 0, r.output
    result = json.loads(r.stdout)
    assert (result["views"], result["frames"], result["fps_exact"]) == (8, 12, "24/1")
    info = probe_video(out)
    assert info.frame_count == 12 and info.fps == 24
    assert (info.width, info.height) == (96 * 3 * 4, 96 * 3)  # 8 views -> 3x3 grid, 4 channels side by side
    z = np.load(maps)
    mask = z["mask"]  # [V, T, H, W]
    assert mask.shape == (8, 12, 96, 96)
    assert mask.reshape(8 * 12, -1).sum(1).min() > 0.05 * 96 * 96, "a bone map with almost no body"
    border = mask[..., 0, :] | mask[..., -1, :] | mask[..., :, 0] | mask[..., :, -1]
    assert not border.any(), "the subject touches the image border"
    # the pelvis is re-centred: the mask's centre of mass stays near the image centre in every map
    ys, xs = np.mgrid[0:96, 0:96] + 0.5
    m = mask.reshape(-1, 96, 96).astype(float)
    cx = (m * xs).sum((1, 2)) / m.sum((1, 2))
    assert np.abs(cx - 48).max() < 12
    # normals are unit vectors where the body is
    n = z["normal"].astype(np.float32)[mask]
    np.testing.assert_allclose(np.linalg.norm(n, axis=-1), 1.0, atol=5e-3)


def test_bonemap_works_with_every_motion_source(data_dir: Path, tmp_path: Path, cache_dir: Path) -> None:
    """Preset, hvg/AMASS .npz and BVH all drive the same job."""
    npz, bvh = tmp_path / "wave.npz", tmp_path / "wave.bvh"
    assert _hvg("pose", "wave", "-o", npz, "--quiet", cache=cache_dir).exit_code == 0
    from hvg_cli.body.presets import load_motion_preset
    from hvg_cli.pipeline import save_bvh

    save_bvh(load_motion_preset("wave"), bvh)
    sizes = []
    for source in ("wave", npz, bvh):
        out = tmp_path / f"bones-{Path(str(source)).stem}.mp4"
        r = _hvg(
            "bonemap",
            data_dir / "photo_woman_studio.jpg",
            "--motion",
            source,
            "--frames",
            "6",
            "--resolution",
            "64",
            "--channels",
            "semantic",
            "-o",
            out,
            "--quiet",
            cache=cache_dir,
        )
        assert r.exit_code == 0, r.output
        info = probe_video(out)
        sizes.append((info.frame_count, info.width, info.height))
    assert sizes == [(6, 64, 64)] * 3


def _job(data_dir: Path, cache: StageCache, orbit: float | None, width: int = 160, frames: int = 12, start: int = 48):
    return dict(
        photo=data_dir / "photo_woman_studio.jpg",
        motion_source=str(data_dir / "dance_red_skirt.mp4"),
        settings=AnimateSettings(
            camera=CameraSpec(orbit=orbit, width=width, height=width),
            timing=Timing(start=start, max_frames=frames),
            backend=Backend.PREVIEW,
        ),
        cache=cache,
    )


def test_animate_preview_follows_the_motion(data_dir: Path, session_cache: Path, tmp_path: Path) -> None:
    """Motion fidelity: MediaPipe finds the person in every written frame, near the projected target skeleton.

    PCK@0.1: a joint counts when the detected 2D joint lies within 0.1 of the subject's box height of the
    projected target joint. Limb joints only (shoulders, elbows, wrists, knees, ankles): MediaPipe's hip
    landmarks sit ~9 cm above SMPL's hip joints by definition, so hips would measure the convention, not the fit.
    """
    from hvg_cli.align.similarity import project_points
    from hvg_cli.pose.video_pose import detect_frames

    cache = StageCache(session_cache)
    kw = _job(data_dir, cache, orbit=0.0, width=256, frames=16)
    frames_dir = tmp_path / "frames"
    result = pipeline.animate_job(out=frames_dir, **kw)
    assert result.backend == "preview" and result.frames == 16
    frames = [
        np.asarray(__import__("PIL.Image", fromlist=["Image"]).open(p).convert("RGB"))
        for p in sorted(frames_dir.glob("*.png"))
    ]
    assert len(frames) == 16 and frames[0].shape == (256, 256, 3)
    track = detect_frames(iter(frames), len(frames), person="first")
    assert track.detected.all(), f"person lost in frames {np.flatnonzero(~track.detected)}"

    job = pipeline.assemble_job(kw["photo"], kw["motion_source"], kw["settings"], cache)
    target = project_points(job.motion.joints[None], job.grid.K, job.grid.world_to_cam)[0]  # [T, 24, 2]
    # MediaPipe index -> SMPL index: shoulders, elbows, wrists, knees, ankles
    pairs = [(11, 16), (12, 17), (13, 18), (14, 19), (15, 20), (16, 21), (25, 4), (26, 5), (27, 7), (28, 8)]
    mp_idx, smpl_idx = zip(*pairs)
    detected = track.image[:, list(mp_idx)]  # [T, 10, 2]
    wanted = target[:, list(smpl_idx)]
    box_h = target[..., 1].max(1) - target[..., 1].min(1)  # [T]
    dist = np.linalg.norm(detected - wanted, axis=-1) / box_h[:, None]
    pck = float((dist < 0.1).mean())
    assert pck >= 0.8, f"PCK@0.1 = {pck:.2f}"


def test_animate_cache_reuse_and_camera_change(data_dir: Path, session_cache: Path, tmp_path: Path) -> None:
    cache = StageCache(session_cache)
    first = pipeline.animate_job(out=tmp_path / "a.mp4", **_job(data_dir, cache, orbit=90.0, width=96, frames=6))
    again = pipeline.animate_job(out=tmp_path / "b.mp4", **_job(data_dir, cache, orbit=90.0, width=96, frames=6))
    assert not first.cached and again.cached and (tmp_path / "a.mp4").read_bytes() == (tmp_path / "b.mp4").read_bytes()
    before = cache.info()
    other = pipeline.animate_job(out=tmp_path / "c.mp4", **_job(data_dir, cache, orbit=-90.0, width=96, frames=6))
    after = cache.info()
    assert not other.cached
    # only the render stage gained an entry: subject and motion were re-used
    assert after["render"]["entries"] == before["render"]["entries"] + 1
    for stage in ("subject", "motion_video", "pose_track", "preview_model"):
        assert after[stage]["entries"] == before[stage]["entries"], stage
    # the driving video's audio follows the output's timeline
    assert probe_video(tmp_path / "a.mp4").has_audio
    assert abs(probe_video(tmp_path / "a.mp4").duration - 6 / 24) < 0.1


def test_animate_views_grid_and_per_view(data_dir: Path, tmp_path: Path, cache_dir: Path) -> None:
    r = _hvg(
        "animate",
        data_dir / "photo_woman_studio.jpg",
        "--motion",
        "wave",
        "--orbit",
        "360",
        "--views",
        "4",
        "--per-view",
        "--frames",
        "4",
        "--resolution",
        "64",
        "--no-audio",
        "-o",
        tmp_path / "v.mp4",
        "--json",
        "--quiet",
        cache=cache_dir,
    )
    assert r.exit_code == 0, r.output
    res = json.loads(r.stdout)
    assert res["views"] == 4 and res["frames"] == 4 and res["backend"] == "preview"
    assert [Path(p).name for p in res["outputs"]] == [f"v_view{i:02d}.mp4" for i in range(4)]
    for p in res["outputs"]:
        info = probe_video(p)
        assert (info.frame_count, info.width, info.height, info.fps) == (4, 64, 64, 30)
    # four views of the same frame differ (the camera really moves around the subject)
    first = [next(iter(read_frames(p, 0, 1))).astype(int) for p in res["outputs"]]
    assert min(np.abs(first[0] - f).mean() for f in first[1:]) > 2.0


@pytest.mark.parametrize(
    "args, code",
    [
        (["animate", "{data}/nope.jpg", "--motion", "wave"], 3),
        (["animate", "{data}/photo_woman_studio.jpg", "--motion", "no-such-preset"], 3),
        (["animate", "{tmp}/grey.png", "--motion", "wave"], 5),
        (
            [
                "animate",
                "{data}/photo_woman_studio.jpg",
                "--motion",
                "wave",
                "--backend",
                "diffusion",
                "--weights",
                "{tmp}",
            ],
            4,
        ),
        (["animate", "{data}/photo_woman_studio.jpg", "--motion", "wave", "--background", "transparent"], 3),
        (["bonemap", "{data}/photo_woman_studio.jpg", "--motion", "wave", "--camera", "no-such-camera"], 3),
        (["animate", "{data}/photo_woman_studio.jpg", "--motion", "wave", "--resolution", "12xbanana"], 2),
    ],
)
def test_bad_input_exit_codes_keep_previous_output(
    args: list[str], code: int, data_dir: Path, tmp_path: Path, cache_dir: Path
) -> None:
    from PIL import Image

    Image.fromarray(np.full((64, 48, 3), 128, np.uint8)).save(tmp_path / "grey.png")
    out = tmp_path / "out.mp4"
    out.write_bytes(b"previous output")
    argv = [a.format(data=data_dir, tmp=tmp_path) for a in args] + ["-o", str(out), "--frames", "2", "--quiet"]
    r = _hvg(*argv, cache=cache_dir)
    assert r.exit_code == code, r.output
    assert out.read_bytes() == b"previous output"
    assert "Traceback" not in r.output
    if code != 2:  # usage errors are Typer's own box; hvg's errors are one line
        assert len(r.stderr.strip().splitlines()) == 1, r.stderr
        assert r.stderr.startswith("hvg: ")


def test_animate_dry_run_plans_without_weights(tmp_path: Path, cache_dir: Path) -> None:
    """--dry-run needs neither weights nor the photo's content: it plans the V×T grid's tiles."""
    r = _hvg(
        "animate",
        tmp_path / "not-read.jpg",
        "--motion",
        "wave",
        "--orbit",
        "360",
        "--views",
        "4",
        "--grid",
        "--frames",
        "48",
        "--tile-views",
        "2",
        "--tile-frames",
        "8",
        "--dry-run",
        "--json",
        cache=cache_dir,
    )
    assert r.exit_code == 0, r.output
    plan = json.loads(r.stdout)
    assert (plan["views"], plan["frames"], plan["closed"], plan["sampling"]) == (4, 48, True, "progressive")
    assert plan["max_tile_frames"] == 16  # 2 views × 8 frames along the UNet's frame axis
    assert plan["tile_evaluations"] > 0 and plan["compare"]["onepass"] > 0
    r2 = _hvg(
        "animate",
        tmp_path / "not-read.jpg",
        "--motion",
        "wave",
        "--orbit",
        "360",
        "--views",
        "4",
        "--grid",
        "--frames",
        "96",
        "--tile-views",
        "2",
        "--tile-frames",
        "8",
        "--dry-run",
        "--json",
        cache=cache_dir,
    )
    plan2 = json.loads(r2.stdout)
    # memory per tile does not grow with the video; the work does
    assert plan2["memory_estimate"]["tile_activation_bytes"] == plan["memory_estimate"]["tile_activation_bytes"]
    assert plan2["tile_evaluations"] > 1.8 * plan["tile_evaluations"]
