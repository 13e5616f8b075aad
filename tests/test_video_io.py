"""io.video and io.image on clips made here with the real ffmpeg (tiny: 64x48, 10 frames)."""

from __future__ import annotations

import subprocess
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from hvg_cli.core.errors import BadInput, OutputError
from hvg_cli.io.image import read_image
from hvg_cli.io.video import ffmpeg_exe, probe_video, read_frames, write_video


def _ffmpeg(*args: str) -> None:
    subprocess.run([ffmpeg_exe(), "-y", "-hide_banner", "-loglevel", "error", *args], check=True)


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("clips")
    ntsc = d / "ntsc.mp4"  # 10 frames at 30000/1001, brightness 20 levels higher each frame
    src = "nullsrc=size=64x48:rate=30000/1001,geq=lum='20*N+X':cb=128:cr=128"
    _ffmpeg("-f", "lavfi", "-i", src, "-frames:v", "10", "-pix_fmt", "yuv420p", str(ntsc))
    rot = d / "rot.mp4"  # the same stream with a display matrix: shown turned 90° counter-clockwise
    _ffmpeg("-display_rotation", "90", "-i", str(ntsc), "-c", "copy", str(rot))
    zero = d / "zero.mp4"  # a valid container with no frames
    _ffmpeg("-f", "lavfi", "-i", "testsrc=size=64x48:rate=24", "-frames:v", "0", "-pix_fmt", "yuv420p", str(zero))
    text = d / "notes.mp4"
    text.write_text("this is not a video\n")
    empty = d / "empty.mp4"
    empty.write_bytes(b"")
    tone = d / "tone.m4a"
    _ffmpeg("-f", "lavfi", "-i", "sine=frequency=440:duration=2", "-c:a", "aac", str(tone))
    return {"ntsc": ntsc, "rot": rot, "zero": zero, "text": text, "empty": empty, "tone": tone}


def test_probe_keeps_rational_fps_and_counts_frames(clips):
    info = probe_video(clips["ntsc"])
    assert info.fps == Fraction(30000, 1001)  # exact, not 29.97
    assert info.frame_count == 10
    assert (info.width, info.height, info.rotation, info.has_audio) == (64, 48, 0, False)
    assert info.duration == pytest.approx(10 * 1001 / 30000)


def test_probe_dance_video(data_dir):
    info = probe_video(data_dir / "dance_red_skirt.mp4")
    assert (info.fps, info.frame_count, info.width, info.height, info.has_audio) == (
        Fraction(24),
        288,
        1080,
        1920,
        True,
    )


def test_rotation_metadata_is_honoured(clips):
    plain = np.stack(list(read_frames(clips["ntsc"])))  # [10, 48, 64, 3]
    info = probe_video(clips["rot"])
    assert info.rotation == 270  # clockwise degrees, like the `rotate` tag phones write
    assert (info.width, info.height) == (48, 64)
    turned = np.stack(list(read_frames(clips["rot"])))  # [10, 64, 48, 3]
    assert turned.shape == (10, 64, 48, 3)
    np.testing.assert_array_equal(turned, np.rot90(plain, 1, axes=(1, 2)))  # counter-clockwise


@pytest.mark.parametrize("start,end,stride", [(0, None, 1), (3, None, 1), (3, 9, 2), (0, 10, 3), (7, 8, 1), (9, 50, 4)])
def test_start_end_stride_pick_exact_frames(clips, start, end, stride):
    full = np.stack(list(read_frames(clips["ntsc"])))
    got = np.stack(list(read_frames(clips["ntsc"], start=start, end=end, stride=stride)))
    want = full[start:end:stride]
    assert got.shape == want.shape
    np.testing.assert_array_equal(got, want)  # decoding is deterministic: the same pixels


def test_frames_are_distinct(clips):
    full = np.stack(list(read_frames(clips["ntsc"]))).astype(np.int16)
    assert all((full[i + 1] - full[i]).mean() > 12 for i in range(9))  # the index test above can fail


