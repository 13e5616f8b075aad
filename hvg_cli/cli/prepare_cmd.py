"""`hvg prepare`: training clips (VAE latents, CLIP embedding, bone maps, cameras) into a dataset folder."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from hvg_cli.cli.common import (
    CacheDirOpt,
    JsonOpt,
    NoCacheOpt,
    QuietOpt,
    RichReporter,
    emit_json,
    err_console,
    maps_errors,
)
from hvg_cli.core.cache import StageCache

HELP = """Make a training dataset for `hvg train`.

Synthetic multi-view clips (photos performing motions, rendered with the preview backend through a camera
preset, marked synthetic in the manifest):

  hvg prepare --synthetic photos/ --motions dance,wave,jumping-jacks --cameras orbit-360 --views 4 \\
      --size 64 --weights weights/ -o dataset/

Monocular videos (a file, a folder of them, or a .txt list; one person, a fixed camera):

  hvg prepare dances/ --size 64 --length 8 --stride 8 --weights weights/ -o dataset/

Multi-view captures (a folder holding one video per camera and a nerfstudio transforms.json, or a folder of
such folders; the per-camera reprojection error is printed, sequences above the limit are skipped):

  hvg prepare captures/ --size 64 --length 8 --weights weights/ -o dataset/

Re-running the command continues the dataset: finished clips are skipped. Bad clips are skipped with one line
each and counted. See README, "Training data layouts".
"""


def _csv(text: str | None) -> list[str]:
    return [t.strip() for t in (text or "").split(",") if t.strip()]


def register(app: typer.Typer) -> None:
    @app.command(help=HELP)
    @maps_errors
    def prepare(
        sources: Annotated[
            Optional[list[str]],
            typer.Argument(
                help="Monocular videos, folders of them, .txt lists, or multi-view capture folders (transforms.json).",
                show_default=False,
            ),
        ] = None,
        out: Annotated[Path, typer.Option("--out", "-o", help="The dataset folder (created, or continued).")] = Path(
            "dataset"
        ),
        weights: Annotated[
            Path,
            typer.Option(
                "--weights",
                help="HVG weights folder whose VAE and CLIP encoder encode the clips (use the base you will train).",
            ),
        ] = Path("weights"),
        synthetic: Annotated[
            Optional[list[Path]],
            typer.Option(
                "--synthetic",
                help="Photos (files, folders, .txt lists) to render as synthetic clips.",
                show_default=False,
            ),
        ] = None,
        motions: Annotated[
            Optional[str],
            typer.Option(
                "--motions",
                help="Comma-separated motion presets or .npz/.bvh files for --synthetic.",
                show_default=False,
            ),
        ] = None,
        cameras: Annotated[
            str, typer.Option("--cameras", help="Camera preset of the synthetic clips (views mode).")
        ] = "orbit-360",
        views: Annotated[int, typer.Option("--views", min=1, help="Views per clip (overrides the preset's).")] = 4,
        size: Annotated[int, typer.Option("--size", min=16, help="Training width and height in pixels.")] = 64,
        length: Annotated[int, typer.Option("--length", min=1, help="Frames per clip.")] = 4,
        stride: Annotated[int, typer.Option("--stride", min=1, help="Motion frames between clip starts.")] = 8,
        frame_step: Annotated[
            int, typer.Option("--frame-step", min=1, help="Take every N-th frame inside a clip.")
        ] = 1,
        gap: Annotated[
            int,
            typer.Option("--gap", min=1, help="The reference frame lies at least this many frames outside the clip."),
        ] = 8,
        target: Annotated[
            str,
            typer.Option(
                "--target",
                help="Synthetic targets: preview (renders) or bonemap (silhouettes in the bone-map colours).",
            ),
        ] = "preview",
        max_frames: Annotated[
            Optional[int],
            typer.Option(
                "--max-frames", min=1, help="Use at most this many frames of each motion.", show_default=False
            ),
        ] = None,
        licence: Annotated[str, typer.Option("--licence", help="Licence recorded with every clip.")] = "",
        seed: Annotated[int, typer.Option("--seed", help="Seed of the reference's noise augmentation.")] = 0,
        cache_dir: CacheDirOpt = None,
        no_cache: NoCacheOpt = False,
        as_json: JsonOpt = False,
        quiet: QuietOpt = False,
    ) -> None:
        from hvg_cli.core.settings import PrepareSettings
        from hvg_cli.pipeline.training import prepare_job

        settings = PrepareSettings(
            width=size,
            height=size,
            length=length,
            stride=stride,
            frame_step=frame_step,
            gap=gap,
            cameras=cameras,
            views=views,
            target=target,
            max_frames=max_frames,
            seed=seed,
            licence=licence,
        )
        report = RichReporter(quiet=quiet)
        r = prepare_job(
            out,
            weights,
            synthetic=synthetic or (),
            motions=_csv(motions),
            settings=settings,
            videos=sources or (),
            cache=StageCache(cache_dir, enabled=not no_cache),
            progress=report,
        )
        if as_json:
            emit_json(
                {
                    "out": r.out,
                    "written": r.written,
                    "existing": r.existing,
                    "skipped": len(r.skipped),
                    "clips": r.total_clips,
                    "reprojection_px": r.reprojection,
                    "seconds": r.seconds,
                    "clips_per_s": r.clips_per_s,
                }
            )
            return
        for video, (err, limit) in r.reprojection.items():
            err_console.print(
                f"{video}: mean reprojection error {err:.2f} px at the training size (limit {limit:.2f})",
                markup=False,
                soft_wrap=True,
            )
        err_console.print(
            f"{r.out}: {r.written} clips written ({r.clips_per_s:.2f} clips/s), {r.existing} already "
            f"there, {len(r.skipped)} skipped; {r.total_clips} clips in the dataset",
            markup=False,
            soft_wrap=True,
        )
