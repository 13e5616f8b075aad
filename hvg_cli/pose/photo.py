"""MediaPipe on one photo: 2D landmarks, world landmarks in hvg axes, the person mask.

Behaviour on hard photos (documented for users in `detect_photo`):
- no person: `NoPerson` naming the file;
- several people: MediaPipe's pose solution follows ONE person, the one its detector scores highest
  (usually the largest, most central one). Its segmentation is computed around that person; where
  someone else reaches into it, hvg keeps only the mask's connected regions that hold the chosen
  person's landmarks and sets `other_people`;
- a person cut off (knees or ankles not visible): `PhotoDetection.legs_guessed` is set; the subject
  stage then puts the legs in a straight standing pose and the pipeline warns.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hvg_cli.core.errors import BadInput, NoPerson
from hvg_cli.pose import mediapipe_model_path
from hvg_cli.pose.video_pose import _landmarks, _mediapipe, mediapipe_to_hvg, quiet_native_logs

# MediaPipe landmark indices used here
MP_LEFT_HIP, MP_RIGHT_HIP = 23, 24
MP_LEFT_KNEE, MP_RIGHT_KNEE = 25, 26
MP_LEFT_ANKLE, MP_RIGHT_ANKLE = 27, 28

# A knee/ankle counts as seen when MediaPipe's visibility is above this and it lies inside the image.
LEG_VISIBILITY = 0.5


@dataclass(frozen=True, eq=False)
class PhotoDetection:
    """One person found by MediaPipe in a photo."""

    landmarks: (
        np.ndarray
    )  # [33, 2] pixels (x right, y down); pixel (i, j) covers [i, i+1) x [j, j+1), as hvg's intrinsics
    visibility: np.ndarray  # [33] in [0, 1]
    world: (
        np.ndarray
    )  # [33, 3] metres, hvg axes (x = person's left when facing the camera, y up, +z to the camera), hip-centred
    mask: np.ndarray  # [H, W] float32 in [0, 1], MediaPipe's person segmentation
    width: int
    height: int
    source: str  # the file the photo came from (for messages)
    legs_guessed: bool = False  # knees or ankles were not seen: the legs' landmarks are not to be trusted
    other_people: bool = False  # the segmentation found other people; they were cut out of `mask`


def _pose_model_complexity() -> int:
    """2 (heavy) if its model ships in the installed mediapipe, else 1 (full, always shipped).

    MediaPipe downloads missing models at run time; hvg never lets it.
    """
    return 2 if mediapipe_model_path("heavy") else 1


def legs_seen(landmarks: np.ndarray, visibility: np.ndarray, width: int, height: int) -> bool:
    """Both knees and both ankles visible (MediaPipe visibility) and inside the image.

    landmarks: [33, 2] px; visibility: [33].
    """
    idx = [MP_LEFT_KNEE, MP_RIGHT_KNEE, MP_LEFT_ANKLE, MP_RIGHT_ANKLE]
    p = landmarks[idx]  # [4, 2]
    inside = (p[:, 0] >= 0) & (p[:, 0] <= width) & (p[:, 1] >= 0) & (p[:, 1] <= height)
    return bool(np.all(inside & (visibility[idx] > LEG_VISIBILITY)))


def cover_person(image: np.ndarray, landmarks: np.ndarray, visibility: np.ndarray, pad: float = 0.15) -> np.ndarray:
    """The photo with the person of `landmarks` covered by a flat grey box (their landmarks' box, padded by
    `pad` of its size), so a second detection finds whoever else is in the photo.

    image [H, W, 3] uint8; landmarks [33, 2] px; visibility [33] -> [H, W, 3] uint8 (a copy)
    """
    H, W = image.shape[:2]
    pts = landmarks[visibility > 0.3] if (visibility > 0.3).sum() >= 4 else landmarks  # [M, 2] px
    (x0, y0), (x1, y1) = pts.min(axis=0), pts.max(axis=0)
    dx, dy = pad * (x1 - x0) + 0.05 * W, pad * (y1 - y0) + 0.05 * H
    out = np.array(image, copy=True)
    out[max(0, int(y0 - dy)) : min(H, int(y1 + dy) + 1), max(0, int(x0 - dx)) : min(W, int(x1 + dx) + 1)] = 128
    return out


def keep_person(mask: np.ndarray, landmarks: np.ndarray, visibility: np.ndarray) -> tuple[np.ndarray, bool]:
    """The part of a segmentation mask that belongs to the person whose landmarks are given.

    mask: [H, W] float in [0, 1]; landmarks [33, 2] px; visibility [33]
    returns: (mask [H, W] float32 with other connected regions zeroed, whether a sizeable region
             (> 5% of the person's area) was removed)
    """
    from scipy.ndimage import label as connected

    H, W = mask.shape
    regions, n = connected(mask > 0.5)  # [H, W] int, 0 = background
    if n <= 1:
        return mask.astype(np.float32), False
    seen = visibility > 0.5
    px = np.clip(np.floor(landmarks[seen]).astype(int), 0, [W - 1, H - 1])  # [M, 2]
    ids = np.unique(regions[px[:, 1], px[:, 0]])
    ids = ids[ids > 0]
    if ids.size == 0:  # landmarks fell between regions: keep the region nearest the hip midpoint
        from scipy.ndimage import distance_transform_edt

        _, (iy, ix) = distance_transform_edt(regions == 0, return_indices=True)
        c = np.clip(np.floor(landmarks[[MP_LEFT_HIP, MP_RIGHT_HIP]].mean(axis=0)).astype(int), 0, [W - 1, H - 1])
        ids = np.array([regions[iy[c[1], c[0]], ix[c[1], c[0]]]])
    keep_px = np.isin(regions, ids)
    sizes = np.bincount(regions.ravel(), minlength=n + 1)
    removed = sizes[1:].sum() - sizes[ids].sum()
    # soft edges stay: zero the mask only inside the dropped regions (grown by a couple of pixels)
    dropped = (regions > 0) & ~keep_px
    if dropped.any():
        from scipy.ndimage import binary_dilation

        dropped = binary_dilation(dropped, iterations=2) & ~keep_px
    out = np.where(dropped, 0.0, mask).astype(np.float32)
    return out, bool(removed > 0.05 * max(sizes[ids].sum(), 1))


def detect_photo(image: np.ndarray, source: str) -> PhotoDetection:
    """Find the person in a photo with MediaPipe Pose (static image mode, segmentation on).

    image:   [H, W, 3] uint8 RGB, upright
    source:  the photo's file name, used in error messages
    returns: PhotoDetection. If several people are in the photo, MediaPipe follows the one its person
             detector ranks first; others reaching into its mask are cut out (other_people=True). If
             knees/ankles are not seen, legs_guessed=True.
    raises:  NoPerson when no person is found; BadInput for an image of the wrong shape.
    """
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8 or min(image.shape[:2]) < 16:
        raise BadInput(
            f"{source}: expected an RGB photo, got an array of shape {image.shape} ({image.dtype})",
            "use a .jpg or .png photo of a person",
        )
    mp = _mediapipe()
    H, W = image.shape[:2]
    with (
        quiet_native_logs(),
        mp.solutions.pose.Pose(
            static_image_mode=True,
            model_complexity=_pose_model_complexity(),
            enable_segmentation=True,
            min_detection_confidence=0.5,
        ) as pose,
    ):
        result = pose.process(np.ascontiguousarray(image))
        # MediaPipe's normalised coordinates span [0, 1] over the image's edges = hvg's continuous pixel coordinates
        found = _landmarks(result, 0, W, H)
        if found is None:
            raise NoPerson(f"no person found in {source}", "use a photo where one whole person is visible")
        landmarks, visibility, world_mp = found  # [33, 2] px, [33], [33, 3] m MediaPipe axes
        # someone else beside the chosen person: the same detector on the photo with that person covered
        second = _landmarks(pose.process(cover_person(image, landmarks, visibility)), 0, W, H)
    world = mediapipe_to_hvg(world_mp)  # [33, 3] m
    someone_else = second is not None and int((second[1] > 0.5).sum()) >= 12

    if result.segmentation_mask is not None:
        mask = np.clip(np.asarray(result.segmentation_mask, dtype=np.float32), 0.0, 1.0)  # [H, W]
    else:  # pragma: no cover - segmentation is always on here
        mask = np.zeros((H, W), np.float32)

    mask, others = keep_person(mask, landmarks, visibility)
    others = others or someone_else
    return PhotoDetection(
        landmarks=landmarks,
        visibility=visibility,
        world=world,
        mask=mask,
        other_people=others,
        width=W,
        height=H,
        source=source,
        legs_guessed=not legs_seen(landmarks, visibility, W, H),
    )
