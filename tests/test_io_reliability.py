"""io under faults: truncated videos, full disks, odd image modes, huge photos, umask, atomic folders.

Every test here reproduces an item of issue 8 (or the single atomic writer of issue 9) with real files
made by the real ffmpeg and Pillow; faults the machine cannot make on demand (a full disk) are
simulated by making the write itself raise the OSError the kernel would.
"""

from __future__ import annotations

import errno
import os
import re
import subprocess
from pathlib import Path

import numpy as np
import pytest

from hvg_cli.core.atomic import atomic_copy, atomic_file, atomic_folder, atomic_path
from hvg_cli.core.errors import BadInput, OutputError
from hvg_cli.io.image import read_image
from hvg_cli.io.video import ffmpeg_exe, is_frames_folder, probe_video, read_frames, write_video


def _ffmpeg(*args: str) -> None:
    subprocess.run([ffmpeg_exe(), "-y", "-hide_banner", "-loglevel", "error", *args], check=True)


def _decodable_by_ffmpeg(path: Path) -> int:
    """How many video frames ffmpeg itself decodes from `path` (the oracle: one line per frame)."""
    out = subprocess.run(
        [
            ffmpeg_exe(),
            "-hide_banner",
            "-nostdin",
            "-loglevel",
            "quiet",
            "-i",
            str(path),
            "-map",
            "0:v:0",
            "-fps_mode",
            "passthrough",
            "-f",
            "framecrc",
            "-",
        ],
        capture_output=True,
        text=True,
    ).stdout
    return sum(1 for line in out.splitlines() if line.startswith("0,"))


def _cut(src: Path, dst: Path, fraction: float) -> Path:
    data = src.read_bytes()
    dst.write_bytes(data[: int(len(data) * fraction)])
    return dst


