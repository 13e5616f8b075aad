"""Training HVG: the SVD/EDM objective, per-sample randomness, dataset shards, the accelerate loop.

Public API (torch is imported lazily, at first use):
  objective.py  Preconditioning.from_scheduler_config, sample_sigmas, loss_weight, ConditioningDropout
  randomness.py sample_generator(seed, step, index), SampleDraws, draw_sample
  dataset.py    TrainClip, DatasetWriter, TrainDataset, FORMAT_VERSION
  loop.py       TrainSettings, TrainResult, train(settings, progress)
"""

from __future__ import annotations
