"""Training clips on disk: safetensors shards plus one JSON manifest with a format version.

Layout of a dataset folder (what `hvg prepare` writes, what `hvg train --data` reads):
  manifest.json                  {"format": "hvg-train-clips", "version": 1, sizes..., "shards": [...], "clips": [...]}
  shards/shard-000000.safetensors   tensors named "<clip id>/<field>", one shard holds several clips

Per clip (V views × T frames, pixel size H × W, latent size h × w = H / s × W / s, s the VAE's factor):
  latents        [V, T, C, h, w] float   VAE latents of the target frames × the VAE's scaling_factor (the space
                                         the sampler denoises in; `mode()` of the posterior)
  ref_latent     [C, h, w] float         the reference photo's latent exactly as SVD's pipeline conditions on it:
                                         mode() of VAE(photo + noise_aug_strength · ε), not scaled
  ref_embedding  [D] float               CLIP image embedding of the reference photo (image_embeds)
  semantic       [V, T, H, W, 3] uint8   aligned bone maps, as core.types.BoneMaps (the pose encoder's input
  normal         [V, T, H, W, 3] float16   is built from these and the cameras by
  depth          [V, T, H, W] float32      backends.diffusion.pose_encoder.conditioning_torch, the same call
  mask           [V, T, H, W] bool         the sampler makes, so training and inference see the same input)
  K              [V, T, 3, 3] float32    aligned intrinsics, pixels
  world_to_cam   [V, T, 4, 4] float32    OpenCV
Manifest fields per clip: id, shard, views, frames, fps, motion_bucket_id, noise_aug_strength, source,
licence, synthetic (bool: rendered, not filmed), reference (which frame/photo the reference is), kind (the
source's kind: "synthetic", "video" or "multiview"; "" in datasets made before it), cameras (names of the views,
e.g. a capture's videos; may be empty).
Each shard's sha256 is in the manifest, so the manifest's own hash identifies the data.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hvg_cli.core.atomic import atomic_file
from hvg_cli.core.errors import BadInput

FORMAT = "hvg-train-clips"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
PREPARE_HINT = "make the dataset again with `hvg prepare` from this version of hvg"

TENSOR_FIELDS = ("latents", "ref_latent", "ref_embedding", "semantic", "normal", "depth", "mask", "K", "world_to_cam")
_DTYPES = {
    "semantic": np.uint8,
    "normal": np.float16,
    "depth": np.float32,
    "mask": np.bool_,
    "K": np.float32,
    "world_to_cam": np.float32,
}


@dataclass(frozen=True, eq=False)
class TrainClip:
    """One training clip (shapes in the module doc)."""

    id: str
    latents: np.ndarray  # [V, T, C, h, w]
    ref_latent: np.ndarray  # [C, h, w]
    ref_embedding: np.ndarray  # [D]
    semantic: np.ndarray  # [V, T, H, W, 3] uint8
    normal: np.ndarray  # [V, T, H, W, 3] float16
    depth: np.ndarray  # [V, T, H, W] float32 metres
    mask: np.ndarray  # [V, T, H, W] bool
    K: np.ndarray  # [V, T, 3, 3] pixels
    world_to_cam: np.ndarray  # [V, T, 4, 4] OpenCV
    fps: float = 7.0
    motion_bucket_id: int = 127
    noise_aug_strength: float = 0.02
    source: str = ""
    licence: str = ""
    synthetic: bool = False
    reference: str = ""  # how the reference was chosen, e.g. "frame 0 of the source window"
    kind: str = ""  # "synthetic" | "video" | "multiview" ("" where not recorded)
    cameras: tuple[str, ...] = ()  # a name per view (a capture's video files), or empty

    @property
    def views(self) -> int:
        return int(self.latents.shape[0])

    @property
    def frames(self) -> int:
        return int(self.latents.shape[1])

    def check(self) -> None:
        """Shapes agree with each other (the writer calls it before anything is written)."""
        V, T, C, h, w = self.latents.shape
        H, W = self.mask.shape[2:]
        want = {
            "ref_latent": (C, h, w),
            "semantic": (V, T, H, W, 3),
            "normal": (V, T, H, W, 3),
            "depth": (V, T, H, W),
            "mask": (V, T, H, W),
            "K": (V, T, 3, 3),
            "world_to_cam": (V, T, 4, 4),
        }
        for name, shape in want.items():
            got = tuple(getattr(self, name).shape)
            if got != shape:
                raise BadInput(f"clip {self.id}: {name} has shape {list(got)}, expected {list(shape)}")
        if self.ref_embedding.ndim != 1:
            raise BadInput(f"clip {self.id}: ref_embedding must be [D], got {list(self.ref_embedding.shape)}")
        if H % h or W % w or H // h != W // w:
            raise BadInput(f"clip {self.id}: pixel size {W}x{H} is not a whole multiple of latent size {w}x{h}")
        if "/" in self.id or not self.id:
            raise BadInput(f"clip id {self.id!r} must be non-empty and hold no '/'")

    def meta(self) -> dict:
        return {
            "id": self.id,
            "views": self.views,
            "frames": self.frames,
            "fps": float(self.fps),
            "motion_bucket_id": int(self.motion_bucket_id),
            "noise_aug_strength": float(self.noise_aug_strength),
            "source": self.source,
            "licence": self.licence,
            "synthetic": bool(self.synthetic),
            "reference": self.reference,
            "kind": self.kind,
            "cameras": list(self.cameras),
        }


def _sizes(clip: TrainClip) -> dict:
    V, T, C, h, w = clip.latents.shape
    H, W = clip.mask.shape[2:]
    return {
        "views": V,
        "frames": T,
        "latent_channels": C,
        "latent_height": h,
        "latent_width": w,
        "height": H,
        "width": W,
        "embedding_dim": int(clip.ref_embedding.shape[0]),
    }


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


class DatasetWriter:
    """Writes clips into shards; the manifest is rewritten atomically after each shard, so a killed
    `prepare` keeps every finished shard and a re-run skips the clips already listed (`has`).

    Every clip of a dataset has the same sizes (views, frames, pixels, latents): training batches them.
    """

    def __init__(
        self,
        root: str | os.PathLike,
        clips_per_shard: int = 16,
        vae_scaling_factor: float | None = None,
        info: dict | None = None,
    ):
        self.root = Path(root)
        self.clips_per_shard = max(1, int(clips_per_shard))
        self._pending: list[TrainClip] = []
        if (self.root / MANIFEST).exists():
            self.manifest = read_manifest(self.root)  # version-checked: appending to an old format is refused
        else:
            self.manifest = {
                "format": FORMAT,
                "version": FORMAT_VERSION,
                "sizes": None,
                "vae_scaling_factor": vae_scaling_factor,
                "info": info or {},
                "shards": [],
                "clips": [],
            }
        self._ids = {c["id"] for c in self.manifest["clips"]}

    def has(self, clip_id: str) -> bool:
        return clip_id in self._ids or any(c.id == clip_id for c in self._pending)

    def add(self, clip: TrainClip) -> None:
        clip.check()
        if self.has(clip.id):
            raise BadInput(f"clip {clip.id} is already in {self.root}")
        sizes = _sizes(clip)
        if self.manifest["sizes"] is None:
            self.manifest["sizes"] = sizes
        elif sizes != self.manifest["sizes"]:
            raise BadInput(
                f"clip {clip.id} has sizes {sizes}, the dataset {self.manifest['sizes']}",
                "use one resolution, view count and clip length per dataset",
            )
        self._pending.append(clip)
        if len(self._pending) >= self.clips_per_shard:
            self.flush()

    def flush(self) -> None:
        """Write the pending clips as one shard, then the manifest (both atomically)."""
        if not self._pending:
            return
        from safetensors.numpy import save

        name = f"shards/shard-{len(self.manifest['shards']):06d}.safetensors"
        tensors = {}
        for clip in self._pending:
            for f in TENSOR_FIELDS:
                arr = getattr(clip, f)
                arr = np.ascontiguousarray(arr.astype(_DTYPES[f]) if f in _DTYPES else arr.astype(np.float32))
                tensors[f"{clip.id}/{f}"] = arr
        path = self.root / name
        with atomic_file(path) as fh:
            fh.write(save(tensors, metadata={"format": FORMAT, "version": str(FORMAT_VERSION)}))
        self.manifest["shards"].append({"name": name, "sha256": _sha256(path), "clips": len(self._pending)})
        for clip in self._pending:
            self.manifest["clips"].append({**clip.meta(), "shard": name})
            self._ids.add(clip.id)
        self._pending = []
        with atomic_file(self.root / MANIFEST, "w", encoding="utf-8") as fh:
            fh.write(json.dumps(self.manifest, indent=1) + "\n")

    def close(self) -> None:
        self.flush()

    def __enter__(self) -> DatasetWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()  # on failure the pending clips are dropped; finished shards stay listed


def read_manifest(root: str | os.PathLike) -> dict:
    """The manifest of a dataset folder, version-checked (older or foreign formats are BadInput)."""
    root = Path(root)
    path = root / MANIFEST
    if not root.is_dir():
        raise BadInput(f"dataset folder {root} does not exist", "make one with `hvg prepare VIDEOS -o DATASET`")
    if not path.exists():
        raise BadInput(
            f"{root} has no {MANIFEST} (not an hvg training dataset)", "make one with `hvg prepare VIDEOS -o DATASET`"
        )
    try:
        manifest = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise BadInput(f"{path} is not valid JSON ({e})", PREPARE_HINT) from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise BadInput(
            f"{path} is not an hvg training manifest (format {manifest.get('format')!r})"
            if isinstance(manifest, dict)
            else f"{path} is not an hvg training manifest",
            PREPARE_HINT,
        )
    version = manifest.get("version")
    if not isinstance(version, int) or version < FORMAT_VERSION:
        raise BadInput(
            f"{root} was made by an older hvg (dataset format version {version}, this hvg reads {FORMAT_VERSION})",
            PREPARE_HINT,
        )
    if version > FORMAT_VERSION:
        raise BadInput(
            f"{root} was made by a newer hvg (dataset format version {version}, this hvg reads {FORMAT_VERSION})",
            "update hvg",
        )
    return manifest


class TrainDataset:
    """Reads a dataset folder: len(), [i] -> TrainClip (numpy), sizes, and the manifest's hash."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)
        self.manifest = read_manifest(self.root)
        self.manifest_sha256 = hashlib.sha256((self.root / MANIFEST).read_bytes()).hexdigest()
        self.clips = list(self.manifest["clips"])
        if not self.clips:
            raise BadInput(f"{self.root} holds no clips", "run `hvg prepare` on footage with a visible person")
        self.sizes = dict(self.manifest["sizes"])
        for s in self.manifest["shards"]:
            if not (self.root / s["name"]).exists():
                raise BadInput(f"{self.root / s['name']} is missing", PREPARE_HINT)
        self._open: dict[str, object] = {}

    def __len__(self) -> int:
        return len(self.clips)

    def verify(self) -> None:
        """Compare every shard's sha256 with the manifest (reads all the data once)."""
        for s in self.manifest["shards"]:
            if _sha256(self.root / s["name"]) != s["sha256"]:
                raise BadInput(f"{self.root / s['name']} does not match its checksum in the manifest", PREPARE_HINT)

    def _shard(self, name: str):
        from safetensors import safe_open

        if name not in self._open:
            try:
                self._open[name] = safe_open(str(self.root / name), framework="np")
            except Exception as e:
                raise BadInput(
                    f"{self.root / name} is not a readable safetensors shard ({type(e).__name__})", PREPARE_HINT
                ) from None
        return self._open[name]

    def __getitem__(self, i: int) -> TrainClip:
        meta = self.clips[i]
        sf = self._shard(meta["shard"])
        arrays = {f: sf.get_tensor(f"{meta['id']}/{f}") for f in TENSOR_FIELDS}
        return TrainClip(
            id=meta["id"],
            **arrays,
            fps=meta["fps"],
            motion_bucket_id=meta["motion_bucket_id"],
            noise_aug_strength=meta["noise_aug_strength"],
            source=meta.get("source", ""),
            licence=meta.get("licence", ""),
            synthetic=bool(meta.get("synthetic", False)),
            reference=meta.get("reference", ""),
            kind=meta.get("kind", ""),
            cameras=tuple(meta.get("cameras", ())),
        )

    def __getstate__(self):  # safe_open handles do not pickle (DataLoader workers reopen them)
        state = dict(self.__dict__)
        state["_open"] = {}
        return state


