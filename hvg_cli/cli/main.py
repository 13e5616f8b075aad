"""The `hvg` command: a Typer app; one module per command group. Commands parse, call one library
function and print. Heavy libraries (torch, mediapipe, diffusers) are imported by the rooms at
first use, so `hvg --help` is fast."""

from __future__ import annotations

import os

import typer

from hvg_cli import __version__
from hvg_cli.cli import (
    animate_cmd,
    batch_cmd,
    bonemap_cmd,
    cache_cmd,
    cameras_cmd,
    doctor_cmd,
    pose_cmd,
    prepare_cmd,
    train_cmd,
    weights_cmd,
)
from hvg_cli.cli.common import OneLineUsageErrors
from hvg_cli.core.errors import EXIT_CODES

app = typer.Typer(
    name="hvg",
    help=(
        "Turn ONE photo of a person into a video of them performing a motion while the camera moves "
        "around them.\n\n"
        "Typical jobs:\n\n"
        "  hvg animate photo.jpg --motion dance.mp4 --orbit 360 -o out.mp4   the main job\n\n"
        "  hvg bonemap photo.jpg --motion dance.mp4 --orbit 360 -o bones.mp4   inspect the conditioning\n\n"
        "  hvg pose dance.mp4 -o dance.motion.npz      3D motion from a video (or convert .npz/.bvh/preset)\n\n"
        "  hvg cameras list                            camera presets (orbit-360, sv3d-21, ...)\n\n"
        "  hvg batch jobs.yaml [--shard i/n]           many jobs from one file (also under accelerate launch)\n\n"
        "  hvg prepare --synthetic photos/ --motions dance,wave -o data/   training clips\n\n"
        "  hvg train --weights BASE --data data/ -o trained/   fine-tune (also under accelerate launch)\n\n"
        "  hvg doctor                                  what is installed, which backends can run\n\n"
        "Exit codes: " + "; ".join(f"{code} {meaning}" for code, meaning in EXIT_CODES.items()) + "."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    cls=OneLineUsageErrors,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"hvg {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    pass


animate_cmd.register(app)
bonemap_cmd.register(app)
batch_cmd.register(app)
doctor_cmd.register(app)
pose_cmd.register(app)
prepare_cmd.register(app)
train_cmd.register(app)
app.add_typer(cache_cmd.app, name="cache")
app.add_typer(cameras_cmd.app, name="cameras")
app.add_typer(weights_cmd.app, name="weights")


def run() -> None:
    # transformers and diffusers log notes meant for their own developers (transformers, on import: "CLIPImageProcessor
    # requires torchvision ... falling back to CLIPImageProcessorPil"); hvg's users see hvg's lines only. A user who
    # wants them sets the variables themselves.
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("DIFFUSERS_VERBOSITY", "error")
    app()


if __name__ == "__main__":
    run()
