"""`hvg pose` through Typer's test runner on the real app: exit codes, one-line errors, --json,
no cache entry left by a failed run, no existing output overwritten."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from hvg_cli.cli.main import app
from hvg_cli.core.cache import StageCache
from hvg_cli.io.video import ffmpeg_exe, probe_video, read_frames

try:  # click >= 8.2 keeps stderr apart by default; older versions need mix_stderr=False
    runner = CliRunner(mix_stderr=False)
except TypeError:
    runner = CliRunner()


def _ffmpeg(*args: str) -> None:
    subprocess.run([ffmpeg_exe(), "-y", "-hide_banner", "-loglevel", "error", *args], check=True)


def _entries(cache_dir: Path) -> int:
    return sum(s["entries"] for s in StageCache(cache_dir).info().values())


def _one_line(stderr: str) -> str:
    """The one error line; the only other lines allowed are the progress bar's final state."""
    lines = [ln for ln in stderr.strip().splitlines() if ln.strip() and not ln.startswith("pose ")]
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr
    return lines[0]


@pytest.fixture(scope="module")
def bad_videos(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("bad")
    text = d / "notes.mp4"
    text.write_text("hello, I am not a video\n")
    empty = d / "empty.mp4"
    empty.write_bytes(b"")
    zero = d / "zero.mp4"  # a valid mp4 container holding no frames
    _ffmpeg("-f", "lavfi", "-i", "testsrc=size=64x48:rate=24", "-frames:v", "0", "-pix_fmt", "yuv420p", str(zero))
    nobody = d / "testsrc.mp4"  # a test pattern: no person in it
    _ffmpeg("-f", "lavfi", "-i", "testsrc=size=160x120:rate=24", "-frames:v", "12", "-pix_fmt", "yuv420p", str(nobody))
    # the dancer leaves mid-way: 48 frames of the dance (downscaled), frames 12..35 black (1 s,
    # longer than the default max gap of 12 frames = 0.5 s at 24 fps)
    leaves = d / "leaves.mp4"
    _ffmpeg(
        "-i",
        str(data_dir / "dance_red_skirt.mp4"),
        "-frames:v",
        "48",
        "-an",
        "-vf",
        "scale=270:480,drawbox=x=0:y=0:w=iw:h=ih:color=black:t=fill:enable='between(n,12,35)'",
        "-pix_fmt",
        "yuv420p",
        str(leaves),
    )
    return {"text": text, "empty": empty, "zero": zero, "nobody": nobody, "leaves": leaves, "dir": d}


@pytest.mark.parametrize(
    "name,code,words",
    [
        ("missing", 3, "no such file"),
        ("text", 3, "not a video"),
        ("empty", 3, "empty"),
        ("zero", 3, "not a video"),
        ("nobody", 5, "no person found"),
        ("leaves", 5, "frames 12-35"),
    ],
)
def test_bad_inputs_exit_code_one_line_no_cache_no_overwrite(bad_videos, tmp_path, name, code, words):
    video = bad_videos.get(name, bad_videos["dir"] / "missing.mp4")
    cache_dir = tmp_path / "cache"
    out = tmp_path / "motion.npz"
    out.write_bytes(b"previous result")
    res = runner.invoke(app, ["pose", str(video), "-o", str(out), "--cache-dir", str(cache_dir)])
    assert res.exit_code == code, (res.stdout, res.stderr)
    line = _one_line(res.stderr)
    assert line.startswith("hvg: ") and str(video) in line and words in line, line
    assert _entries(cache_dir) == 0  # a failed run leaves no cache entry
    assert not any(p.name.startswith(".tmp-") for p in cache_dir.rglob("*"))
    assert out.read_bytes() == b"previous result"  # nor touches the output
    assert res.stdout == ""


def test_leaves_is_fine_with_a_longer_max_gap(bad_videos, tmp_path):
    """The same clip passes when the gap is allowed: the lost second is filled by interpolation."""
    out = tmp_path / "m.npz"
    res = runner.invoke(
        app,
        [
            "pose",
            str(bad_videos["leaves"]),
            "-o",
            str(out),
            "--max-gap",
            "30",
            "--cache-dir",
            str(tmp_path / "c"),
            "--json",
            "--quiet",
        ],
    )
    assert res.exit_code == 0, res.stderr
    d = np.load(out)
    assert d["poses"].shape == (48, 72)
    det = d["hvg_detected"]
    assert det[:12].all() and not det[12:36].any() and det[36:].all()  # black frames: nobody, filled
    assert np.isfinite(d["hvg_landmarks"]).all()


def test_json_result_and_cached_second_run(data_dir, session_cache, tmp_path):
    """The dance through the CLI, on the session's shared cache (test_pose.py computed it, or we do)."""
    cache_dir = session_cache  # the session's shared cache: the dance is posed once
    args = ["pose", str(data_dir / "dance_red_skirt.mp4"), "--cache-dir", str(cache_dir), "--json"]
    first = runner.invoke(app, [*args, "-o", str(tmp_path / "a.npz")])
    assert first.exit_code == 0, first.stderr
    n_entries = _entries(cache_dir)
    second = runner.invoke(app, [*args, "-o", str(tmp_path / "b.npz")])
    assert second.exit_code == 0, second.stderr
    doc = json.loads(second.stdout)
    assert doc["cached"] is True and "pose: cached motion" in second.stderr
    assert (doc["frames"], doc["fps"], doc["fps_exact"], doc["source"]) == (288, 24.0, "24/1", "video")
    assert doc["out"] == str(tmp_path / "b.npz") and 0 <= doc["fit_error_deg"] < 1.0
    assert _entries(cache_dir) == n_entries
    a, b = np.load(tmp_path / "a.npz"), np.load(tmp_path / "b.npz")
    np.testing.assert_array_equal(a["poses"], b["poses"])
    np.testing.assert_array_equal(a["trans"], b["trans"])


def test_summary_line_and_preview(data_dir, tmp_path):
    """Frames 24..47 of the dance with --preview: a 24-frame overlay video with audio."""
    out, preview = tmp_path / "part.npz", tmp_path / "fit.mp4"
    res = runner.invoke(
        app,
        [
            "pose",
            str(data_dir / "dance_red_skirt.mp4"),
            "-o",
            str(out),
            "--start",
            "24",
            "--end",
            "48",
            "--preview",
            str(preview),
            "--cache-dir",
            str(tmp_path / "c"),
            "--quiet",
        ],
    )
    assert res.exit_code == 0, res.stderr
    assert res.stdout == ""  # the human summary goes to stderr; stdout carries results only (--json)
    line = res.stderr.strip().splitlines()[-1]
    assert line.startswith(f"wrote {out}: 24 frames at 24 fps, fit error ") and "preview" in line
    d = np.load(out)
    assert d["poses"].shape == (24, 72)
    np.testing.assert_array_equal(d["hvg_frame_indices"], np.arange(24, 48))
    assert float(d["hvg_start_time"]) == pytest.approx(1.0)  # frame 24 at 24 fps
    info = probe_video(preview)
    assert (info.frame_count, info.fps, info.has_audio) == (24, 24, True)
    assert max(info.width, info.height) <= 960
    # the skeleton is drawn: the right side's blue (0, 170, 255) appears where the plain frame has none
    drawn = next(read_frames(preview, 5, 6)).astype(int)
    plain = next(read_frames(data_dir / "dance_red_skirt.mp4", 29, 30))[::2, ::2].astype(int)
    blue = lambda im: (np.abs(im - np.array([0, 170, 255])).sum(-1) < 90).sum()  # noqa: E731
    assert blue(drawn) > blue(plain) + 100


def test_stride_gives_exact_fps(data_dir, tmp_path):
    out = tmp_path / "s.npz"
    res = runner.invoke(
        app,
        [
            "pose",
            str(data_dir / "dance_red_skirt.mp4"),
            "-o",
            str(out),
            "--end",
            "30",
            "--stride",
            "5",
            "--cache-dir",
            str(tmp_path / "c"),
            "--json",
            "-q",
        ],
    )
    assert res.exit_code == 0, res.stderr
    doc = json.loads(res.stdout)
    assert (doc["frames"], doc["fps_exact"]) == (6, "24/5")
    d = np.load(out)
    assert (int(d["hvg_fps_num"]), int(d["hvg_fps_den"])) == (24, 5)
    np.testing.assert_array_equal(d["hvg_frame_indices"], [0, 5, 10, 15, 20, 25])


def test_usage_errors(tmp_path):
    res = runner.invoke(app, ["pose", "--stride", "0", "x.mp4"])
    assert res.exit_code == 2
    res = runner.invoke(app, ["pose", "x.mp4", "--person", "tallest", "-o", str(tmp_path / "o.npz")])
    assert res.exit_code == 3  # the file is checked first
    res = runner.invoke(app, ["pose", str(tmp_path), "-o", str(tmp_path / "o.txt")])
    assert res.exit_code == 6 and ".npz" in res.stderr and ".bvh" in res.stderr


def test_output_format_follows_the_suffix(tmp_path):
    """-o x.bvh writes BVH (SMPL names, readable back to the same motion), -o x.npz the AMASS layout."""
    from hvg_cli.pipeline import load_bvh, load_motion_npz

    bvh, npz = tmp_path / "wave.bvh", tmp_path / "wave.npz"
    for out in (bvh, npz):
        res = runner.invoke(app, ["pose", "wave", "-o", str(out), "-q"])
        assert res.exit_code == 0, res.stderr
    assert bvh.read_text().startswith("HIERARCHY") and "JOINT left_hip" in bvh.read_text()
    a, b = load_bvh(bvh), load_motion_npz(npz)
    assert a.num_frames == b.num_frames
    np.testing.assert_allclose(a.joints - a.trans[:, None], b.joints - b.trans[:, None], atol=2e-3)


def test_presets_list_and_convert(tmp_path):
    res = runner.invoke(app, ["pose", "--list-presets", "--json"])
    assert res.exit_code == 0, res.stderr
    rows = json.loads(res.stdout)
    names = [r["name"] for r in rows]
    assert "wave" in names and all(r["frames"] > 0 and r["fps"] > 0 for r in rows)
    out = tmp_path / "wave.npz"
    res = runner.invoke(app, ["pose", "wave", "-o", str(out), "--json", "-q"])
    assert res.exit_code == 0, res.stderr
    doc = json.loads(res.stdout)
    assert doc["source"] == "preset" and doc["fit_error_deg"] is None
    d = np.load(out)
    wave = next(r for r in rows if r["name"] == "wave")
    assert d["poses"].shape == (wave["frames"], 72) and float(d["mocap_framerate"]) == pytest.approx(wave["fps"])
    res = runner.invoke(app, ["pose", "no-such-motion", "-o", str(out)])
    assert res.exit_code == 3 and "wave" in res.stderr  # the error lists the presets
