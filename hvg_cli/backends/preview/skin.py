"""Skinning the photo mesh to the skeleton.

- Every vertex belongs to a bone-map part (its label); the part follows its SMPL joint (Part.joint).
- Where parts that are not neighbours in the body meet in the photo (an arm across the torso, a hand on
  the hip), the triangles spanning them are cut loose: each such triangle goes to the part in front
  (the nearest covered vertex) and its other corners are duplicated for that part, so the arm can leave
  the torso without tearing or webbing, and the rest pose is unchanged (no gap in the photo view).
- Weights: one-hot by label, then diffused over the mesh edges for a few centimetres, which only ever
  crosses between parts still connected after the cut (neighbours at a joint), then the 4 largest kept.
- Linear blend skinning with the photo pose as the rest pose: v' = sum_k w_k G_t(j_k) G_photo(j_k)^-1 v,
  so posing in the photo's own pose gives back the photo mesh exactly.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from torch import Tensor

# parts that may stay joined across the legs' midline (a skirt or dress covers both thighs)
_LEG_TOP = ("pelvis", "left_hip", "right_hip", "left_thigh", "right_thigh")
BLEND_RADIUS = 0.05  # metres over which weights blend across a joint
TOP_K = 4


@dataclass(frozen=True, eq=False)
class SkinnedMesh:
    """The photo mesh ready to pose."""

    verts: np.ndarray  # [N, 3] world metres in the photo pose
    faces: np.ndarray  # [F, 3] int64
    uv: np.ndarray  # [N, 2] photo image coordinates, pixels
    joint_index: np.ndarray  # [N, K] int SMPL joints
    joint_weight: np.ndarray  # [N, K] float, rows sum to 1
    labels: np.ndarray  # [N] int part
    back: np.ndarray  # [N] bool: vertex of the back sheet (textured from the atlas' back panel)


def part_adjacency() -> np.ndarray:
    """[P, P] bool: parts that may share a seam in the mesh (same or connected joints, or leg tops)."""
    from hvg_cli.bonemap.parts import PARTS
    from hvg_cli.core.types import SMPL_PARENTS

    P = len(PARTS)
    adj = np.zeros((P, P), bool)
    for i, a in enumerate(PARTS):
        for j, b in enumerate(PARTS):
            ja, jb = a.joint, b.joint
            adj[i, j] = (
                ja == jb
                or SMPL_PARENTS[ja] == jb
                or SMPL_PARENTS[jb] == ja
                or (a.child is not None and a.child == jb)
                or (b.child is not None and b.child == ja)
                or (a.name in _LEG_TOP and b.name in _LEG_TOP)
            )
    return adj


def cut_overlaps(
    verts: np.ndarray, faces: np.ndarray, labels: np.ndarray, covered: np.ndarray, depth: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Separate triangles that span parts which are not neighbours in the body.

    verts: [N, 3]; faces: [F, 3]; labels: [N] part (filled where the body does not cover);
    covered: [N] bool (label from the body itself: preferred as the owner); depth: [N] photo-camera z, metres
    (among those, the nearest owns the triangle)
    returns: (faces' [F, 3], source [N'] index of the original vertex of each vertex, labels' [N'])
    """
    adj = part_adjacency()
    lab = labels[faces]  # [F, 3]
    bad = np.zeros(len(faces), bool)
    for a, b in ((0, 1), (1, 2), (2, 0)):
        bad |= ~adj[lab[:, a], lab[:, b]]
    src = list(range(len(verts)))
    new_labels = list(labels)
    faces = faces.copy()
    if bad.any():
        fb = faces[bad]  # [B, 3]
        dz = depth[fb] - 1.0 * covered[fb]  # covered vertices first, then the nearest
        owner = lab[bad][np.arange(len(fb)), np.argmin(dz, axis=1)]  # [B] the part in front
        copies: dict[tuple[int, int], int] = {}
        for r in range(len(fb)):
            for k in range(3):
                v = int(fb[r, k])
                if labels[v] == owner[r]:
                    continue
                key = (v, int(owner[r]))
                if key not in copies:
                    copies[key] = len(src)
                    src.append(v)
                    new_labels.append(int(owner[r]))
                fb[r, k] = copies[key]
        faces[bad] = fb
    return faces, np.asarray(src), np.asarray(new_labels)


