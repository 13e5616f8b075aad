"""The preview backend: the skinned photo mesh re-rendered along the motion and the camera grid.

Steps (`render_preview`):
1. Build (or take) the preview model of the subject: photo mesh, skinning, texture, filled background.
2. Per frame: joint transforms photo pose -> target pose, linear blend skinning of the mesh straight into
   the frame's camera space.
3. Rasterise with 2x2 supersampling (z-buffer), sample the texture bilinearly, average the samples.
4. Composite over the background (the filled photo seen through the camera, a colour, or nothing), 8 bits.

Two engines: "fast" (default) runs steps 2-4 in compiled kernels (kernels.py, numba), one frame per task on
a few worker threads; "legacy" is the torch renderer it replaced, kept as the plain twin that the tests hold
the fast one to and as the benchmark's baseline (benchmarks/animate_speed.py).
"""

from __future__ import annotations

import dataclasses
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from hvg_cli.core.errors import BadInput
from hvg_cli.core.progress import SILENT

from .background import Backdrop
from .skin import SkinnedMesh

if TYPE_CHECKING:
    from torch import Tensor

SSAA = 2  # supersampling factor per axis (anti-aliased edges)
FRAME_BATCH = 2  # frames rasterised together (legacy engine)
MAX_WORKERS = 8  # at most this many frames rendered side by side (fast engine)
RIM_INSET = 0.004  # fraction of the photo height: the back sheet's colours start this far inside the mask


@dataclass(frozen=True, eq=False)
class PreviewModel:
    """What the preview renders from: built once per subject."""

    mesh: SkinnedMesh
    texture: np.ndarray  # [H, 3W, 3] float32 in [0, 1]: the photo (the person's colours extended past the
    #                      mask), the same with occluding parts inpainted (for the under-layer), and the
    #                      same with the face covered by hair colour (for the back sheet)
    backdrop: Backdrop  # the photo with the person removed, on the ground and a backdrop
    spacing: float  # lattice spacing in photo pixels

    @property
    def background(self) -> np.ndarray:
        """[H, W, 3] float32 in [0, 1]: the photo with the person removed."""
        return self.backdrop.image


def save_preview_model(model: PreviewModel, path) -> None:
    """Write a preview model as one uncompressed .npz of its arrays (no pickle)."""
    from dataclasses import fields

    arrays = {f"mesh_{f.name}": getattr(model.mesh, f.name) for f in fields(model.mesh)}
    arrays.update({f"backdrop_{f.name}": getattr(model.backdrop, f.name) for f in fields(model.backdrop)})
    np.savez(path, texture=model.texture, spacing=np.array(model.spacing), **arrays)


def load_preview_model(path) -> PreviewModel:
    """Read what `save_preview_model` wrote."""
    from dataclasses import fields

    from .background import Backdrop
    from .skin import SkinnedMesh

    with np.load(path, allow_pickle=False) as z:
        mesh = SkinnedMesh(**{f.name: z[f"mesh_{f.name}"] for f in fields(SkinnedMesh)})
        backdrop = Backdrop(**{f.name: z[f"backdrop_{f.name}"] for f in fields(Backdrop)})
        return PreviewModel(mesh=mesh, texture=z["texture"], backdrop=backdrop, spacing=float(z["spacing"]))


def build_preview_model(subject, target_vertices: int = 25000) -> PreviewModel:
    """Mesh, lift, skin and texture the person of `subject` (a core Subject); torch on one thread."""
    with _single_thread():
        return _build_preview_model(subject, target_vertices)


