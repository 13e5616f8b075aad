"""The only package that calls every room (DESIGN.md). Its files follow the data flow:

  stages.py    every cached stage and every stage version (pose track, motion fit, subject, preview model)
  motion.py    motions from any source, to files (`hvg pose`), onto the subject's body
  jobs.py      photo + motion + cameras -> pictures: `hvg bonemap`, `hvg animate`
  batch.py     `hvg batch`: many jobs from one file, over processes
  commands.py  `hvg doctor`, `hvg cameras`, `hvg weights`
  sources.py   `hvg prepare`'s inputs: photo / video files, folders, .txt lists, capture folders; clip slicing
  synthetic.py   clips rendered by the preview backend (photos x motions x a camera preset), synthetic captures
  monocular.py   clips from one-camera videos (camera solved against MediaPipe's landmarks)
  multiview.py   clips from calibrated captures (transforms.json + a video per camera)
  training.py  `hvg prepare` (writes the dataset from those sources), `hvg train`

This module re-exports what the CLI and library users call.
"""

from hvg_cli.core.settings import PrepareSettings
from hvg_cli.pipeline.batch import BatchSummary, JobResult, read_jobs, run_batch
from hvg_cli.pipeline.commands import (
    CameraPresetInfo,
    DoctorReport,
    camera_grid,
    camera_path,
    camera_presets,
    describe_camera_path,
    doctor,
    export_camera_path,
    find_weights,
    plot_camera_path,
    weights_check,
    weights_init,
)
from hvg_cli.pipeline.jobs import (
    AnimateResult,
    BonemapResult,
    Job,
    align_job,
    animate_job,
    animate_plan,
    assemble_job,
    bonemap_job,
    photo_alignment,
)
from hvg_cli.pipeline.motion import (
    PoseResult,
    list_motion_presets,
    load_bvh,
    load_motion_npz,
    motion_from_source,
    motion_source_kind,
    pose_job,
    save_bvh,
    save_motion_npz,
)
from hvg_cli.pipeline.stages import STAGE_NAMES, compute_subject, pose_track, subject
from hvg_cli.pipeline.training import PrepareResult, ValidationJob, prepare_job, train_job

__all__ = [
    "BatchSummary",
    "JobResult",
    "read_jobs",
    "run_batch",
    "AnimateResult",
    "BonemapResult",
    "CameraPresetInfo",
    "DoctorReport",
    "Job",
    "PoseResult",
    "STAGE_NAMES",
    "align_job",
    "animate_job",
    "animate_plan",
    "assemble_job",
    "bonemap_job",
    "camera_grid",
    "camera_path",
    "camera_presets",
    "compute_subject",
    "describe_camera_path",
    "doctor",
    "export_camera_path",
    "find_weights",
    "list_motion_presets",
    "load_bvh",
    "load_motion_npz",
    "motion_from_source",
    "motion_source_kind",
    "photo_alignment",
    "plot_camera_path",
    "pose_job",
    "pose_track",
    "save_bvh",
    "save_motion_npz",
    "subject",
    "weights_check",
    "weights_init",
    "PrepareResult",
    "PrepareSettings",
    "ValidationJob",
    "prepare_job",
    "train_job",
]
