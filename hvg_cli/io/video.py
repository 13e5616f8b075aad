"""Reading and writing videos with the ffmpeg binary bundled by imageio-ffmpeg.

- `probe_video(path) -> VideoInfo`: exact rational frame rate, frame count, rotation, audio, read
  from a stream copy (`-f framecrc`), which lists every packet's timestamp without decoding.
  A truncated file whose index is at the front (ffmpeg still opens it) is recognised here: its frame
  count is what the index promises, `decodable_frames` what can actually be decoded.
- `read_frames(path, start, end, stride) -> iterator of [H, W, 3] uint8` RGB frames, upright (ffmpeg
  applies the rotation metadata), frame indices exact (`-fps_mode passthrough`, no duplicated or
  dropped frames), decoded ahead in a reader thread so decoding overlaps the consumer's work. ffmpeg
  stops after frame `end`; a range that runs past the decodable part of a truncated file is BadInput
  before any decoding.
- `write_video(path, frames, fps, ...)`: H.264 mp4/mov/mkv (yuv420p), gif, or a folder of PNGs when
  the path has no suffix; written through `core/atomic.py` (temporary name, then renamed), so a
  failure never destroys a previous output and every OSError is an OutputError naming the path.
"""

from __future__ import annotations

import functools
import io
import os
import queue
import re
import shutil
import subprocess
import tempfile
import threading
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from hvg_cli.core.atomic import atomic_folder, atomic_path, output_error
from hvg_cli.core.errors import BadInput, MissingDependency, OutputError
from hvg_cli.core.types import VideoInfo
from hvg_cli.io import check_input_file, fit_size

__all__ = [
    "VIDEO_SUFFIXES",
    "GIF_SUFFIX",
    "ffmpeg_exe",
    "find_ffmpeg",
    "probe_video",
    "decodable_frames",
    "frame_range",
    "fit_size",
    "read_frames",
    "output_kind",
    "write_video",
    "probe_has_audio",
    "is_frames_folder",
]

VIDEO_SUFFIXES = (".mp4", ".mov", ".mkv", ".m4v")
GIF_SUFFIX = ".gif"


@functools.lru_cache(maxsize=1)
def find_ffmpeg() -> str | None:
    """Path of the ffmpeg binary hvg uses (imageio-ffmpeg's bundled one, else ffmpeg on PATH), or None.

    The one ffmpeg lookup of hvg: `hvg doctor` reports it, every reader and writer runs it.
    """
    try:
        import imageio_ffmpeg

        return imageio_ffmpeg.get_ffmpeg_exe()
    except Exception:
        return shutil.which("ffmpeg")


def ffmpeg_exe() -> str:
    """Path of the ffmpeg binary; MissingDependency when there is none."""
    exe = find_ffmpeg()
    if exe is None:
        raise MissingDependency("ffmpeg not found", "pip install imageio-ffmpeg (it ships an ffmpeg binary)")
    return exe


# ---------------------------------------------------------------------------------------------
# probing
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Probe:
    info: VideoInfo
    pts: tuple[float, ...]  # presentation time of every frame whose packet is in the file, seconds, sorted
    start_time: float  # the container's start time (what `-ss` counts from), seconds
    constant_rate: bool  # every frame lasts the same
    decodable: int  # frames 0 .. decodable-1 can be decoded (== info.frame_count unless truncated)
    truncated: bool  # the file ends before the frames its index lists


_PROBE_MEMO: dict[tuple[str, int, int], _Probe] = {}

_ROTATION_RE = re.compile(r"display ?matrix:?\s*rotation of\s*(-?[\d.]+)\s*degrees", re.IGNORECASE)
_START_RE = re.compile(r"Duration:[^\n]*?start:\s*(-?[\d.]+)")
_VIDEO_STREAM_RE = re.compile(r"Stream #0:(\d+)[^\n]*?: Video: [^\n]*?(\d{2,5})x(\d{2,5})")
_AUDIO_STREAM_RE = re.compile(r"Stream #0:\d+[^\n]*?: Audio:")
_TB_RE = re.compile(r"^#tb 0: (\d+)/(\d+)", re.MULTILINE)
# framecrc packet lines: "0, dts, pts, duration, size, 0xcrc[, F=0xflags]"; flag 0x2 = corrupt (cut short)
_PACKET_RE = re.compile(
    r"^0,\s*(-?\d+),\s*(-?\d+),\s*(\d+),\s*\d+,\s*0x[0-9a-fA-F]+(?:,\s*F=0x([0-9a-fA-F]+))?", re.MULTILINE
)
_DURATION_RE = re.compile(r"Duration:\s*(\d+):(\d+):(\d+(?:\.\d+)?)")
_PARTIAL_RE = re.compile(r"partial file", re.IGNORECASE)  # the mp4/mov demuxer: a listed sample lies past the end
_PKT_FLAG_CORRUPT = 0x2


