"""The person in the photo as a body: bone lengths, photo pose, where they stand, the camera that saw them.

World (DESIGN.md): metres, y up, the subject on y = 0 facing +z in the photo's frame. MediaPipe's world
landmarks (converted to hvg axes) are hip-centred and turned like the camera (they describe the body as
the camera sees it), so the photo's frame is theirs: the body keeps the orientation the IK fit gives it,
its pelvis is put at (0, h, 0) with h such that the lowest ankle/foot joint touches y = 0, and the photo
camera is placed in front, on the +z side, looking at -z.

The camera: a pinhole with square pixels, principal point at the image centre and a focal length from
an assumed field of view (`fov_deg` across the image's longer side: for a full-body photo distance and
focal length trade off almost exactly, so one is fixed); its centre (3) and a small pitch and yaw are
solved by least squares so that the 33 landmarks of the fitted body (body.ik.landmarks_from_pose: where
MediaPipe's landmarks sit on the posed skeleton), placed with it, project onto the photo's 2D landmarks
(weighted by visibility, robust loss). The fitted skeleton's FK joints are then
reprojected to report the error in pixels against the landmarks they correspond to.

Ambiguities left as they are (documented): a mirrored photo cannot be told apart from an unmirrored one
(the person's left is whatever MediaPipe calls left); depth order of limbs comes from MediaPipe's world
landmarks only; a person photographed lying down is still put on the floor by the lowest foot.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from hvg_cli.body.kinematics import axis_angle_to_matrix, forward_kinematics
from hvg_cli.body.skeleton import JOINT_INDEX, default_skeleton
from hvg_cli.core.types import Camera, Skeleton

DEFAULT_FOV_DEG = 50.0  # across the longer image side

_J = JOINT_INDEX
# SMPL joint -> MediaPipe landmark(s) at the same place (their mean), for reprojection checks
JOINT_LANDMARKS: dict[int, tuple[int, ...]] = {
    _J["pelvis"]: (23, 24),
    _J["left_knee"]: (25,),
    _J["right_knee"]: (26,),
    _J["left_ankle"]: (27,),
    _J["right_ankle"]: (28,),
    _J["left_shoulder"]: (11,),
    _J["right_shoulder"]: (12,),
    _J["left_elbow"]: (13,),
    _J["right_elbow"]: (14,),
    _J["left_wrist"]: (15,),
    _J["right_wrist"]: (16,),
}
_FOOT_JOINTS = [_J["left_ankle"], _J["right_ankle"], _J["left_foot"], _J["right_foot"]]
_MP_LEGS = np.arange(25, 33)  # knees, ankles, heels, foot indices
_LIMB_LANDMARK = np.zeros(33, bool)
_LIMB_LANDMARK[13:23] = True  # elbows, wrists, hand points
_LIMB_LANDMARK[25:33] = True  # knees, ankles, heels, toes
REFINE_PASSES = 2  # IK <-> camera alternations that pull the 3D landmarks onto the photo's rays
# camera fit priors: pitch/yaw cost as much as this many pixels per degree (keeps the gauge near MediaPipe's)
_ANGLE_PRIOR_PX_PER_DEG = 2.0


@dataclass(frozen=True, eq=False)
class PhotoFit:
    """The subject's body and the photo's camera."""

    skeleton: Skeleton  # rest pose with the photo's bone lengths
    photo_pose: np.ndarray  # [24, 3] axis-angle, the pose in the photo
    photo_trans: np.ndarray  # [3] pelvis, world metres (x = z = 0, y = pelvis height)
    camera: Camera  # the photo's source camera
    joints: np.ndarray  # [24, 3] FK joints in the world, metres
    joints_px: np.ndarray  # [24, 2] FK joints projected by the camera, pixels
    reprojection_error_px: float  # mean over JOINT_LANDMARKS (visible ones) of |projected - landmark|
    landmark_error_px: float  # mean over visible MediaPipe landmarks of the camera fit's residual
    body_height_px: float  # the person's joint extent in the photo, pixels (for relative errors)
    tilt_deg: float  # camera pitch (positive: looking down)
    legs_guessed: bool = False
    ik_error_deg: float = 0.0  # IK's mean angle between fitted and observed bone directions


# ---------------------------------------------------------------------------------------------
# small pure functions
# ---------------------------------------------------------------------------------------------
def focal_from_fov(fov_deg: float, width: int, height: int) -> float:
    """Focal length in pixels for a field of view across the image's longer side."""
    return 0.5 * max(width, height) / math.tan(math.radians(fov_deg) / 2)


