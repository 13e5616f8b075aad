"""`hvg train`: fine-tune HVG weights on a dataset from `hvg prepare` (one process, or under accelerate launch)."""

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

HELP = """Train the pose encoder and view attention (and the UNet per --unet) on a dataset from `hvg prepare`.

One device:

  hvg train --weights BASE --data dataset/ -o trained/ --steps 2000

Several GPUs on one machine (accelerate's own launcher; the global batch is batch size x processes x grad-accum,
and the result does not depend on how it is split):

  accelerate launch --multi_gpu --num_processes N $(which hvg) train --weights BASE --data dataset/ -o trained/

Several machines: write accelerate's config on each (`accelerate config`: multi-GPU, number of machines, this
machine's rank, the main machine's address), then on every machine:

  accelerate launch --config_file cluster.yaml $(which hvg) train --weights BASE --data dataset/ -o trained/

Two CPU processes (gloo; tests): accelerate launch --multi_gpu --num_processes 2 $(which hvg) train ... --cpu

Checkpoints go to OUT.train/checkpoints; --resume latest continues exactly (same data order and randomness).
OUT is written only at the end, complete; `hvg animate --weights OUT --backend diffusion` uses it.
"""


def register(app: typer.Typer) -> None:
    @app.command(help=HELP)
    @maps_errors
    def train(
        weights: Annotated[
            Path,
            typer.Option(
                "--weights", help="Base HVG weights folder (hvg weights init --base SVD, or trained weights)."
            ),
        ],
        data: Annotated[Path, typer.Option("--data", help="Dataset folder from `hvg prepare`.")],
        out: Annotated[Path, typer.Option("--out", "-o", help="New weights folder (must not exist, or be empty).")],
        steps: Annotated[int, typer.Option("--steps", min=1, help="Optimizer steps.")] = 1000,
        batch_size: Annotated[int, typer.Option("--batch-size", min=1, help="Clips per process per micro-batch.")] = 1,
        grad_accum: Annotated[int, typer.Option("--grad-accum", min=1, help="Micro-batches per optimizer step.")] = 1,
        unet: Annotated[
            str,
            typer.Option(
                "--unet",
                help="What of the UNet trains besides pose encoder and view attention: temporal | all | lora | frozen.",
            ),
        ] = "temporal",
        lr: Annotated[
            float, typer.Option("--lr", min=0.0, help="Learning rate of the UNet's trained parameters.")
        ] = 1e-5,
        lr_new: Annotated[
            float, typer.Option("--lr-new", min=0.0, help="Learning rate of the pose encoder and view attention.")
        ] = 1e-4,
        warmup_steps: Annotated[int, typer.Option("--warmup-steps", min=0, help="Linear learning-rate warm-up.")] = 0,
        lr_schedule: Annotated[str, typer.Option("--lr-schedule", help="constant | cosine.")] = "constant",
        ema: Annotated[
            float, typer.Option("--ema", min=0.0, max=0.99999, help="EMA decay of the exported weights (0 = off).")
        ] = 0.0,
        mixed_precision: Annotated[str, typer.Option("--mixed-precision", help="no | fp16 | bf16 (GPU only).")] = "no",
        gradient_checkpointing: Annotated[
            bool, typer.Option("--gradient-checkpointing", help="Recompute activations in backward (less memory).")
        ] = False,
        lora_rank: Annotated[int, typer.Option("--lora-rank", min=1, help="Rank of --unet lora.")] = 16,
        p_mean: Annotated[float, typer.Option("--p-mean", help="Mean of ln sigma of the training noise levels.")] = 0.7,
        p_std: Annotated[float, typer.Option("--p-std", min=0.0, help="Std of ln sigma.")] = 1.6,
        drop_reference: Annotated[
            float,
            typer.Option(
                "--drop-reference",
                min=0.0,
                max=1.0,
                help="Rate at which the whole reference (CLIP embedding and latent) is dropped: the unconditional "
                "branch of classifier-free guidance.",
            ),
        ] = 0.1,
        drop_embedding: Annotated[
            float,
            typer.Option(
                "--drop-embedding",
                min=0.0,
                max=1.0,
                help="Rate at which only the reference's CLIP embedding is dropped.",
            ),
        ] = 0.05,
        drop_latent: Annotated[
            float,
            typer.Option(
                "--drop-latent",
                min=0.0,
                max=1.0,
                help="Rate at which only the reference latent is dropped (raise it, e.g. 0.5, when references show "
                "nearly the target's pose: the model learns to copy the reference instead of following the pose).",
            ),
        ] = 0.05,
        drop_pose: Annotated[
            float, typer.Option("--drop-pose", min=0.0, max=1.0, help="Rate at which the pose input is dropped.")
        ] = 0.05,
        reference_swap: Annotated[
            float,
            typer.Option(
                "--reference-swap",
                min=0.0,
                max=1.0,
                help="Rate at which a clip's reference comes from another clip of the same person (another motion "
                "of the photo, another window of the video), so that it shows another pose than the targets.",
            ),
        ] = 0.0,
        checkpoint_every: Annotated[
            int, typer.Option("--checkpoint-every", min=0, help="Steps between checkpoints (0 = none).")
        ] = 500,
        checkpoints_total_limit: Annotated[
            int, typer.Option("--checkpoints-total-limit", min=0, help="Keep the newest N checkpoints (0 = all).")
        ] = 3,
        validate_every: Annotated[
            int,
            typer.Option(
                "--validate-every", min=0, help="Steps between validation renders into OUT/validation (0 = none)."
            ),
        ] = 0,
        validation_photo: Annotated[
            Optional[Path],
            typer.Option("--validation-photo", help="Photo of the validation render.", show_default=False),
        ] = None,
        validation_motion: Annotated[
            str, typer.Option("--validation-motion", help="Motion of the validation render.")
        ] = "dance",
        validation_steps: Annotated[
            int, typer.Option("--validation-steps", min=1, help="Sampling steps of the validation render.")
        ] = 8,
        resume: Annotated[
            Optional[str], typer.Option("--resume", help="'latest' or a checkpoint folder.", show_default=False)
        ] = None,
        work_dir: Annotated[
            Optional[Path],
            typer.Option("--work-dir", help="Checkpoints and metrics (default OUT.train).", show_default=False),
        ] = None,
        seed: Annotated[int, typer.Option("--seed", help="Seed of data order, noise levels, noise and dropout.")] = 0,
        num_workers: Annotated[int, typer.Option("--num-workers", min=0, help="DataLoader worker processes.")] = 0,
        cpu: Annotated[bool, typer.Option("--cpu", help="Train on the CPU even where a GPU is present.")] = False,
        cache_dir: CacheDirOpt = None,
        no_cache: NoCacheOpt = False,
        as_json: JsonOpt = False,
        quiet: QuietOpt = False,
    ) -> None:
        from hvg_cli.pipeline.training import ValidationJob, train_job
        from hvg_cli.train.loop import TrainSettings

        settings = TrainSettings(
            weights=str(weights),
            data=str(data),
            out=str(out),
            work_dir=str(work_dir) if work_dir else None,
            unet=unet,
            steps=steps,
            batch_size=batch_size,
            grad_accum=grad_accum,
            lr=lr,
            lr_new=lr_new,
            warmup_steps=warmup_steps,
            lr_schedule=lr_schedule,
            ema_decay=ema,
            mixed_precision=mixed_precision,
            gradient_checkpointing=gradient_checkpointing,
            lora_rank=lora_rank,
            p_mean=p_mean,
            p_std=p_std,
            drop_reference=drop_reference,
            drop_embedding=drop_embedding,
            drop_latent=drop_latent,
            drop_pose=drop_pose,
            reference_swap=reference_swap,
            checkpoint_every=checkpoint_every,
            checkpoints_total_limit=checkpoints_total_limit,
            validate_every=validate_every,
            resume=resume,
            seed=seed,
            num_workers=num_workers,
            cpu=cpu,
        )
        validation = (
            ValidationJob(str(validation_photo), validation_motion, steps=validation_steps, seed=seed)
            if validation_photo is not None
            else None
        )
        from hvg_cli.pipeline.batch import process_shard

        main = process_shard()[0] == 0  # the launcher's rank, read as `hvg batch` reads it (torchrun, mpirun)
        report = RichReporter(quiet=quiet or not main)
        r = train_job(settings, validation, StageCache(cache_dir, enabled=not no_cache), report)
        if not main:
            return
        if as_json:
            emit_json(
                {
                    "out": r.out,
                    "steps": r.steps,
                    "resumed_from": r.resumed_from,
                    "final_loss": r.final_loss,
                    "global_batch": r.global_batch,
                    "trained": r.trained,
                    "metrics": r.metrics,
                }
            )
            return
        parts = {k: v for k, v in r.trained.items() if k != "unet_mode"}
        what = ", ".join(f"{k.replace('_', ' ')} {v:,}" for k, v in parts.items())
        mode = r.trained.get("unet_mode")
        err_console.print(
            f"wrote {r.out}: {r.steps} steps (global batch {r.global_batch}), final loss "
            f"{r.final_loss:.4f}; parameters trained: {what}" + (f" (--unet {mode})" if mode else ""),
            markup=False,
            soft_wrap=True,
        )
