"""Blending tile predictions into one prediction over a stage's V×n latent grid.

Weights are separable (view ramp ⊗ frame ramp, see plan.ramp) and normalised by their sum at
every latent, so the fused prediction is a convex combination of the tiles that cover it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from hvg_cli.backends.diffusion.plan import Stage, Tile


def tile_weights(tile: Tile) -> np.ndarray:
    """[v, t] blend weight of each view × frame of the tile."""
    return np.outer(np.asarray(tile.weight_v, np.float64), np.asarray(tile.weight_t, np.float64))


def weight_sum(stage: Stage, views: int) -> np.ndarray:
    """[V, n] sum of the tiles' weights at every latent of the stage (0 where no tile covers it)."""
    total = np.zeros((views, len(stage.times)), np.float64)
    for tile in stage.tiles:
        np.add.at(total, np.ix_(tile.views, tile.cols), tile_weights(tile))
    return total


def normalised_weights(stage: Stage, views: int) -> list[np.ndarray]:
    """Per tile [v, t]: its weights divided by the weight sum at the latents it covers."""
    total = weight_sum(stage, views)
    return [tile_weights(t) / total[np.ix_(t.views, t.cols)] for t in stage.tiles]


def tile_index(tile: Tile, device: Any) -> tuple[Any, Any]:
    """The tile's place in a [V, n, ...] grid: view indices [v, 1] and column indices [1, t], for
    gathering (`grid[iv, it]` -> [v, t, ...]) and scattering its latents."""
    import torch

    iv = torch.as_tensor(tile.views, device=device)[:, None]  # [v, 1]
    it = torch.as_tensor(tile.cols, device=device)[None, :]  # [1, t]
    return iv, it


class Blender:
    """Accumulates tile predictions over a [V, n, C, h, w] grid; `result()` is the fused prediction."""

    def __init__(self, stage: Stage, views: int, like):  # like: a tensor [V, n, C, h, w]
        import torch

        self._torch = torch
        self.acc = torch.zeros_like(like)
        self.wsum = torch.as_tensor(weight_sum(stage, views), dtype=like.dtype, device=like.device)
        self.covered = self.wsum > 0  # [V, n] (held anchors still get a prediction; they are overwritten)

    def add(self, tile: Tile, pred) -> None:
        """pred: [v, t, C, h, w] the tile's prediction, views × frames."""
        torch = self._torch
        w = torch.as_tensor(tile_weights(tile), dtype=pred.dtype, device=pred.device)  # [v, t]
        iv, it = tile_index(tile, pred.device)
        self.acc[iv, it] += w[:, :, None, None, None] * pred

    def result(self) -> Any:
        """[V, n, C, h, w] the blended prediction; latents no tile covers keep 0."""
        w = self._torch.where(self.covered, self.wsum, self._torch.ones_like(self.wsum))
        return self.acc / w[:, :, None, None, None]