def _build_preview_model(subject, target_vertices: int) -> PreviewModel:
    from scipy import ndimage

    from . import mesh as M
    from . import texture as T
    from .background import build_backdrop, push_pull_fill, remove_person
    from .feet import attach_feet, build_shoes, subject_foot_regions
    from .hands import arm_back_skin, attach_arm_backs, background_pixels, pocket_pixels
    from .skin import skin_photo_mesh

    mask = np.asarray(subject.mask, dtype=np.float32)
    H, W = mask.shape
    if (mask > 0.5).sum() < 16:
        raise BadInput("the person mask of the photo is empty", hint="use a photo where the whole person is visible")
    if subject.image.shape[:2] != (H, W):
        raise BadInput(f"photo {subject.image.shape[:2]} and mask {(H, W)} differ in size", hint="rebuild the subject")
    spacing = M.auto_spacing(mask, target_vertices)
    maps = M.body_maps_at_photo(subject, W, H)
    # the mesh leaves out the bulge of the clothes round a hand hidden in a pocket (hands.pocket_pixels)
    cam = subject.camera
    landmarks = M.photo_landmarks(subject, W, H)  # [33, 2] mask pixels
    # and the photo's background the mask holds near an arm (the gap between a hand on the hip and the waist)
    img = subject.image.astype(np.float32) / 255.0
    gap = background_pixels(img, mask, landmarks, subject.visibility)
    mask_mesh = np.where(pocket_pixels(maps, mask, landmarks, subject.visibility) | gap, 0.0, mask)
    lat = M.lattice_mesh(mask_mesh, spacing)
    photo_cam = cam.resized(W, H)  # the photo camera at the mask's resolution
    pelvis_z = float((cam.world_to_cam[:3, :3] @ np.asarray(subject.photo_trans, float) + cam.world_to_cam[:3, 3])[2])
    if pelvis_z <= 0:
        raise BadInput("the person stands behind the photo's camera", hint="rebuild the subject (hvg cache clear)")
    photo_mesh = M.lift(lat, maps, photo_cam.K, cam.cam_to_world, mask_mesh, pelvis_z)
    skinned = skin_photo_mesh(photo_mesh, photo_cam, spacing)
    core = mask > 0.5
    texture = push_pull_fill(img, core)
    photo_panel = texture
    # the atlas' second panel, for the under-layer that shows when an arm moves away from the torso: the
    # person with every limb over an unrelated part repainted with that part's own cloth (texture.uncover)
    occ = ndimage.binary_dilation(M.occluded_pixels(maps), iterations=max(1, int(0.004 * H))) & core
    # trusted colours come from a little further inside than the front's: the mask's soft edge often holds
    # a few pixels of the photo's background, which the front must keep (the photo at rest) but the hidden
    # and back surfaces need not (a side view sees the back sheet's rim beside the front's)
    deep = ndimage.distance_transform_edt(core) > max(2.0, RIM_INSET * H)
    deep &= ~gap  # the photo's background the mask holds beside an arm is no colour of the person's
    lab_front = T.filled_labels(np.where(maps["label_near"] >= 0, maps["label_near"], maps["label_fill"]), core)
    lfar = maps.get("label_far_tex", maps["label_far"])
    lab_behind = np.where(lfar >= 0, lfar, lab_front)
    uncovered = T.uncover(img, deep & ~occ, occ, lab_front, lab_behind)
    inpainted = push_pull_fill(uncovered, core)
    # the atlas' third panel, for the back sheet: a low-detail continuation of the front (texture.py's doc):
    # the uncovered person, the face and neck covered by the hair, then only the cloth's colours and shading
    trusted = ((deep & ~occ) | occ) & ~gap
    # the feet become shoes (feet.py, below): the back of the legs continues their own cloth down to the
    # shoes, not the shoes' colours (a white sneaker's median fading into the back of a blue trouser hem)
    feet_px = subject_foot_regions(subject, maps)  # [H, W] int8
    trusted &= feet_px == 0
    region = np.where(lab_behind >= 0, T.body_regions()[np.maximum(lab_behind, 0)], -1)  # [H, W]
    trusted &= ~T.neckline(img, trusted, region, subject.landmarks, subject.visibility)  # the shirt continues
    # hair lying over the shoulders or an arm in the photo is in front of them: from behind their cloth shows
    # (measured: the studio photo's lock on the shoulder, copied to the back, framed the head like a face)
    trusted &= ~T.front_hair(img, trusted, region, maps["label_near"], subject.landmarks, subject.visibility)
    clean = push_pull_fill(uncovered, trusted)
    rows = np.nonzero(core.any(axis=1))[0]
    back = back_of_head(clean, subject.landmarks, subject.visibility, maps["label_near"], mask)
    back = T.low_detail(back, trusted, float(rows[-1] - rows[0] + 1), region)
    texture = np.concatenate([texture, inpainted, back], axis=1)  # [H, 3W, 3]
    uv = skinned.uv.copy()
    uv[skinned.back, 0] += 2 * W  # back-sheet vertices sample the third panel
    skinned = dataclasses.replace(skinned, uv=uv)
    # the feet: solid shoes fitted to the photo's feet replace the lifted feet (feet.py)
    regions, shoes = build_shoes(subject, maps, photo_panel, photo_cam.K, feet_px)
    skinned, texture = attach_feet(skinned, texture, regions, shoes)
    # the backs of the forearms and hands: their own skin, in a panel of their own (hands.attach_arm_backs)
    skin = arm_back_skin(img, deep & ~occ, lab_front, float(rows[-1] - rows[0] + 1))
    skinned, texture = attach_arm_backs(skinned, texture, skin, back_panel=2)
    # the world: the filled photo on the ground and on a backdrop behind the person, softly continued
    backdrop = build_backdrop(
        remove_person(subject.image, mask),
        photo_cam.K,
        cam.world_to_cam,
        np.asarray(subject.photo_trans, np.float64),
        mask=mask,
    )
    return PreviewModel(mesh=skinned, texture=texture, backdrop=backdrop, spacing=spacing)


