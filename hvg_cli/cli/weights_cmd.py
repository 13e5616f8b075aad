"""`hvg weights check | init`: validate or build an HVG diffusion weights folder (weights/README.md)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.table import Table

from hvg_cli import pipeline
from hvg_cli.cli.common import JsonOpt, emit_json, err_console, maps_errors

app = typer.Typer(
    help="Check or build HVG diffusion weights folders (safetensors only, local only).", no_args_is_help=True
)


def _show(report, as_json: bool, title: str) -> None:
    if as_json:
        emit_json({**dataclasses.asdict(report), "total_params": report.total_params})
        return
    table = Table(title=title, show_header=True)
    table.add_column("component")
    table.add_column("parameters", justify="right")
    for name, n in report.params.items():
        table.add_row(name, f"{n:,}")
    table.add_row("total", f"{report.total_params:,}")
    Console().print(table)
    for note in report.notes:
        err_console.print(f"hvg: {note}")


@app.command()
@maps_errors
def check(
    path: Annotated[Path, typer.Argument(help="The weights folder (model_index.json, unet/, vae/, ...).")],
    as_json: JsonOpt = False,
) -> None:
    """Validate a weights folder: files, configs, tensor shapes, safetensors only; print parameter counts."""
    report = pipeline.weights_check(path)
    _show(report, as_json, f"hvg weights: {report.path} ok")


@app.command()
@maps_errors
def init(
    out: Annotated[Path, typer.Option("--out", "-o", help="New folder to write (must not exist or be empty).")],
    tiny: Annotated[
        bool, typer.Option("--tiny", help="Tiny random UNTRAINED weights, for tests and CPU plumbing.")
    ] = False,
    base: Annotated[
        Optional[Path], typer.Option("--base", help="A local Stable Video Diffusion diffusers folder.")
    ] = None,
    copy: Annotated[bool, typer.Option("--copy", help="Copy the base weights instead of symlinking them.")] = False,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the random weights (--tiny).")] = 0,
    as_json: JsonOpt = False,
) -> None:
    """Build an HVG weights folder: --tiny, or --base SVD_FOLDER plus a fresh zero-initialised pose encoder."""
    report = pipeline.weights_init(out, tiny=tiny, base=base, link=not copy, seed=seed)
    _show(report, as_json, f"hvg weights: wrote {report.path}")