def _probe(path: str | os.PathLike) -> _Probe:
    p = Path(path)
    check_input_file(p, "a video file", "a video file that plays, such as clip.mp4")
    st = p.stat()
    memo_key = (str(p.resolve()), st.st_size, st.st_mtime_ns)
    if memo_key in _PROBE_MEMO:
        return _PROBE_MEMO[memo_key]
    cmd = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-i", str(p), "-map", "0:v:0", "-c", "copy", "-f", "framecrc", "-"]
    proc = subprocess.run(cmd, capture_output=True, text=True, errors="replace")
    err, out = proc.stderr, proc.stdout
    if "Input #0" not in err:
        raise BadInput(f"{p} is not a video ffmpeg can read", "give an mp4/mov/mkv/webm/avi file")
    video = _VIDEO_STREAM_RE.search(err)
    if video is None:
        raise BadInput(
            f"{p} is not a video: no video stream in it", "give an mp4/mov/mkv/webm/avi file with a video track"
        )
    tb_m = _TB_RE.search(out)
    listed = [(int(a), int(b), int(c), int(f or "0", 16)) for a, b, c, f in _PACKET_RE.findall(out)]
    truncated = _PARTIAL_RE.search(err) is not None or bool(listed and listed[-1][3] & _PKT_FLAG_CORRUPT)
    # in a truncated file a packet cut short is not a frame
    packets = [pkt[:3] for pkt in listed if not (truncated and pkt[3] & _PKT_FLAG_CORRUPT)]
    if tb_m is None or not packets:
        raise BadInput(
            f"{p} has no video frames" + (" (the file is truncated)" if truncated else ""), "give a video that plays"
        )
    tb = Fraction(int(tb_m.group(1)), int(tb_m.group(2)))
    pts_ticks = sorted(pkt[1] for pkt in packets)
    durations = [pkt[2] for pkt in packets if pkt[2] > 0]
    if not durations:  # no durations in the container: use the gaps between presentation times
        durations = [b - a for a, b in zip(pts_ticks, pts_ticks[1:]) if b > a]
    if durations:
        step = Counter(durations).most_common(1)[0][0]  # ticks per frame
        fps = 1 / (tb * step)
        constant = len(set(durations)) == 1
    else:  # one frame, no duration: take ffmpeg's printed rate
        m = re.search(r"([\d.]+) fps", err)
        fps = Fraction(m.group(1)).limit_denominator(1001) if m else Fraction(25)
        constant = True
    rot_m = _ROTATION_RE.search(err)
    # ffmpeg prints the display matrix's counter-clockwise angle; the classic `rotate` tag (what
    # phones write, e.g. 90 for a portrait clip) is the clockwise angle, which is what we keep.
    rotation = int(round(-float(rot_m.group(1)))) % 360 if rot_m else 0
    w, h = int(video.group(2)), int(video.group(3))
    if rotation in (90, 270):
        w, h = h, w
    start_m = _START_RE.search(err)
    n = len(packets)
    duration = float(sum(pkt[2] for pkt in packets) * tb) if all(pkt[2] > 0 for pkt in packets) else float(n / fps)
    decodable = n
    if truncated:
        # The index (at the front) still lists every frame; the data stops part-way. Frames decode in
        # order up to the first gap in presentation times (later ones are missing, or are B-frames
        # whose references are), and the header's duration says how many frames there should be.
        step_ticks = 1 / (fps * tb)  # ticks per frame
        decodable = 1
        while decodable < n and pts_ticks[decodable] - pts_ticks[decodable - 1] <= 1.5 * step_ticks:
            decodable += 1
        dur_m = _DURATION_RE.search(err)
        if dur_m:
            header_s = int(dur_m.group(1)) * 3600 + int(dur_m.group(2)) * 60 + Fraction(dur_m.group(3))
            n = max(n, round(header_s * fps))  # frames the index promises (the header's duration, 10 ms steps)
        duration = float(n / fps)
    info = VideoInfo(
        path=str(p),
        width=w,
        height=h,
        fps=fps,
        frame_count=n,
        rotation=rotation,
        has_audio=_AUDIO_STREAM_RE.search(err) is not None,
        duration=duration,
    )
    probe = _Probe(
        info,
        tuple(float(t * tb) for t in pts_ticks),
        float(start_m.group(1)) if start_m else 0.0,
        constant,
        decodable,
        truncated,
    )
    _PROBE_MEMO[memo_key] = probe
    return probe


