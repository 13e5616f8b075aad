"""`hvg animate`: the main job."""

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
from hvg_cli.core.settings import Backend, Dtype, GuidanceRamp, Sampling, animate_from_flags


def register(app: typer.Typer) -> None:
    @app.command()
    @maps_errors
    def animate(
        photo: jo.PhotoArg,
        motion: jo.MotionOpt,
        out: jo.OutOpt = Path("out.mp4"),
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
        per_view: Annotated[
            bool,
            typer.Option(
                "--per-view", help="Render every view for every frame, one file per view (OUT_view00.mp4, ...)."
            ),
        ] = False,
        backend: Annotated[
            Backend,
            typer.Option(
                "--backend",
                help="auto (diffusion when weights are found, else preview), preview (no weights), or diffusion.",
            ),
        ] = Backend.AUTO,
        weights: Annotated[
            Optional[Path],
            typer.Option(
                "--weights", help="Diffusion weights folder (default: weights/ of the project).", show_default=False
            ),
        ] = None,
        background: jo.BackgroundOpt = "photo",
        no_audio: Annotated[bool, typer.Option("--no-audio", help="Drop the driving video's audio.")] = False,
        seed: Annotated[int, typer.Option("--seed", help="Random seed: a run is reproducible from it.")] = 0,
        steps: Annotated[int, typer.Option("--steps", min=1, help="Denoising steps (diffusion backend).")] = 25,
        guidance: Annotated[
            float, typer.Option("--guidance", min=0.0, help="Classifier-free guidance scale (diffusion backend).")
        ] = 3.0,
        guidance_ramp: Annotated[
            GuidanceRamp,
            typer.Option(
                "--guidance-ramp",
                help="flat: every frame at --guidance (HVG's frames are all generated); svd: SVD's ramp from 1 at each view's first frame.",
            ),
        ] = GuidanceRamp.FLAT,
        motion_bucket: Annotated[
            int,
            typer.Option(
                "--motion-bucket",
                min=0,
                max=1023,
                help="SVD's motion micro-conditioning (diffusion backend; higher: more motion).",
            ),
        ] = 127,
        noise_aug: Annotated[
            float,
            typer.Option(
                "--noise-aug",
                min=0.0,
                max=1.0,
                help="Noise added to the photo before encoding it (diffusion backend; SVD's cond_aug).",
            ),
        ] = 0.02,
        sampling: Annotated[
            Sampling,
            typer.Option(
                "--sampling",
                help="Diffusion sampling: progressive (anchor frames first, then the frames between), onepass (overlapping tiles blended every step), full (no tiles; small jobs).",
            ),
        ] = Sampling.PROGRESSIVE,
        tile_views: Annotated[int, typer.Option("--tile-views", min=1, help="Views per diffusion tile.")] = 2,
        tile_frames: Annotated[
            int,
            typer.Option(
                "--tile-frames",
                min=1,
                help="Frames per diffusion tile (peak memory grows with views × frames per tile, not with the video).",
            ),
        ] = 8,
        anchor_stride: Annotated[
            int, typer.Option("--anchor-stride", min=1, help="Progressive sampling: every N-th frame is an anchor.")
        ] = 4,
        device: jo.DeviceOpt = "auto",
        dtype: Annotated[
            Dtype, typer.Option("--dtype", help="auto (fp16 on GPU, fp32 on CPU), fp32, fp16, bf16.")
        ] = Dtype.AUTO,
        offload: Annotated[
            bool, typer.Option("--offload", help="Keep idle model parts on the CPU (small GPUs).")
        ] = False,
        dry_run: Annotated[
            bool,
            typer.Option(
                "--dry-run",
                help="Print the diffusion tile plan (tiles, UNet evaluations, memory per tile) and exit; loads no weights.",
            ),
        ] = False,
        cache_dir: CacheDirOpt = None,
        no_cache: NoCacheOpt = False,
        as_json: JsonOpt = False,
        quiet: QuietOpt = False,
    ) -> None:
        """Animate the person in PHOTO with MOTION while the camera follows the chosen path.

        Examples:

          hvg animate photo.jpg --motion dance.mp4 --orbit 360 -o out.mp4

          hvg animate photo.jpg --motion wave --camera arc --resolution 768x512 -o wave.gif

          hvg animate photo.jpg --motion dance.mp4 --camera sv3d-21 --grid -o grid.mp4

          hvg animate photo.jpg --motion jumping-jacks --background transparent -o frames/
        """
        settings = animate_from_flags(
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
            per_view=per_view,
            backend=backend,
            background=background,
            no_audio=no_audio,
            seed=seed,
            steps=steps,
            guidance=guidance,
            guidance_ramp=guidance_ramp,
            motion_bucket=motion_bucket,
            noise_aug=noise_aug,
            sampling=sampling,
            tile_views=tile_views,
            tile_frames=tile_frames,
            anchor_stride=anchor_stride,
            device=device,
            dtype=dtype,
            offload=offload,
        )
        report = RichReporter(quiet=quiet)
        if dry_run:
            plan = pipeline.animate_plan(
                motion, settings, weights=weights, cache=StageCache(cache_dir, enabled=not no_cache), progress=report
            )
            emit_json(plan) if as_json else _print_plan(plan)
            return
        result = pipeline.animate_job(
            photo,
            motion,
            settings,
            out,
            weights=weights,
            cache=StageCache(cache_dir, enabled=not no_cache),
            progress=report,
        )
        if as_json:
            emit_json(result.as_dict())
        else:
            files = ", ".join(str(p) for p in result.outputs)
            err_console.print(
                f"wrote {files}: {result.frames} frames at {float(result.fps):.3f} fps, backend {result.backend}"
                f", {result.seconds:.1f} s",
                markup=False,
            )


def _print_plan(plan: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(
        title=f"diffusion plan: {plan['views']} view(s) × {plan['frames']} frames at {plan['width']}x{plan['height']}",
        show_header=False,
    )

    def show(name: str, value: object) -> None:
        if name.endswith("_bytes") and isinstance(value, (int, float)):
            table.add_row(name[: -len("_bytes")], f"{value / 2**30:.2f} GiB")
        elif not isinstance(value, (list, dict)):
            table.add_row(name, str(value))

    for k, v in plan.items():
        if k in ("views", "frames", "width", "height"):
            continue
        if isinstance(v, dict):
            for k2, v2 in v.items():
                show(f"{k}.{k2}", v2)
        else:
            show(k, v)
    Console().print(table)
