"""Every cached stage and every stage version, in one place.

A stage's result is stored under a key made of its name, its version below, the content hash of its inputs
(bytes of files, never paths) and its canonical settings (core/cache.py). Bump a version when the meaning of
what the stage stores changes; nothing else invalidates an entry.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from hvg_cli.core.cache import StageCache, StageKey, array_hash, file_hash
from hvg_cli.core.errors import BadInput
from hvg_cli.core.progress import SILENT, Reporter
from hvg_cli.core.settings import PoseSettings, SubjectSettings
from hvg_cli.core.types import Motion, PoseTrack, Subject, VideoInfo

if TYPE_CHECKING:
    from hvg_cli.backends.preview.render import PreviewModel

# In data-flow order. `hvg cache clear --stage NAME` accepts these names.
VERSIONS: dict[str, int] = {
    "pose_track": 1,  # MediaPipe landmarks of one person over a video
    "motion_video": 1,  # the SMPL-24 fit of a track (IK, root path)
    "subject": 2,  # the person in the photo: fit, radii, storage; 2: photos larger than PHOTO_MAX_SIDE downscaled
    # the preview's photo mesh; 2: hair on the back of the head; 3: thickness, a backdrop; 4: soft world per plane;
    # 5: body closed under the arms, rim band; 6: a low-detail back, hands from the photo's skin pixels;
    # 7: hair over the shoulders kept off the back; 8: the world's backdrop nearer (a wall close behind), soft corner
    # and a short fade beside the photo; 9: solid shoes on the feet (feet.py); 10: arms keep only pixels of their
    # own colour (hands.relabel_arms), pocket bulges left out; 11: the background beside an arm left out, arm backs
    # of their own skin (hands.background_pixels, arm_back_skin); 12: the ground and shadow kept off the shoes;
    # 13: clothes beside an arm that lay over the body take the body's depth (mesh.arms_over_body)
    "preview_model": 13,
    "bonemap_video": 1,  # `hvg bonemap`'s finished video (+ exported maps)
    "sampler": 2,  # the diffusion sampler's resumable state (removed when the render is stored); 2: fps, flat guidance
    "render": 3,  # `hvg animate`'s finished video(s); 3: fast preview renderer, backdrop, diffusion fps/guidance
    "batch": 1,  # `hvg batch`'s record of a finished job (its outputs' sizes)
}
STAGE_NAMES = tuple(VERSIONS)


def stage_key(stage: str, *parts: Any) -> StageKey:
    """The cache key of `stage` at its current version."""
    return StageCache.key(stage, VERSIONS[stage], *parts)


# --- pose: video -> landmark track -> motion ----------------------------------------------------------------
def default_max_gap(fps) -> int:
    """Half a second of track frames (at least 1)."""
    return max(1, int(round(0.5 * float(fps))))


def track_range(video: Path, settings: PoseSettings) -> tuple[VideoInfo, range]:
    """(VideoInfo, range of source frame indices) of a pose job; BadInput for an empty selection."""
    from hvg_cli.io.video import frame_range, probe_video

    info = probe_video(video)
    if settings.start >= info.frame_count:
        raise BadInput(
            f"--start {settings.start} is past the end of {video} ({info.frame_count} frames)", "give a smaller --start"
        )
    idx = frame_range(info, settings.start, settings.end, settings.stride)
    if len(idx) == 0:
        raise BadInput(
            f"no frames of {video} in --start {settings.start} --end {settings.end}", "make --end larger than --start"
        )
    return info, idx


def pose_track(video: Path, settings: PoseSettings, cache: StageCache, progress: Reporter = SILENT) -> PoseTrack:
    """MediaPipe landmarks of one person over a video (stage `pose_track`).

    Key: the video's bytes + the track settings. Raises BadInput for an unreadable video and NoPerson
    when nobody is found or the person is lost longer than `max_gap`; no cache entry is left then.
    """
    from hvg_cli.io.records import load_track, save_track
    from hvg_cli.io.video import fit_size, read_frames
    from hvg_cli.pose.tracking import parse_person
    from hvg_cli.pose.video_pose import detect_frames, finish_track

    video = Path(video)
    info, idx = track_range(video, settings)
    person = parse_person(settings.person)
    source_hash = file_hash(video)
    key = stage_key("pose_track", source_hash, settings.track_part())
    fps = info.fps / settings.stride
    max_gap = settings.max_gap if settings.max_gap is not None else default_max_gap(fps)
    made: dict[str, PoseTrack] = {}

    def produce(folder: Path) -> None:
        # MediaPipe's working size: the video downscaled to settings.max_side (see PoseSettings)
        w, h = fit_size(info.width, info.height, settings.max_side)
        frames = read_frames(video, idx.start, idx.stop, idx.step, threads=1, size=(w, h))
        try:
            with progress.task("pose", total=len(idx), unit="frames") as task:
                raw = detect_frames(
                    frames,
                    len(idx),
                    person=person,
                    source=str(video),
                    task=task,
                    to_source=(info.width / w, info.height / h),
                )
        finally:
            close = getattr(frames, "close", None)
            if close:
                close()
        if len(raw.detected) < len(idx):
            raise BadInput(
                f"{video}: only {len(raw.detected)} of {len(idx)} frames could be decoded", "re-encode the video"
            )
        track = finish_track(
            raw,
            np.asarray(idx),
            fps,
            info.fps,
            info.width,
            info.height,
            source_hash,
            str(video),
            max_gap,
            settings.smooth,
            settings.min_cutoff,
            settings.beta,
        )
        if raw.people > 1:
            progress.note(f"pose: {raw.people} people on the first frame; following --person {settings.person}")
        save_track(track, folder / "track.npz")
        made["track"] = track

    with cache.entry(key, produce) as (entry, cached):
        if not cached:
            return made["track"]
        track = load_track(entry / "track.npz")
    progress.note(f"pose: cached landmarks ({track.image.shape[0]} frames, {key.short})")
    return track


def with_audio(motion: Motion, video: Path) -> Motion:
    """The motion named after its video, whose audio follows it."""
    return dataclasses.replace(motion, audio_path=str(video), name=video.stem)


def motion_video(
    video: Path, settings: PoseSettings, cache: StageCache, progress: Reporter = SILENT
) -> tuple[Motion, bool]:
    """The SMPL-24 motion of the person in a video (stage `motion_video`, on top of `pose_track`), and whether
    it came from the cache.

    Motion: fps of the track, poses [T, 24, 3], trans [T, 3] pelvis path, joints [T, 24, 3] world positions,
    fit_error_deg, audio_path = the video, start_time = the first frame's time, extras: landmarks [T, 33, 2]
    px, visibility [T, 33], world [T, 33, 3] m, detected [T], frame_indices [T].
    """
    from hvg_cli.body.ik import fit_track
    from hvg_cli.body.mocap import amass_arrays, motion_from_amass
    from hvg_cli.io.amass import read_motion_npz, write_motion_npz

    video = Path(video)
    track_range(video, settings)  # bad input fails before any cache work
    key = stage_key("motion_video", file_hash(video), settings)
    hit = cache.lookup(key)
    if hit is not None:
        motion = motion_from_amass(read_motion_npz(hit / "motion.npz"))
        progress.note(f"pose: cached motion ({motion.num_frames} frames, {key.short}), no MediaPipe run")
        return with_audio(motion, video), True

    def produce(folder: Path) -> None:
        track = pose_track(video, settings, cache, progress)
        fitted = with_audio(fit_track(track, settings.fov_deg, settings.stride), video)
        write_motion_npz(amass_arrays(fitted), folder / "motion.npz")

    with cache.entry(key, produce) as (entry, cached):
        # both the fresh and the cached path return what the entry holds: identical outputs
        motion = with_audio(motion_from_amass(read_motion_npz(entry / "motion.npz")), video)
    return motion, cached


# --- subject: photo -> the person (fit, radii) ----------------------------------------------------------------
# A photo is analysed at most this large (longer side, pixels): four times a 512 px job's height, enough for the
# preview's texture and the diffusion reference; a 4500x8000 photo would otherwise cost gigabytes in memory and cache.
PHOTO_MAX_SIDE = 2048


def subject_key(photo: Path, settings: SubjectSettings) -> StageKey:
    """Key of `subject`: the photo's bytes, the body model file's bytes and the other settings."""
    model_hash = None
    if settings.body_model:
        model = Path(settings.body_model)
        if not model.is_file():
            raise BadInput(
                f"body model file not found: {model}", "pass the path of SMPL_NEUTRAL.pkl or SMPLX_NEUTRAL.npz"
            )
        model_hash = file_hash(model)
    return stage_key("subject", file_hash(photo), model_hash, dataclasses.replace(settings, body_model=None))


def compute_subject(
    image: np.ndarray, source: str, source_hash: str, settings: SubjectSettings, progress: Reporter = SILENT
) -> tuple[Subject, dict]:
    """The subject of a photo (not cached): detection, fit, radii. Returns (Subject, fit report)."""
    from hvg_cli.body.subject import fit_photo
    from hvg_cli.bonemap.parts import default_radii
    from hvg_cli.bonemap.radii import fit_radii
    from hvg_cli.pose.photo import detect_photo

    H, W = image.shape[:2]
    with progress.task("subject", total=3, unit="steps") as task:
        # 1. MediaPipe: landmarks [33, 2] px, world [33, 3] m (hvg axes), mask [H, W]
        det = detect_photo(image, source)
        if det.other_people:
            progress.note(
                f"{source}: more than one person; hvg animates the one MediaPipe picked (crop the photo to choose)"
            )
        task.advance()
        # 2. Skeleton, photo pose, camera (with a body model: its proportions, scaled to the photo's size)
        fit = fit_photo(det, W, H, fov_deg=settings.fov_deg)
        base = None
        if settings.body_model:
            from hvg_cli.body.smpl_model import fit_body_model
            from hvg_cli.bonemap.radii import radii_from_mesh

            model, _ = fit_body_model(settings.body_model, fit.skeleton)  # betas for the photo's proportions
            fit = fit_photo(det, W, H, skeleton=model.skeleton, fov_deg=settings.fov_deg)
            base = radii_from_mesh(model.vertices, model.weights, model.joints, default_radii(model.skeleton))
        if base is None:
            base = default_radii(fit.skeleton)
        task.advance()
        # 3. Radii [P, 2] from the silhouette
        radii = (
            fit_radii(fit.skeleton, fit.photo_pose, fit.photo_trans, fit.camera, det.mask, base)
            if settings.fit_radii
            else base
        )
        task.advance()
    rel = fit.reprojection_error_px / max(fit.body_height_px, 1.0)
    if rel > 0.03:
        progress.note(
            f"{source}: the body fits the photo loosely ({fit.reprojection_error_px:.0f} px mean joint error, "
            f"{rel:.1%} of the person's height)"
        )
    subject = Subject(
        image=image,
        mask=det.mask,
        landmarks=det.landmarks,
        visibility=det.visibility,
        skeleton=fit.skeleton,
        photo_pose=fit.photo_pose,
        photo_trans=fit.photo_trans,
        camera=fit.camera,
        radii=radii,
        source_hash=source_hash,
        legs_guessed=fit.legs_guessed,
    )
    report = {
        "reprojection_error_px": fit.reprojection_error_px,
        "landmark_error_px": fit.landmark_error_px,
        "body_height_px": fit.body_height_px,
        "tilt_deg": fit.tilt_deg,
        "ik_error_deg": fit.ik_error_deg,
        "legs_guessed": fit.legs_guessed,
        "other_people": det.other_people,
        "body_model": bool(settings.body_model),
    }
    return subject, report


def subject(photo: Path, settings: SubjectSettings, cache: StageCache, progress: Reporter = SILENT) -> Subject:
    """The person in the photo (stage `subject`), cached by the photo's bytes (+ the body model's) and settings."""
    from hvg_cli.io.image import read_image
    from hvg_cli.io.records import load_subject, save_subject

    photo = Path(photo)
    key = subject_key(photo, settings)

    def produce(folder: Path) -> None:
        image = read_image(photo, max_side=PHOTO_MAX_SIDE)  # raises BadInput naming the file
        made, report = compute_subject(image, str(photo), file_hash(photo), settings, progress)
        save_subject(made, folder, report)

    with cache.entry(key, produce) as (folder, _):
        return load_subject(folder)


# --- preview backend: the subject's photo mesh ------------------------------------------------------------------
def preview_model(subject: Subject, cache: StageCache, progress: Reporter = SILENT) -> PreviewModel:
    """The preview backend's model of the subject (photo mesh, skinning, texture, background), stage
    `preview_model`: a job that changes only the motion or the camera skips its 5-10 s build."""
    from hvg_cli.backends.preview.render import build_preview_model, load_preview_model, save_preview_model

    sk = subject.skeleton
    key = stage_key(
        "preview_model",
        subject.source_hash,
        array_hash(
            subject.mask,
            sk.rest_joints,
            subject.photo_pose,
            subject.photo_trans,
            subject.radii,
            subject.camera.K,
            subject.camera.world_to_cam,
            subject.landmarks,
        ),
    )

    def produce(folder: Path) -> None:
        save_preview_model(build_preview_model(subject), folder / "model.npz")

    with cache.entry(key, produce) as (entry, cached):
        if cached:
            progress.note(f"preview: cached photo mesh ({key.short})")
        # both paths read the entry, so a cached run renders exactly what a fresh one does
        return load_preview_model(entry / "model.npz")
