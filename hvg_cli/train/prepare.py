"""Writing a dataset from clip sources: resumable, bad clips skipped with one line each, a summary at the end.

The pipeline (`hvg prepare`) knows how to turn footage into aligned frames, bone maps and cameras (pose,
subject, bonemap, align stages); it hands this function one ClipSource per window, whose `load` runs those
stages lazily. A clip already in the dataset is skipped without loading it, so a re-run only does the
clips a killed run did not finish. A `load` or an encoding that raises an HvgError (no person, person
lost, unreadable file, camera not solvable, ...) skips that clip with one note; other errors are bugs
and propagate.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np

from hvg_cli.core.errors import HvgError
from hvg_cli.core.progress import SILENT, Reporter
from hvg_cli.core.types import BoneMaps, CameraGrid


@dataclass(frozen=True, eq=False)
class ClipInputs:
    """Aligned inputs of one clip (shapes as encode.encode_clip takes them)."""

    photo: np.ndarray  # [H, W, 3] uint8 reference
    frames: np.ndarray  # [V, T, H, W, 3] uint8 targets
    maps: BoneMaps  # [V, T, H, W]
    grid: CameraGrid  # [V, T]
    fps: float
    source: str = ""
    licence: str = ""
    synthetic: bool = False
    reference: str = ""
    kind: str = ""  # "synthetic" | "video" | "multiview", recorded in the manifest
    cameras: tuple[str, ...] = ()  # a name per view (a capture's videos), recorded in the manifest


@dataclass(frozen=True)
class ClipSource:
    id: str  # unique in the dataset, no '/': e.g. "<video hash>-f000120-r000104"
    load: Callable[[], ClipInputs]


@dataclass(frozen=True)
class PrepareSummary:
    written: int
    existing: int  # already in the dataset before this run
    skipped: tuple[tuple[str, str], ...] = field(default_factory=tuple)  # (clip id, reason)
    seconds: float = 0.0

    @property
    def clips_per_s(self) -> float:
        return self.written / self.seconds if self.seconds > 0 else 0.0


def prepare_clips(
    pipe,
    sources: Iterable[ClipSource],
    out: str | os.PathLike,
    total: int | None = None,
    clips_per_shard: int = 16,
    seed: int = 0,
    motion_bucket_id: int = 127,
    noise_aug_strength: float = 0.02,
    progress: Reporter = SILENT,
) -> PrepareSummary:
    """Encode every source into the dataset at `out` (created or continued).

    pipe: a loaded HVGPipeline (VAE and CLIP encode; see encode.encode_clip); total: number of sources, for
    the progress bar (None: unknown).
    """
    from hvg_cli.train.dataset import DatasetWriter
    from hvg_cli.train.encode import encode_clip

    writer = DatasetWriter(
        out, clips_per_shard=clips_per_shard, vae_scaling_factor=float(pipe.vae.config.scaling_factor)
    )
    written = existing = 0
    skipped: list[tuple[str, str]] = []
    t0 = time.perf_counter()
    with progress.task("preparing clips", total=total, unit="clips") as task:
        for src in sources:
            if writer.has(src.id):
                existing += 1
                task.advance(1)
                continue
            try:
                x = src.load()
                clip = encode_clip(
                    pipe,
                    src.id,
                    x.photo,
                    x.frames,
                    x.maps,
                    x.grid,
                    x.fps,
                    motion_bucket_id=motion_bucket_id,
                    noise_aug_strength=noise_aug_strength,
                    seed=seed,
                    source=x.source,
                    licence=x.licence,
                    synthetic=x.synthetic,
                    reference=x.reference,
                    kind=x.kind,
                    cameras=x.cameras,
                )
                writer.add(clip)
                written += 1
            except HvgError as e:
                skipped.append((src.id, str(e)))
                progress.note(f"skipped clip {src.id}: {e}")
            task.advance(1)
        writer.close()
    return PrepareSummary(written, existing, tuple(skipped), time.perf_counter() - t0)
