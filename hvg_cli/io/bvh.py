"""BVH motion files: parsing a document into its hierarchy and frames, and writing one. Pure file work:
mapping a BVH skeleton onto SMPL-24 (and making a BVH of a `Motion`) is `body.mocap`'s; `pipeline`
composes the two.

Reading (`read_bvh`, `parse_bvh`): HIERARCHY (any channel order and count per joint; End Sites kept
as joints named `<parent>_End`) and MOTION (`Frames:`, `Frame Time:`, one row of channel values per
frame). The result is a `core.mocap.BvhData`: joints in file order (parents first), each with its
offset, its channels (lower-case, in file order) and the column of its first channel in a row.

Writing (`bvh_text`, `write_bvh`): the same structure back as text, joints nested in list order,
End Sites for `is_end` joints, numbers with 6 decimals (frame time with 10).
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import numpy as np

from hvg_cli.core.atomic import atomic_file
from hvg_cli.core.cache import file_hash
from hvg_cli.core.errors import BadInput
from hvg_cli.core.mocap import BvhData, BvhJoint

ROTATION_CHANNELS = ("xrotation", "yrotation", "zrotation")
POSITION_CHANNELS = ("xposition", "yposition", "zposition")


# ---------------------------------------------------------------------------------------------
# parsing
# ---------------------------------------------------------------------------------------------
def parse_bvh(text: str, source: str = "<bvh>") -> BvhData:
    """Parse a BVH document. Raises BadInput naming `source` on any syntax problem."""
    tokens = text.split()
    pos = 0

    def bad(why: str) -> BadInput:
        return BadInput(
            f"{source}: not a valid BVH file ({why})", hint="export the motion as BVH again, or use an AMASS .npz"
        )

    def take() -> str:
        nonlocal pos
        if pos >= len(tokens):
            raise bad("unexpected end of file")
        pos += 1
        return tokens[pos - 1]

    def floats(n: int) -> np.ndarray:
        try:
            return np.array([float(take()) for _ in range(n)])
        except ValueError as e:
            raise bad(f"expected {n} numbers near token {pos}") from e

    joints: list[BvhJoint] = []
    n_channels = 0
    if not tokens or tokens[0].upper() != "HIERARCHY":
        raise bad("it does not start with HIERARCHY")
    pos = 1

    def parse_joint(parent: int, kind: str) -> None:
        nonlocal n_channels
        if kind == "END":
            take()  # "Site"
            name = f"{joints[parent].name}_End"
        else:
            name = take()
        if take() != "{":
            raise bad(f"'{{' expected after {name}")
        idx = len(joints)
        joints.append(BvhJoint(name=name, parent=parent, offset=np.zeros(3), is_end=kind == "END"))
        while True:
            tok = take()
            up = tok.upper()
            if up == "OFFSET":
                joints[idx] = dataclasses.replace(joints[idx], offset=floats(3))
            elif up == "CHANNELS":
                try:
                    n = int(take())
                except ValueError as e:
                    raise bad(f"channel count of {name}") from e
                channels = tuple(take().lower() for _ in range(n))
                for c in channels:
                    if c not in ROTATION_CHANNELS and c not in POSITION_CHANNELS:
                        raise bad(f"unknown channel '{c}' on {name}")
                joints[idx] = dataclasses.replace(joints[idx], channels=channels, channel_start=n_channels)
                n_channels += n
            elif up in ("JOINT", "END"):
                parse_joint(idx, up)
            elif tok == "}":
                return
            else:
                raise bad(f"unexpected '{tok}' in {name}")

    if take().upper() != "ROOT":
        raise bad("ROOT expected after HIERARCHY")
    parse_joint(-1, "ROOT")
    while pos < len(tokens) and tokens[pos].upper() == "ROOT":
        raise bad("several ROOT skeletons in one file")
    if take().upper() != "MOTION":
        raise bad("MOTION expected after the hierarchy")
    if take().lower() != "frames:":
        raise bad("'Frames:' expected")
    try:
        T = int(take())
    except ValueError as e:
        raise bad("frame count") from e
    if take().lower() != "frame" or take().lower() != "time:":
        raise bad("'Frame Time:' expected")
    try:
        frame_time = float(take())
    except ValueError as e:
        raise bad("frame time") from e
    rest = tokens[pos:]
    if T < 1:
        raise bad("no frames")
    if not np.isfinite(frame_time) or frame_time <= 0:
        raise bad(f"frame time {frame_time}")
    if len(rest) < T * n_channels:
        raise bad(f"{T} frames of {n_channels} channels announced, {len(rest)} numbers found")
    try:
        frames = np.array(rest[: T * n_channels], dtype=np.float64).reshape(T, n_channels)  # [T*C] -> [T, C]
    except ValueError as e:
        raise bad("non-numeric motion data") from e
    if not np.all(np.isfinite(frames)):
        raise bad("motion data holds NaN/inf")
    return BvhData(joints=tuple(joints), frames=frames, frame_time=frame_time, source=source)


def read_bvh(path: str | os.PathLike) -> BvhData:
    """Read and parse a BVH file. source = the path, name = its stem, source_hash = its hash.

    Raises BadInput (the file named) if it is missing, unreadable or not valid BVH.
    """
    path = Path(path)
    if not path.is_file():
        raise BadInput(
            f"BVH file not found: {path}", hint="check the path, or use a built-in motion (hvg pose --list-presets)"
        )
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as e:
        raise BadInput(f"{path}: cannot read ({e.strerror or e})", hint="check the file's permissions") from e
    data = parse_bvh(text, str(path))
    return dataclasses.replace(data, name=path.stem, source_hash=file_hash(path))


# ---------------------------------------------------------------------------------------------
# writing
# ---------------------------------------------------------------------------------------------
def _channel_name(c: str) -> str:
    return c[0].upper() + c[1:]  # "zrotation" -> "Zrotation"


def bvh_text(data: BvhData) -> str:
    """The BVH document of `data` (joints nested in list order, End Sites for `is_end` joints)."""
    joints = data.joints
    children: list[list[int]] = [[] for _ in joints]
    for j, joint in enumerate(joints):
        if joint.parent >= 0:
            children[joint.parent].append(j)
    lines = ["HIERARCHY"]

    def f3(v) -> str:
        return " ".join(f"{x:.6f}" for x in v)

    def emit(j: int, depth: int) -> None:
        ind = "  " * depth
        joint = joints[j]
        if joint.is_end:
            lines.append(f"{ind}End Site")
            lines.append(f"{ind}{{")
            lines.append(f"{ind}  OFFSET {f3(joint.offset)}")
            lines.append(f"{ind}}}")
            return
        lines.append(f"{ind}{'ROOT' if joint.parent < 0 else 'JOINT'} {joint.name}")
        lines.append(f"{ind}{{")
        lines.append(f"{ind}  OFFSET {f3(joint.offset)}")
        if joint.channels:
            lines.append(f"{ind}  CHANNELS {len(joint.channels)} {' '.join(_channel_name(c) for c in joint.channels)}")
        for c in children[j]:
            emit(c, depth + 1)
        lines.append(f"{ind}}}")

    emit(0, 0)
    T = data.frames.shape[0]
    lines += ["MOTION", f"Frames: {T}", f"Frame Time: {data.frame_time:.10f}"]
    lines += [" ".join(f"{x:.6f}" for x in row) for row in np.asarray(data.frames, dtype=np.float64)]
    return "\n".join(lines) + "\n"


def write_bvh(data: BvhData, path: str | os.PathLike) -> Path:
    """Write `data` as a BVH file, atomically. Returns the path."""
    path = Path(path)
    text = bvh_text(data)
    with atomic_file(path, "w", encoding="utf-8") as f:
        f.write(text)
    return path