@pytest.fixture(scope="module")
def noise(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A 96-frame noisy clip (B-frames, a keyframe every 24) with its index at the front, and cuts of it."""
    d = tmp_path_factory.mktemp("noise")
    full = d / "noise.mp4"
    src = "nullsrc=s=96x64:r=24,geq=lum='random(1)*64+N*2':cb=128:cr=128"
    _ffmpeg(
        "-f",
        "lavfi",
        "-i",
        src,
        "-frames:v",
        "96",
        "-g",
        "24",
        "-pix_fmt",
        "yuv420p",
        "-movflags",
        "+faststart",
        str(full),
    )
    return {"full": full, "half": _cut(full, d / "half.mp4", 0.5)}


@pytest.fixture(scope="module")
def dance_cut(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The dance video (video + audio) remuxed with its index at the front, then cut after a third of its bytes."""
    d = tmp_path_factory.mktemp("dance")
    fast = d / "dance_faststart.mp4"
    _ffmpeg("-i", str(data_dir / "dance_red_skirt.mp4"), "-c", "copy", "-movflags", "+faststart", str(fast))
    return _cut(fast, d / "dance_cut.mp4", 1 / 3)


class _PopenSpy:
    """Records the ffmpeg commands io.video starts (and starts them)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch):
        import hvg_cli.io.video as video

        self.commands: list[list[str]] = []
        real = subprocess.Popen

        def popen(cmd, *a, **k):
            self.commands.append(list(cmd))
            return real(cmd, *a, **k)

        monkeypatch.setattr(video.subprocess, "Popen", popen)


# ---------------------------------------------------------------------------------------------
# 4. truncated videos
# ---------------------------------------------------------------------------------------------
def test_truncated_video_reads_the_frames_that_are_there(noise):
    k = _decodable_by_ffmpeg(noise["half"])
    assert 12 < k < 96  # the cut is in the middle
    info = probe_video(noise["half"])
    assert info.frame_count == 96  # what the file's index promises
    whole = np.stack(list(read_frames(noise["full"], 0, 12)))  # [12, 64, 96, 3]
    cut = np.stack(list(read_frames(noise["half"], 0, 12)))
    np.testing.assert_array_equal(cut, whole)  # the first 12 frames decode as from the intact file
    some = np.stack(list(read_frames(noise["half"], 5, 20, 3)))
    np.testing.assert_array_equal(some, np.stack(list(read_frames(noise["full"], 5, 20, 3))))


def test_truncated_video_past_its_end_is_bad_input_naming_the_file_and_the_count(noise):
    k = _decodable_by_ffmpeg(noise["half"])
    with pytest.raises(BadInput) as e:
        list(read_frames(noise["half"]))
    msg = str(e.value)
    assert e.value.exit_code == 3
    assert str(noise["half"]) in msg and "truncated" in msg
    n = int(re.search(r"(\d+) of 96 frames", msg).group(1))
    assert 0 < n <= k
    assert f"--end {n}" in msg  # the hint says how to use what is there
    assert len(list(read_frames(noise["half"], 0, n))) == n  # ... and that works


def test_truncated_video_range_past_the_cut_fails_before_decoding(noise, monkeypatch):
    k = _decodable_by_ffmpeg(noise["half"])
    probe_video(noise["half"])  # probed (and memoised) before the spy
    spy = _PopenSpy(monkeypatch)
    with pytest.raises(BadInput, match="truncated"):
        read_frames(noise["half"], 0, k + 1)
    assert spy.commands == []  # no decoder was started for frames that are not there


def test_truncated_dance_video_with_audio(dance_cut):
    k = _decodable_by_ffmpeg(dance_cut)
    assert 12 < k < 288
    info = probe_video(dance_cut)
    assert info.frame_count == 288 and info.has_audio
    assert len(list(read_frames(dance_cut, 0, 12, size=(54, 96)))) == 12  # what `hvg pose --end 12` reads
    with pytest.raises(BadInput) as e:
        for _ in read_frames(dance_cut, size=(54, 96)):
            pass
    assert str(dance_cut) in str(e.value) and "of 288 frames" in str(e.value)


def test_decoder_is_told_to_stop_at_end(noise, monkeypatch):
    probe_video(noise["full"])
    spy = _PopenSpy(monkeypatch)
    got = list(read_frames(noise["full"], 0, 12))
    assert len(got) == 12
    (cmd,) = spy.commands
    assert cmd[cmd.index("-frames:v") + 1] == "12"  # ffmpeg stops after the 12th frame


def test_reader_stops_ffmpeg_once_the_frames_are_read(noise, monkeypatch):
    """ffmpeg's own count: it decodes about the frames asked for, not the whole file."""
    import hvg_cli.io.video as video

    probe_video(noise["full"])
    procs = []
    real = subprocess.Popen

    def popen(cmd, *a, **k):
        cmd = [c if c != "error" else "verbose" for c in cmd]  # -loglevel verbose: ffmpeg reports its counts
        procs.append(real(cmd, *a, **k))
        return procs[-1]

    monkeypatch.setattr(video.subprocess, "Popen", popen)
    reader = read_frames(noise["full"], 0, 12, threads=1)
    assert len(list(reader)) == 12
    log = reader.log  # ffmpeg's stderr, kept after close
    decoded = int(re.search(r"(\d+) frames decoded", log).group(1))
    assert decoded < 24  # the 96-frame file was not decoded to the end


# ---------------------------------------------------------------------------------------------
# 5. every OSError on a write is an OutputError naming the path and the reason
# ---------------------------------------------------------------------------------------------
def _enospc(*args, **kwargs):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def test_full_disk_under_png_folder_output(tmp_path, monkeypatch):
    from PIL import Image

    out = tmp_path / "frames"
    write_video(out, [np.full((8, 8, 3), 7, np.uint8)] * 2, 24)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    monkeypatch.setattr(Image.Image, "save", _enospc)
    with pytest.raises(OutputError) as e:
        write_video(out, [np.zeros((8, 8, 3), np.uint8)] * 3, 24)
    assert e.value.exit_code == 6
    assert str(out) in str(e.value) and "No space left on device" in str(e.value) and "None" not in str(e.value)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before  # the previous output is untouched
    assert sorted(p.name for p in tmp_path.iterdir()) == ["frames"]  # no temporary folder left


def test_oserror_without_errno_still_names_its_reason(tmp_path, monkeypatch):
    from PIL import Image

    def encoder_error(*a, **k):
        raise OSError("encoder error -2 when writing image file")

    monkeypatch.setattr(Image.Image, "save", encoder_error)
    with pytest.raises(OutputError) as e:
        write_video(tmp_path / "frames", [np.zeros((8, 8, 3), np.uint8)], 24)
    assert "encoder error -2" in str(e.value) and "None" not in str(e.value)


def test_failed_rename_of_a_video_is_output_error(tmp_path, monkeypatch):
    out = tmp_path / "o.mp4"
    out.write_bytes(b"previous")

    def busy(src, dst):
        raise OSError(errno.EBUSY, os.strerror(errno.EBUSY))

    monkeypatch.setattr(os, "replace", busy)
    with pytest.raises(OutputError) as e:
        write_video(out, [np.zeros((16, 16, 3), np.uint8)] * 2, 24)
    assert str(out) in str(e.value) and "busy" in str(e.value).lower()
    assert out.read_bytes() == b"previous"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["o.mp4"]


def test_video_over_a_folder_is_output_error(tmp_path):
    (tmp_path / "o.mp4").mkdir()
    with pytest.raises(OutputError, match="o.mp4"):
        write_video(tmp_path / "o.mp4", [np.zeros((16, 16, 3), np.uint8)] * 2, 24)
    assert (tmp_path / "o.mp4").is_dir() and sorted(p.name for p in tmp_path.iterdir()) == ["o.mp4"]


def test_atomic_file_full_disk(tmp_path, monkeypatch):
    target = tmp_path / "motion.npz"
    target.write_bytes(b"old")
    monkeypatch.setattr(os, "fsync", _enospc)
    with pytest.raises(OutputError) as e:
        with atomic_file(target) as f:
            f.write(b"new")
    assert str(target) in str(e.value) and "No space left on device" in str(e.value)
    assert target.read_bytes() == b"old" and sorted(p.name for p in tmp_path.iterdir()) == ["motion.npz"]


def test_atomic_copy_full_disk_names_the_reason(tmp_path, monkeypatch):
    import shutil

    from hvg_cli.core.atomic import os_reason

    src = tmp_path / "entry"
    src.mkdir()
    (src / "000000.png").write_bytes(b"p0")
    dst = tmp_path / "out"
    monkeypatch.setattr(shutil, "copyfile", _enospc)
    with pytest.raises(OutputError) as e:
        atomic_copy(src, dst)
    assert str(dst) in str(e.value) and "No space left on device" in str(e.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["entry"]
    # copytree's aggregate error has no strerror (the old 'cannot write ...: None'): its first reason is used
    err = shutil.Error([("a.png", "b.png", "[Errno 28] No space left on device")])
    assert err.strerror is None and os_reason(err) == "[Errno 28] No space left on device"


def test_one_ffmpeg_lookup(monkeypatch):
    import hvg_cli.io.video as video
    from hvg_cli.core.errors import MissingDependency

    exe = video.find_ffmpeg()
    assert exe and Path(exe).is_file() and video.ffmpeg_exe() == exe
    monkeypatch.setattr(video, "find_ffmpeg", lambda: None)
    with pytest.raises(MissingDependency) as e:
        video.ffmpeg_exe()
    assert e.value.exit_code == 4


# ---------------------------------------------------------------------------------------------
# 10. outputs get the usual permissions (umask), not 0600 / 0700
# ---------------------------------------------------------------------------------------------
@pytest.fixture()
def umask():
    def set_mask(mask: int) -> None:
        os.umask(mask)

    old = os.umask(0o022)
    os.umask(old)
    yield set_mask
    os.umask(old)


@pytest.mark.parametrize("mask", [0o022, 0o002])
def test_outputs_follow_the_umask(tmp_path, umask, mask):
    umask(mask)
    frames = [np.zeros((16, 16, 3), np.uint8)] * 2
    mp4 = write_video(tmp_path / "o.mp4", frames, 24)
    gif = write_video(tmp_path / "o.gif", frames, 24)
    folder = write_video(tmp_path / "frames", frames, 24)
    with atomic_file(tmp_path / "m.npz") as f:
        f.write(b"x")
    copied = atomic_copy(folder, tmp_path / "copy")
    for f in (mp4, gif, tmp_path / "m.npz", *folder.iterdir(), *copied.iterdir()):
        assert oct(f.stat().st_mode & 0o777) == oct(0o666 & ~mask), f
    for d in (folder, copied):
        assert oct(d.stat().st_mode & 0o777) == oct(0o777 & ~mask), d


# ---------------------------------------------------------------------------------------------
# issue 9: one atomic writer; atomic_folder never deletes a folder hvg did not write
# ---------------------------------------------------------------------------------------------
def test_atomic_folder_refuses_to_replace_a_folder_of_other_files(tmp_path):
    mine = tmp_path / "myframes"
    mine.mkdir()
    (mine / "holiday.jpg").write_bytes(b"precious")
    with pytest.raises(OutputError, match="myframes"):
        write_video(mine, [np.zeros((8, 8, 3), np.uint8)], 24)
    assert [p.name for p in mine.iterdir()] == ["holiday.jpg"] and (mine / "holiday.jpg").read_bytes() == b"precious"
    ran = []
    with pytest.raises(OutputError):
        with atomic_folder(mine, previous_output=is_frames_folder):
            ran.append(1)  # refused before any work
    assert ran == [] and sorted(p.name for p in tmp_path.iterdir()) == ["myframes"]


def test_atomic_folder_replaces_empty_folders_and_previous_outputs(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with atomic_folder(empty) as tmp:
        (tmp / "a.txt").write_text("a")
    assert [p.name for p in empty.iterdir()] == ["a.txt"]
    frames = tmp_path / "frames"
    write_video(frames, [np.zeros((8, 8, 3), np.uint8)] * 3, 24)
    assert is_frames_folder(frames)
    write_video(frames, [np.full((8, 8, 3), 9, np.uint8)] * 2, 24)  # a previous output: replaced
    assert sorted(p.name for p in frames.iterdir()) == [".hvg-frames", "000000.png", "000001.png"]
    assert read_image(frames / "000001.png")[0, 0, 0] == 9
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty", "frames"]  # nothing else left beside them
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(OutputError, match="not a folder"):
        with atomic_folder(tmp_path / "file.txt"):
            pass
    assert (tmp_path / "file.txt").read_text() == "x"


def test_a_users_own_numbered_pngs_are_not_taken_for_hvg_frames(tmp_path):
    """Only a folder with hvg's marker is hvg's to replace, even if the user's files are named like frames."""
    theirs = tmp_path / "scan"
    theirs.mkdir()
    (theirs / "000000.png").write_bytes(b"the user's scan")
    assert not is_frames_folder(theirs)
    with pytest.raises(OutputError):
        write_video(theirs, [np.zeros((8, 8, 3), np.uint8)], 24)
    assert (theirs / "000000.png").read_bytes() == b"the user's scan"


def test_atomic_folder_failure_leaves_nothing(tmp_path):
    with pytest.raises(RuntimeError):
        with atomic_folder(tmp_path / "out") as tmp:
            (tmp / "x").write_text("half")
            raise RuntimeError("renderer crashed")
    assert list(tmp_path.iterdir()) == []


def test_atomic_path_and_copy(tmp_path):
    with atomic_path(tmp_path / "v.mp4") as tmp:
        assert tmp.suffix == ".mp4" and tmp.parent == tmp_path and tmp != tmp_path / "v.mp4"
        tmp.write_bytes(b"video")
    assert (tmp_path / "v.mp4").read_bytes() == b"video"
    dst = atomic_copy(tmp_path / "v.mp4", tmp_path / "sub" / "w.mp4")
    assert dst.read_bytes() == b"video"
    src = tmp_path / "maps"
    src.mkdir()
    (src / "000000.png").write_bytes(b"p0")
    out = atomic_copy(src, tmp_path / "maps_out")
    assert [(p.name, p.read_bytes()) for p in out.iterdir()] == [("000000.png", b"p0")]
    with pytest.raises(OutputError):
        atomic_copy(tmp_path / "missing.mp4", tmp_path / "x.mp4")
    assert not (tmp_path / "x.mp4").exists()


# ---------------------------------------------------------------------------------------------
# 8. image modes: 16-bit, greyscale, palette, alpha
# ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def grey(data_dir: Path) -> np.ndarray:
    from PIL import Image

    with Image.open(data_dir / "photo_woman_studio.jpg") as im:
        return np.asarray(im.convert("L"))  # [H, W] uint8


def test_16_bit_greyscale_png_is_read_as_its_picture(grey, tmp_path):
    from PIL import Image

    g16 = grey.astype(np.uint16) * 257  # the full 16-bit range
    Image.fromarray(g16).save(tmp_path / "g16.png")
    with Image.open(tmp_path / "g16.png") as im:
        assert im.mode.startswith("I")  # Pillow keeps 16 bits
    rgb = read_image(tmp_path / "g16.png")
    assert rgb.dtype == np.uint8 and rgb.shape == (*grey.shape, 3)
    np.testing.assert_array_equal(rgb, np.repeat(grey[:, :, None], 3, axis=2))


def test_16_bit_greyscale_photo_has_its_person(grey, tmp_path):
    """Issue 8 item 8 as the user met it: the 16-bit photo was all white, so MediaPipe found nobody."""
    from PIL import Image

    from hvg_cli.pose.photo import detect_photo

    Image.fromarray(grey.astype(np.uint16) * 257).save(tmp_path / "g16.png")
    det = detect_photo(read_image(tmp_path / "g16.png"), "g16.png")  # raised NoPerson before the fix
    ref = detect_photo(np.repeat(grey[:, :, None], 3, axis=2), "grey")
    assert np.abs(det.landmarks - ref.landmarks).max() < 1.0  # pixels: the same person, the same pose


def test_16_bit_colour_and_32_bit_integer_images(grey, tmp_path):
    from PIL import Image

    Image.fromarray(grey.astype(np.int32) * 257, mode="I").save(tmp_path / "i32.tif")
    np.testing.assert_array_equal(read_image(tmp_path / "i32.tif")[..., 1], grey)
    Image.fromarray(grey.astype(np.float32) / 255.0, mode="F").save(tmp_path / "f.tif")
    assert np.abs(read_image(tmp_path / "f.tif")[..., 0].astype(int) - grey).max() <= 1


@pytest.mark.parametrize("mode", ["L", "P", "LA", "RGBA", "1"])
def test_other_modes_read_as_rgb(grey, tmp_path, mode):
    from PIL import Image

    rgb = np.stack([grey, grey[::-1], 255 - grey], axis=2)  # [H, W, 3]
    im = Image.fromarray(grey if mode in ("L", "LA", "1") else rgb)
    im = im.convert(mode)
    im.save(tmp_path / "x.png")
    got = read_image(tmp_path / "x.png")
    want = np.asarray(im.convert("RGB"))
    assert got.shape == want.shape and got.dtype == np.uint8
    np.testing.assert_array_equal(got, want)  # opaque: alpha composites to the picture itself


def test_transparent_pixels_become_white(tmp_path):
    from PIL import Image

    a = np.zeros((4, 4, 4), np.uint8)
    a[:2] = (200, 10, 10, 255)  # top half opaque red, bottom half transparent black
    Image.fromarray(a, "RGBA").save(tmp_path / "a.png")
    Image.fromarray(a[..., [0, 3]], "LA").save(tmp_path / "la.png")
    for name in ("a.png", "la.png"):
        got = read_image(tmp_path / name)
        assert (got[3] == 255).all() and got[0, 0, 0] == 200, name


# ---------------------------------------------------------------------------------------------
# 10. a huge photo is decoded small
# ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def big_jpeg(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from PIL import Image

    p = tmp_path_factory.mktemp("big") / "big.jpg"
    with Image.open(data_dir / "photo_woman_studio.jpg") as im:  # 750 x 1101
        im.resize((1500, 2202), Image.Resampling.BICUBIC).save(p, quality=92)
    return p


def test_read_image_max_side_decodes_small(big_jpeg, monkeypatch):
    from PIL import Image

    opened = []
    real_open = Image.open

    def spy(*a, **k):
        opened.append(real_open(*a, **k))
        return opened[-1]

    monkeypatch.setattr(Image, "open", spy)
    small = read_image(big_jpeg, max_side=500)
    assert small.shape == (500, 341, 3) and small.dtype == np.uint8  # long side 500, aspect kept
    decoded_w, decoded_h = opened[-1].size
    assert decoded_w * decoded_h <= 1500 * 2202 // 4  # JPEG draft: decoded at 1/4 (or less), never full size
    assert min(decoded_w, decoded_h) >= 341  # ... and never below the requested size
    monkeypatch.setattr(Image, "open", real_open)
    full = read_image(big_jpeg)
    assert full.shape == (2202, 1500, 3)
    ref = np.asarray(Image.fromarray(full).resize((341, 500), Image.Resampling.BOX)).astype(int)
    assert np.abs(small.astype(int) - ref).mean() < 4  # the same picture


def test_read_image_max_side_png_exif_and_no_upscale(tmp_path, big_jpeg):
    from PIL import Image

    with Image.open(big_jpeg) as im:
        im.save(tmp_path / "big.png")
        exif = im.getexif()
        exif[0x0112] = 6  # shown turned 90° clockwise: 2202 x 1500
        im.save(tmp_path / "turned.jpg", exif=exif, quality=90)
    assert read_image(tmp_path / "big.png", max_side=300).shape == (300, 204, 3)
    assert read_image(tmp_path / "turned.jpg", max_side=300).shape == (204, 300, 3)
    assert read_image(tmp_path / "big.png", max_side=5000).shape == (2202, 1500, 3)  # never upscaled