def camera_rotation(pitch: float, yaw: float) -> np.ndarray:
    """World -> camera rotation of a camera on the +z side looking at -z, pitched and yawed.

    pitch: radians, positive looks down; yaw: radians, positive turns the view towards -x.
    returns: [3, 3] rows = camera x (right), y (down), z (forward) in world coordinates.
    """
    base = np.diag([1.0, -1.0, -1.0])  # looking at -z, upright: x right = world +x, y down = world -y
    cp, sp = math.cos(pitch), math.sin(pitch)
    cy, sy = math.cos(yaw), math.sin(yaw)
    Rx = np.array([[1, 0, 0], [0, cp, -sp], [0, sp, cp]])  # about the camera x axis
    Ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])  # about the camera y axis
    # forward (camera z) in the world: base forward (0, 0, -1) pitched down (-y) and yawed towards -x
    return Rx @ Ry @ base


def world_to_cam_matrix(R: np.ndarray, centre: np.ndarray) -> np.ndarray:
    """[4, 4] from a world->camera rotation [3, 3] and the camera centre [3] (world metres)."""
    M = np.eye(4)
    M[:3, :3] = R
    M[:3, 3] = -R @ centre
    return M


def project(points: np.ndarray, K: np.ndarray, world_to_cam: np.ndarray) -> np.ndarray:
    """points [N, 3] world -> [N, 2] pixels (points behind the camera get nan)."""
    cam = points @ world_to_cam[:3, :3].T + world_to_cam[:3, 3]  # [N, 3]
    uvw = cam @ K.T
    z = uvw[:, 2:3]
    return np.where(z > 1e-9, uvw[:, :2] / np.where(z > 1e-9, z, 1.0), np.nan)


def onto_rays(points: np.ndarray, pixels: np.ndarray, K: np.ndarray, world_to_cam: np.ndarray) -> np.ndarray:
    """Each point moved onto the camera ray through its pixel, at its own camera depth.

    points: [N, 3] world; pixels: [N, 2]; returns [N, 3] world
    """
    R, t = world_to_cam[:3, :3], world_to_cam[:3, 3]
    cam = points @ R.T + t  # [N, 3]
    z = np.maximum(cam[:, 2:3], 1e-3)
    xy = (pixels - K[:2, 2]) / np.array([K[0, 0], K[1, 1]]) * z  # [N, 2]
    return (np.concatenate([xy, z], axis=1) - t) @ R  # back to the world


