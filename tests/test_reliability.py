"""Issue 8's table of bad inputs and faults, run through the real CLI as a hostile user would.

For every case: the documented exit code, one line on stderr naming the problem and no traceback, every input
and every earlier output byte-identical afterwards, and a consistent cache (`hvg cache info` counts exactly the
finished entries on disk, no temporary folder left behind). Success cases that need a note (two people, a photo
cut at the knees, a huge photo) say so on stderr and finish.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from hvg_cli.cli.main import app
from hvg_cli.io.video import ffmpeg_exe

runner = CliRunner()
STAGE_DIR_NAMES = (
    "pose_track",
    "motion_video",
    "subject",
    "preview_model",
    "bonemap_video",
    "sampler",
    "render",
    "batch",
)


def _ffmpeg(*args: str) -> None:
    subprocess.run([ffmpeg_exe(), "-y", "-hide_banner", "-loglevel", "error", *args], check=True)


def _digests(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def _assert_cache_consistent(cache: Path) -> None:
    """`hvg cache info` counts exactly the finished entries on disk; no temporary folder or lock is left."""
    r = runner.invoke(app, ["cache", "info", "--json", "--cache-dir", str(cache)])
    assert r.exit_code == 0, r.output
    info = json.loads(r.stdout)["stages"]
    on_disk = {}
    if cache.exists():
        for stage in (p for p in cache.iterdir() if p.is_dir()):  # beside them: the file-hash memo
            entries = [p for p in stage.iterdir() if p.is_dir() and (p / ".complete").exists()]
            if entries:
                on_disk[stage.name] = len(entries)
            leftovers = [p.name for p in stage.iterdir() if p.name.startswith((".tmp-", ".lock-"))]
            assert not leftovers, f"left in {stage}: {leftovers}"
    assert {k: v["entries"] for k, v in info.items() if v["entries"]} == on_disk


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> dict[str, Path]:
    """The inputs of the table, made once: good ones (copies of the shared data) and bad ones."""
    d = tmp_path_factory.mktemp("reliability")
    photo = d / "photo.jpg"
    shutil.copy(data_dir / "photo_woman_studio.jpg", photo)
    dance = d / "dance.mp4"
    _ffmpeg(
        "-i",
        str(data_dir / "dance_red_skirt.mp4"),
        "-frames:v",
        "48",
        "-vf",
        "scale=270:480",
        "-c:a",
        "copy",
        "-movflags",
        "+faststart",
        "-pix_fmt",
        "yuv420p",
        str(dance),
    )
    truncated = d / "cut.mp4"
    truncated.write_bytes(dance.read_bytes()[: int(dance.stat().st_size * 0.4)])  # moov at the front: it opens
    leaves = d / "leaves.mp4"  # the dancer is gone for frames 12..35 (1 s, longer than half a second)
    _ffmpeg(
        "-i",
        str(dance),
        "-vf",
        "drawbox=x=0:y=0:w=iw:h=ih:color=black:t=fill:enable='between(n,12,35)'",
        "-an",
        "-pix_fmt",
        "yuv420p",
        str(leaves),
    )
    text = d / "notes.jpg"
    text.write_text("I am not a photo\n")
    empty = d / "empty.jpg"
    empty.write_bytes(b"")
    folder = d / "a-folder.jpg"
    folder.mkdir()
    image = Image.open(photo)
    nobody = d / "wall.png"
    Image.new("RGB", (400, 600), (180, 170, 160)).save(nobody)
    two = d / "two-people.jpg"
    pair = Image.new("RGB", (image.width * 2, image.height), (255, 255, 255))
    pair.paste(image, (0, 0))
    pair.paste(image, (image.width, 0))
    pair.save(two, quality=92)
    knees = d / "cut-at-knees.jpg"
    image.crop((0, 0, image.width, int(image.height * 0.66))).save(knees, quality=92)
    huge = d / "huge.jpg"  # 4500 x 6606: a phone or DSLR photo
    image.resize((4500, int(image.height * 4500 / image.width)), Image.BICUBIC).save(huge, quality=90)
    grey16 = d / "grey16.png"
    arr = np.asarray(image.convert("L"), dtype=np.uint16) * 257
    Image.fromarray(arr).save(grey16)
    bad_yaml = d / "bad.yaml"
    bad_yaml.write_text("generator: orbit\nargs: {views: 8\n")
    nan_yaml = d / "nan.yaml"
    nan_yaml.write_text(
        "description: an orbit with a broken elevation\ngenerator: orbit\nargs: {views: 8, elevation: .nan}\n"
    )
    nan_motion = d / "nan-fps.npz"
    np.savez(nan_motion, poses=np.zeros((4, 72)), trans=np.zeros((4, 3)), mocap_framerate=np.array(np.nan))
    inf_json = d / "inf-size.json"
    inf_json.write_text(
        json.dumps(
            {
                "render_height": float("inf"),
                "render_width": 64,
                "camera_path": [{"camera_to_world": [1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 3, 0, 0, 0, 1], "fov": 40}],
            }
        ).replace("Infinity", "1e999")
    )
    return {
        "dir": d,
        "photo": photo,
        "nan_motion": nan_motion,
        "inf_json": inf_json,
        "dance": dance,
        "truncated": truncated,
        "leaves": leaves,
        "text": text,
        "empty": empty,
        "folder": folder,
        "nobody": nobody,
        "two": two,
        "knees": knees,
        "huge": huge,
        "grey16": grey16,
        "bad_yaml": bad_yaml,
        "nan_yaml": nan_yaml,
    }


# (name, command line with {placeholders}, exit code, words in the one stderr line)
FAILURES = [
    ("missing photo", "animate {dir}/nope.jpg --motion wave", 3, "no such file"),
    ("photo is a folder", "animate {folder} --motion wave", 3, "is a folder"),
    ("photo is text", "animate {text} --motion wave", 3, "notes.jpg"),
    ("empty photo", "animate {empty} --motion wave", 3, "empty"),
    ("no person in the photo", "animate {nobody} --motion wave", 5, "wall.png"),
    ("missing motion", "animate {photo} --motion {dir}/nope.mp4", 3, "nope.mp4"),
    ("truncated video, frames past the cut", "animate {photo} --motion {truncated} --start 40", 3, "truncated"),
    ("person leaves the video", "animate {photo} --motion {leaves} --frames 48", 5, "--max-gap"),
    ("unknown motion preset", "animate {photo} --motion moonwalk", 3, "moonwalk"),
    ("unknown camera preset", "animate {photo} --motion wave --camera tumble", 3, "tumble"),
    ("malformed camera YAML", "animate {photo} --motion wave --camera {bad_yaml}", 3, "bad.yaml"),
    ("non-finite camera YAML", "animate {photo} --motion wave --camera {nan_yaml}", 3, "finite"),
    ("motion file with a NaN frame rate", "animate {photo} --motion {nan_motion}", 3, "nan"),
    ("camera JSON with an infinite size", "animate {photo} --motion wave --camera {inf_json}", 3, "render_height"),
    ("--orbit nan", "animate {photo} --motion wave --orbit nan", 2, "--orbit"),
    ("--orbit inf", "animate {photo} --motion wave --orbit inf", 2, "--orbit"),
    ("--orbit 1e308", "animate {photo} --motion wave --orbit 1e308", 2, "--orbit"),
    ("--elevation nan", "animate {photo} --motion wave --elevation nan", 2, "--elevation"),
    ("--device tpu", "animate {photo} --motion wave --device tpu", 2, "--device"),
    ("--dtype fp8", "animate {photo} --motion wave --dtype fp8", 2, "--dtype"),
    (
        "--sampling bogus with preview",
        "animate {photo} --motion wave --backend preview --sampling bogus",
        2,
        "--sampling",
    ),
    (
        "--tile-frames 0 with preview",
        "animate {photo} --motion wave --backend preview --tile-frames 0",
        2,
        "--tile-frames",
    ),
    ("output is the photo", "animate {photo} --motion wave -o {photo}", 6, "photo.jpg"),
    ("output is the video", "animate {photo} --motion {dance} -o {dance}", 6, "input"),
    ("output folder holds the inputs", "animate {photo} --motion wave -o {dir}", 6, "holds an input"),
    ("output folder holds other files", "animate {photo} --motion wave -o {folder}", 6, "folder"),
    (
        "diffusion without weights",
        "animate {photo} --motion wave --backend diffusion --weights {dir}/no-weights",
        4,
        "weights",
    ),
    ("cache clear outside the cache", "cache clear --stage ..", 2, "stage"),
]


def _line(stderr: str) -> str:
    """The one error line (a progress bar's last state may precede it)."""
    lines = [ln for ln in stderr.strip().splitlines() if ln.strip().startswith("hvg:") or "Error" in ln]
    assert "Traceback" not in stderr, stderr
    assert len(lines) == 1, stderr
    return lines[0]


@pytest.mark.parametrize("name,command,code,words", FAILURES, ids=[f[0] for f in FAILURES])
def test_bad_input_fails_cleanly(
    world: dict[str, Path], tmp_path: Path, name: str, command: str, code: int, words: str
) -> None:
    cache = tmp_path / "cache"
    out = tmp_path / "earlier.mp4"
    out.write_bytes(b"an earlier output")
    args = command.format(**{k: str(v) for k, v in world.items()}).split()
    if "-o" not in args and args[0] == "animate":
        args += ["-o", str(out)]
    if args[0] == "animate":
        args += ["--resolution", "64"] + ([] if "--frames" in args else ["--frames", "4"])
    before = _digests(world["dir"])
    r = runner.invoke(app, [*args, "--cache-dir", str(cache)])
    assert r.exit_code == code, r.output
    line = _line(r.stderr)
    assert words in line, line
    assert _digests(world["dir"]) == before, "an input changed"
    assert out.read_bytes() == b"an earlier output", "the earlier output changed"
    _assert_cache_consistent(cache)


SUCCESSES = [
    ("two people: the one MediaPipe picked", "two", "more than one person"),
    ("photo cut at the knees: legs guessed", "knees", "legs are not visible"),
    ("16-bit grey PNG", "grey16", None),
]


@pytest.mark.parametrize("name,photo,note", SUCCESSES, ids=[s[0] for s in SUCCESSES])
def test_awkward_photos_still_animate_and_say_what_they_did(
    world: dict[str, Path], tmp_path: Path, name: str, photo: str, note: str | None
) -> None:
    out = tmp_path / "out.mp4"
    r = runner.invoke(
        app,
        [
            "animate",
            str(world[photo]),
            "--motion",
            "wave",
            "--frames",
            "2",
            "--resolution",
            "64",
            "-o",
            str(out),
            "--cache-dir",
            str(tmp_path / "cache"),
        ],
    )
    assert r.exit_code == 0, r.output
    assert out.stat().st_size > 0
    if note:
        assert note in r.stderr, r.stderr
    _assert_cache_consistent(tmp_path / "cache")


def test_huge_photo_is_analysed_downscaled(world: dict[str, Path], tmp_path: Path) -> None:
    """A 4500 x 6606 photo: the subject is stored at 2048 px on its longer side, and the cache stays small."""
    from hvg_cli.core.cache import StageCache
    from hvg_cli.core.progress import SilentReporter
    from hvg_cli.core.settings import SubjectSettings
    from hvg_cli.pipeline import subject

    cache = StageCache(tmp_path / "cache")
    s = subject(world["huge"], SubjectSettings(), cache, SilentReporter())
    assert max(s.image.shape[:2]) == 2048 and s.mask.shape == s.image.shape[:2]
    assert cache.info()["subject"]["bytes"] < 40e6


def test_read_only_and_full_output(world: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A read-only output folder and a full disk are exit 6 naming the path and the reason."""
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        if os.access(ro, os.W_OK):
            pytest.fail("running as a user who can write into a 0555 folder: this check needs a normal user")
    except pytest.fail.Exception:
        ro.chmod(0o755)
        # root ignores permissions; simulate the read-only file system instead
        real = os.replace

        def read_only(src, dst, *a, **k):
            raise OSError(errno.EROFS, "Read-only file system", str(dst))

        monkeypatch.setattr(os, "replace", read_only)
        r = runner.invoke(app, ["pose", "wave", "-o", str(ro / "m.npz"), "--cache-dir", str(tmp_path / "c")])
        monkeypatch.setattr(os, "replace", real)
    else:
        r = runner.invoke(app, ["pose", "wave", "-o", str(ro / "m.npz"), "--cache-dir", str(tmp_path / "c")])
        ro.chmod(0o755)
    assert r.exit_code == 6, r.output
    assert "m.npz" in _line(r.stderr)
    assert not list(ro.iterdir())

    # a full disk under the cache: exit 6 naming the cache, nothing half-written
    import numpy

    def full(*a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(numpy, "savez", full)
    r = runner.invoke(
        app,
        [
            "bonemap",
            str(world["photo"]),
            "--motion",
            "wave",
            "--frames",
            "2",
            "--resolution",
            "64",
            "-o",
            str(tmp_path / "b.mp4"),
            "--cache-dir",
            str(tmp_path / "c2"),
        ],
    )
    assert r.exit_code == 6, r.output
    line = _line(r.stderr)
    assert "No space left" in line and "cache" in line
    _assert_cache_consistent(tmp_path / "c2")


def _hvg_process(args: list[str], cache: Path) -> subprocess.Popen:
    hvg = shutil.which("hvg", path=str(Path(sys.executable).parent))
    env = {**os.environ, "HVG_CACHE_DIR": str(cache)}
    return subprocess.Popen([hvg, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def _wait_for(path_glob: tuple[Path, str], timeout: float = 120) -> None:
    folder, pattern = path_glob
    t0 = time.time()
    while time.time() - t0 < timeout:
        if folder.exists() and list(folder.glob(f"*/{pattern}")):
            return
        time.sleep(0.1)
    raise AssertionError(f"nothing matching {pattern} appeared under {folder}")


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL], ids=["ctrl-c", "kill-9"])
def test_interrupted_run_resumes(world: dict[str, Path], tmp_path: Path, sig: int) -> None:
    """Stopped while it works (Ctrl-C: exit 130 and one line; kill -9: no say), the same command run again
    finishes, re-using what was finished, leaves nothing behind, and the earlier output survives until then."""
    cache = tmp_path / "cache"
    out = tmp_path / "out.mp4"
    out.write_bytes(b"an earlier output")
    args = [
        "animate",
        str(world["photo"]),
        "--motion",
        str(world["dance"]),
        "--resolution",
        "64",
        "--frames",
        "24",
        "-o",
        str(out),
    ]
    proc = _hvg_process(args, cache)
    _wait_for((cache, ".tmp-*"))  # it is writing its first stage entry
    time.sleep(1.0)  # past the imports (protobuf, imported by mediapipe, swallows a KeyboardInterrupt: see cli/common)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=120)
    if sig == signal.SIGINT:
        assert proc.returncode == 130, err
        assert "interrupted" in _line(err)
    else:
        assert proc.returncode == -signal.SIGKILL
    assert out.read_bytes() == b"an earlier output"
    again = _hvg_process(args, cache)
    _, err = again.communicate(timeout=300)
    assert again.returncode == 0, err
    assert out.read_bytes()[4:8] == b"ftyp"  # an mp4 now
    _assert_cache_consistent(cache)


def test_ctrl_c_swallowed_by_a_library_still_stops_the_command(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A KeyboardInterrupt that third-party code catches (protobuf does during mediapipe's import) is raised again
    at the next progress report, or at the end of the command: exit 130, not a finished run."""
    from hvg_cli import pipeline

    def swallowing_job(source, out, settings, preview_path=None, cache=None, progress=None):
        try:
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.5)
        except KeyboardInterrupt:
            pass  # what the library does
        with progress.task("pose", total=2) as task:
            task.advance(1)
        raise AssertionError("the interrupted command went on")

    monkeypatch.setattr(pipeline, "pose_job", swallowing_job)
    r = runner.invoke(app, ["pose", "wave", "-o", str(tmp_path / "m.npz")])
    assert r.exit_code == 130, r.output
    assert "interrupted" in _line(r.stderr)


def test_animate_tracks_only_its_window_and_takes_max_gap(world: dict[str, Path], tmp_path: Path) -> None:
    """Issue 8 item 9: the advice after a lost person names --max-gap and --start/--end, and animate honours
    both: --frames 8 stops tracking before the dancer leaves (frame 12), --max-gap 30 fills the lost second."""
    from hvg_cli.core.cache import StageCache

    cache = tmp_path / "cache"
    base = [
        "animate",
        str(world["photo"]),
        "--motion",
        str(world["leaves"]),
        "--resolution",
        "64",
        "--cache-dir",
        str(cache),
        "--quiet",
    ]
    r = runner.invoke(app, [*base, "--frames", "8", "-o", str(tmp_path / "a.mp4")])
    assert r.exit_code == 0, r.output
    track = next((cache / "pose_track").iterdir())
    with np.load(track / "track.npz") as z:
        assert z["frame_indices"].tolist() == list(range(8))  # the decoder stopped at the window's end
    r = runner.invoke(app, [*base, "--frames", "48", "--max-gap", "30", "-o", str(tmp_path / "b.mp4")])
    assert r.exit_code == 0, r.output
    assert StageCache(cache).info()["pose_track"]["entries"] == 2


def test_a_missing_photo_is_found_before_the_motion_is_tracked(world: dict[str, Path], tmp_path: Path) -> None:
    r = runner.invoke(
        app,
        [
            "animate",
            str(tmp_path / "nope.jpg"),
            "--motion",
            str(world["dance"]),
            "-o",
            str(tmp_path / "o.mp4"),
            "--cache-dir",
            str(tmp_path / "cache"),
        ],
    )
    assert r.exit_code == 3, r.output
    assert not (tmp_path / "cache" / "pose_track").exists(), "the video was tracked before the photo was checked"