def test_write_video_round_trip_with_exact_fps_and_audio(clips, tmp_path):
    frames = np.stack(list(read_frames(clips["ntsc"])))
    out = write_video(tmp_path / "o.mp4", frames, Fraction(30000, 1001), audio_from=clips["tone"], audio_start=0.5)
    info = probe_video(out)
    assert (info.fps, info.frame_count, info.has_audio) == (Fraction(30000, 1001), 10, True)
    back = np.stack(list(read_frames(out))).astype(np.int16)
    assert np.abs(back - frames).mean() < 6  # H.264 at CRF 19 on a 64x48 test pattern
    # no audio source -> video only; odd sizes padded to even
    odd = write_video(tmp_path / "odd.mp4", [np.full((47, 63, 3), 200, np.uint8)] * 3, 24)
    oi = probe_video(odd)
    assert (oi.width, oi.height, oi.frame_count, oi.has_audio) == (64, 48, 3, False)
    assert np.abs(next(read_frames(odd)).astype(int) - 200).max() <= 3  # padding repeats the edge


def test_write_gif_and_png_folder(clips, tmp_path):
    frames = np.stack(list(read_frames(clips["ntsc"])))
    gif = write_video(tmp_path / "o.gif", frames, 10)
    assert probe_video(gif).frame_count == 10
    folder = write_video(tmp_path / "frames", frames, 10)
    files = sorted(folder.glob("*.png"))  # beside them: the .hvg-frames marker
    assert [f.name for f in files][:2] == ["000000.png", "000001.png"] and len(files) == 10
    np.testing.assert_array_equal(read_image(files[3]), frames[3])  # PNG is lossless


def test_failed_write_keeps_previous_output(clips, tmp_path):
    out = tmp_path / "keep.mp4"
    out.write_bytes(b"previous")

    def frames():
        yield np.zeros((48, 64, 3), np.uint8)
        raise RuntimeError("renderer crashed")

    with pytest.raises(RuntimeError):
        write_video(out, frames(), 24)
    assert out.read_bytes() == b"previous"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.mp4"]  # no temp file left
    with pytest.raises(OutputError):
        write_video(tmp_path / "x.avi2", [np.zeros((4, 4, 3), np.uint8)], 24)


@pytest.mark.parametrize(
    "name,words", [("missing", "no such file"), ("text", "not a video"), ("empty", "empty"), ("zero", "not a video")]
)
def test_bad_inputs_raise_bad_input_naming_the_file(clips, tmp_path, name, words):
    path = clips[name] if name != "missing" else tmp_path / "missing.mp4"
    with pytest.raises(BadInput) as e:
        probe_video(path)
    assert str(path) in str(e.value) and words in str(e.value)
    assert e.value.exit_code == 3


def test_read_image_applies_exif_orientation(tmp_path):
    from PIL import Image

    a = np.zeros((20, 40, 3), np.uint8)  # landscape, red left half
    a[:, :20] = (255, 0, 0)
    img = Image.fromarray(a)
    exif = img.getexif()
    exif[0x0112] = 6  # orientation 6: the viewer turns it 90° clockwise
    img.save(tmp_path / "phone.jpg", exif=exif, quality=95)
    up = read_image(tmp_path / "phone.jpg")
    assert up.shape == (40, 20, 3) and up.dtype == np.uint8
    assert up[5, 10, 0] > 200 and up[35, 10, 0] < 60  # the red half is now at the top
    with pytest.raises(BadInput, match="no such file"):
        read_image(tmp_path / "nope.jpg")
    (tmp_path / "bad.jpg").write_text("not an image")
    with pytest.raises(BadInput, match="bad.jpg"):
        read_image(tmp_path / "bad.jpg")


def test_read_image_real_photo(data_dir):
    img = read_image(data_dir / "photo_woman_studio.jpg")
    assert img.dtype == np.uint8 and img.ndim == 3 and img.shape[2] == 3
    assert sorted(img.shape[:2]) == [750, 1101]


def test_read_frames_resized_and_fit_size(clips):
    from hvg_cli.io.video import fit_size

    assert fit_size(1080, 1920, 960) == (540, 960)
    assert fit_size(64, 48, 960) == (64, 48)  # never upscaled
    assert fit_size(1080, 1920, 0) == (1080, 1920)
    full = np.stack(list(read_frames(clips["ntsc"], 2, 6)))  # [4, 48, 64, 3]
    half = np.stack(list(read_frames(clips["ntsc"], 2, 6, size=(32, 24))))
    assert half.shape == (4, 24, 32, 3)
    box = full.reshape(4, 24, 2, 32, 2, 3).astype(float).mean(axis=(2, 4))  # 2x2 box average
    assert np.abs(half - box).mean() < 3.0  # ffmpeg's area filter = the box average (same frames)
