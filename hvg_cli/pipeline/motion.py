"""Motions: from any source (a video through the cached pose stages, an AMASS/hvg .npz, a .bvh, a preset),
to a file (`hvg pose`), and onto the subject's body for a job.

io/ reads and writes the files, body/ converts them to and from `Motion`; this module composes the two.
"""

from __future__ import annotations

import dataclasses
import os
import time
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from hvg_cli.core.cache import StageCache
from hvg_cli.core.errors import BadInput, OutputError
from hvg_cli.core.progress import SILENT, Reporter
from hvg_cli.core.settings import PoseSettings, Timing
from hvg_cli.core.types import Motion, Subject
from hvg_cli.io.outputs import check_outputs
from hvg_cli.pipeline import stages

MOTION_SUFFIXES = (".npz", ".bvh")


# --- motion files ---------------------------------------------------------------------------------------------
def load_motion_npz(path: str | os.PathLike) -> Motion:
    """An AMASS / SMPL / hvg motion .npz -> Motion in hvg's y-up world (io.amass reads, body.mocap converts).

    Raises BadInput (file named, keys found, layouts accepted) for anything hvg cannot read.
    """
    from hvg_cli.body.mocap import motion_from_amass
    from hvg_cli.io.amass import read_motion_npz

    return motion_from_amass(read_motion_npz(path))


def save_motion_npz(motion: Motion, path: str | os.PathLike) -> Path:
    """Write `motion` as an AMASS-compatible .npz at `path`, atomically. Returns the path."""
    from hvg_cli.body.mocap import amass_arrays
    from hvg_cli.io.amass import write_motion_npz

    return write_motion_npz(amass_arrays(motion), path)


def load_bvh(path: str | os.PathLike) -> Motion:
    """A BVH file (CMU, Mixamo or SMPL names) retargeted onto SMPL-24 (io.bvh parses, body.mocap fits)."""
    from hvg_cli.body.mocap import motion_from_bvh
    from hvg_cli.io.bvh import read_bvh

    return motion_from_bvh(read_bvh(path))


def save_bvh(motion: Motion, path: str | os.PathLike) -> Path:
    """Write `motion` as an SMPL-named BVH in centimetres, atomically. Returns the path."""
    from hvg_cli.body.mocap import bvh_from_motion
    from hvg_cli.io.bvh import write_bvh

    return write_bvh(bvh_from_motion(motion), path)


def save_motion(motion: Motion, path: Path) -> Path:
    """Write a motion in the format its suffix names: .npz (AMASS layout + hvg keys) or .bvh."""
    return save_bvh(motion, path) if path.suffix.lower() == ".bvh" else save_motion_npz(motion, path)


# --- motion sources ---------------------------------------------------------------------------------------------
def motion_source_kind(source: str | Path) -> str:
    """ "npz" (an AMASS / SMPL / hvg .npz), "bvh", "video" (any other existing file or name with a suffix),
    else "preset"."""
    p = Path(source)
    suffix = p.suffix.lower()
    if suffix == ".npz":
        return "npz"
    if suffix == ".bvh":
        return "bvh"
    return "video" if (p.exists() or suffix) else "preset"


def list_motion_presets() -> list[tuple[str, str, int, Fraction]]:
    """The built-in motions: (name, description, frames, fps)."""
    from hvg_cli.body.presets import list_motion_presets as _list

    return list(_list())


def motion_from_source(
    source: str | Path,
    settings: PoseSettings = PoseSettings(),
    cache: StageCache | None = None,
    progress: Reporter = SILENT,
) -> Motion:
    """Any motion source -> Motion: a video (cached stages), an AMASS/hvg .npz, a .bvh, or a preset name."""
    return read_motion_source(source, settings, cache or StageCache(), progress)[0]


def read_motion_source(
    source: str | Path, settings: PoseSettings, cache: StageCache, progress: Reporter = SILENT
) -> tuple[Motion, str, bool]:
    """Any motion source -> (Motion, its kind, whether it came from the cache): a video (cached stages), an
    AMASS/hvg .npz, a .bvh, or a preset name."""
    p = Path(source)
    kind = motion_source_kind(source)
    if kind == "npz":
        return load_motion_npz(p), kind, False
    if kind == "bvh":
        return load_bvh(p), kind, False
    if kind == "video":
        motion, cached = stages.motion_video(p, settings, cache, progress)
        return motion, kind, cached
    from hvg_cli.body.presets import load_motion_preset

    names = [row[0] for row in list_motion_presets()]
    if str(source) not in names:
        raise BadInput(f"{source}: no such file or motion preset", "motion presets: " + ", ".join(names))
    return load_motion_preset(str(source)), kind, False


# --- `hvg pose` ---------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class PoseResult:
    out: Path  # the motion file written (.npz or .bvh)
    frames: int
    fps: Fraction
    fit_error_deg: float | None  # None for motion sources that were not fitted (AMASS, BVH, presets)
    cached: bool  # the motion came from the stage cache
    seconds: float  # wall time of the whole job
    source: str = ""  # "video" | "npz" | "bvh" | "preset"
    preview: Path | None = None

    def as_dict(self) -> dict:
        return {
            "out": str(self.out),
            "frames": self.frames,
            "fps": float(self.fps),
            "fps_exact": f"{self.fps.numerator}/{self.fps.denominator}",
            "fit_error_deg": self.fit_error_deg,
            "cached": self.cached,
            "seconds": round(self.seconds, 3),
            "source": self.source,
            "preview": str(self.preview) if self.preview else None,
        }


