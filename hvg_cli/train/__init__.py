"""Training HVG: the SVD/EDM objective, per-sample randomness, dataset shards, the accelerate loop.

Public API (torch is imported lazily, at first use):
  objective.py  Preconditioning (c_in, c_skip, c_out, c_noise, denoised, target, loss_weight), edm_loss,
                NoiseLevels, ConditioningDropout
  randomness.py sample_generator(seed, step, index), draw_sample, global_indices, data_index
  dataset.py    TrainClip, DatasetWriter, TrainDataset, read_manifest, FORMAT_VERSION, random_clip
  model.py      HVGDenoiser, select_trainable, load_components, add_lora / merge_lora
  camera_solve.py solve_camera(points, pixels, weights, W, H) -> CameraSolve, max_error_px (prepare)
  windows.py    windows(num_frames, length, stride, frame_step, gap, usable) -> [Window(frames, reference)]
  encode.py     encode_clip(pipe, clip_id, photo, frames, maps, grid, fps, ...) -> TrainClip (what prepare stores)
  prepare.py    prepare_clips(pipe, sources: [ClipSource(id, load)], out, ...) -> PrepareSummary (resumable)
  loop.py       TrainSettings, TrainResult, train(settings, progress, validate), evaluate_loss
"""

from __future__ import annotations
