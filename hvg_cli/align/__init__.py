"""View-temporal alignment: per view and frame 2D similarity that centres and scales the subject; its inverse."""

from hvg_cli.align.similarity import (
    HEAD_MARGIN,
    aligned_intrinsics,
    apply_to_points,
    compute_alignment,
    image_centre,
    invert,
    project_points,
    similarity_matrix,
    subject_box,
    subject_extent,
    unwarp_image,
    warp_frames,
    warp_image,
)

__all__ = [
    "HEAD_MARGIN",
    "aligned_intrinsics",
    "apply_to_points",
    "compute_alignment",
    "image_centre",
    "invert",
    "project_points",
    "similarity_matrix",
    "subject_box",
    "subject_extent",
    "unwarp_image",
    "warp_frames",
    "warp_image",
]