def probe_video(path: str | os.PathLike) -> VideoInfo:
    """What a video holds, without decoding it: exact fps, frame count, upright size, rotation, audio.

    Raises BadInput naming the file when it is missing, empty, not a video, or has no frames.
    """
    return _probe(path).info


def decodable_frames(path: str | os.PathLike) -> int:
    """How many frames, from the first, can be decoded: the frame count, or less for a truncated file."""
    return _probe(path).decodable


# ---------------------------------------------------------------------------------------------
# reading
# ---------------------------------------------------------------------------------------------
def frame_range(info: VideoInfo, start: int = 0, end: int | None = None, stride: int = 1) -> range:
    """The source frame indices `read_frames` yields for these arguments (end exclusive, clipped)."""
    if start < 0 or stride < 1 or (end is not None and end < 0):
        raise BadInput(f"bad frame range start={start} end={end} stride={stride}", "start >= 0, end >= 0, stride >= 1")
    stop = info.frame_count if end is None else min(end, info.frame_count)
    return range(start, max(start, stop), stride)


def read_frames(
    path: str | os.PathLike,
    start: int = 0,
    end: int | None = None,
    stride: int = 1,
    prefetch: int = 6,
    threads: int = 0,
    size: tuple[int, int] | None = None,
) -> Iterator[np.ndarray]:
    """Decoded frames `start, start + stride, ... < end` of a video, upright RGB.

    yields: [H, W, 3] uint8, H and W as in `probe_video(path)` (rotation applied), or
    size = (W, H) to have ffmpeg resample them (area filter) to that size.
    A reader thread keeps up to `prefetch` frames decoded ahead of the consumer.
    threads: decoder threads (0 = ffmpeg's choice; 1 costs the least CPU when the consumer is the
    bottleneck, e.g. MediaPipe, which then keeps the cores).
    ffmpeg is told to stop after the last frame asked for (`-frames:v`), so reading frames 0..11 of a long
    file decodes about 12 frames, not the file.
    Raises BadInput naming the file, before decoding anything, when the range runs past the decodable
    part of a truncated file, and while reading when decoding stops early for another reason.
    """
    probe = _probe(path)
    info = probe.info
    idx = frame_range(info, start, end, stride)
    if len(idx) == 0:
        return iter(())
    if idx[-1] >= probe.decodable:
        use = f"--end {probe.decodable}" if idx.start < probe.decodable else f"a --start below {probe.decodable}"
        raise BadInput(
            f"{info.path} is truncated: only its first {probe.decodable} of {info.frame_count} frames can be decoded",
            f"download or copy the file again, or pass {use} to use the frames there are",
        )
    return _FrameReader(probe, idx, prefetch, threads, size)


def _last_line(text: str) -> str | None:
    """The last line ffmpeg wrote to its stderr (its error message), or None if it wrote nothing."""
    lines = text.strip().splitlines()
    return lines[-1] if lines else None


def _widen_pipe(f) -> None:
    """Grow a pipe's kernel buffer (Linux, up to 1 MiB) so a frame needs few reads and context switches."""
    try:
        import fcntl

        fcntl.fcntl(f.fileno(), getattr(fcntl, "F_SETPIPE_SZ", 1031), 1 << 20)
    except (ImportError, OSError, ValueError):
        pass