def back_of_head(
    texture: np.ndarray, landmarks: np.ndarray, visibility: np.ndarray, label: np.ndarray, mask: np.ndarray
) -> np.ndarray:
    """The texture with the face replaced by the hair's colour, softly.

    texture:   [H, W, 3] float32 in [0, 1] (the person's colours)
    landmarks: [33, 2] px, visibility [33] (MediaPipe: 0 nose, 2/5 eyes, 7/8 ears, 9/10 mouth)
    label:     [H, W] bonemap part per pixel at the photo camera (-1 empty)
    mask:      [H, W] person mask in [0, 1]
    returns:   [H, W, 3] float32; the texture unchanged when the face is not seen
    """
    from scipy import ndimage

    from hvg_cli.bonemap.parts import PART_INDEX

    face = np.asarray(landmarks, np.float64)[:11]  # [11, 2]
    if np.asarray(visibility)[:11].mean() < 0.5:
        return texture.copy()
    H, W = mask.shape
    eyes = (face[2] + face[5]) / 2.0
    mouth = (face[9] + face[10]) / 2.0
    half_w = 0.55 * np.linalg.norm(face[7] - face[8])  # ear to ear
    half_h = 1.6 * np.linalg.norm(mouth - eyes)  # eyes to mouth, grown to forehead and chin
    centre = (eyes + mouth) / 2.0
    if half_w < 2 or half_h < 2:
        return texture.copy()
    ys, xs = np.mgrid[0:H, 0:W] + 0.5
    r2 = ((xs - centre[0]) / half_w) ** 2 + ((ys - centre[1]) / half_h) ** 2  # [H, W]: 1 on the face ellipse
    head = (label == PART_INDEX["head"]) & (mask > 0.5)
    hair = head & (r2 > 1.2) & (ys < eyes[1])  # head pixels above the eyes, outside the face
    if hair.sum() < 16:
        hair = head & (r2 > 1.2)
    if hair.sum() < 16:
        return texture.copy()
    # the face ellipse (grown a little) is filled from the hair around it (push-pull: the hair's own
    # colours continue across it, no oval with an edge that reads as a face), then blended in softly
    from .background import push_pull_fill

    # the back of the neck too, down to the shoulders: hair falling on the back reads as a back, an oval
    # of hair above a bare neck still reads as a face to a detector (measured: 2 of 7 back views)
    lm = np.asarray(landmarks, np.float64)
    shoulders_y = (
        float((lm[11, 1] + lm[12, 1]) / 2.0)
        if np.asarray(visibility)[[11, 12]].min() >= 0.5
        else centre[1] + 2 * half_h
    )
    neck = (np.abs(xs - centre[0]) <= 0.85 * half_w) & (ys >= centre[1]) & (ys <= max(shoulders_y, centre[1] + half_h))
    region = ((r2 <= 1.3) | neck) & (mask > 0.5)
    known = hair & ~region
    if known.sum() < 16:
        return texture.copy()
    filled = push_pull_fill(np.where(known[..., None], texture, 0.0), known)
    inner = ((r2 <= 1.15) | (neck & (np.abs(xs - centre[0]) <= 0.75 * half_w))) & (mask > 0.5)
    weight = ndimage.gaussian_filter(inner.astype(np.float32), sigma=max(1.0, 0.12 * half_w))[..., None]
    out = texture * (1.0 - weight) + filled * weight
    # the hair around the head, softened (a mask-normalised blur): from behind, strands that framed the
    # face in the photo still form face-like patterns for a detector (measured: 2 of 7 back views)
    # and so do long hair's curls falling past the shoulders: pixels of the hair's colour near the head
    colour = np.median(texture[hair], axis=0)  # [3]
    near_hair = (
        (np.linalg.norm(texture - colour, axis=-1) < 0.25)
        & (np.abs(xs - centre[0]) < 3.0 * half_w)
        & (ys < centre[1] + 6.0 * half_h)
    )
    zone = (((r2 <= 3.0) & (ys <= max(shoulders_y, centre[1] + half_h))) | near_hair) & (mask > 0.5)
    sig = max(1.0, 0.3 * half_w)
    m = (mask > 0.5).astype(np.float32)
    num = np.stack([ndimage.gaussian_filter(out[..., k] * m, sig) for k in range(3)], -1)
    soft = num / np.maximum(ndimage.gaussian_filter(m, sig), 1e-6)[..., None]
    wz = ndimage.gaussian_filter(zone.astype(np.float32), sig)[..., None] * m[..., None]
    return (out * (1.0 - wz) + soft * wz).astype(np.float32)


