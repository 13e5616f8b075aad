"""pose/ and the pose stages of the pipeline, on the real dance video with the real MediaPipe.

MediaPipe runs over the full 288-frame dance ONCE per session (`dance` fixture, a stage cache under
the session's shared cache, conftest.session_cache), which tests/test_pose_cli.py and test_jobs.py reuse.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from hvg_cli import pipeline
from hvg_cli.core.cache import StageCache
from hvg_cli.core.errors import BadInput, NoPerson
from hvg_cli.core.progress import SilentReporter
from hvg_cli.core.settings import PoseSettings
from hvg_cli.pose.smoothing import one_euro, one_euro_reference
from hvg_cli.pose.tracking import Candidate, choose_crop, fill_gaps, merge_candidates, parse_person, runs

# MediaPipe landmark indices
NOSE, LEFT_EAR, RIGHT_EAR, LEFT_SHOULDER, RIGHT_SHOULDER, LEFT_HIP, RIGHT_HIP = 0, 7, 8, 11, 12, 23, 24


@pytest.fixture(scope="session")
def dance(data_dir: Path, tmp_path_factory: pytest.TempPathFactory, session_cache: Path):
    """The full dance through `pose_job` (first run: computes; later sessions' modules: cache)."""
    video = data_dir / "dance_red_skirt.mp4"
    out_dir = tmp_path_factory.mktemp("dance-out")
    cache = StageCache(session_cache)
    notes = SilentReporter()
    result = pipeline.pose_job(video, out_dir / "dance.npz", PoseSettings(), cache=cache, progress=notes)
    track = pipeline.pose_track(video, PoseSettings(), cache, SilentReporter())  # from the cache
    return {"video": video, "result": result, "track": track, "cache": cache, "notes": notes.notes, "out_dir": out_dir}


def test_dance_track_every_frame_detected(dance):
    tr = dance["track"]
    assert tr.image.shape == (288, 33, 2) and tr.world.shape == (288, 33, 3) and tr.visibility.shape == (288, 33)
    assert tr.fps == Fraction(24)
    assert tr.detected.all()  # MediaPipe found the dancer in every one of the 288 frames
    np.testing.assert_array_equal(tr.frame_indices, np.arange(288))
    assert (tr.width, tr.height) == (1080, 1920)
    assert np.isfinite(tr.image).all() and np.isfinite(tr.world).all()
    # landmarks lie on the dancer, inside the portrait frame
    assert 0 < np.median(tr.image[..., 0]) < 1080 and 0 < np.median(tr.image[..., 1]) < 1920


def test_world_axes_are_hvg(dance):
    w = dance["track"].world  # [T, 33, 3] hvg axes
    head_above_hips = w[:, NOSE, 1] - w[:, [LEFT_HIP, RIGHT_HIP], 1].mean(axis=1)
    assert np.all(head_above_hips > 0.3)  # y up: the nose is 0.3+ m above the hips in every frame
    # the dancer faces the camera for most of the clip: the nose is nearer the camera (+z) than the ears
    nose_forward = w[:, NOSE, 2] - w[:, [LEFT_EAR, RIGHT_EAR], 2].mean(axis=1)
    assert np.mean(nose_forward > 0) > 0.8
    # and then the person's left is +x: left shoulder has the larger x
    facing = nose_forward > 0
    assert np.mean(w[facing, LEFT_SHOULDER, 0] > w[facing, RIGHT_SHOULDER, 0]) > 0.9


def test_dance_motion_file(dance):
    r = dance["result"]
    assert (r.frames, r.fps, r.source, r.cached) == (288, Fraction(24), "video", False)
    d = np.load(r.out)
    assert d["poses"].shape == (288, 72) and d["trans"].shape == (288, 3)
    assert float(d["mocap_framerate"]) == 24.0
    assert (int(d["hvg_fps_num"]), int(d["hvg_fps_den"])) == (24, 1)
    assert d["hvg_joints"].shape == (288, 24, 3) and d["hvg_landmarks"].shape == (288, 33, 2)
    assert d["hvg_visibility"].shape == (288, 33)
    assert str(d["hvg_source_hash"]) == dance["track"].source_hash and len(str(d["hvg_source_hash"])) == 64
    assert np.isfinite(d["poses"]).all() and np.isfinite(d["trans"]).all()
    # Fit error bound. The IK is analytic: every bone's swing is solved exactly from its observed
    # direction, so 22 of 23 bones fit to ~0 deg; the residual is the spine3->neck bone, whose
    # direction is fixed by the thorax frame (shoulder axis + torso up) rather than solved on its
    # own. Measured here: 0.22 deg mean over all bones (neck alone ~4.7 deg). Bound 1.0 deg = 4x
    # headroom for MediaPipe/ffmpeg version noise, yet a broken axis convention or a flipped twist
    # (tens of degrees on many bones) fails it at once.
    assert r.fit_error_deg < 1.0
    bone = d["hvg_bone_error_deg"]  # [T, 23]
    assert np.median(bone, axis=0).max() < 15.0  # no bone is systematically off
    # a dancer's pelvis stays in a plausible box: within 2 m of where it started, above the floor
    assert np.abs(d["trans"] - d["trans"][0]).max() < 2.0


def test_second_run_comes_from_cache_and_is_identical(dance, tmp_path):
    cache: StageCache = dance["cache"]
    before = cache.info()
    notes = SilentReporter()
    again = pipeline.pose_job(dance["video"], tmp_path / "again.npz", PoseSettings(), cache=cache, progress=notes)
    assert again.cached is True
    assert any(n.startswith("pose: cached motion") for n in notes.notes)
    assert cache.info() == before  # the entry was reused, nothing new written
    first, second = np.load(dance["result"].out), np.load(again.out)
    assert sorted(first.files) == sorted(second.files)
    for k in first.files:
        np.testing.assert_array_equal(first[k], second[k], err_msg=k)
    assert {"pose_track", "motion_video"} <= set(before)


def test_smoothing_reduces_jitter(dance, tmp_path):
    # --no-smooth reuses nothing of the smoothed track; compare a short stretch to keep it quick
    raw = pipeline.pose_track(dance["video"], PoseSettings(end=48, smooth=False), dance["cache"], SilentReporter())
    smooth = dance["track"]
    acc = lambda w: np.abs(np.diff(w, 2, axis=0)).mean()  # noqa: E731  mean |acceleration| per frame², m
    assert acc(smooth.world[:48]) < 0.6 * acc(raw.world)  # measured ~0.3x
    assert np.abs(smooth.world[:48] - raw.world).mean() < 0.03  # and it stays on the person (~1 cm)


def test_one_euro_matches_reference_and_filters():
    rng = np.random.default_rng(0)
    x = np.cumsum(rng.normal(size=(40, 3, 2)), axis=0) * 0.05
    np.testing.assert_allclose(
        one_euro(x, 30.0, 1.0, 1.5), one_euro_reference(x, 30.0, 1.0, 1.5), rtol=1e-12, atol=1e-12
    )
    still = 1.0 + rng.normal(scale=0.01, size=(200, 1, 1))  # a point at rest with 1 cm jitter
    assert np.std(one_euro(still, 30.0)[50:]) < 0.35 * np.std(still[50:])
    ramp = np.linspace(0, 4, 121)[:, None, None]  # 1 m/s for 4 s at 30 fps
    lag = ramp[-1, 0, 0] - one_euro(ramp, 30.0, 1.0, 1.5)[-1, 0, 0]
    assert 0 < lag < 0.05  # under 5 cm behind at 1 m/s (a plain 1 Hz low-pass lags 16 cm)


def test_fill_gaps_interpolates_and_names_long_gaps():
    T = 20
    x = np.arange(T, dtype=float)[:, None] * np.array([[1.0, -2.0]])  # [T, 2] linear in time
    det = np.ones(T, bool)
    det[[0, 5, 6, 7, 19]] = False
    noisy = np.where(det[:, None], x, np.nan)
    (filled,) = fill_gaps(det, [noisy], max_gap=3, frame_indices=np.arange(T) * 2, source_fps=24.0, source="v.mp4")
    np.testing.assert_allclose(filled[1:19], x[1:19])  # inner gap: exact on a linear track
    np.testing.assert_allclose(filled[0], x[1]) and np.testing.assert_allclose(filled[19], x[18])  # ends: hold
    assert runs(~det) == [(0, 1), (5, 8), (19, 20)]
    with pytest.raises(NoPerson) as e:
        fill_gaps(det, [noisy], max_gap=2, frame_indices=np.arange(T) * 2, source_fps=24.0, source="v.mp4")
    assert "v.mp4" in str(e.value) and "frames 10-14" in str(e.value)  # source frame indices (stride 2)
    with pytest.raises(NoPerson, match="no person found in v.mp4"):
        fill_gaps(np.zeros(T, bool), [noisy], 3, np.arange(T), 24.0, "v.mp4")


def test_person_choice_logic():
    a, b, c = Candidate((0, 0, 100, 300)), Candidate((400, 0, 600, 500)), Candidate((800, 0, 900, 200))
    people = merge_candidates([b, c, a, Candidate((402, 2, 598, 498))])  # duplicate of b dropped
    assert [p.box for p in people] == [a.box, b.box, c.box]  # left to right
    assert choose_crop(people, "largest", 1000, "v") == (250, 700)  # b, halfway to each neighbour
    assert choose_crop(people, 0, 1000, "v") == (0, 250)
    assert choose_crop(people, 2, 1000, "v") == (700, 1000)
    assert choose_crop(people, "first", 1000, "v") is None
    assert choose_crop([a], "largest", 1000, "v") is None
    with pytest.raises(NoPerson, match="shows 3 people"):
        choose_crop(people, 3, 1000, "v")
    assert parse_person("Largest") == "largest" and parse_person("1") == 1
    with pytest.raises(BadInput):
        parse_person("tallest")


def _two_dancers(frame: np.ndarray) -> np.ndarray:
    """[960, 1080, 3]: the dance frame (right, big) and a smaller mirrored copy (left)."""
    from PIL import Image

    big = np.asarray(Image.fromarray(frame).resize((540, 960)))
    small = np.asarray(Image.fromarray(frame[:, ::-1]).resize((324, 576)))
    canvas = np.full((960, 1080, 3), 128, np.uint8)
    canvas[:, 540:] = big  # right: the big dancer
    canvas[960 - 576 :, 100:424] = small  # left: the small one, feet on the same floor line
    return canvas


def test_find_people_on_two_dancers(data_dir):
    """A real frame with two dancers: the dance frame and a smaller mirrored copy beside it."""
    from hvg_cli.io.video import read_frames
    from hvg_cli.pose.video_pose import find_people

    canvas = _two_dancers(next(read_frames(data_dir / "dance_red_skirt.mp4", 100, 101)))  # from [1920, 1080, 3]
    people = find_people(canvas)
    assert len(people) == 2
    assert people[0].centre_x < 540 < people[1].centre_x  # left to right
    assert people[1].area > 2 * people[0].area
    band = choose_crop(people, "largest", 1080, "two.png")
    assert band is not None and band[0] > 300 and band[1] == 1080  # the right dancer's band
    left = choose_crop(people, 0, 1080, "two.png")
    assert left is not None and left[0] == 0 and left[1] < 600


def test_bad_range_and_missing_video(dance, tmp_path):
    cache = StageCache(tmp_path / "c")
    with pytest.raises(BadInput, match="past the end"):
        pipeline.pose_track(dance["video"], PoseSettings(start=400), cache)
    with pytest.raises(BadInput, match="no such file"):
        pipeline.pose_job(tmp_path / "nope.mp4", tmp_path / "o.npz", cache=cache)
    assert cache.info() == {} or all(s["entries"] == 0 for s in cache.info().values())


def test_person_flag_follows_the_chosen_dancer(data_dir, tmp_path):
    """6 frames of two dancers through the pose stage: --person 0 follows the left one, largest the right."""
    from hvg_cli.io.video import read_frames, write_video

    video = write_video(
        tmp_path / "two.mp4", (_two_dancers(f) for f in read_frames(data_dir / "dance_red_skirt.mp4", 100, 106)), 24
    )
    cache = StageCache(tmp_path / "c")
    left = pipeline.pose_track(video, PoseSettings(person="0"), cache)
    big = pipeline.pose_track(video, PoseSettings(person="largest"), cache)
    assert left.detected.all() and big.detected.all()
    hips = [LEFT_HIP, RIGHT_HIP]
    assert np.all(left.image[:, hips, 0] < 424) and np.all(big.image[:, hips, 0] > 540)  # video pixels
    height = lambda tr: np.median(tr.image[:, :, 1].max(1) - tr.image[:, :, 1].min(1))  # noqa: E731
    assert height(big) > 1.4 * height(left)  # the big dancer is 960/576 = 1.67x taller