def skin_weights(
    faces: np.ndarray, labels: np.ndarray, n: int, iterations: int, k: int = TOP_K
) -> tuple[np.ndarray, np.ndarray]:
    """One-hot joint weights by part, diffused over mesh edges, top-k kept.

    returns: (joint_index [n, k] int, joint_weight [n, k] float, rows summing to 1)
    """
    from scipy import sparse

    from hvg_cli.bonemap.parts import PART_JOINT

    from .mesh import vertex_adjacency

    Wt = np.zeros((n, 24))
    Wt[np.arange(n), PART_JOINT[labels]] = 1.0
    A = vertex_adjacency(faces, n)
    deg = np.asarray(A.sum(axis=1)).ravel()
    M = sparse.diags(1.0 / (1.0 + deg)) @ (A + sparse.identity(n))  # row-stochastic averaging
    for _ in range(iterations):
        Wt = M @ Wt
    idx = np.argsort(-Wt, axis=1)[:, :k]
    w = np.take_along_axis(Wt, idx, axis=1)
    w = w / np.maximum(w.sum(1, keepdims=True), 1e-12)
    return idx, w


def skin_photo_mesh(mesh, camera, spacing: float) -> SkinnedMesh:
    """Cut overlaps and compute weights for a `PhotoMesh`. camera: the photo `Camera`; spacing: lattice px."""
    z = (mesh.verts @ camera.world_to_cam[:3, :3].T + camera.world_to_cam[:3, 3])[:, 2]
    faces, src, labels = cut_overlaps(mesh.verts, mesh.faces, mesh.labels, mesh.covered, z)
    # blending radius in lattice steps: metres -> pixels at the body's depth -> steps; diffusion ~ r^2
    px_per_m = camera.K[0, 0] / max(float(np.median(z)), 1e-3)
    steps = BLEND_RADIUS * px_per_m / spacing
    iters = int(np.clip(round(steps**2), 1, 150))
    idx, w = skin_weights(faces, labels, len(src), iters)
    # the outline strip gets its own copies of its vertices, textured from just inside the mask's soft edge
    strip = mesh.face_kind == 2
    used = np.unique(faces[strip])
    remap = np.arange(len(src))
    remap[used] = len(src) + np.arange(len(used))
    faces = faces.copy()
    faces[strip] = remap[faces[strip]]
    uv = np.concatenate([mesh.uv[src], mesh.uv_inner[src[used]]])
    src = np.concatenate([src, src[used]])
    back = np.concatenate(
        [mesh.back[src[: len(src) - len(used)]], np.zeros(len(used), bool)]
    )  # strip copies: front panel
    return SkinnedMesh(
        verts=mesh.verts[src],
        faces=faces,
        uv=uv,
        joint_index=np.concatenate([idx, idx[used]]),
        joint_weight=np.concatenate([w, w[used]]),
        labels=np.concatenate([labels, labels[used]]),
        back=back,
    )


def joint_transforms(
    poses: np.ndarray, trans: np.ndarray, skeleton, rest_pose: np.ndarray, rest_trans: np.ndarray
) -> np.ndarray:
    """Per-joint rigid transforms taking the photo pose to each target pose.

    poses: [T, 24, 3] axis-angle; trans: [T, 3] pelvis world positions, metres
    rest_pose: [24, 3] photo pose; rest_trans: [3]
    returns: [T, 24, 3, 4] world transform (rotation | translation) of every joint
    """
    from hvg_cli.body.kinematics import axis_angle_to_matrix, forward_kinematics

    off = skeleton.offsets
    G, P = forward_kinematics(axis_angle_to_matrix(poses), off, skeleton.parents, trans)  # [T, 24, 3, 3], [T, 24, 3]
    G0, P0 = forward_kinematics(
        axis_angle_to_matrix(rest_pose[None]), off, skeleton.parents, np.asarray(rest_trans)[None]
    )
    R = G @ np.swapaxes(G0, -1, -2)  # [T, 24, 3, 3]: G_t G_photo^T
    t = P - np.einsum("tjab,tjb->tja", R, np.broadcast_to(P0, P.shape))  # [T, 24, 3]
    return np.concatenate([R, t[..., None]], -1)


def pose_vertices(mesh: SkinnedMesh, transforms) -> Tensor:
    """Linear blend skinning.

    transforms: [T, 24, 3, 4] (numpy or torch)
    returns: torch [T, N, 3] float64 world metres
    """
    import torch

    A = torch.as_tensor(transforms, dtype=torch.float64)
    N = mesh.joint_index.shape[0]
    Wd = torch.zeros(N, 24, dtype=torch.float64)  # dense weights [N, 24]
    Wd.scatter_(1, torch.from_numpy(mesh.joint_index), torch.from_numpy(mesh.joint_weight))
    M = torch.einsum("nj,tjab->tnab", Wd, A)  # [T, N, 3, 4] blended transforms
    v = torch.from_numpy(mesh.verts)
    return torch.einsum("tnab,nb->tna", M[..., :3], v) + M[..., 3]
