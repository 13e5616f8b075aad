"""`hvg cameras list | show NAME | export NAME`: the camera paths a job can use."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Optional

import typer

from hvg_cli import pipeline
from hvg_cli.cli.common import JsonOpt, emit_json, err_console, maps_errors
from hvg_cli.cli.job_options import ElevationOpt, FovOpt, RadiusOpt, ViewsOpt
from hvg_cli.core.settings import CameraSpec, ExportFormat, camera_from_flags

app = typer.Typer(
    help="Camera paths: list the presets, show one as a table or a picture, export it for nerfstudio.",
    no_args_is_help=True,
)

NameArg = Annotated[
    str,
    typer.Argument(
        help="A preset name (see `hvg cameras list`), a preset .yaml file or a nerfstudio camera_path .json file.",
        show_default=False,
    ),
]
DegreesOpt = Annotated[
    Optional[float], typer.Option("--degrees", help="Sweep of an orbit/arc/spiral, degrees.", show_default=False)
]
SizeOpt = Annotated[
    Optional[str],
    typer.Option(
        "--resolution", "-r", help="Image size WxH in pixels, e.g. 576x576 (default: the preset's).", show_default=False
    ),
]


def _spec(
    name: str,
    views: int | None,
    elevation: float | None,
    radius: float | None,
    fov: float | None,
    degrees: float | None,
    size: str | None,
) -> CameraSpec:
    return camera_from_flags(
        camera=name, views=views, elevation=elevation, radius=radius, fov=fov, degrees=degrees, resolution=size
    )


@app.command("list")
@maps_errors
def list_(as_json: JsonOpt = False) -> None:
    """The camera presets: name, generator, views and what they do."""
    presets = pipeline.camera_presets()
    if as_json:
        emit_json([asdict(p) for p in presets])
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title="camera presets (use with --camera NAME)")
    table.add_column("name")
    table.add_column("generator")
    table.add_column("views", justify="right")
    table.add_column("closed")
    table.add_column("description")
    for p in presets:
        table.add_row(p.name, p.generator, str(p.views), "yes" if p.closed else "", p.description)
    Console().print(table)


@app.command()
@maps_errors
def show(
    name: NameArg,
    plot: Annotated[
        Optional[Path],
        typer.Option("--plot", help="Also draw the cameras (top-down and side) into this PNG.", show_default=False),
    ] = None,
    views: ViewsOpt = None,
    elevation: ElevationOpt = None,
    radius: RadiusOpt = None,
    fov: FovOpt = None,
    degrees: DegreesOpt = None,
    size: SizeOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """A table of the path's views: azimuth, elevation, radius, position and fov."""
    spec = _spec(name, views, elevation, radius, fov, degrees, size)
    summary = pipeline.describe_camera_path(spec)
    plotted = pipeline.plot_camera_path(spec, plot) if plot is not None else None
    if as_json:
        emit_json({**asdict(summary), "plot": str(plotted) if plotted else None})
        return
    from rich.console import Console
    from rich.table import Table

    look = "" if summary.look_at is None else " looking at ({:.2f}, {:.2f}, {:.2f})".format(*summary.look_at)
    table = Table(
        title=f"{summary.name}: {summary.num_views} view{'s' if summary.num_views != 1 else ''}"
        f"{' (closed)' if summary.closed else ''}, {summary.width}x{summary.height}{look}",
        caption=summary.description,
    )
    with_time = any(v.time is not None for v in summary.views)
    for col in ("view", "azimuth°", "elevation°", "radius m", "position (x, y, z) m", "fov°") + (
        ("time",) if with_time else ()
    ):
        table.add_column(col, justify="left" if col.startswith("position") else "right")
    for v in summary.views:
        row = [
            str(v.index),
            f"{v.azimuth:.1f}",
            f"{v.elevation:.1f}",
            f"{v.radius:.3f}",
            "({:.3f}, {:.3f}, {:.3f})".format(*v.position),
            f"{v.fov:.1f}",
        ]
        table.add_row(*row, *([f"{v.time:.3f}" if v.time is not None else ""] if with_time else []))
    Console().print(table)
    if plotted:
        err_console.print(f"wrote {plotted}")


@app.command()
@maps_errors
def export(
    name: NameArg,
    out: Annotated[Path, typer.Option("-o", "--out", help="Output file.")] = Path("camera_path.json"),
    format: Annotated[
        ExportFormat, typer.Option("--format", help="Output format: nerfstudio (camera_path .json).")
    ] = ExportFormat.NERFSTUDIO,
    fps: Annotated[float, typer.Option("--fps", help="Frames per second written in the file.")] = 24.0,
    seconds: Annotated[
        Optional[float],
        typer.Option(
            "--seconds", help="Duration written in the file (default: one view per frame).", show_default=False
        ),
    ] = None,
    views: ViewsOpt = None,
    elevation: ElevationOpt = None,
    radius: RadiusOpt = None,
    fov: FovOpt = None,
    degrees: DegreesOpt = None,
    size: SizeOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Write the camera path for another tool (nerfstudio's `ns-render camera-path`)."""
    spec = _spec(name, views, elevation, radius, fov, degrees, size)
    written = pipeline.export_camera_path(spec, out, format=format, fps=fps, seconds=seconds)
    if as_json:
        emit_json({"out": str(written), "format": format.value})
    else:
        err_console.print(f"wrote {written}")