class _FrameReader:
    """Iterator over decoded frames; ffmpeg runs in its own process, a thread drains its pipe."""

    _DONE = object()

    def __init__(self, probe: _Probe, idx: range, prefetch: int, threads: int = 0, size: tuple[int, int] | None = None):
        info = probe.info
        self.info = info
        self.count = len(idx)
        self.width, self.height = size if size else (info.width, info.height)
        self.frame_bytes = self.width * self.height * 3
        cmd = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", "error"]
        self.idx = idx
        self.log = ""  # ffmpeg's stderr, kept when the reader closes
        skip = idx.start
        if idx.start > 0 and probe.constant_rate and idx[-1] < len(probe.pts):
            # Accurate seek: ffmpeg decodes from the keyframe before the target and drops every
            # frame whose time is before it. Aim half a frame before frame `start`, so rounding
            # can neither keep frame start-1 nor drop frame start.
            half = 0.5 / float(info.fps)
            target = probe.pts[idx.start] - probe.start_time - half
            if target > 0:
                cmd += ["-ss", f"{target:.6f}"]
                skip = 0
        if threads > 0:
            cmd += ["-threads", str(threads)]
        cmd += ["-i", info.path, "-map", "0:v:0", "-fps_mode", "passthrough"]
        # select on the decoder's frame number n (counted from the first frame after the seek)
        sel = f"gte(n\\,{skip})*not(mod(n-{skip}\\,{idx.step}))" if (skip or idx.step > 1) else None
        filters = [f"select='{sel}'"] if sel else []
        if (self.width, self.height) != (info.width, info.height):
            filters.append(f"scale={self.width}:{self.height}:flags=area")
        if filters:
            cmd += ["-vf", ",".join(filters)]
        cmd += ["-frames:v", str(self.count), "-f", "rawvideo", "-pix_fmt", "rgb24", "-"]
        self._stderr = tempfile.TemporaryFile()
        self._proc = subprocess.Popen(
            cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=self._stderr, bufsize=0
        )
        _widen_pipe(self._proc.stdout)
        self._queue: queue.Queue = queue.Queue(maxsize=max(1, prefetch))
        self._stop = threading.Event()
        self._yielded = 0
        self._thread = threading.Thread(target=self._run, name="hvg-video-reader", daemon=True)
        self._thread.start()

    def _put(self, item: object) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _run(self) -> None:
        out = self._proc.stdout
        assert isinstance(out, io.RawIOBase)  # bufsize=0: the pipe's raw FileIO, which has readinto
        try:
            for _ in range(self.count):
                buf = np.empty(self.frame_bytes, np.uint8)  # not zero-filled: every byte is read into
                view = buf.data  # memoryview of buf's bytes
                got = 0
                while got < self.frame_bytes:
                    n = out.readinto(view[got:])
                    if not n:
                        break
                    got += n
                if got < self.frame_bytes:
                    break
                frame = buf.reshape(self.height, self.width, 3)  # [H*W*3] -> [H, W, 3]
                if not self._put(frame):
                    return
        except Exception as e:  # surfaced to the consumer
            self._put(e)
            return
        self._put(self._DONE)

    def __iter__(self) -> _FrameReader:
        return self

    def __next__(self) -> np.ndarray:
        if self._stop.is_set():
            raise StopIteration
        item = self._queue.get()
        if item is self._DONE:
            self.close(finished=True)
            if self._yielded < self.count:
                msg = _last_line(self.log)
                end = self.idx.start + self._yielded * self.idx.step
                raise BadInput(
                    f"{self.info.path}: decoding stopped after {self._yielded} of {self.count} frames"
                    + (f" ({msg})" if msg else ""),
                    f"the file may be damaged or truncated; re-encode it, or pass --end {end}",
                )
            raise StopIteration
        if isinstance(item, Exception):
            self.close()
            raise item
        self._yielded += 1
        return item

    def close(self, finished: bool = False) -> None:
        """Stop ffmpeg and the reader thread. finished: every frame was read, so ffmpeg (told to stop
        there) is let exit by itself for a moment first, which keeps its final report in `log`."""
        if self._stop.is_set():
            return
        self._stop.set()
        if finished:
            try:
                self._proc.wait(timeout=2)
            except subprocess.TimeoutExpired:
                pass
        if self._proc.poll() is None:
            self._proc.kill()
        try:
            self._proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
        if self._proc.stdout:
            self._proc.stdout.close()
        self._thread.join(timeout=5)
        try:
            self._stderr.seek(0)
            self.log = self._stderr.read().decode(errors="replace")
        except (OSError, ValueError):
            pass
        self._stderr.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass


# ---------------------------------------------------------------------------------------------
# writing
# ---------------------------------------------------------------------------------------------
def output_kind(path: str | os.PathLike) -> str:
    """ "video" (.mp4 .mov .mkv .m4v), "gif", or "frames" (no suffix: a folder of PNGs)."""
    suffix = Path(path).suffix.lower()
    if suffix in VIDEO_SUFFIXES:
        return "video"
    if suffix == GIF_SUFFIX:
        return "gif"
    if suffix == "":
        return "frames"
    raise OutputError(
        f"{path}: cannot write a video with suffix {suffix!r}",
        "use .mp4, .mov, .mkv, .gif, or a folder name without a suffix for PNG frames",
    )


def _as_rgb(frame: np.ndarray, keep_alpha: bool = False) -> np.ndarray:
    a = np.asarray(frame)
    if a.dtype != np.uint8:
        raise ValueError(f"frames must be uint8, got {a.dtype}")
    if a.ndim == 2:
        a = np.repeat(a[:, :, None], 3, axis=2)  # [H, W] -> [H, W, 3]
    if a.ndim != 3 or a.shape[2] not in (3, 4):
        raise ValueError(f"frames must be [H, W, 3|4], got {a.shape}")
    if a.shape[2] == 4 and not keep_alpha:
        a = a[:, :, :3]
    return np.ascontiguousarray(a)


def write_video(
    path: str | os.PathLike,
    frames: Iterable[np.ndarray],
    fps: Fraction | int | float,
    audio_from: str | os.PathLike | None = None,
    audio_start: float = 0.0,
    audio_duration: float | None = None,
    quality: int = 8,
) -> Path:
    """Write frames ([H, W, 3|4] uint8 RGB(A), all the same size) as a video; return the path.

    path: .mp4/.mov/.mkv/.m4v -> H.264 yuv420p (odd sizes padded to even by repeating the edge),
          .gif -> palette gif, no suffix -> a folder of PNGs 000000.png, 000001.png, ... (alpha kept)
    fps: exact rate given to ffmpeg as a fraction (30000/1001 stays exact)
    audio_from: a media file whose audio (from audio_start seconds, for audio_duration seconds or
          the video's length) is muxed in; silently none if that file has no audio (video only)
    quality: 0..10, higher is better (H.264 CRF = 35 - 2 * quality; 8 -> CRF 19)
    The output is written under a temporary name and renamed into place at the end: a failure
    leaves any previous file at `path` untouched. Raises OutputError when it cannot be written.
    """
    out = Path(path)
    kind = output_kind(out)
    fps = Fraction(fps).limit_denominator(1_000_000) if not isinstance(fps, Fraction) else fps
    if fps <= 0:
        raise OutputError(f"{out}: frame rate must be positive, got {fps}")
    if kind == "frames":
        return _write_png_folder(out, frames)
    with atomic_path(out) as tmp:  # OSErrors -> OutputError naming `out`; the temp file is removed on failure
        _encode(tmp, kind, frames, fps, audio_from, audio_start, audio_duration, quality, out)
    return out