def _background_value(background):
    """'photo' | 'transparent' | (r, g, b) 0-255 -> normalised spec."""
    if isinstance(background, str):
        if background in ("photo", "transparent"):
            return background
        raise BadInput(f"unknown background {background!r}", hint="use photo, transparent, or a colour r,g,b")
    rgb = np.asarray(background, dtype=np.float32).reshape(-1)
    if rgb.shape != (3,) or (rgb < 0).any() or (rgb > 255).any():
        raise BadInput(f"background colour {background!r} is not r,g,b in 0..255", hint="e.g. --background 255,255,255")
    return rgb / 255.0


def render_layers(
    model: PreviewModel,
    subject,
    poses,
    trans,
    K,
    world_to_cam,
    width: int,
    height: int,
    ssaa: int = SSAA,
    engine: str = "fast",
) -> tuple[Tensor, Tensor, Tensor]:
    """Render the posed person for a batch of (pose, camera) pairs.

    poses: [B, 24, 3]; trans: [B, 3]; K: [B, 3, 3]; world_to_cam: [B, 4, 4]
    engine: "fast" (compiled kernels, frames spread over the cores) or "legacy" (the torch renderer, its twin)
    returns: (colour [B, H, W, 3] torch float32 premultiplied, coverage [B, H, W] float32, depth [B, H, W] metres)
    """
    import torch

    from .raster import render_textured, render_textured_fast, skin_to_camera
    from .skin import joint_transforms, pose_vertices

    # 1. Joint transforms photo pose -> target pose: [B, 24, 3, 4] world
    A = joint_transforms(
        np.asarray(poses, np.float64),
        np.asarray(trans, np.float64),
        subject.skeleton,
        np.asarray(subject.photo_pose, np.float64),
        np.asarray(subject.photo_trans, np.float64),
    )
    if engine == "fast":
        # 2. Skin straight into camera space [B, N, 3], then z-buffer and shade at ssaa x ssaa samples per pixel
        vc = skin_to_camera(model.mesh, A, world_to_cam)
        return render_textured_fast(
            vc, model.mesh.faces, model.mesh.uv, model.texture, np.asarray(K, np.float64), width, height, ssaa=ssaa
        )
    if engine != "legacy":
        raise ValueError(f"unknown preview engine {engine!r} (fast | legacy)")
    v = pose_vertices(model.mesh, A)  # [B, N, 3] world
    w2c = torch.as_tensor(np.asarray(world_to_cam), dtype=torch.float64)
    vc_t = torch.einsum("bij,bnj->bni", w2c[:, :3, :3], v) + w2c[:, None, :3, 3]  # [B, N, 3] camera
    tex = torch.from_numpy(model.texture)
    colour, cov, depth = render_textured(
        vc_t,
        torch.from_numpy(model.mesh.faces),
        torch.from_numpy(model.mesh.uv),
        tex,
        torch.as_tensor(np.asarray(K), dtype=torch.float64),
        width,
        height,
        ssaa=ssaa,
    )
    return colour, cov.to(torch.float32), depth


