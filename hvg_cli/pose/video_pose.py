"""MediaPipe Pose over the frames of a video: one person, tracked, gaps filled, smoothed.

Behaviour (what users get, also told by `hvg pose --help`):
- MediaPipe's pose solution (0.10.14, full model, tracking mode) follows ONE person. With several
  people in the first frame, `person` chooses whom: "largest" (default: the biggest landmark box),
  a 0-based index counted from the left, or "first" (MediaPipe's own pick: the person its detector
  ranks first). People are found on the first frame by running the detector on the whole frame and
  on its left and right halves (so it finds up to about three people standing side by side). When
  the chosen person is not the only one, MediaPipe is given the vertical band of the frame between
  the chosen person and their neighbours for the whole clip: the person may move inside that band.
- Frames where the person is lost are filled by linear interpolation (up to `max_gap` frames);
  a longer gap or no person at all raises NoPerson naming the frames.
- The landmarks are then smoothed with a One-Euro filter (`smoothing.one_euro`), image landmarks in
  units of the body's height so one `beta` fits both image and world landmarks.
- World landmarks are converted to hvg axes, once, here: (x, y, z)_hvg = (x, -y, -z)_mediapipe.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from fractions import Fraction
from types import ModuleType
from typing import TYPE_CHECKING

import numpy as np

from hvg_cli.core.errors import MissingDependency
from hvg_cli.core.types import PoseTrack

if TYPE_CHECKING:
    from mediapipe.python.solutions.pose import Pose
from hvg_cli.pose.smoothing import one_euro
from hvg_cli.pose.tracking import Candidate, choose_crop, fill_gaps, landmark_box, merge_candidates

MODEL_COMPLEXITY = 1  # the "full" landmark model, shipped inside the mediapipe wheel
BODY_HEIGHT_M = 1.7  # image landmarks are smoothed in units of (median body height in px / this)


def mediapipe_to_hvg(world_mp: np.ndarray) -> np.ndarray:
    """MediaPipe world landmarks (x right, y down, z away from the camera) -> hvg axes (x, -y, -z).

    world_mp: [..., 3] metres -> [..., 3] metres. Checked on the dance video: the nose gets +y above
    the hips, and (the dancer facing the camera) a larger z than the ears.
    """
    return np.asarray(world_mp, dtype=np.float64) * np.array([1.0, -1.0, -1.0])


@contextmanager
def quiet_native_logs() -> Iterator[None]:
    """Silence what MediaPipe's C++ side prints on stderr (fd 2) while its models load.

    MediaPipe 0.10.14 logs TFLite/absl notices ("Created TensorFlow Lite XNNPACK delegate",
    "Feedback manager requires ...") straight to fd 2 at the first frame, and no environment
    variable turns them off; they would bury hvg's one-line messages. HVG_DEBUG=1 keeps them.
    """
    if os.environ.get("HVG_DEBUG"):
        yield
        return
    try:
        saved = os.dup(2)
    except OSError:
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        sys.stderr.flush()
        os.dup2(devnull, 2)
        yield
    finally:
        try:
            sys.stderr.flush()
        except Exception:
            pass
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def _mediapipe() -> ModuleType:
    import warnings

    # MediaPipe 0.10.14 calls a protobuf API that protobuf 4.25 deprecates, once per graph: not the user's concern
    warnings.filterwarnings("ignore", message=r"SymbolDatabase\.GetPrototype\(\) is deprecated", category=UserWarning)
    try:
        import mediapipe as mp
    except ImportError as e:
        cause: BaseException | None = e
        while cause is not None:  # Ctrl-C in the middle of the import surfaces as an ImportError: it is Ctrl-C
            if isinstance(cause, KeyboardInterrupt):
                raise KeyboardInterrupt from None
            cause = cause.__cause__ or cause.__context__
        import importlib.util

        if importlib.util.find_spec("mediapipe") is None:
            raise MissingDependency("mediapipe is not installed", "pip install mediapipe==0.10.14") from e
        raise MissingDependency(
            f"mediapipe is installed but does not import ({e})",
            "reinstall it: pip install --force-reinstall mediapipe==0.10.14",
        ) from e
    return mp


def new_tracker(smooth_landmarks: bool = False) -> Pose:
    """A MediaPipe Pose in tracking mode, hvg's settings. Its own smoothing is off: hvg smooths later."""
    mp = _mediapipe()
    return mp.solutions.pose.Pose(
        static_image_mode=False,
        model_complexity=MODEL_COMPLEXITY,
        smooth_landmarks=smooth_landmarks,
        enable_segmentation=False,
        min_detection_confidence=0.5,
        min_tracking_confidence=0.5,
    )


def _landmarks(result, x0: float, w: float, h: float) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """(image [33, 2] px, visibility [33], world [33, 3] MediaPipe axes) of one result, or None."""
    if result.pose_landmarks is None or result.pose_world_landmarks is None:
        return None
    img = np.array([(p.x, p.y, p.visibility) for p in result.pose_landmarks.landmark], dtype=np.float64)  # [33, 3]
    world = np.array([(p.x, p.y, p.z) for p in result.pose_world_landmarks.landmark], dtype=np.float64)  # [33, 3]
    xy = np.stack([img[:, 0] * w + x0, img[:, 1] * h], axis=-1)  # normalised -> px in the full frame
    return xy, np.clip(img[:, 2], 0.0, 1.0), world


