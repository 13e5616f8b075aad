"""`hvg doctor`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.table import Table

from hvg_cli import pipeline
from hvg_cli.cli.common import CacheDirOpt, JsonOpt, emit_json, maps_errors
from hvg_cli.core.cache import StageCache


def register(app: typer.Typer) -> None:
    @app.command()
    @maps_errors
    def doctor(
        weights: Annotated[
            Optional[Path], typer.Option("--weights", help="A diffusion weights folder to check.")
        ] = None,
        cache_dir: CacheDirOpt = None,
        as_json: JsonOpt = False,
    ) -> None:
        """Print versions, the device torch sees, ffmpeg, the MediaPipe pose model, weights, and which backends can run."""
        report = pipeline.doctor(weights=weights, cache=StageCache(cache_dir))
        if as_json:
            emit_json(report.as_dict())
            return
        out = Console()
        table = Table(show_header=False, box=None)
        table.add_row("python", report.python)
        for name, v in report.versions.items():
            table.add_row(name, v or "[red]not installed[/red]")
        table.add_row("device", report.device)
        table.add_row("ffmpeg", report.ffmpeg or "[red]not found[/red]")
        table.add_row("pose model", report.pose_model or "[red]not found[/red]")
        table.add_row("weights", report.weights or "none (the preview backend needs none)")
        table.add_row("cache", report.cache_dir)
        for name, state in report.backends.items():
            table.add_row(f"backend {name}", "[green]ok[/green]" if state == "ok" else f"[yellow]{state}[/yellow]")
        out.print(table)
