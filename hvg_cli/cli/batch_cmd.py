"""`hvg batch JOBS.yaml`: many jobs from one file, in one process or split over many."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from hvg_cli import pipeline
from hvg_cli.cli.common import CacheDirOpt, JsonOpt, QuietOpt, RichReporter, emit_json_line, err_console, maps_errors
from hvg_cli.core.cache import StageCache
from hvg_cli.core.errors import BatchFailed

HELP = """Run the animate / bonemap / pose jobs listed in JOBS (a YAML file), in order.

A failing job is reported (one line, its exit code) and the others go on; the summary counts done,
skipped (finished by an earlier run) and failed jobs, and the exit code is 7 when any failed. Running
the same file again skips finished jobs and redoes failed ones. Jobs share the stage cache: a photo or
a motion used by several jobs is analysed once.

\b
The jobs file:
  defaults:                    # any option, for every job that takes it
    resolution: 256
  jobs:
    - pose: {source: dance.mp4, out: motions/dance.npz}
    - animate:
        photo: [a.jpg, b.jpg]                  # lists expand: photos x motions x cameras
        motion: [wave, dance.mp4]
        camera: [orbit-360, sv3d-21]
        out: "out/{photo}-{motion}-{camera}.mp4"
    - bonemap: {photo: a.jpg, motion: wave, orbit: 90, out: bones/a.mp4}

Options are those of each command, by their long names (no-align or no_align); paths are relative
to the jobs file.

\b
Many processes:
  hvg batch jobs.yaml --shard 3/8                  # SLURM/Kubernetes array task 3 of 8
  accelerate launch --num_processes 4 $(which hvg) batch jobs.yaml   # one process per GPU
  accelerate launch --cpu --num_processes 2 $(which hvg) batch jobs.yaml
Under accelerate the jobs split over the processes by themselves (RANK, WORLD_SIZE) and each diffusion
job runs on its process's GPU (LOCAL_RANK). Processes share the cache safely.
"""


def register(app: typer.Typer) -> None:
    @app.command(help=HELP)
    @maps_errors
    def batch(
        jobs: Annotated[Path, typer.Argument(metavar="JOBS", help="The jobs file (.yaml).", show_default=False)],
        shard: Annotated[
            Optional[str],
            typer.Option(
                "--shard", help="i/n: run only every n-th job, starting at job i (0-based).", show_default=False
            ),
        ] = None,
        dry_run: Annotated[
            bool, typer.Option("--dry-run", help="List the jobs and which are already done; run nothing.")
        ] = False,
        cache_dir: CacheDirOpt = None,
        as_json: JsonOpt = False,
        quiet: QuietOpt = False,
    ) -> None:
        report = RichReporter(quiet=quiet)

        def show(result) -> None:
            if as_json:
                emit_json_line(result.as_dict())
                return
            mark = {"done": "done", "skipped": "skip", "failed": f"FAIL {result.exit_code}", "todo": "todo"}[
                result.status
            ]
            line = f"[{result.job.index + 1}] {mark:7} {result.job.label}"
            if result.status == "done":
                line += f" ({result.seconds:.1f} s, stages: {result.stages_cached} cached, {result.stages_computed} computed)"
            if result.message:
                line += f": {result.message}"
            err_console.print(line, markup=False, soft_wrap=True)

        summary = pipeline.run_batch(
            jobs, shard=shard, dry_run=dry_run, cache=StageCache(cache_dir), progress=report, on_result=show
        )
        s = summary.as_dict()
        if as_json:
            emit_json_line({"summary": s})
        else:
            err_console.print(
                f"batch {summary.jobs_file} (shard {s['shard']}, {s['ran']} of {s['total']} jobs): {s['done']} done, "
                f"{s['skipped']} skipped, {s['failed']} failed"
                + (f", {s['todo']} to do" if dry_run else "")
                + f"; stages: {s['stages_cached']} from the cache, {s['stages_computed']} computed",
                markup=False,
                soft_wrap=True,
            )
        if summary.failed:
            raise BatchFailed(
                f"{summary.failed} of {s['ran']} jobs failed",
                "fix them and run the same command again: finished jobs are skipped",
            )