def find_people(frame: np.ndarray) -> list[Candidate]:
    """People in one frame, left to right: MediaPipe (static mode) on the whole frame and on each half.

    frame: [H, W, 3] uint8. Finds at most three people (one per region, duplicates merged).
    """
    mp = _mediapipe()
    H, W = frame.shape[:2]
    overlap = int(0.1 * W)
    regions = [(0, W), (0, W // 2 + overlap), (W // 2 - overlap, W)]
    found: list[Candidate] = []
    with mp.solutions.pose.Pose(
        static_image_mode=True, model_complexity=MODEL_COMPLEXITY, enable_segmentation=False
    ) as pose:
        for x0, x1 in regions:
            res = pose.process(np.ascontiguousarray(frame[:, x0:x1]))
            lm = _landmarks(res, x0, x1 - x0, H)
            if lm is not None:
                found.append(Candidate(landmark_box(lm[0], lm[1])))
    return merge_candidates(found)


@dataclass(frozen=True, eq=False)
class RawTrack:
    """MediaPipe's per-frame output before gap filling and smoothing. NaN where not detected."""

    image: np.ndarray  # [T, 33, 2] px, full frame
    visibility: np.ndarray  # [T, 33]
    world: np.ndarray  # [T, 33, 3] metres, hvg axes
    detected: np.ndarray  # [T] bool
    crop: tuple[int, int] | None  # the band [x0, x1) MediaPipe was given, None = whole frame
    people: int  # people found on the first frame (0 if the selection pass did not run)


def detect_frames(
    frames: Iterable[np.ndarray],
    count: int,
    person: str | int = "largest",
    source: str = "video",
    task=None,
    to_source: tuple[float, float] = (1.0, 1.0),
) -> RawTrack:
    """Run MediaPipe Pose (tracking mode) over `frames` ([H, W, 3] uint8, `count` of them).

    person: "largest" | "first" | index from the left (see the module doc). task: progress task
    with advance(n). to_source: (sx, sy) from the frames' pixels to the video's own pixels, when
    the frames were downscaled. Returns a RawTrack with T = frames actually read; its image
    landmarks and crop are in the video's own pixels.
    """
    image = np.full((count, 33, 2), np.nan)
    vis = np.zeros((count, 33))
    world = np.full((count, 33, 3), np.nan)
    detected = np.zeros(count, bool)
    crop: tuple[int, int] | None = None
    people = 0
    T = 0  # frames read
    with new_tracker() as pose:
        for t, frame in enumerate(frames):
            if t >= count:
                break
            T = t + 1
            H, W = frame.shape[:2]
            with quiet_native_logs() if t == 0 else nullcontext():  # models load on the first frame
                if t == 0 and person != "first":
                    cands = find_people(frame)
                    people = len(cands)
                    crop = choose_crop(cands, person, W, source)
                x0, x1 = crop if crop else (0, W)
                sub = frame if crop is None else np.ascontiguousarray(frame[:, x0:x1])
                lm = _landmarks(pose.process(sub), x0, x1 - x0, H)
            if lm is not None:
                image[t], vis[t], world[t] = lm[0], lm[1], mediapipe_to_hvg(lm[2])
                detected[t] = True
            if task is not None:
                task.advance(1)
    image = image[:T] * np.asarray(to_source, dtype=np.float64)  # working px -> video px
    if crop is not None:
        crop = (int(np.floor(crop[0] * to_source[0])), int(np.ceil(crop[1] * to_source[0])))
    return RawTrack(image, vis[:T], world[:T], detected[:T], crop, people)


def finish_track(
    raw: RawTrack,
    frame_indices: np.ndarray,
    fps: Fraction,
    source_fps: Fraction,
    width: int,
    height: int,
    source_hash: str,
    source: str,
    max_gap: int,
    smooth: bool = True,
    min_cutoff: float = 1.0,
    beta: float = 1.5,
) -> PoseTrack:
    """Fill gaps (or raise NoPerson), smooth, and package a RawTrack as a PoseTrack."""
    image, vis, world = fill_gaps(
        raw.detected, [raw.image, raw.visibility, raw.world], max_gap, frame_indices, float(source_fps), source
    )
    if smooth and len(image) > 1:
        # image landmarks in "metres" of the body: px / (median landmark-box height px / 1.7 m)
        heights = image[:, :, 1].max(axis=1) - image[:, :, 1].min(axis=1)  # [T] px
        scale = max(float(np.median(heights)) / BODY_HEIGHT_M, 1e-6)  # px per metre
        image = one_euro(image / scale, float(fps), min_cutoff, beta) * scale
        world = one_euro(world, float(fps), min_cutoff, beta)
    return PoseTrack(
        image=image,
        visibility=vis,
        world=world,
        detected=raw.detected.copy(),
        frame_indices=np.asarray(frame_indices, dtype=np.int64),
        fps=fps,
        width=width,
        height=height,
        source_hash=source_hash,
    )
