"""Training HVG: the SVD/EDM objective, per-sample randomness, dataset shards, the accelerate loop.

Public API (torch is imported lazily, at first use):
  objective.py  Preconditioning.from_scheduler_config, sample_sigmas, loss_weight, ConditioningDropout
  randomness.py sample_generator(seed, step, index), SampleDraws, draw_sample
  dataset.py    TrainClip, DatasetWriter, TrainDataset, FORMAT_VERSION
  encode.py     encode_clip(pipe, clip_id, photo, frames, maps, grid, fps, ...) -> TrainClip (what prepare stores)
  loop.py       TrainSettings, TrainResult, train(settings, progress, validate), evaluate_loss
"""

from __future__ import annotations