def render_preview(
    subject,
    poses,
    trans,
    grid,
    background="photo",
    progress=SILENT,
    model: PreviewModel | None = None,
    engine: str = "fast",
) -> np.ndarray:
    """Render the subject performing `poses` through every camera of `grid`.

    subject:    core Subject (photo, mask, skeleton, photo pose and camera)
    poses:      [T, 24, 3] axis-angle on subject.skeleton; trans: [T, 3] pelvis world positions, metres
    grid:       CameraGrid [V, T] whose intrinsics are the final (aligned) ones
    background: "photo" (the photo with the person removed, seen through each camera), "transparent",
                or an (r, g, b) colour 0-255
    engine:     "fast" (compiled kernels) or "legacy" (the torch renderer, kept as the twin and the benchmark's baseline)
    returns:    [V, T, H, W, 4] uint8 RGBA; A is 255 over a photo/colour background, the person's
                coverage for "transparent" (RGB then the person's straight colour, black where empty)
    """
    bg = _background_value(background)
    poses = np.asarray(poses, dtype=np.float64)
    trans = np.asarray(trans, dtype=np.float64)
    V, T = grid.shape
    if poses.shape != (T, 24, 3) or trans.shape != (T, 3):
        raise BadInput(
            f"motion of {poses.shape[0]} frames does not match the camera grid's {T}",
            hint="schedule the cameras for the motion's frame count",
        )
    with _single_thread():
        model = model or build_preview_model(subject)
        return _render(model, subject, poses, trans, grid, bg, progress, engine)


@contextmanager
def _single_thread():
    """Run torch on one thread: the renderer is many small ops, and on a busy 2-core machine torch's
    worker threads wait on each other (measured here: 3.7 frames/s on one thread, 0.5 on two)."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(n)


def render_workers() -> int:
    """Threads that render frames side by side: the cores this process may use (HVG_PREVIEW_WORKERS overrides)."""
    import os

    env = os.environ.get("HVG_PREVIEW_WORKERS", "")
    if env.strip().isdigit() and int(env) > 0:
        return int(env)
    try:
        n = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        n = os.cpu_count() or 1
    return max(1, min(n, MAX_WORKERS))


class _Backdrop:
    """The background of each (view, frame) as a float32 [1, H, W, 3] array: the filled photo seen through the
    frame's camera (a few recent cameras kept, so a still camera computes it once) or a solid colour."""

    def __init__(self, model, subject, grid, bg, width: int, height: int):
        import threading

        self.model, self.subject, self.grid, self.bg = model, subject, grid, bg
        self.width, self.height = width, height
        self.cache: dict[bytes, np.ndarray] = {}
        self.lock = threading.Lock()
        if not isinstance(bg, str):
            self.solid = np.broadcast_to(np.asarray(bg, np.float32), (1, height, width, 3))

    def __call__(self, v: int, t: int) -> np.ndarray:
        from .background import render_background

        if not isinstance(self.bg, str):
            return self.solid
        g = self.grid
        key = g.K[v, t].tobytes() + g.world_to_cam[v, t].tobytes()
        with self.lock:
            hit = self.cache.get(key)
        if hit is not None:
            return hit
        back = render_background(
            self.model.backdrop, g.K[v, t][None], g.world_to_cam[v, t][None], self.width, self.height
        ).numpy()  # [1, H, W, 3]
        with self.lock:
            if len(self.cache) >= 8:
                self.cache.pop(next(iter(self.cache)))
            self.cache[key] = back
        return back


def _kernel_ready(model: PreviewModel) -> PreviewModel:
    """The model with the arrays the kernels read in their dtypes, C-contiguous (a copy only where one differs),
    so no frame converts the texture again."""
    want = {
        "verts": np.float64,
        "faces": np.int64,
        "uv": np.float64,
        "joint_index": np.int64,
        "joint_weight": np.float64,
    }
    mesh = model.mesh
    fix = {
        k: np.ascontiguousarray(getattr(mesh, k), dtype=d)
        for k, d in want.items()
        if getattr(mesh, k).dtype != d or not getattr(mesh, k).flags.c_contiguous
    }
    if fix:
        mesh = dataclasses.replace(mesh, **fix)
    tex = model.texture
    if tex.dtype != np.float32 or not tex.flags.c_contiguous:
        tex = np.ascontiguousarray(tex, dtype=np.float32)
    if mesh is model.mesh and tex is model.texture:
        return model
    return dataclasses.replace(model, mesh=mesh, texture=tex)


