"""Per-sample randomness: every random draw of a training sample comes from its own generator.

The generator of the sample with global index i (0 ≤ i < global batch) at optimizer step s is seeded by
(seed, s, i) only. Which process or micro-batch computes the sample does not enter, so 1 process ×
batch 2b and 2 processes × batch b (or 1 process × batch b × 2 accumulation steps) draw the same σ,
noise and dropout for every sample, and a resumed run draws what the uninterrupted run drew.

Draw order inside one sample (fixed; changing it changes every run): 1 standard normal for σ, 4 uniforms
for dropout (reference, embedding, latent, pose), then the noise of the latent grid.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING

from hvg_cli.train.objective import ConditioningDropout, NoiseLevels

if TYPE_CHECKING:
    import torch


def sample_seed(seed: int, step: int, index: int) -> int:
    """A 63-bit seed from (seed, step, global sample index): sha256 of their decimal text."""
    digest = hashlib.sha256(f"hvg-train|{int(seed)}|{int(step)}|{int(index)}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & ((1 << 63) - 1)


def sample_generator(seed: int, step: int, index: int) -> torch.Generator:
    """A CPU torch.Generator for one sample at one optimizer step."""
    import torch

    return torch.Generator("cpu").manual_seed(sample_seed(seed, step, index))


@dataclass(frozen=True)
class SampleDraws:
    """What one sample draws: its noise level, which conditions it keeps, its noise."""

    sigma: float
    keep_embedding: bool
    keep_latent: bool
    keep_pose: bool
    noise: object  # torch.Tensor [*latent_shape] float32, unit Gaussian


def draw_sample(
    seed: int, step: int, index: int, latent_shape: tuple[int, ...], levels: NoiseLevels, dropout: ConditioningDropout
) -> SampleDraws:
    """All random draws of the sample `index` of the global batch at optimizer step `step` (order in module doc)."""
    import torch

    g = sample_generator(seed, step, index)
    z = float(torch.randn((), generator=g, dtype=torch.float64))
    u = torch.rand(4, generator=g, dtype=torch.float64).tolist()
    keep_emb, keep_lat, keep_pose = dropout.keep(*u)
    noise = torch.randn(tuple(latent_shape), generator=g, dtype=torch.float32)
    return SampleDraws(levels.sigma(z), keep_emb, keep_lat, keep_pose, noise)


def swap_draws(seed: int, step: int, index: int) -> tuple[float, float]:
    """Two uniforms in [0, 1) for the reference swap of sample `index` at step `step` (whether, and which donor),
    from a generator of their own seeded by (seed, step, index): the draw order above is left untouched, so runs
    without a swap draw exactly what they drew before."""
    import torch

    digest = hashlib.sha256(f"hvg-train-swap|{int(seed)}|{int(step)}|{int(index)}".encode()).digest()
    g = torch.Generator("cpu").manual_seed(int.from_bytes(digest[:8], "little") & ((1 << 63) - 1))
    u = torch.rand(2, generator=g, dtype=torch.float64).tolist()
    return float(u[0]), float(u[1])


def global_indices(step_batch: int, processes: int, process: int, micro: int, batch: int) -> list[int]:
    """The global sample indices a process computes in one micro-batch of an optimizer step.

    The global batch of a step holds accumulation × processes × batch samples; micro-batch a of process p
    takes indices a·(processes·batch) + p·batch + [0, batch). `step_batch` is the global batch size (checked).
    """
    start = micro * processes * batch + process * batch
    if start + batch > step_batch:
        raise ValueError(f"micro-batch {micro} of process {process} lies outside the global batch {step_batch}")
    return list(range(start, start + batch))


def data_index(seed: int, global_sample: int, size: int) -> int:
    """Which clip of a dataset of `size` clips the `global_sample`-th sample of the whole run reads.

    Epoch e = global_sample // size visits every clip once, in a permutation seeded by (seed, e): the data
    order is a pure function of the sample counter, so a resumed run reads exactly what the uninterrupted
    one would have, whatever the number of processes.
    """
    epoch, pos = divmod(int(global_sample), int(size))
    return _epoch_order(int(seed), epoch, int(size))[pos]


@lru_cache(maxsize=4)
def _epoch_order(seed: int, epoch: int, size: int) -> tuple[int, ...]:
    import torch

    g = torch.Generator("cpu").manual_seed(sample_seed(seed, -1, epoch))  # step −1: the data order's stream
    return tuple(torch.randperm(size, generator=g).tolist())
