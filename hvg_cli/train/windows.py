"""How `hvg prepare` cuts a tracked video into training windows and picks each window's reference frame.

A window is `length` frames taken every `frame_step`-th frame of the track; consecutive windows start
`stride` track frames apart. The reference is a frame of the same video OUTSIDE the window (the model must
learn to move the person from the reference into the bone maps' pose, not to copy a target frame): the
nearest frame at least `gap` frames before the window's first frame, else the nearest at least `gap`
after its last. Near in time keeps the same clothes, light and framing; the gap keeps the pose different.
"""

from __future__ import annotations

from dataclasses import dataclass

from hvg_cli.core.errors import BadInput


@dataclass(frozen=True)
class Window:
    frames: tuple[int, ...]  # track frame indices of the targets, in order
    reference: int  # track frame index of the reference image

    @property
    def id_suffix(self) -> str:
        return f"f{self.frames[0]:06d}-r{self.reference:06d}"


def windows(
    num_frames: int, length: int, stride: int, frame_step: int = 1, gap: int = 8, usable: list[bool] | None = None
) -> list[Window]:
    """Every window of a track of `num_frames` frames whose frames (and reference) are all usable.

    usable: [num_frames] False where the person was lost or the frame is bad (None: all usable).
    """
    if length < 1 or stride < 1 or frame_step < 1 or gap < 1:
        raise BadInput(f"window length {length}, stride {stride}, frame step {frame_step} and gap {gap} must be >= 1")
    ok = usable if usable is not None else [True] * num_frames
    if len(ok) != num_frames:
        raise BadInput(f"usable has {len(ok)} entries for {num_frames} frames")
    span = (length - 1) * frame_step + 1
    out = []
    for start in range(0, num_frames - span + 1, stride):
        frames = tuple(range(start, start + span, frame_step))
        if not all(ok[f] for f in frames):
            continue
        ref = _reference(frames[0], frames[-1], num_frames, gap, ok)
        if ref is not None:
            out.append(Window(frames, ref))
    return out


def _reference(first: int, last: int, num_frames: int, gap: int, ok: list[bool]) -> int | None:
    for r in range(first - gap, -1, -1):  # nearest usable frame at least `gap` before the window
        if ok[r]:
            return r
    for r in range(last + gap, num_frames):  # else at least `gap` after it
        if ok[r]:
            return r
    return None
