"""How well `hvg prepare` places the body in a calibrated multi-view capture, beside baselines from the same run.

    .venv/bin/python benchmarks/multiview_placement.py [--frames 18] [--video 160] [--sizes 32,64] [--motion dance]

A capture is synthesised with the preview backend (the studio photo performing the motion, 4 fixed cameras on
a 90-degree arc, nerfstudio transforms.json), then placed as `hvg prepare` places it. Per camera it prints:
  * the mean reprojection error in training pixels of
      - refined: the motion refitted on the triangulated landmarks (what prepare keeps),
      - single-view: the motion fitted on one camera's video, only placed (refine=False),
      - truth: the rendered motion on the true cameras (the floor MediaPipe's own landmark noise sets);
  * IoU of the bone-map masks with the rendered person (aligned), for the placed motion and for the true
    motion's bone maps rendered on the true cameras with the same alignment procedure.
Figures are a pure function of the inputs (no timing), so one run is enough.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def _iou(coverage, alignment, masks, size):
    """Mean IoU over frames per view: coverage [V, T, h, w] uint8 warped by alignment vs masks [V, T, size, size]."""
    from hvg_cli.align.similarity import warp_image

    V, T = masks.shape[:2]
    out = np.zeros(V)
    for v in range(V):
        inter = union = 0
        for t in range(T):
            a = warp_image(
                coverage[v, t, ..., None] / 255.0, float(alignment.scale[v, t]), alignment.offset[v, t], size, size
            )
            person = a[..., 0] > 0.5
            inter += (person & masks[v, t]).sum()
            union += (person | masks[v, t]).sum()
        out[v] = inter / max(union, 1)
    return out


def main() -> None:
    import torch

    from hvg_cli.body.ik import landmarks_from_pose
    from hvg_cli.bonemap.render import render_bonemaps
    from hvg_cli.cameras.generators import arc
    from hvg_cli.core.cache import StageCache
    from hvg_cli.core.settings import PoseSettings, PrepareSettings
    from hvg_cli.core.types import CameraGrid
    from hvg_cli.pipeline import stages
    from hvg_cli.pipeline.jobs import align_job
    from hvg_cli.pipeline.multiview import multiview_capture, multiview_clipset
    from hvg_cli.pipeline.synthetic import write_synthetic_capture
    from hvg_cli.train.placement import project

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--frames", type=int, default=18)
    ap.add_argument("--video", type=int, default=160, help="pixels of each camera's video")
    ap.add_argument("--sizes", default="32,64", help="training sizes")
    ap.add_argument("--motion", default="dance")
    a = ap.parse_args()
    torch.set_num_threads(1)

    with tempfile.TemporaryDirectory() as tmp:
        cache = StageCache(Path(tmp) / "cache")
        cams = arc(views=4, degrees=90, elevation=5, radius=3.2, fov=40, width=a.video, height=a.video)
        syn = write_synthetic_capture(
            Path(tmp) / "capture", DATA / "photo_woman_studio.jpg", a.motion, cams, a.frames, cache
        )
        V, T = cams.num_views, len(syn.poses)
        # the truth: the rendered skeleton's landmarks through the true cameras against MediaPipe's landmarks
        tracks = [stages.pose_track(syn.folder / f"cam{v}.mp4", PoseSettings(), cache) for v in range(V)]
        pts = landmarks_from_pose(syn.poses, syn.motion.skeleton) + syn.trans[:, None]  # [T, 33, 3]
        truth_video = np.array(
            [
                np.linalg.norm(project(cams.K[v], cams.world_to_cam[v], pts) - tr.image, axis=-1)[
                    tr.visibility >= 0.5
                ].mean()
                for v, tr in enumerate(tracks)
            ]
        )  # [V] video px
        print(f"capture: {V} cameras, {T} frames of {a.motion!r} at {a.video}x{a.video} px (preview backend)")
        for size in [int(s) for s in a.sizes.split(",")]:
            st = PrepareSettings(width=size, height=size)
            cap = multiview_capture(syn.folder, st, 8, cache)
            single = multiview_capture(syn.folder, st, 8, cache, refine=False)
            grid0 = CameraGrid(
                K=np.broadcast_to(cams.K[:, None], (V, T, 3, 3)).copy(),
                world_to_cam=np.broadcast_to(cams.world_to_cam[:, None], (V, T, 4, 4)).copy(),
                width=size,
                height=size,
                mode="views",
            )
            al_true, grid_true = align_job(syn.poses, syn.trans, syn.motion.skeleton, grid0)
            truth_px = truth_video * np.median(al_true.scale, axis=1)  # [V] training px
            true_maps = render_bonemaps(syn.poses, syn.trans, syn.motion.skeleton, syn.subject.radii, grid_true)
            iou_true = _iou(syn.coverage, al_true, true_maps.mask, size)
            iou_ref = _iou(syn.coverage, cap.alignment, multiview_clipset(cap, cache).maps.mask, size)
            iou_single = _iou(syn.coverage, single.alignment, multiview_clipset(single, cache).maps.mask, size)
            print(
                f"\n{size}x{size} training px (limit {cap.limit_px:.2f} px with SVD's VAE; fitted on cam{cap.fitted})"
            )
            print("camera   error: refined  single-view  truth    IoU: refined  single-view  truth")
            for v in range(V):
                print(
                    f"cam{v}            {cap.error_px[v]:6.2f}  {single.error_px[v]:11.2f}  {truth_px[v]:5.2f}"
                    f"         {iou_ref[v]:7.3f}  {iou_single[v]:11.3f}  {iou_true[v]:5.3f}"
                )
            print(
                f"mean            {cap.error_px.mean():6.2f}  {single.error_px.mean():11.2f}  {truth_px.mean():5.2f}"
                f"         {iou_ref.mean():7.3f}  {iou_single.mean():11.3f}  {iou_true.mean():5.3f}"
            )


if __name__ == "__main__":
    main()
