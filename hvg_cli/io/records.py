"""The stage cache's own files for landmark tracks and subjects: plain .npz arrays (no pickle) + JSON."""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import numpy as np

from hvg_cli.core.types import Camera, PoseTrack, Skeleton, Subject

_SUBJECT_ARRAYS = ("image", "mask", "landmarks", "visibility", "photo_pose", "photo_trans", "radii")


def save_track(track: PoseTrack, path: Path) -> None:
    """Write a landmark track as one .npz (the exact fps as numerator and denominator)."""
    np.savez(
        path,
        image=track.image,
        visibility=track.visibility,
        world=track.world,
        detected=track.detected,
        frame_indices=track.frame_indices,
        fps_num=track.fps.numerator,
        fps_den=track.fps.denominator,
        width=track.width,
        height=track.height,
        source_hash=np.array(track.source_hash),
    )


def load_track(path: Path) -> PoseTrack:
    """Read what `save_track` wrote."""
    with np.load(path, allow_pickle=False) as d:
        return PoseTrack(
            image=d["image"],
            visibility=d["visibility"],
            world=d["world"],
            detected=d["detected"],
            frame_indices=d["frame_indices"],
            fps=Fraction(int(d["fps_num"]), int(d["fps_den"])),
            width=int(d["width"]),
            height=int(d["height"]),
            source_hash=str(d["source_hash"]),
        )


def save_subject(subject: Subject, folder: Path, report: dict) -> None:
    """Write a subject as `subject.npz` (arrays) + `subject.json` (sizes, skeleton tree, fit report)."""
    arrays = {k: getattr(subject, k) for k in _SUBJECT_ARRAYS}
    arrays.update(
        rest_joints=subject.skeleton.rest_joints, K=subject.camera.K, world_to_cam=subject.camera.world_to_cam
    )
    np.savez(folder / "subject.npz", **arrays)
    meta = {
        "width": subject.camera.width,
        "height": subject.camera.height,
        "source_hash": subject.source_hash,
        "legs_guessed": subject.legs_guessed,
        "parents": list(subject.skeleton.parents),
        "report": report,
    }
    (folder / "subject.json").write_text(json.dumps(meta, indent=1))


def load_subject(folder: Path) -> Subject:
    """Read what `save_subject` wrote."""
    meta = json.loads((folder / "subject.json").read_text())
    with np.load(folder / "subject.npz", allow_pickle=False) as z:
        a = {k: z[k] for k in z.files}
    camera = Camera(K=a["K"], world_to_cam=a["world_to_cam"], width=int(meta["width"]), height=int(meta["height"]))
    return Subject(
        image=a["image"],
        mask=a["mask"],
        landmarks=a["landmarks"],
        visibility=a["visibility"],
        skeleton=Skeleton(rest_joints=a["rest_joints"], parents=tuple(meta["parents"])),
        photo_pose=a["photo_pose"],
        photo_trans=a["photo_trans"],
        camera=camera,
        radii=a["radii"],
        source_hash=meta["source_hash"],
        legs_guessed=bool(meta["legs_guessed"]),
    )


def load_subject_report(folder: Path) -> dict:
    """The fit figures stored beside a subject (reprojection error, tilt, ...)."""
    return json.loads((folder / "subject.json").read_text())["report"]
