"""`hvg prepare` (synthetic clips through the cached stages) and `hvg train` as commands: what the dataset holds,
that it is aligned exactly as animate aligns, that a re-run skips finished clips, and that bad input writes
nothing and exits with its code."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from hvg_cli.core.cache import StageCache
from hvg_cli.core.settings import PrepareSettings
from hvg_cli.pipeline.training import prepare_job

SETTINGS = PrepareSettings(
    width=32, height=32, length=3, stride=10, gap=4, cameras="orbit-360", views=3, target="bonemap", max_frames=24
)


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # conftest: one torch thread


@pytest.fixture(scope="module")
def prepared(tmp_path_factory, data_dir):
    from hvg_cli.backends.diffusion.weights import init_tiny

    root = tmp_path_factory.mktemp("prep")
    init_tiny(root / "weights")
    cache = StageCache(root / "cache")
    photo = data_dir / "photo_woman_studio.jpg"
    first = prepare_job(
        root / "data", root / "weights", synthetic=[photo], motions=["wave"], settings=SETTINGS, cache=cache
    )
    return root, photo, cache, first


def test_synthetic_clips_hold_the_aligned_job(prepared):
    from hvg_cli.bonemap.render import render_bonemaps
    from hvg_cli.core.settings import SubjectSettings
    from hvg_cli.pipeline import stages
    from hvg_cli.pipeline.commands import camera_grid
    from hvg_cli.pipeline.jobs import align_job
    from hvg_cli.pipeline.motion import motion_from_source, place_motion
    from hvg_cli.train.dataset import TrainDataset, read_manifest
    from hvg_cli.train.windows import windows

    root, photo, cache, first = prepared
    wins = windows(24, 3, 10, 1, 4)
    assert first.written == len(wins) == first.total_clips and first.existing == 0 and not first.skipped
    ds = TrainDataset(root / "data")
    man = read_manifest(root / "data")
    assert all(c["synthetic"] and c["views"] == 3 and c["frames"] == 3 for c in man["clips"])
    # the reference is a frame outside its window, named in the manifest
    for c, w in zip(man["clips"], wins):
        assert c["reference"].endswith(f"frame {w.reference}|view 0") and w.reference not in w.frames
    # bone maps and cameras of clip 1 equal the animate-style job rebuilt here: motion on the subject, the preset's
    # views, align_job's alignment, render_bonemaps
    subject = stages.subject(photo, SubjectSettings(), cache)
    m = place_motion(motion_from_source("wave", cache=cache), subject)
    poses, trans = m.poses[:24], m.trans[:24]
    _, grid = align_job(poses, trans, m.skeleton, camera_grid(SETTINGS.camera_spec(), 24, "views"))
    idx = list(wins[1].frames)
    clip = ds[1]
    np.testing.assert_allclose(clip.K, grid.K[:, idx], rtol=1e-5)
    np.testing.assert_allclose(clip.world_to_cam, grid.world_to_cam[:, idx], rtol=1e-5, atol=1e-6)
    maps = render_bonemaps(
        poses[idx],
        trans[idx],
        m.skeleton,
        subject.radii,
        type(grid)(K=grid.K[:, idx], world_to_cam=grid.world_to_cam[:, idx], width=32, height=32, mode="views"),
    )
    np.testing.assert_array_equal(clip.mask, maps.mask)
    np.testing.assert_array_equal(clip.semantic, maps.semantic)
    assert 0.02 < clip.mask.mean() < 0.6  # a person, centred and scaled, in every view
    assert clip.latents.shape == (3, 3, 4, 16, 16)


def test_rerun_skips_finished_clips_and_bad_input_is_one_error(prepared):
    from hvg_cli.core.errors import BadInput

    root, photo, cache, first = prepared
    again = prepare_job(
        root / "data", root / "weights", synthetic=[photo], motions=["wave"], settings=SETTINGS, cache=cache
    )
    assert again.written == 0 and again.existing == first.written
    with pytest.raises(BadInput, match="views must be"):
        prepare_job(
            root / "bad",
            root / "weights",
            synthetic=[photo],
            motions=["wave"],
            settings=PrepareSettings(cameras="orbit-360", views=2),
            cache=cache,
        )
    assert not (root / "bad").exists()


def test_train_command_bad_input_writes_nothing(prepared, tmp_path):
    """Old dataset version, a base without pose encoder, a size mismatch: one line, exit code 3/4, no OUT."""
    from typer.testing import CliRunner

    from hvg_cli.cli.main import app

    root, _, _, _ = prepared
    runner = CliRunner()

    def run(weights, data, out):
        r = runner.invoke(
            app,
            [
                "train",
                "--weights",
                str(weights),
                "--data",
                str(data),
                "-o",
                str(out),
                "--steps",
                "1",
                "--cpu",
                "--checkpoint-every",
                "0",
            ],
        )
        assert not Path(out).exists() and not list(Path(out).parent.glob(f".{Path(out).name}.tmp*"))
        return r

    old = tmp_path / "old"
    shutil.copytree(root / "data", old)
    man = json.loads((old / "manifest.json").read_text())
    man["version"] = 0
    (old / "manifest.json").write_text(json.dumps(man))
    r = run(root / "weights", old, tmp_path / "o1")
    assert r.exit_code == 3 and "version" in r.output
    nope = tmp_path / "nope"
    shutil.copytree(root / "weights", nope)
    shutil.rmtree(nope / "pose_encoder")
    r = run(nope, root / "data", tmp_path / "o2")
    assert r.exit_code == 4 and "pose_encoder" in r.output
    # bone maps of 64 px rows over latents of 16 rows do not fit this VAE's factor 2
    odd = tmp_path / "odd"
    shutil.copytree(root / "data", odd)
    man = json.loads((odd / "manifest.json").read_text())
    man["sizes"]["height"] = 64
    (odd / "manifest.json").write_text(json.dumps(man))
    r = run(root / "weights", odd, tmp_path / "o3")
    assert r.exit_code == 3 and "do not match latents" in r.output


def test_monocular_video_bone_maps_lie_on_the_person(data_dir, session_cache):
    """The dance video: the solved camera reprojects the fitted skeleton within the limit, and MediaPipe's own
    2D landmarks, moved by the alignment the frames were warped with, fall inside the rendered bone maps."""
    from hvg_cli.core.settings import PoseSettings
    from hvg_cli.pipeline import stages
    from hvg_cli.pipeline.monocular import monocular_clipset

    video = data_dir / "dance_red_skirt.mp4"
    cache = StageCache(session_cache)
    from hvg_cli.core.settings import Timing
    from hvg_cli.pipeline.motion import trim_motion

    motion, _ = stages.motion_video(video, PoseSettings(), cache)  # the session's cached track of the whole video
    motion = trim_motion(motion, Timing(start=60, max_frames=72))  # 72 frames keep the test short
    st = PrepareSettings(width=64, height=64)
    cs = monocular_clipset(video, motion, st, 8, cache)  # SVD's VAE factor: limit half a cell = 4 training px
    assert cs.frames.shape == (1, motion.num_frames, 64, 64, 3) and cs.maps.mask.shape == (1, motion.num_frames, 64, 64)
    assert cs.limit_px == pytest.approx(4.0) and cs.error_px < 1.5
    # a VAE factor of 2 allows 1 px: the same video is refused exactly when its error is above that
    from hvg_cli.core.errors import BadInput

    if cs.error_px > 1.0:
        with pytest.raises(BadInput, match="reprojects"):
            monocular_clipset(video, motion, st, 2, cache)
    else:
        assert monocular_clipset(video, motion, st, 2, cache).limit_px == pytest.approx(1.0)
    # the alignment per frame: aligned intrinsics = S @ K_video, S = [[s, 0, ox], [0, s, oy], [0, 0, 1]]
    lm = np.asarray(motion.extras["landmarks"])  # [T, 33, 2] video px
    vis = np.asarray(motion.extras["visibility"])  # [T, 33]
    body = [11, 12, 23, 24, 25, 26]  # shoulders, hips, knees: inside the body's ellipsoids
    inside = total = 0
    for t in range(0, motion.num_frames, 2):
        # K_aligned = S @ K_video: S maps video pixels to training pixels
        S = cs.grid.K[0, t] @ np.linalg.inv(cs.video_K)
        for i in body:
            if vis[t, i] < 0.8:
                continue
            u, v = S[:2, :2] @ lm[t, i] + S[:2, 2]
            total += 1
            if 0 <= int(v) < 64 and 0 <= int(u) < 64 and cs.maps.mask[0, t, int(v), int(u)]:
                inside += 1
    assert total > 60 and inside / total > 0.85, (inside, total)


def test_train_flags_reach_the_settings(tmp_path, monkeypatch):
    """The conditioning-dropout rates and the reference swap are flags; each lands in TrainSettings, and an
    out-of-range rate is a usage error before any work."""
    from typer.testing import CliRunner

    import hvg_cli.pipeline.training as training
    from hvg_cli.cli.main import app

    runner = CliRunner()
    seen = {}

    def fake_train_job(settings, validation, cache, progress):
        seen["settings"] = settings
        raise SystemExit(0)

    monkeypatch.setattr(training, "train_job", fake_train_job)
    base = ["train", "--weights", str(tmp_path / "w"), "--data", str(tmp_path / "d"), "-o", str(tmp_path / "o")]
    flags = {"--drop-reference": 0.2, "--drop-embedding": 0.15, "--drop-latent": 0.5, "--drop-pose": 0.1}
    r = runner.invoke(app, [*base, *[str(x) for kv in flags.items() for x in kv], "--reference-swap", "0.8"])
    assert r.exit_code == 0, r.output
    st = seen["settings"]
    assert (st.drop_reference, st.drop_embedding, st.drop_latent, st.drop_pose, st.reference_swap) == (
        0.2,
        0.15,
        0.5,
        0.1,
        0.8,
    )
    bad = runner.invoke(app, [*base, "--reference-swap", "1.5"])
    assert bad.exit_code == 2 and len(seen) == 1


def test_txt_lists_name_files_folders_and_captures(tmp_path):
    """`hvg prepare`'s sources: a .txt list (comments, blank lines, paths relative to the list) names videos,
    folders of videos and capture folders; a missing entry is one BadInput naming it."""
    from hvg_cli.core.errors import BadInput
    from hvg_cli.pipeline.sources import expand_photos, expand_sources, expand_videos

    (tmp_path / "clips").mkdir()
    for name in ("b.mp4", "a.mov", "notes.md", "p.jpg"):
        (tmp_path / "clips" / name).touch()
    (tmp_path / "seq").mkdir()
    (tmp_path / "seq" / "transforms.json").write_text("{}")
    (tmp_path / "list.txt").write_text("# my clips\n\nclips\nclips/b.mp4\nseq\n")
    clips = tmp_path / "clips"
    assert expand_videos([clips]) == [clips / "a.mov", clips / "b.mp4"]
    assert expand_sources([tmp_path / "list.txt"]) == (
        [tmp_path / "seq"],
        [clips / "a.mov", clips / "b.mp4", clips / "b.mp4"],
    )
    assert expand_photos([clips]) == [clips / "p.jpg"]
    (tmp_path / "bad.txt").write_text("nowhere.mp4\n")
    with pytest.raises(BadInput, match="nowhere.mp4"):
        expand_videos([tmp_path / "bad.txt"])


def test_last_built_keeps_one_value_and_no_failed_build():
    """pipeline.sources.LastBuilt: a key asked for again is not rebuilt, another key drops the old value first,
    and a build that raises leaves nothing (the next ask builds again)."""
    from hvg_cli.pipeline.sources import LastBuilt

    built: list[str] = []

    def build(key: str):
        def make():
            built.append(key)
            if key == "bad":
                raise ValueError(key)
            return key.upper()

        return make

    last = LastBuilt()
    assert last.get("a", build("a")) == "A" and last.get("a", build("a")) == "A" and built == ["a"]
    assert last.get("b", build("b")) == "B" and last.get("a", build("a")) == "A" and built == ["a", "b", "a"]
    with pytest.raises(ValueError):
        last.get("bad", build("bad"))
    assert last.get("a", build("a")) == "A" and built == ["a", "b", "a", "bad", "a"]