def random_clip(
    clip_id: str,
    views: int = 1,
    frames: int = 2,
    height: int = 32,
    width: int = 32,
    latent_factor: int = 2,
    channels: int = 4,
    embedding_dim: int = 32,
    seed: int = 0,
) -> TrainClip:
    """A synthetic clip of random numbers with consistent shapes (tests, plumbing, benchmarks' set-up).

    Bone maps: a random blob mask with random colours, normals and depths; cameras: an orbit at 2.5 m.
    """
    rng = np.random.default_rng(seed)
    V, T, H, W = views, frames, height, width
    h, w = H // latent_factor, W // latent_factor
    mask = rng.uniform(size=(V, T, H, W)) > 0.5
    K = np.broadcast_to(np.array([[1.2 * W, 0, W / 2], [0, 1.2 * W, H / 2], [0, 0, 1]], np.float32), (V, T, 3, 3))
    w2c = np.zeros((V, T, 4, 4), np.float32)
    for v in range(V):
        a = 2 * np.pi * v / max(V, 1)
        R = np.array([[np.cos(a), 0, -np.sin(a)], [0, 1, 0], [np.sin(a), 0, np.cos(a)]])
        w2c[v, :, :3, :3] = R
        w2c[v, :, :3, 3] = [0, 0, 2.5]
        w2c[v, :, 3, 3] = 1
    return TrainClip(
        id=clip_id,
        latents=rng.standard_normal((V, T, channels, h, w)).astype(np.float32),
        ref_latent=rng.standard_normal((channels, h, w)).astype(np.float32),
        ref_embedding=rng.standard_normal(embedding_dim).astype(np.float32),
        semantic=(rng.integers(0, 256, (V, T, H, W, 3)) * mask[..., None]).astype(np.uint8),
        normal=(rng.uniform(-1, 1, (V, T, H, W, 3)) * mask[..., None]).astype(np.float16),
        depth=(rng.uniform(2.0, 3.0, (V, T, H, W)) * mask).astype(np.float32),
        mask=mask,
        K=np.ascontiguousarray(K),
        world_to_cam=w2c,
        source="random",
        licence="CC0-1.0",
        synthetic=True,
        reference="random",
    )
