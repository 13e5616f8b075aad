"""`hvg cache info | clear`."""

from __future__ import annotations

from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.table import Table

from hvg_cli.cli.common import CacheDirOpt, JsonOpt, emit_json, err_console, maps_errors
from hvg_cli.core.cache import StageCache

app = typer.Typer(help="Inspect or clear the stage cache (finished stages are re-used from it).", no_args_is_help=True)


@app.command()
@maps_errors
def info(cache_dir: CacheDirOpt = None, as_json: JsonOpt = False) -> None:
    """Entries and size per stage."""
    cache = StageCache(cache_dir)
    stages = cache.info()
    if as_json:
        emit_json({"cache_dir": str(cache.root), "stages": stages})
        return
    table = Table(title=f"hvg cache: {cache.root}")
    table.add_column("stage")
    table.add_column("entries", justify="right")
    table.add_column("size", justify="right")
    for name, s in stages.items():
        table.add_row(name, str(s["entries"]), f"{s['bytes'] / 1e6:.1f} MB")
    table.add_row(
        "total",
        str(sum(s["entries"] for s in stages.values())),
        f"{sum(s['bytes'] for s in stages.values()) / 1e6:.1f} MB",
    )
    Console().print(table)


@app.command()
@maps_errors
def clear(
    stage: Annotated[Optional[str], typer.Option("--stage", help="Only this stage (see `hvg cache info`).")] = None,
    cache_dir: CacheDirOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Remove cached stage results (all, or one stage's). Only what the cache wrote is removed."""
    from hvg_cli.pipeline import STAGE_NAMES

    if stage is not None and stage not in STAGE_NAMES:
        raise typer.BadParameter(f"{stage!r} is not a stage; stages: {', '.join(STAGE_NAMES)}", param_hint="--stage")
    cache = StageCache(cache_dir)
    removed = cache.clear(stage)
    if as_json:
        emit_json({"removed": removed, "stage": stage})
    else:
        err_console.print(
            f"removed {removed} entr{'y' if removed == 1 else 'ies'}" + (f" of stage {stage}" if stage else "")
        )