def _encode(
    tmp: Path,
    kind: str,
    frames: Iterable[np.ndarray],
    fps: Fraction,
    audio_from: str | os.PathLike | None,
    audio_start: float,
    audio_duration: float | None,
    quality: int,
    out: Path,
) -> None:
    it = iter(frames)
    try:
        first = _as_rgb(next(it))
    except StopIteration:
        raise OutputError(f"{out}: no frames to write") from None
    h, w = first.shape[:2]
    rate = f"{fps.numerator}/{fps.denominator}"
    cmd = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", "error", "-y"]
    cmd += ["-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{w}x{h}", "-framerate", rate, "-i", "-"]
    with_audio = kind == "video" and audio_from is not None and probe_has_audio(audio_from)
    if with_audio:
        if audio_start > 0:
            cmd += ["-ss", f"{audio_start:.6f}"]
        if audio_duration is not None:
            cmd += ["-t", f"{audio_duration:.6f}"]
        cmd += ["-i", str(audio_from)]
    if kind == "video":
        crf = int(np.clip(35 - 2 * quality, 0, 51))
        cmd += ["-map", "0:v:0"]
        if with_audio:
            cmd += ["-map", "1:a:0", "-c:a", "aac", "-b:a", "160k", "-shortest"]
        if w % 2 or h % 2:  # yuv420p needs even sizes: pad, repeating the last row/column
            cmd += ["-vf", f"pad=ceil(iw/2)*2:ceil(ih/2)*2,fillborders=right={w % 2}:bottom={h % 2}:mode=smear"]
        cmd += ["-c:v", "libx264", "-preset", "medium", "-crf", str(crf), "-pix_fmt", "yuv420p"]
        cmd += ["-r", rate, "-movflags", "+faststart", str(tmp)]
    else:  # gif with its own palette
        cmd += ["-vf", "split[a][b];[a]palettegen=stats_mode=diff[p];[b][p]paletteuse=dither=bayer", "-r", rate]
        cmd += ["-f", "gif", str(tmp)]
    with tempfile.TemporaryFile() as errf:
        try:
            proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=errf)
        except OSError as e:
            raise output_error(out, e) from None
        assert proc.stdin is not None
        failed: BaseException | None = None
        try:
            frame = first
            while True:
                if frame.shape[:2] != (h, w):
                    raise ValueError(f"frame size changed from {w}x{h} to {frame.shape[1]}x{frame.shape[0]}")
                proc.stdin.write(frame.tobytes())
                try:
                    frame = _as_rgb(next(it))
                except StopIteration:
                    break
        except BrokenPipeError:
            pass  # ffmpeg stopped: its message is read below
        except BaseException as e:
            failed = e
        finally:
            try:
                proc.stdin.close()
            except BrokenPipeError:
                pass
        if failed is not None:
            proc.kill()
            proc.wait()
            raise failed
        rc = proc.wait()
        if rc != 0:
            errf.seek(0)
            msg = _last_line(errf.read().decode(errors="replace"))
            raise OutputError(
                f"ffmpeg could not write {out}: {msg or f'exit code {rc}'}",
                "check free disk space and permissions, or choose another output path",
            )


def probe_has_audio(path: str | os.PathLike) -> bool:
    """True if a media file has an audio stream (False for a missing/unreadable file)."""
    p = Path(path)
    if not p.exists():
        return False
    proc = subprocess.run(
        [ffmpeg_exe(), "-hide_banner", "-nostdin", "-i", str(p)], capture_output=True, text=True, errors="replace"
    )
    return _AUDIO_STREAM_RE.search(proc.stderr) is not None


_FRAME_NAME_RE = re.compile(r"^\d{6}\.png$")


def _frame_name(i: int) -> str:
    return f"{i:06d}.png"


FRAMES_MARKER = ".hvg-frames"  # in every PNG-frame folder hvg writes: "this folder is hvg's to replace"


def is_frames_folder(path: str | os.PathLike) -> bool:
    """True if `path` is a folder hvg wrote as PNG frames: its marker file and PNG frames as `write_video` names
    them (000000.png ...), nothing else.

    What `atomic_folder` may replace: an earlier frames output, never a folder with any other file in it (nor a
    folder of the user's own 000000.png ... without the marker).
    """
    p = Path(path)
    if not p.is_dir() or p.is_symlink() or not (p / FRAMES_MARKER).is_file():
        return False
    with os.scandir(p) as it:
        return all(
            e.is_file(follow_symlinks=False) and (e.name == FRAMES_MARKER or _FRAME_NAME_RE.match(e.name)) for e in it
        )


def _write_png_folder(out: Path, frames: Iterable[np.ndarray]) -> Path:
    from PIL import Image

    # refuses, before any frame is made, a file at `out` or a folder holding anything but earlier frames
    with atomic_folder(out, previous_output=is_frames_folder) as tmp:
        n = 0
        for i, f in enumerate(frames):
            a = _as_rgb(f, keep_alpha=True)
            Image.fromarray(a).save(tmp / _frame_name(i), compress_level=1)  # an OSError -> OutputError naming out
            n += 1
        if n == 0:
            raise OutputError(f"{out}: no frames to write")
        (tmp / FRAMES_MARKER).touch()
    return out