def pose_job(
    source: str | Path,
    out: Path,
    settings: PoseSettings = PoseSettings(),
    preview_path: Path | None = None,
    cache: StageCache | None = None,
    progress: Reporter = SILENT,
) -> PoseResult:
    """`hvg pose`: a motion source -> a motion file at `out` (.npz AMASS-compatible, or .bvh) (+ an overlay video
    for video sources).

    Nothing is written to `out` unless the whole motion was made (files are written atomically).
    """
    t0 = time.perf_counter()
    cache = cache or StageCache()
    out = Path(out)
    # 0. Outputs checked before any work: a known suffix, never an input, a usable preview path
    if out.suffix.lower() not in MOTION_SUFFIXES:
        raise OutputError(f"{out}: a motion file ends in .npz or .bvh", "e.g. -o dance.motion.npz or -o dance.bvh")
    outs = [(out, "file")]
    kind = motion_source_kind(source)
    if preview_path is not None:
        from hvg_cli.io.video import output_kind

        if kind != "video":
            raise BadInput(f"--preview needs a video source, got {source}", "drop --preview, or give the video")
        outs.append((preview_path, "frames" if output_kind(preview_path) == "frames" else "file"))
    check_outputs(outs, [source])
    # 1. The motion, 2. its file, 3. the overlay
    motion, kind, cached = read_motion_source(source, settings, cache, progress)
    save_motion(motion, out)
    if preview_path is not None:
        write_pose_overlay(Path(source), motion, Path(preview_path), progress)
    return PoseResult(
        out=out,
        frames=motion.num_frames,
        fps=motion.fps,
        fit_error_deg=motion.fit_error_deg,
        cached=cached,
        seconds=time.perf_counter() - t0,
        source=kind,
        preview=Path(preview_path) if preview_path else None,
    )


def write_pose_overlay(
    video: Path, motion: Motion, out: Path, progress: Reporter = SILENT, max_side: int = 960
) -> Path:
    """The video with the fitted skeleton drawn over each frame (audio kept).

    The 24 fitted joints (pelvis-relative) are placed on each frame by a weak-perspective camera fitted to the
    2D joints implied by that frame's image landmarks, so what is drawn is the fitted pose's shape: where it
    departs from the person, the fit is off.
    """
    from hvg_cli.body.ik import joints_from_landmarks
    from hvg_cli.io.video import read_frames, write_video
    from hvg_cli.pose.overlay import draw_skeleton, weak_perspective

    lm = np.asarray(motion.extras["landmarks"], dtype=np.float64)  # [T, 33, 2] px
    frame_indices = np.asarray(motion.extras["frame_indices"])
    # the 2D joints: joints_from_landmarks is built from affine combinations of landmarks, so it
    # applies to image points lifted to 3D (x, -y, 0)
    lifted = np.concatenate([lm[..., :1], -lm[..., 1:2], np.zeros_like(lm[..., :1])], axis=-1)  # [T, 33, 3]
    target = joints_from_landmarks(lifted)[..., :2] * np.array([1.0, -1.0])  # [T, 24, 2] px
    rel = np.asarray(motion.joints) - np.asarray(motion.trans)[:, None, :]  # [T, 24, 3] m, pelvis-relative
    pts2d = weak_perspective(rel, target)  # [T, 24, 2] px
    step = int(frame_indices[1] - frame_indices[0]) if len(frame_indices) > 1 else 1
    T = len(frame_indices)

    def frames():
        with progress.task("preview", total=T, unit="frames") as task:
            for t, frame in enumerate(read_frames(video, int(frame_indices[0]), int(frame_indices[-1]) + 1, step)):
                yield draw_skeleton(frame, pts2d[t], max_side=max_side)
                task.advance(1)

    return write_video(
        out, frames(), motion.fps, audio_from=video, audio_start=motion.start_time, audio_duration=T / float(motion.fps)
    )


# --- a motion for a job -----------------------------------------------------------------------------------------
def trim_motion(motion: Motion, timing: Timing) -> Motion:
    """Frames [timing.start, timing.end) of a motion, at most timing.max_frames of them."""
    fps = float(motion.fps)
    T = motion.num_frames
    i0 = timing.start
    i1 = T if timing.end is None else min(T, timing.end)
    if timing.max_frames is not None:
        i1 = min(i1, i0 + timing.max_frames)
    if i0 >= T or i1 <= i0:
        raise BadInput(
            f"--start {timing.start} is past the end of the motion {motion.name!r} ({T} frames)",
            "give a smaller --start",
        )
    if (i0, i1) == (0, T):
        return motion
    cut = {k: v[i0:i1] for k, v in motion.extras.items() if isinstance(v, np.ndarray) and v.shape[:1] == (T,)}
    return dataclasses.replace(
        motion,
        poses=motion.poses[i0:i1],
        trans=motion.trans[i0:i1],
        joints=None if motion.joints is None else motion.joints[i0:i1],
        start_time=motion.start_time + i0 / fps,
        extras={**motion.extras, **cut},
    )


def place_motion(motion: Motion, subject: Subject) -> Motion:
    """The motion on the subject's body: proportions from the photo, rotations from the motion, and the
    first frame's pelvis above the spot where the subject stands in the photo (floor y = 0 kept)."""
    from hvg_cli.body.retarget import retarget

    moved = retarget(motion, subject.skeleton)  # joints [T, 24, 3] already by FK on the subject's skeleton
    shift = np.array([subject.photo_trans[0] - moved.trans[0, 0], 0.0, subject.photo_trans[2] - moved.trans[0, 2]])
    # a pure translation: the joints move with the root, no second FK needed
    return dataclasses.replace(moved, trans=moved.trans + shift, joints=moved.joints + shift)
