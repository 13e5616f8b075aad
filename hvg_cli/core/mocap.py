"""The raw content of motion files, as it crosses from `io/` (which reads and writes the files) to
`body/` (which turns it into, or makes it from, a `Motion`). No conversion happens here.

MocapArrays: an AMASS / SMPL / hvg .npz (`io.amass`); BvhData: a BVH document (`io.bvh`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np


@dataclass(frozen=True, eq=False)
class MocapArrays:
    """The arrays of an AMASS / SMPL / hvg motion .npz, in the file's own world and conventions."""

    poses: np.ndarray  # [T, J, 3] axis-angle, SMPL joint order; J = 24 (SMPL) or 22 (SMPL-H/X body joints)
    trans: np.ndarray  # [T, 3] metres, SMPL's `trans` as stored (not the pelvis position)
    fps: Fraction  # exact
    up: str | None = None  # "y" for hvg's files; None when the file does not say (AMASS: z up)
    rest_joints: np.ndarray | None = None  # [24, 3] hvg_rest_joints, metres, pelvis at the origin
    parents: tuple[int, ...] | None = None  # hvg_parents
    joints: np.ndarray | None = None  # [T, 24, 3] hvg_joints, fitted world positions
    fit_error_deg: float | None = None
    name: str = "motion"
    source_hash: str = ""
    audio_path: str | None = None
    start_time: float = 0.0
    extras: dict = field(default_factory=dict)  # name -> array, stored as `hvg_<name>`

    @property
    def num_frames(self) -> int:
        return int(self.poses.shape[0])


@dataclass(frozen=True, eq=False)
class BvhJoint:
    """One joint of a BVH hierarchy (End Sites included, named `<parent>_End`)."""

    name: str
    parent: int  # index in BvhData.joints, -1 for the root
    offset: np.ndarray  # [3] file units
    channels: tuple[str, ...] = ()  # lower-case channel names in file order, e.g. ("zrotation", ...)
    channel_start: int = 0  # column of the first channel in a MOTION row
    is_end: bool = False


@dataclass(frozen=True, eq=False)
class BvhData:
    """A BVH document: hierarchy (joints in file order, parents first) and motion."""

    joints: tuple[BvhJoint, ...]
    frames: np.ndarray  # [T, C] channel values as in the file (degrees, file units)
    frame_time: float  # seconds
    source: str = "<bvh>"  # where it came from (a path), for messages
    name: str = "motion"
    source_hash: str = ""

    @property
    def fps(self) -> Fraction:
        return fps_from_frame_time(self.frame_time)


def fps_from_float(rate: float) -> Fraction:
    """A frame rate stored as a float -> an exact Fraction.

    Integral rates stay integral (120.0 -> 120); NTSC rates become n*1000/1001 (59.94 -> 60000/1001);
    anything else is the nearest fraction with a denominator up to 1001.
    """
    rate = float(rate)
    if not np.isfinite(rate) or rate <= 0:
        raise ValueError(f"frame rate {rate}")
    if abs(rate - round(rate)) < 1e-6:
        return Fraction(int(round(rate)))
    ntsc = round(rate * 1.001)
    if ntsc > 0 and abs(rate - ntsc * 1000 / 1001) < 5e-3 * max(1.0, rate / 30):
        return Fraction(ntsc * 1000, 1001)
    return Fraction(rate).limit_denominator(1001)


def fps_from_frame_time(dt: float) -> Fraction:
    """A BVH `Frame Time` (seconds) -> an exact frame rate."""
    rate = 1.0 / dt
    if abs(rate - round(rate)) < 2e-4 * rate:
        return Fraction(int(round(rate)))
    return fps_from_float(rate)
