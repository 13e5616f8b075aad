"""The domain types that cross rooms. Frozen; arrays are numpy (torch stays inside the rooms).

Conventions (see DESIGN.md): world in metres, right-handed, y up, the subject on y = 0 facing +z
in the photo's frame. Cameras are OpenCV (x right, y down, z forward), intrinsics in pixels.
Skeleton: SMPL's 24 joints in SMPL order; rotations are axis-angle, local to the parent.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np

SMPL_JOINT_NAMES: tuple[str, ...] = (
    "pelvis",
    "left_hip",
    "right_hip",
    "spine1",
    "left_knee",
    "right_knee",
    "spine2",
    "left_ankle",
    "right_ankle",
    "spine3",
    "left_foot",
    "right_foot",
    "neck",
    "left_collar",
    "right_collar",
    "head",
    "left_shoulder",
    "right_shoulder",
    "left_elbow",
    "right_elbow",
    "left_wrist",
    "right_wrist",
    "left_hand",
    "right_hand",
)
SMPL_PARENTS: tuple[int, ...] = (
    -1,
    0,
    0,
    0,
    1,
    2,
    3,
    4,
    5,
    6,
    7,
    8,
    9,
    9,
    9,
    12,
    13,
    14,
    16,
    17,
    18,
    19,
    20,
    21,
)
NUM_JOINTS = 24


@dataclass(frozen=True, eq=False)
class VideoInfo:
    """What a video file holds, read without decoding it."""

    path: str
    width: int  # pixels, after rotation metadata is applied (frames come out upright)
    height: int
    fps: Fraction  # exact, e.g. Fraction(30000, 1001)
    frame_count: int
    rotation: int  # degrees of the container's display rotation (0, 90, 180, 270)
    has_audio: bool
    duration: float  # seconds


@dataclass(frozen=True, eq=False)
class PoseTrack:
    """MediaPipe landmarks of one person over a video, after person selection, gap filling and smoothing."""

    image: np.ndarray  # [T, 33, 2] pixels (x right, y down) in the upright frame
    visibility: np.ndarray  # [T, 33] in [0, 1]
    world: np.ndarray  # [T, 33, 3] metres, hvg world axes (y up, +z towards the camera), hip-centred
    detected: np.ndarray  # [T] bool: False where the frame was filled by interpolation
    frame_indices: np.ndarray  # [T] int: index of each frame in the source video
    fps: Fraction  # of the track (source fps / stride)
    width: int
    height: int
    source_hash: str


@dataclass(frozen=True, eq=False)
class Skeleton:
    """A body's rest pose: SMPL-24 joints in the T-pose, pelvis at the origin, y up, facing +z."""

    rest_joints: np.ndarray  # [24, 3] metres
    parents: tuple[int, ...] = SMPL_PARENTS

    @property
    def offsets(self) -> np.ndarray:
        """[24, 3] offset of each joint from its parent in the rest pose (root: its position)."""
        out = self.rest_joints.copy()
        out[1:] -= self.rest_joints[list(self.parents[1:])]
        return out

    @property
    def bone_lengths(self) -> np.ndarray:
        """[24] length of the bone from each joint's parent to the joint (root: 0)."""
        lengths = np.linalg.norm(self.offsets, axis=-1)
        lengths[0] = 0.0
        return lengths


@dataclass(frozen=True, eq=False)
class Motion:
    """A motion on the SMPL-24 skeleton: what every motion source (video, AMASS, BVH, preset) produces."""

    poses: np.ndarray  # [T, 24, 3] axis-angle radians, local to the parent, SMPL joint order
    trans: np.ndarray  # [T, 3] metres: world position of the pelvis (y up)
    fps: Fraction
    skeleton: Skeleton  # the rest pose the rotations act on (bone lengths of the source)
    name: str = "motion"
    source_hash: str = ""
    joints: np.ndarray | None = None  # [T, 24, 3] fitted joint positions, metres, when known
    fit_error_deg: float | None = None  # mean angle between fitted and observed bone directions
    audio_path: str | None = None  # a media file whose audio follows this motion's timeline
    start_time: float = 0.0  # seconds into audio_path where frame 0 lies
    extras: dict = field(default_factory=dict)  # source-specific arrays (landmarks, visibility, ...)

    @property
    def num_frames(self) -> int:
        return int(self.poses.shape[0])


