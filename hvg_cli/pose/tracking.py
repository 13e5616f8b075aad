"""Following one person through a video: choosing whom, and filling the frames where they were lost.

Pure numpy; the MediaPipe calls live in `video_pose.py`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hvg_cli.core.errors import BadInput, NoPerson


# ---------------------------------------------------------------------------------------------
# person selection
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Candidate:
    """A person found on the first frame: landmark box in full-frame pixels."""

    box: tuple[float, float, float, float]  # x0, y0, x1, y1 pixels

    @property
    def area(self) -> float:
        x0, y0, x1, y1 = self.box
        return max(0.0, x1 - x0) * max(0.0, y1 - y0)

    @property
    def centre_x(self) -> float:
        return 0.5 * (self.box[0] + self.box[2])


def landmark_box(
    points: np.ndarray, visibility: np.ndarray, min_visibility: float = 0.5
) -> tuple[float, float, float, float]:
    """Bounding box (x0, y0, x1, y1) of the visible landmarks. points: [33, 2] px; visibility: [33]."""
    seen = points[visibility >= min_visibility]
    if len(seen) < 4:
        seen = points
    return (float(seen[:, 0].min()), float(seen[:, 1].min()), float(seen[:, 0].max()), float(seen[:, 1].max()))


def box_iou(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def merge_candidates(found: list[Candidate], iou: float = 0.4) -> list[Candidate]:
    """Drop duplicates (the same person found in several regions), sorted left to right."""
    kept: list[Candidate] = []
    for c in sorted(found, key=lambda c: -c.area):
        if all(box_iou(c.box, k.box) < iou for k in kept):
            kept.append(c)
    return sorted(kept, key=lambda c: c.centre_x)


def parse_person(person: str) -> str | int:
    """`--person` value: "largest", "first", or a 0-based index from left to right."""
    p = str(person).strip().lower()
    if p in ("largest", "first"):
        return p
    try:
        i = int(p)
    except ValueError:
        raise BadInput(
            f"--person {person!r} is not understood", 'use "largest", "first" or an index from the left: 0, 1, ...'
        ) from None
    if i < 0:
        raise BadInput(f"--person {person!r} must be 0 or more", "0 is the leftmost person")
    return i


def choose_crop(candidates: list[Candidate], person: str | int, width: int, source: str) -> tuple[int, int] | None:
    """Horizontal band [x0, x1) of the frame to give MediaPipe so it follows the chosen person.

    candidates: people on the first frame, left to right. Returns None (the whole frame) when there is
    only one person or `person == "first"` (MediaPipe's own choice: the one its detector ranks first).
    Otherwise the band runs from halfway between the chosen person's box and the left neighbour's,
    to halfway to the right neighbour's, so the chosen person may move inside it.
    """
    if person == "first" or (len(candidates) <= 1 and person in ("largest", 0)):
        return None
    if isinstance(person, int):
        if person >= len(candidates):
            raise NoPerson(
                f"{source}: --person {person} asked, but the first frame shows {len(candidates)} "
                f"{'person' if len(candidates) == 1 else 'people'}",
                f"use --person 0..{max(0, len(candidates) - 1)} (counted from the left) or --person largest",
            )
        i = person
    else:  # largest
        i = int(np.argmax([c.area for c in candidates]))
    c = candidates[i]
    x0 = 0.0 if i == 0 else 0.5 * (candidates[i - 1].box[2] + c.box[0])
    x1 = float(width) if i == len(candidates) - 1 else 0.5 * (c.box[2] + candidates[i + 1].box[0])
    x0, x1 = int(np.floor(max(0.0, x0))), int(np.ceil(min(float(width), x1)))
    if x1 - x0 < 16:
        return None
    return (x0, x1)


# ---------------------------------------------------------------------------------------------
# gaps
# ---------------------------------------------------------------------------------------------
def runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """[start, end) index ranges where mask is True. mask: [T] bool."""
    m = np.concatenate([[False], np.asarray(mask, bool), [False]])
    d = np.diff(m.astype(np.int8))
    starts = np.flatnonzero(d == 1)
    ends = np.flatnonzero(d == -1)
    return [(int(s), int(e)) for s, e in zip(starts, ends)]


def _describe(ranges: list[tuple[int, int]], frame_indices: np.ndarray, fps: float) -> str:
    parts = []
    for s, e in ranges[:5]:
        a, b = int(frame_indices[s]), int(frame_indices[e - 1])
        secs = f"{a / fps:.2f}-{(b + 1) / fps:.2f} s"
        parts.append(f"frames {a}-{b} ({secs})" if b > a else f"frame {a} ({secs})")
    more = f" and {len(ranges) - 5} more" if len(ranges) > 5 else ""
    return ", ".join(parts) + more


def fill_gaps(
    detected: np.ndarray,
    arrays: list[np.ndarray],
    max_gap: int,
    frame_indices: np.ndarray,
    source_fps: float,
    source: str,
) -> list[np.ndarray]:
    """Fill frames where the person was lost by linear interpolation between the frames around them.

    detected: [T] bool; arrays: each [T, ...] float, values at undetected frames ignored.
    A gap at the start or end takes the nearest detected frame. Gaps of up to `max_gap` frames are
    filled; a longer gap, or no detection at all, raises NoPerson naming the source frame ranges.
    frame_indices: [T] source frame index of each track frame; source_fps: for the seconds in messages.
    returns: the arrays, filled (new arrays).
    """
    detected = np.asarray(detected, bool)
    T = detected.shape[0]
    if T == 0 or not detected.any():
        n = T
        raise NoPerson(
            f"no person found in {source} (0 of {n} frames)",
            "use a video where one whole person is visible; check --start/--end",
        )
    gaps = runs(~detected)
    long = [(s, e) for s, e in gaps if e - s > max_gap]
    if long:
        raise NoPerson(
            f"{source}: the person is lost for longer than {max_gap} frames at {_describe(long, frame_indices, source_fps)}",
            "cut those frames out with --start/--end, or allow longer gaps with --max-gap",
        )
    t = np.arange(T, dtype=np.float64)
    good = np.flatnonzero(detected)
    out = []
    for a in arrays:
        a = np.asarray(a, dtype=np.float64)
        flat = a.reshape(T, -1).copy()  # [T, ...] -> [T, K]
        for k in range(flat.shape[1]):
            flat[~detected, k] = np.interp(t[~detected], t[good], flat[good, k])  # ends: nearest value
        out.append(flat.reshape(a.shape))  # [T, K] -> [T, ...]
    return out
