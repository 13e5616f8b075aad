"""Progressive spatio-temporal sampling over the V×T latent grid, resumable.

Per denoising step of a stage:
  1. held anchors (dense stage) are overwritten with x0_anchor + sigma_i · ε_anchor (ε: the anchor's
     own up-front noise, so the value is the same on every run and after a resume);
  2. the scheduler scales the whole stage grid once (`scale_model_input`);
  3. every tile is predicted (CFG inside) and blended into one prediction with normalised weights;
  4. the scheduler steps ONCE on the fused prediction (Euler keeps a step index: never per tile);
  5. `callback_on_step_end` sees the step (it may replace the latents or set `pipe._interrupt`);
  6. the state (stage, next step, latents, finished anchors) is written atomically to `state_dir`.
The anchor stage conditions on the anchors' frame rate (fps / anchor_stride), the others on fps.
Each tile's pose residual comes from `residuals` (PoseResiduals: features computed once per frame).
A re-run with the same inputs (same fingerprint) continues from the saved state; since all noise
comes from the seed up front and the Euler step (s_churn = 0) draws nothing, the frames are identical
to an uninterrupted run.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from hvg_cli.backends.diffusion.plan import SamplingPlan
from hvg_cli.backends.diffusion.settings import DiffusionSettings
from hvg_cli.backends.diffusion.tiling import Blender, tile_index
from hvg_cli.core.atomic import atomic_file

STATE_FILE = "sampler_state.safetensors"


# ---------------------------------------------------------------------------------------------
# state on disk
# ---------------------------------------------------------------------------------------------
def save_state(
    state_dir: Path, fingerprint: str, stage: int, step: int, latents: torch.Tensor | None, anchors: torch.Tensor | None
) -> None:
    """Write the sampler state atomically (core.atomic: temp file in the same folder, then rename)."""
    from safetensors.torch import save

    tensors = {}
    if latents is not None:
        tensors["latents"] = latents.detach().cpu().contiguous()
    if anchors is not None:
        tensors["anchors"] = anchors.detach().cpu().contiguous()
    if not tensors:
        tensors["empty"] = torch.zeros(1)
    with atomic_file(state_dir / STATE_FILE) as f:
        f.write(save(tensors, metadata={"fingerprint": fingerprint, "stage": str(stage), "step": str(step)}))


def load_state(state_dir: Path, fingerprint: str) -> dict | None:
    """The saved state if it belongs to this job (same fingerprint), else None."""
    from safetensors import safe_open

    path = state_dir / STATE_FILE
    if not path.exists():
        return None
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            if meta.get("fingerprint") != fingerprint:
                return None
            out = {k: f.get_tensor(k) for k in f.keys() if k != "empty"}
    except Exception:  # a corrupt or foreign file: start over
        return None
    out["stage"] = int(meta["stage"])
    out["step"] = int(meta["step"])
    return out


# ---------------------------------------------------------------------------------------------
# the sampler
# ---------------------------------------------------------------------------------------------
@dataclass
class SampleResult:
    latents: torch.Tensor  # [V, n, 4, h, w] the grid of the last stage that ran
    times: tuple[int, ...]  # absolute frame index of each of the n columns
    interrupted: bool = False  # stopped by `pipe._interrupt` (the state was saved first)


def sample(
    pipe,
    ref,
    plan: SamplingPlan,
    noise: torch.Tensor,
    residuals: Callable,
    guidance: torch.Tensor,
    settings: DiffusionSettings,
    state_dir: str | Path | None = None,
    fingerprint: str = "",
    callback_on_step_end: Callable | None = None,
    tensor_inputs: tuple[str, ...] = ("latents",),
    progress=None,
) -> SampleResult:
    """Denoise the grid stage by stage.

    noise:     [V, T, 4, h, w] unit Gaussian noise from the seed (also the held anchors' fixed ε)
    residuals: (views, absolute frames) -> [v*t, C0, h, w] pose residual of a tile, view-major
    guidance:  [T] CFG scale per frame
    callback_on_step_end(pipe, step, timestep, {name: tensor for name in tensor_inputs}) -> dict | None
    """
    sched = pipe.scheduler
    V = plan.views
    state_dir = Path(state_dir) if state_dir is not None else None
    saved = load_state(state_dir, fingerprint) if state_dir is not None else None
    first_stage = saved["stage"] if saved else 0
    anchors = saved.get("anchors") if saved else None
    if anchors is not None:
        anchors = anchors.to(noise.device, noise.dtype)
    if saved and first_stage >= len(plan.stages):  # finished earlier: the final latents are in the state
        progress.note("diffusion: sampling finished in an earlier run; using its saved latents")
        return SampleResult(saved["latents"].to(noise.device, noise.dtype), plan.stages[-1].times)
    if saved and (first_stage or saved["step"]):
        name = plan.stages[first_stage].name
        progress.note(
            f"diffusion: resuming from saved state: {name} stage, step {saved['step'] + 1} of {plan.steps}"
            f" (stage {first_stage + 1} of {len(plan.stages)})"
        )

    latents = noise[:, :0]  # [V, 0, 4, h, w]: replaced by the first stage (a plan has at least one)
    for si in range(first_stage, len(plan.stages)):
        stage = plan.stages[si]
        times = list(stage.times)
        pipe._stage = stage.name
        stage_ref = ref.at_fps(settings.anchor_fps() if stage.name == "anchors" else settings.fps)
        sched.set_timesteps(plan.steps, device=noise.device)
        timesteps = sched.timesteps
        eps = noise[:, times]  # [V, n, 4, h, w]
        start = 0
        if saved and si == first_stage and "latents" in saved and saved["step"] > 0:
            start = saved["step"]
            latents = saved["latents"].to(noise.device, noise.dtype)
            sched.set_begin_index(start)
        else:
            latents = eps * sched.init_noise_sigma  # [V, n, 4, h, w]
        held = list(stage.held)
        if held and anchors is None:
            raise RuntimeError("dense stage without finished anchors")  # plan invariant, never user input
        fixed: torch.Tensor = anchors if anchors is not None else latents[:, :0]  # [V, |held|, 4, h, w] when held
        label = f"diffusion {stage.name}" + (f" ({len(stage.tiles)} tiles/step)" if len(stage.tiles) > 1 else "")
        with progress.task(label, total=plan.steps, unit="steps") as task:
            task.advance(start)
            for i in range(start, plan.steps):
                t = timesteps[i]
                if held:  # anchors at the current noise level, fixed ε
                    sigma = sched.sigmas[i].to(latents.device, latents.dtype)
                    latents[:, held] = fixed + sigma * eps[:, held]
                scaled = sched.scale_model_input(latents, t)  # [V, n, 4, h, w]
                blend = Blender(stage, V, scaled)
                for tile in stage.tiles:
                    x = scaled[tile_index(tile, scaled.device)]  # [v, t, 4, h, w]
                    v, n = x.shape[:2]
                    frames = tuple(times[c] for c in tile.cols)
                    g = guidance[list(frames)].repeat(v)  # [v*t], view-major
                    x = x.reshape(v * n, *x.shape[2:])  # [v*t, 4, h, w], view-major
                    pred = pipe.predict_tile(
                        stage_ref, x, t, residuals(tile.views, frames), g, views=v
                    )  # [v*t, 4, h, w]
                    blend.add(tile, pred.reshape(v, n, *pred.shape[1:]))  # [v, t, 4, h, w]
                noise_pred = blend.result()  # [V, n, 4, h, w]
                latents = sched.step(noise_pred, t, latents, return_dict=False)[0]
                last = i == plan.steps - 1
                if held and last:
                    latents[:, held] = fixed  # the finished anchors, exactly
                if callback_on_step_end is not None:
                    local = {"latents": latents, "noise_pred": noise_pred}
                    out = callback_on_step_end(pipe, i, t, {k: local[k] for k in tensor_inputs}) or {}
                    latents = out.pop("latents", latents)
                if last and stage.name == "anchors":
                    anchors = latents
                if state_dir is not None and last:  # the next stage starts afresh; anchors are not saved twice
                    save_state(state_dir, fingerprint, si + 1, 0, None if stage.name == "anchors" else latents, anchors)
                elif state_dir is not None:
                    save_state(state_dir, fingerprint, si, i + 1, latents, anchors)
                task.advance(1)
                if pipe.interrupt and not (last and si == len(plan.stages) - 1):
                    return SampleResult(latents, tuple(times), interrupted=True)
    return SampleResult(latents, tuple(plan.stages[-1].times))