def joint_observations(landmarks: np.ndarray, visibility: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The SMPL joints that sit on MediaPipe landmarks, their 2D positions and weights.

    landmarks: [33, 2] px; visibility: [33]
    returns:   (joint ids [M], positions [M, 2] px, weights [M] = min visibility of the landmarks used)
    """
    ids = np.array(list(JOINT_LANDMARKS))
    pos = np.stack([landmarks[list(JOINT_LANDMARKS[j])].mean(axis=0) for j in ids])
    w = np.array([visibility[list(JOINT_LANDMARKS[j])].min() for j in ids])
    return ids, pos, w


def standing_legs(world: np.ndarray, skeleton: Skeleton | None = None) -> np.ndarray:
    """World landmarks with the legs replaced by straight standing legs (for photos cut off above them).

    world:   [33, 3] hvg axes, hip-centred; the hips (23, 24) and shoulders (11, 12) are used
    returns: [33, 3] with knees, ankles, heels and foot indices (25..32) straight below the hips, the
             feet pointing where the hips face; leg lengths from `skeleton` (default: hvg's), scaled by
             the observed hip-to-shoulder height against the skeleton's.
    """
    skel = skeleton or default_skeleton()
    out = np.array(world, dtype=np.float64, copy=True)
    rest = skel.rest_joints
    ref_torso = float(
        np.linalg.norm(
            0.5 * (rest[_J["left_shoulder"]] + rest[_J["right_shoulder"]])
            - 0.5 * (rest[_J["left_hip"]] + rest[_J["right_hip"]])
        )
    )
    torso = float(np.linalg.norm(0.5 * (world[11] + world[12]) - 0.5 * (world[23] + world[24])))
    s = torso / max(ref_torso, 1e-9) if torso > 1e-3 else 1.0
    L = skel.bone_lengths * s
    across = world[23] - world[24]  # right hip -> left hip
    across[1] = 0.0
    across = across / max(np.linalg.norm(across), 1e-9) if np.linalg.norm(across) > 1e-6 else np.array([1.0, 0, 0])
    up = np.array([0.0, 1.0, 0.0])
    fwd = np.cross(across, up)  # the way the hips face (left x up = forward)
    foot_len = float(np.linalg.norm(rest[_J["left_foot"]] - rest[_J["left_ankle"]])) * s
    for side, hip, knee, ankle, heel, toe in (("left", 23, 25, 27, 29, 31), ("right", 24, 26, 28, 30, 32)):
        out[knee] = out[hip] - up * L[_J[f"{side}_knee"]]
        out[ankle] = out[knee] - up * L[_J[f"{side}_ankle"]]
        out[heel] = out[ankle] - up * 0.06 * s - fwd * 0.05 * s
        out[toe] = out[ankle] - up * 0.07 * s + fwd * (foot_len + 0.05 * s)
    return out


# ---------------------------------------------------------------------------------------------
# the fit
# ---------------------------------------------------------------------------------------------
def _fit_camera(
    points: np.ndarray, observed: np.ndarray, weights: np.ndarray, K: np.ndarray, scale_px: float
) -> tuple[np.ndarray, float, float, float]:
    """Least-squares camera centre, pitch and yaw for fixed intrinsics.

    points: [N, 3] world; observed: [N, 2] px; weights: [N] >= 0; K: [3, 3] px, square pixels;
    scale_px: robust loss scale
    returns: (centre [3], pitch rad, yaw rad, mean weighted residual px)
    """
    from scipy.optimize import least_squares

    f = K[0, 0]
    sel = weights > 1e-3
    P, Q, w = points[sel], observed[sel], np.sqrt(weights[sel])  # P: [M, 3] world, Q: [M, 2] observed px
    # initial guess, weak perspective: depth from the vertical extents, centre from the mean offset
    ext3 = max(np.ptp(P[:, 1]), 1e-3)
    ext2 = max(np.ptp(Q[:, 1]), 1.0)
    depth = f * ext3 / ext2
    mean3, mean2 = P.mean(axis=0), Q.mean(axis=0)
    cx = mean3[0] - (mean2[0] - K[0, 2]) * depth / f
    cy = mean3[1] + (mean2[1] - K[1, 2]) * depth / f
    x0 = np.array([cx, cy, mean3[2] + depth, 0.0, 0.0])
    prior = _ANGLE_PRIOR_PX_PER_DEG * 180 / math.pi

    def residual(x: np.ndarray) -> np.ndarray:
        R = camera_rotation(x[3], x[4])
        cam = (P - x[:3]) @ R.T  # [M, 3]
        z = np.maximum(cam[:, 2], 1e-3)
        uv = cam[:, :2] / z[:, None] * f + K[:2, 2]
        return np.concatenate([((uv - Q) * w[:, None]).ravel(), [prior * x[3], prior * x[4]]])

    res = least_squares(residual, x0, loss="soft_l1", f_scale=scale_px, x_scale=np.array([0.1, 0.1, 0.5, 0.05, 0.05]))
    x = res.x
    R = camera_rotation(x[3], x[4])
    uv = project(P, K, world_to_cam_matrix(R, x[:3]))
    err = float(np.sum(np.linalg.norm(uv - Q, axis=-1) * weights[sel]) / max(np.sum(weights[sel]), 1e-9))
    return x[:3], float(x[3]), float(x[4]), err


def fit_photo(
    detection,
    width: int | None = None,
    height: int | None = None,
    skeleton: Skeleton | None = None,
    fov_deg: float = DEFAULT_FOV_DEG,
) -> PhotoFit:
    """Skeleton, photo pose, pelvis position and source camera of the person in a photo.

    detection: pose.photo.PhotoDetection (landmarks [33, 2] px, visibility [33], world [33, 3] hvg axes)
    width, height: the photo's size in pixels (default: the detection's)
    skeleton:  rest skeleton to use (e.g. from a body model, already scaled); None: estimated from the
               photo's landmarks with body.ik.estimate_skeleton
    fov_deg:   assumed field of view across the photo's longer side
    returns:   PhotoFit
    """
    from hvg_cli.body import ik

    W = int(width or detection.width)
    H = int(height or detection.height)
    world = np.asarray(detection.world, dtype=np.float64)  # [33, 3]
    vis = np.asarray(detection.visibility, dtype=np.float64)  # [33]
    lm = np.asarray(detection.landmarks, dtype=np.float64)  # [33, 2]
    legs_guessed = bool(getattr(detection, "legs_guessed", False))
    fit_vis = vis.copy()
    if legs_guessed:
        world = standing_legs(world, skeleton)
        vis = vis.copy()
        vis[_MP_LEGS] = 1.0  # the guessed legs are what the skeleton and pose should follow
        fit_vis[_MP_LEGS] = 0.0  # ... but they say nothing about the camera

    # 1. Bone lengths (from MediaPipe's 3D landmarks; kept fixed from here on)
    if skeleton is None:
        skeleton = ik.estimate_skeleton(world[None], vis[None])
    f = focal_from_fov(fov_deg, W, H)
    K = np.array([[f, 0, W / 2], [0, f, H / 2], [0, 0, 1.0]])
    body_px = float(np.ptp(lm[fit_vis > 0.5, 1])) if np.any(fit_vis > 0.5) else float(H)

    # 2. Pose and camera, alternating: IK on the landmarks (T = 1); stand the body on the floor; fit the
    #    camera to the body's landmarks; then pull the well-seen limb landmarks onto their camera rays (keeping
    #    their depth) so the next IK pass agrees with the photo in 2D as well as in 3D. Torso and face
    #    landmarks stay as MediaPipe gave them: they set the body's turn, which would otherwise drift
    #    together with the camera (a gauge the photo cannot fix).
    target = world
    for it in range(1 + REFINE_PASSES):
        result = ik.fit_landmarks(target[None], skeleton, vis[None])
        pose = np.asarray(result.poses[0], dtype=np.float64)  # [24, 3]
        _, rel = forward_kinematics(axis_angle_to_matrix(pose[None]), skeleton.offsets, skeleton.parents)
        rel = rel[0]  # [24, 3] pelvis at the origin
        trans = np.array([0.0, -float(rel[_FOOT_JOINTS, 1].min()), 0.0])  # lowest ankle/foot joint on y = 0
        placed = ik.landmarks_from_pose(pose[None], skeleton)[0] + trans  # [33, 3] world
        centre, pitch, yaw, lm_err = _fit_camera(placed, lm, fit_vis, K, scale_px=0.01 * max(body_px, 1.0))
        w2c = world_to_cam_matrix(camera_rotation(pitch, yaw), centre)
        if it == REFINE_PASSES:
            break
        on_rays = onto_rays(placed, lm, K, w2c)  # [33, 3] world
        good = (fit_vis > 0.5) & _LIMB_LANDMARK  # torso and face stay: they fix the body's turn (no drift)
        target = np.where(good[:, None], on_rays, placed) - trans  # pelvis-centred
        target = target - 0.5 * (target[23] + target[24])  # hip-centred, as MediaPipe's
    joints = rel + trans  # [24, 3] world
    camera = Camera(K=K, world_to_cam=w2c, width=W, height=H)

    # 4. Report: FK joints against the landmarks they sit on
    joints_px = project(joints, K, w2c)  # [24, 2]
    ids, obs, wts = joint_observations(lm, fit_vis)
    ok = wts > 0.5
    reproj = float(np.linalg.norm(joints_px[ids[ok]] - obs[ok], axis=-1).mean()) if ok.any() else float("nan")
    height_px = float(np.ptp(joints_px[:, 1]))
    return PhotoFit(
        skeleton=skeleton,
        photo_pose=pose,
        photo_trans=trans,
        camera=camera,
        joints=joints,
        joints_px=joints_px,
        reprojection_error_px=reproj,
        landmark_error_px=lm_err,
        body_height_px=height_px,
        tilt_deg=math.degrees(pitch),
        legs_guessed=legs_guessed,
        ik_error_deg=float(getattr(result, "fit_error_deg", 0.0)),
    )
