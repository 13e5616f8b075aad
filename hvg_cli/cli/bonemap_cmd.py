"""`hvg bonemap`: render the bone-map conditioning of a job, to inspect it before spending GPU time."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from hvg_cli import pipeline
from hvg_cli.cli import job_options as jo
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
from hvg_cli.core.settings import bonemap_from_flags


def register(app: typer.Typer) -> None:
    @app.command()
    @maps_errors
    def bonemap(
        photo: jo.PhotoArg,
        motion: jo.MotionOpt,
        out: jo.OutOpt = Path("bones.mp4"),
        orbit: jo.OrbitOpt = None,
        camera: jo.CameraOpt = None,
        views: jo.ViewsOpt = None,
        elevation: jo.ElevationOpt = None,
        radius: jo.RadiusOpt = None,
        fov: jo.FovOpt = None,
        resolution: jo.ResolutionOpt = "512",
        start: jo.StartOpt = 0,
        end: jo.EndOpt = None,
        frames: jo.FramesOpt = None,
        max_gap: jo.MaxGapOpt = None,
        no_align: jo.NoAlignOpt = False,
        body_model: jo.BodyModelOpt = None,
        grid: jo.GridOpt = False,
        channels: Annotated[
            str, typer.Option("--channels", help="Comma-separated, shown side by side: semantic,normal,depth,mask.")
        ] = "semantic,normal,depth,mask",
        export: Annotated[
            Optional[Path],
            typer.Option(
                "--export",
                help="Also save the raw maps (semantic, normal, depth, mask, label, cameras) to this .npz.",
                show_default=False,
            ),
        ] = None,
        cache_dir: CacheDirOpt = None,
        no_cache: NoCacheOpt = False,
        as_json: JsonOpt = False,
        quiet: QuietOpt = False,
    ) -> None:
        """Render the 3D bone maps (ellipsoid skeleton: part colour, normal, depth, mask) of PHOTO's person doing MOTION.

        Examples:

          hvg bonemap photo.jpg --motion dance.mp4 --orbit 360 -o bones.mp4

          hvg bonemap photo.jpg --motion wave --camera sv3d-21 --grid --channels semantic,normal -o grid.mp4

          hvg bonemap photo.jpg --motion walk-in-place --export maps.npz --no-align -o bones.mp4
        """
        settings = bonemap_from_flags(
            orbit=orbit,
            camera=camera,
            views=views,
            elevation=elevation,
            radius=radius,
            fov=fov,
            resolution=resolution,
            start=start,
            end=end,
            frames=frames,
            max_gap=max_gap,
            no_align=no_align,
            body_model=body_model,
            grid=grid,
            channels=channels,
        )
        report = RichReporter(quiet=quiet)
        result = pipeline.bonemap_job(
            photo,
            motion,
            settings,
            out,
            export=export,
            cache=StageCache(cache_dir, enabled=not no_cache),
            progress=report,
        )
        if as_json:
            emit_json(result.as_dict())
        else:
            err_console.print(
                f"wrote {result.out}: {result.views} view(s) × {result.frames} frames at {float(result.fps):.3f} fps"
                + (f", maps in {result.export}" if result.export else ""),
                markup=False,
            )