@dataclass(frozen=True, eq=False)
class Camera:
    """One pinhole camera, OpenCV axes."""

    K: np.ndarray  # [3, 3] intrinsics, pixels
    world_to_cam: np.ndarray  # [4, 4]
    width: int
    height: int

    @property
    def cam_to_world(self) -> np.ndarray:
        return np.linalg.inv(self.world_to_cam)

    @property
    def position(self) -> np.ndarray:
        """[3] camera centre in world metres."""
        return self.cam_to_world[:3, 3]

    def resized(self, width: int, height: int) -> Camera:
        """The same camera for an image resized to width x height (intrinsics scale with the image)."""
        K = np.diag([width / self.width, height / self.height, 1.0]) @ self.K  # [3, 3]
        return Camera(K=K, world_to_cam=self.world_to_cam, width=int(width), height=int(height))


@dataclass(frozen=True, eq=False)
class CameraPath:
    """V cameras along a path (keyframes of a camera move, or a set of fixed views)."""

    K: np.ndarray  # [V, 3, 3] pixels
    world_to_cam: np.ndarray  # [V, 4, 4] OpenCV
    width: int
    height: int
    closed: bool = False  # the last view neighbours the first (a full orbit)
    name: str = "path"
    times: np.ndarray | None = None  # [V] in [0, 1]: when each keyframe is reached (None: evenly)

    @property
    def num_views(self) -> int:
        return int(self.K.shape[0])

    def camera(self, i: int) -> Camera:
        return Camera(self.K[i], self.world_to_cam[i], self.width, self.height)


@dataclass(frozen=True, eq=False)
class CameraGrid:
    """The cameras of a job: one per output view and frame.

    mode "views": V fixed views, each for every frame (what the multi-view model generates).
    mode "moving": V = 1, the camera advances along the path with time (the usual final video).
    """

    K: np.ndarray  # [V, T, 3, 3] pixels
    world_to_cam: np.ndarray  # [V, T, 4, 4] OpenCV
    width: int
    height: int
    mode: str  # "views" | "moving"
    closed: bool = False

    @property
    def shape(self) -> tuple[int, int]:
        return int(self.K.shape[0]), int(self.K.shape[1])


@dataclass(frozen=True, eq=False)
class Alignment:
    """Per view and frame 2D similarity (scale + translation): aligned = scale * pixel + offset."""

    scale: np.ndarray  # [V, T]
    offset: np.ndarray  # [V, T, 2] pixels
    width: int  # size of the aligned images
    height: int


@dataclass(frozen=True, eq=False)
class BoneMaps:
    """The dual-dimensional bone map of every view and frame.

    semantic: per-bone colour (2D part); normal and depth of the nearest ellipsoid (3D part); mask.
    Normals use the common normal-map convention: x right, y up, z towards the viewer.
    """

    semantic: np.ndarray  # [V, T, H, W, 3] uint8 RGB
    normal: np.ndarray  # [V, T, H, W, 3] float16 in [-1, 1], zero where empty
    depth: np.ndarray  # [V, T, H, W] float32 metres along the camera's z, zero where empty
    mask: np.ndarray  # [V, T, H, W] bool
    label: np.ndarray  # [V, T, H, W] int8 part id (bonemap part table), -1 where empty

    @property
    def shape(self) -> tuple[int, int, int, int]:
        V, T, H, W = self.mask.shape
        return V, T, H, W


@dataclass(frozen=True, eq=False)
class Subject:
    """The person in the photo: appearance, proportions, pose and the camera that saw them."""

    image: np.ndarray  # [H, W, 3] uint8 RGB, upright
    mask: np.ndarray  # [H, W] float32 person mask in [0, 1]
    landmarks: np.ndarray  # [33, 2] pixels
    visibility: np.ndarray  # [33]
    skeleton: Skeleton  # rest pose with the photo's bone lengths
    photo_pose: np.ndarray  # [24, 3] axis-angle of the person's pose in the photo
    photo_trans: np.ndarray  # [3] pelvis position in the world (the photo camera looks at it)
    camera: Camera  # the photo's source camera
    radii: np.ndarray  # [P, 2] metres: short semi-axes of each bonemap part (bonemap.parts order)
    source_hash: str
    legs_guessed: bool = False  # the legs were not visible in the photo
