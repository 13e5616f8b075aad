"""`hvg prepare` on multi-view captures: a capture synthesised here (the studio photo dancing, rendered by the
preview backend from four known cameras, each view an mp4, the cameras in a nerfstudio transforms.json) is
prepared through the command; the body's placement reprojects within the limit in every camera, the clips
carry the four views, their bone maps lie on the rendered person, and a broken capture is one line and a skip.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from hvg_cli.core.cache import StageCache
from hvg_cli.core.settings import PrepareSettings

FRAMES = 18  # track frames of the capture
VIDEO = 160  # pixels of each camera's video
SETTINGS = PrepareSettings(width=32, height=32, length=3, stride=6, gap=4)


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # conftest: one torch thread


@pytest.fixture(scope="module")
def captures(tmp_path_factory, data_dir, session_cache):
    """root/good (the capture), root/broken (transforms.json cut short), root/missing (one camera's video gone)."""
    from hvg_cli.backends.diffusion.weights import init_tiny

    root = tmp_path_factory.mktemp("mv")
    init_tiny(root / "weights")
    cache = StageCache(session_cache)
    from hvg_cli.cameras.generators import arc
    from hvg_cli.pipeline.synthetic import write_synthetic_capture

    cams = arc(views=4, degrees=90, elevation=5, radius=3.2, fov=40, width=VIDEO, height=VIDEO)  # 4 fixed cameras
    photo = data_dir / "photo_woman_studio.jpg"
    syn = write_synthetic_capture(root / "captures" / "good", photo, "dance", cams, FRAMES, cache)
    shutil.copytree(root / "captures" / "good", root / "captures" / "broken")
    text = (root / "captures" / "good" / "transforms.json").read_text()
    (root / "captures" / "broken" / "transforms.json").write_text(text[: len(text) // 2])
    shutil.copytree(root / "captures" / "good", root / "captures" / "missing")
    (root / "captures" / "missing" / "cam2.mp4").unlink()
    return root, syn, cache


def test_prepare_captures_folder(captures, session_cache):
    from typer.testing import CliRunner

    from hvg_cli.align.similarity import warp_image
    from hvg_cli.bonemap.render import render_bonemaps
    from hvg_cli.cli.main import app
    from hvg_cli.core.types import CameraGrid
    from hvg_cli.pipeline.jobs import align_job
    from hvg_cli.pipeline.multiview import multiview_capture
    from hvg_cli.train.dataset import TrainDataset, read_manifest
    from hvg_cli.train.windows import windows

    root, syn, cache = captures
    args = ["prepare", str(root / "captures"), "-o", str(root / "data"), "--weights", str(root / "weights")]
    args += ["--size", "32", "--length", "3", "--stride", "6", "--gap", "4", "--cache-dir", str(session_cache)]
    r = CliRunner().invoke(app, args + ["--json"])
    assert r.exit_code == 0, r.output
    res = json.loads(r.stdout)
    # 1. one line for each bad capture, and the skip count
    lines = [ln for ln in r.output.splitlines() if "skipped capture" in ln]
    assert len(lines) == 2 and res["skipped"] == 2, r.output
    assert any("broken" in ln and "not valid JSON" in ln for ln in lines)
    assert any("missing" in ln and "cam2.mp4 is missing" in ln for ln in lines)
    # 2. the placement reprojects within half a latent cell in every camera (tiny VAE: 2 px cells -> 1 px)
    err = {k: v for k, v in res["reprojection_px"].items() if "/good/" in k}
    assert sorted(Path(k).name for k in err) == [f"cam{v}.mp4" for v in range(4)]
    assert all(e <= lim == pytest.approx(1.0) for e, lim in err.values()), err
    assert np.mean([e for e, _ in err.values()]) < 0.9, err
    # 3. clips: one per window, four views in the shards, recorded as multiview with their cameras
    wins = windows(FRAMES, 3, 6, 1, 4)
    assert res["written"] == res["clips"] == len(wins) == 3
    man = read_manifest(root / "data")
    assert man["sizes"]["views"] == 4 and man["sizes"]["frames"] == 3
    for c in man["clips"]:
        assert c["kind"] == "multiview" and not c["synthetic"] and c["views"] == 4
        assert c["cameras"] == [f"cam{v}.mp4" for v in range(4)] and c["source"].endswith("good")
    ds = TrainDataset(root / "data")
    # 4. the stored bone-map masks lie on the rendered person in every view (the render's coverage, aligned by the
    #    same alignment the capture's frames went through), beside the true motion's bone maps on the true
    #    cameras, aligned the same way (the floor the rendered person's own shape sets: clothes are not ellipsoids)
    cap = multiview_capture(root / "captures" / "good", SETTINGS, 2, cache)  # cached stages: the same placement
    V, T = syn.cameras.num_views, len(syn.poses)
    grid0 = CameraGrid(
        K=np.broadcast_to(syn.cameras.K[:, None], (V, T, 3, 3)).copy(),
        world_to_cam=np.broadcast_to(syn.cameras.world_to_cam[:, None], (V, T, 4, 4)).copy(),
        width=32,
        height=32,
        mode="views",
    )
    al_true, grid_true = align_job(syn.poses, syn.trans, syn.motion.skeleton, grid0)
    true_masks = render_bonemaps(syn.poses, syn.trans, syn.motion.skeleton, syn.subject.radii, grid_true).mask

    def iou(a, masks, v, frames):  # masks [len(frames), 32, 32] against the person warped by alignment a
        inter = union = 0
        for k, t in enumerate(frames):
            person = warp_image(syn.coverage[v, t, ..., None] / 255.0, float(a.scale[v, t]), a.offset[v, t], 32, 32)
            inter += ((person[..., 0] > 0.5) & masks[k]).sum()
            union += ((person[..., 0] > 0.5) | masks[k]).sum()
        return inter / union

    ious = np.zeros((len(ds), 4))
    truth = np.zeros((len(ds), 4))
    for i in range(len(ds)):
        clip = ds[i]
        assert clip.latents.shape[:2] == (4, 3) and clip.mask.shape == (4, 3, 32, 32)
        start = int(clip.id.rsplit("-f", 1)[1][:6])  # the window suffix (the source hash before it may hold "-f")
        frames = range(start, start + 3)
        for v in range(4):
            ious[i, v] = iou(cap.alignment, clip.mask[v], v, frames)
            truth[i, v] = iou(al_true, true_masks[v, start : start + 3], v, frames)
    # measured per clip and view 0.60-0.79 (truth 0.68-0.84), mean 0.69 against the truth's 0.74. The worst cell
    # was 0.64 before the preview's shoes and arms changed the rendered person (its first clip, where the fit
    # lags the truth most)
    assert ious.min() >= 0.55, (ious.round(3), truth.round(3))
    assert ious.mean() >= truth.mean() - 0.08, (ious.mean(), truth.mean())
    # 5. a re-run skips the finished clips
    r2 = CliRunner().invoke(app, args + ["--json"])
    res2 = json.loads(r2.stdout)
    assert (res2["written"], res2["existing"], res2["clips"]) == (0, 3, 3)


def test_a_capture_above_the_limit_is_refused(captures):
    """At 64 px with 2 px latent cells the limit is 1 px: refused exactly when some camera's error is above it."""
    from hvg_cli.core.errors import BadInput
    from hvg_cli.pipeline.multiview import multiview_capture

    root, _, cache = captures
    st = PrepareSettings(width=64, height=64, length=3, stride=6, gap=4)
    cap = multiview_capture(root / "captures" / "good", st, 8, cache)  # SVD's cells: limit 4 px
    assert cap.limit_px == pytest.approx(4.0) and cap.error_px.shape == (4,) and cap.error_px.max() < 4.0
    if cap.error_px.max() > 1.0:
        with pytest.raises(BadInput, match="reprojects"):
            multiview_capture(root / "captures" / "good", st, 2, cache)
    else:
        assert multiview_capture(root / "captures" / "good", st, 2, cache).limit_px == pytest.approx(1.0)


def test_cameras_are_trimmed_to_the_shortest_and_other_frame_rates_refused(captures, tmp_path):
    """One camera 4 frames shorter: every camera is trimmed to it and a note says so; one camera at another
    frame rate: the capture is refused with one line naming both rates."""
    from hvg_cli.core.errors import BadInput
    from hvg_cli.io.video import probe_video, read_frames, write_video
    from hvg_cli.pipeline.multiview import multiview_capture

    root, _, cache = captures
    good = root / "captures" / "good"
    fps = probe_video(good / "cam1.mp4").fps
    frames = list(read_frames(good / "cam1.mp4"))  # [T] of [H, W, 3]
    short, other = tmp_path / "short", tmp_path / "other"
    for folder in (short, other):
        shutil.copytree(good, folder)
    write_video(short / "cam1.mp4", iter(frames[: FRAMES - 4]), fps)
    write_video(other / "cam1.mp4", iter(frames), fps * 2)

    class Notes:
        def __init__(self):
            self.lines: list[str] = []

        def note(self, message: str) -> None:
            self.lines.append(message)

        def task(self, *args, **kwargs):
            from hvg_cli.core.progress import SILENT

            return SILENT.task(*args, **kwargs)

    notes = Notes()
    cap = multiview_capture(short, SETTINGS, 8, cache, notes)
    assert cap.frame_counts == (FRAMES, FRAMES - 4, FRAMES, FRAMES) and len(cap.frame_indices) == FRAMES - 4
    assert cap.grid.shape == (4, FRAMES - 4) and cap.motion.num_frames == FRAMES - 4
    assert any("trimmed to the shortest, 14" in n for n in notes.lines), notes.lines
    with pytest.raises(BadInput, match="different frame rates"):
        multiview_capture(other, SETTINGS, 8, cache)