def _render(model, subject, poses, trans, grid, bg, progress, engine="fast", workers: int | None = None):
    """Every (view, frame) into one uint8 [V, T, H, W, 4] array; the fast engine renders one frame per task on
    `workers` threads (the compiled kernels release the GIL), each writing only its own frame."""
    if engine == "legacy":
        return _render_legacy(model, subject, poses, trans, grid, bg, progress)
    if engine != "fast":
        raise ValueError(f"unknown preview engine {engine!r} (fast | legacy)")
    from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait

    from .kernels import composite_over, straight_alpha

    V, T = grid.shape
    W, H = grid.width, grid.height
    out = np.empty((V, T, H, W, 4), np.uint8)
    model = _kernel_ready(model)
    transparent = isinstance(bg, str) and bg == "transparent"
    backdrop = _Backdrop(model, subject, grid, bg, W, H)

    def frame(v: int, t: int) -> int:
        # 1. The person: premultiplied colour [1, H, W, 3] and coverage [1, H, W]
        colour, cov, _ = render_layers(
            model,
            subject,
            poses[t : t + 1],
            trans[t : t + 1],
            grid.K[v, t : t + 1],
            grid.world_to_cam[v, t : t + 1],
            W,
            H,
            engine="fast",
        )
        # 2. Composite over the background (or keep the coverage as alpha) straight into the output, 8 bits
        if transparent:
            straight_alpha(colour.numpy(), cov.numpy(), out[v, t : t + 1])
        else:
            composite_over(colour.numpy(), cov.numpy(), backdrop(v, t), out[v, t : t + 1])
        return 1

    jobs = [(v, t) for v in range(V) for t in range(T)]
    n = max(1, workers or render_workers())
    with progress.task("preview render", total=V * T) as task:
        if n == 1:
            for v, t in jobs:
                task.advance(frame(v, t))
            return out
        with ThreadPoolExecutor(n, thread_name_prefix="hvg-preview") as pool:
            pending: set = set()
            for v, t in jobs:
                pending.add(pool.submit(frame, v, t))
                if len(pending) >= 2 * n:  # a few frames in flight: memory stays flat
                    done, pending = wait(pending, return_when=FIRST_COMPLETED)
                    for f in done:
                        task.advance(f.result())
            for f in pending:
                task.advance(f.result())
    return out


def _render_legacy(model, subject, poses, trans, grid, bg, progress):
    """The torch renderer as it was before the compiled kernels (2 frames at a time, torch compositing): the
    benchmark's baseline and the fast path's twin."""
    import torch

    from .background import render_background

    V, T = grid.shape
    W, H = grid.width, grid.height
    out = np.empty((V, T, H, W, 4), np.uint8)
    bg_cache: dict[bytes, np.ndarray] = {}
    with progress.task("preview render", total=V * T) as task:
        for v in range(V):
            for t0 in range(0, T, FRAME_BATCH):
                ts = np.arange(t0, min(T, t0 + FRAME_BATCH))
                colour, cov, _ = render_layers(
                    model, subject, poses[ts], trans[ts], grid.K[v, ts], grid.world_to_cam[v, ts], W, H, engine="legacy"
                )
                if isinstance(bg, str) and bg == "transparent":
                    straight = colour / cov.clamp_min(1e-6)[..., None]
                    rgba = torch.cat([straight, cov[..., None]], -1)
                else:
                    if isinstance(bg, str):  # photo: same camera -> same background (no flicker, no recompute)
                        frames_back = []
                        for t in ts:
                            key = grid.K[v, t].tobytes() + grid.world_to_cam[v, t].tobytes()
                            if key not in bg_cache:
                                bg_cache.clear()
                                bg_cache[key] = render_background(
                                    model.backdrop, grid.K[v, t][None], grid.world_to_cam[v, t][None], W, H
                                )[0].numpy()
                            frames_back.append(bg_cache[key])
                        back = torch.from_numpy(np.stack(frames_back))
                    else:
                        back = torch.from_numpy(np.broadcast_to(bg, (len(ts), H, W, 3)).copy())
                    rgb = colour + (1 - cov[..., None]) * back
                    rgba = torch.cat([rgb, torch.ones_like(cov)[..., None]], -1)
                out[v, ts] = (rgba.clamp(0, 1) * 255 + 0.5).to(torch.uint8).numpy()
                task.advance(len(ts))
    return out
