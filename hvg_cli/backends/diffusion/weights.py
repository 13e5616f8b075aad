"""The weights folder: build (tiny / from a local SVD folder), check, load. Safetensors only, local only.

Layout (weights/README.md): a diffusers pipeline folder
  model_index.json                       _class_name HVGPipeline, one entry per component
  unet/ vae/ image_encoder/ pose_encoder/   config.json + *.safetensors
  scheduler/scheduler_config.json, feature_extractor/preprocessor_config.json
  hvg.json                               {"format": "hvg-diffusion", "version": 1, "untrained": bool, ...}
"""

from __future__ import annotations

import json
import math
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from hvg_cli.core.errors import BadInput, MissingDependency, MissingWeights

PICKLE_SUFFIXES = (".bin", ".pkl", ".pickle", ".pt", ".pth", ".ckpt")
MODEL_COMPONENTS = ("unet", "vae", "image_encoder", "pose_encoder")
CONFIG_COMPONENTS = {"scheduler": "scheduler_config.json", "feature_extractor": "preprocessor_config.json"}
HINT_INIT = "build one with `hvg weights init --base SVD_FOLDER --out DIR` (or `--tiny` to try the plumbing)"


@dataclass(frozen=True)
class WeightsReport:
    path: str
    params: dict[str, int]  # component -> parameter count
    untrained: bool
    notes: tuple[str, ...] = ()
    meta: dict = field(default_factory=dict)

    @property
    def total_params(self) -> int:
        return sum(self.params.values())


def _quiet() -> None:
    """Keep diffusers/transformers' info logs and shard progress bars off the user's stderr."""
    import diffusers
    import transformers

    diffusers.utils.logging.set_verbosity_error()
    diffusers.utils.logging.disable_progress_bar()
    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()


# ---------------------------------------------------------------------------------------------
# building components
# ---------------------------------------------------------------------------------------------
def tiny_components(seed: int = 0) -> dict:
    """Tiny random SVD components + pose encoder (channels (32, 64), CLIP at 224 px, VAE factor 2).

    torch.manual_seed(seed) before each component, as diffusers' own fast tests do.
    """
    import torch
    from diffusers import AutoencoderKLTemporalDecoder, EulerDiscreteScheduler, UNetSpatioTemporalConditionModel
    from transformers import CLIPImageProcessor, CLIPVisionConfig, CLIPVisionModelWithProjection

    _quiet()
    torch.manual_seed(seed)
    unet = UNetSpatioTemporalConditionModel(
        block_out_channels=(32, 64), layers_per_block=2, sample_size=32, in_channels=8, out_channels=4,
        down_block_types=("CrossAttnDownBlockSpatioTemporal", "DownBlockSpatioTemporal"),
        up_block_types=("UpBlockSpatioTemporal", "CrossAttnUpBlockSpatioTemporal"),
        cross_attention_dim=32, num_attention_heads=8, projection_class_embeddings_input_dim=96,
        addition_time_embed_dim=32,
    )
    scheduler = EulerDiscreteScheduler(
        beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", interpolation_type="linear",
        num_train_timesteps=1000, prediction_type="v_prediction", sigma_max=700.0, sigma_min=0.002,
        steps_offset=1, timestep_spacing="leading", timestep_type="continuous", trained_betas=None,
        use_karras_sigmas=True,
    )
    torch.manual_seed(seed)
    vae = AutoencoderKLTemporalDecoder(block_out_channels=[32, 64], in_channels=3, out_channels=3,
                                       down_block_types=["DownEncoderBlock2D", "DownEncoderBlock2D"], latent_channels=4)
    torch.manual_seed(seed)
    clip_cfg = CLIPVisionConfig(hidden_size=32, projection_dim=32, num_hidden_layers=2, num_attention_heads=4,
                                image_size=224, intermediate_size=37, patch_size=32)
    image_encoder = CLIPVisionModelWithProjection(clip_cfg)
    feature_extractor = CLIPImageProcessor(crop_size=224, size=224)
    torch.manual_seed(seed)
    pose_encoder = pose_encoder_for(unet, vae, block_out_channels=(8, 16))
    for m in (unet, vae, image_encoder, pose_encoder):
        m.eval()  # as from_pretrained leaves them (train mode takes other kernels in the VAE)
    return {"vae": vae, "image_encoder": image_encoder, "unet": unet, "scheduler": scheduler,
            "feature_extractor": feature_extractor, "pose_encoder": pose_encoder}


def pose_encoder_for(unet, vae, block_out_channels=(16, 32, 64, 128)):
    """A fresh zero-initialised pose encoder sized for this UNet (conv_in width) and VAE (downscale)."""
    from hvg_cli.backends.diffusion.pose_encoder import PoseEncoder

    return PoseEncoder(block_out_channels=tuple(block_out_channels), out_channels=unet.config.block_out_channels[0],
                       downscale=2 ** (len(vae.config.block_out_channels) - 1))


def write_meta(out: Path, untrained: bool, base: str | None, note: str) -> None:
    meta = {"format": "hvg-diffusion", "version": 1, "untrained": untrained, "base": base, "note": note}
    (out / "hvg.json").write_text(json.dumps(meta, indent=2) + "\n")


def init_tiny(out: str | os.PathLike, seed: int = 0) -> WeightsReport:
    """Tiny random weights, clearly marked untrained (hvg.json and README.md in the folder)."""
    from hvg_cli.backends.diffusion.pipeline_hvg import HVGPipeline

    out = _fresh_out(out)
    _quiet()
    pipe = HVGPipeline(**tiny_components(seed))
    pipe.save_pretrained(out, safe_serialization=True)
    write_meta(out, True, None, "tiny random weights for tests and plumbing; they produce noise-like video")
    (out / "README.md").write_text(
        "# UNTRAINED tiny HVG weights\n\nRandom weights built by `hvg weights init --tiny` for tests and for trying\n"
        "the plumbing on a CPU. They are not a model: the video they produce is meaningless.\n"
    )
    return check_weights(out)


def init_from_base(base: str | os.PathLike, out: str | os.PathLike, link: bool = True) -> WeightsReport:
    """An HVG folder from a local Stable Video Diffusion folder plus a fresh zero-initialised pose encoder.

    The SVD components are symlinked (link=True) or copied; `*.fp16.safetensors` variants are used
    under the plain name when no plain file exists. Pickle files in the base are left behind (the
    check of the new folder fails if a component then has no safetensors).
    """
    import torch
    from diffusers import AutoencoderKLTemporalDecoder, UNetSpatioTemporalConditionModel

    base = Path(base).expanduser()
    if not (base / "model_index.json").exists():
        raise MissingWeights(f"{base} is not a diffusers folder (no model_index.json)",
                             "download stabilityai/stable-video-diffusion-img2vid(-xt) with `hf download` first")
    out = _fresh_out(out)
    index = json.loads((base / "model_index.json").read_text())
    for comp in ("unet", "vae", "image_encoder"):
        src = base / comp
        if not src.is_dir():
            raise MissingWeights(f"{src} is missing", "use a complete Stable Video Diffusion folder")
        dst = out / comp
        dst.mkdir()
        # pickle files (.bin, .pt ...) are never linked or copied: only configs and safetensors
        files = sorted(p for p in src.iterdir() if p.is_file() and p.suffix.lower() not in PICKLE_SUFFIXES)
        plain = {p.name for p in files if p.suffix == ".safetensors" and ".fp16." not in p.name}
        for p in files:
            name = p.name
            if ".fp16." in name:
                name = name.replace(".fp16.", ".")
                if name in plain:
                    continue
            _place(p, dst / name, link)
    for comp in CONFIG_COMPONENTS:
        if (base / comp).is_dir():
            shutil.copytree(base / comp, out / comp)
    with torch.device("meta"):
        unet = UNetSpatioTemporalConditionModel.from_config(UNetSpatioTemporalConditionModel.load_config(out / "unet"))
        vae = AutoencoderKLTemporalDecoder.from_config(AutoencoderKLTemporalDecoder.load_config(out / "vae"))
    pe = pose_encoder_for(unet, vae)  # real tensors (outside the meta context)
    pe.save_pretrained(out / "pose_encoder", safe_serialization=True)
    index["_class_name"] = "HVGPipeline"
    index["pose_encoder"] = ["hvg_cli.backends.diffusion.pose_encoder", "PoseEncoder"]
    (out / "model_index.json").write_text(json.dumps(index, indent=2) + "\n")
    write_meta(out, False, str(base), "SVD base with a fresh zero-initialised pose encoder (pose control untrained)")
    return check_weights(out)


def _place(src: Path, dst: Path, link: bool) -> None:
    if link:
        os.symlink(src.resolve(), dst)
    else:
        shutil.copy2(src, dst)


def _fresh_out(out: str | os.PathLike) -> Path:
    out = Path(out).expanduser()
    if out.exists() and any(out.iterdir()):
        raise BadInput(f"{out} exists and is not empty", "choose a new --out folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        from hvg_cli.core.errors import OutputError

        raise OutputError(f"cannot create {out}: {e.strerror}") from None
    return out


# ---------------------------------------------------------------------------------------------
# checking
# ---------------------------------------------------------------------------------------------
def _refuse_pickles(folder: Path) -> None:
    for p in sorted(folder.rglob("*")):
        if p.is_file() and p.suffix.lower() in PICKLE_SUFFIXES:
            raise BadInput(f"{p} is a pickle file ({p.suffix}); hvg loads safetensors only",
                           "convert it to .safetensors or remove it")


def check_weights(path: str | os.PathLike) -> WeightsReport:
    """Validate a weights folder without running it: files, configs, safetensors only, tensor shapes.

    Every model component is built from its config on the meta device (no memory, no weights) and its
    parameter shapes are compared with the safetensors headers.
    """
    folder = Path(path).expanduser()
    if not folder.is_dir():
        raise MissingWeights(f"weights folder {folder} does not exist", HINT_INIT)
    if not (folder / "model_index.json").exists():
        raise MissingWeights(f"{folder} has no model_index.json (not an HVG weights folder)", HINT_INIT)
    _refuse_pickles(folder)
    try:
        index = json.loads((folder / "model_index.json").read_text())
    except json.JSONDecodeError as e:
        raise BadInput(f"{folder / 'model_index.json'} is not valid JSON: {e}") from None
    for comp in MODEL_COMPONENTS + tuple(CONFIG_COMPONENTS):
        if comp not in index:
            raise MissingWeights(f"{folder / 'model_index.json'} lists no {comp!r} component", HINT_INIT)
    for comp, cfg in CONFIG_COMPONENTS.items():
        if not (folder / comp / cfg).exists():
            raise MissingWeights(f"{folder / comp / cfg} is missing", HINT_INIT)

    params: dict[str, int] = {}
    for comp in MODEL_COMPONENTS:
        params[comp] = _check_component(folder / comp, comp)
    meta = {}
    if (folder / "hvg.json").exists():
        meta = json.loads((folder / "hvg.json").read_text())
    notes = []
    if meta.get("untrained"):
        notes.append("UNTRAINED weights: the video will be meaningless")
    if not meta:
        notes.append("no hvg.json: origin unknown")
    return WeightsReport(str(folder), params, bool(meta.get("untrained", False)), tuple(notes), meta)


def _model_class(comp: str):
    if comp == "unet":
        from diffusers import UNetSpatioTemporalConditionModel as C
    elif comp == "vae":
        from diffusers import AutoencoderKLTemporalDecoder as C
    elif comp == "image_encoder":
        from transformers import CLIPVisionModelWithProjection as C
    else:
        from hvg_cli.backends.diffusion.pose_encoder import PoseEncoder as C
    return C


def _check_component(d: Path, comp: str) -> int:
    import torch
    from safetensors import safe_open

    cfg_path = d / "config.json"
    if not cfg_path.exists():
        raise MissingWeights(f"{cfg_path} is missing", HINT_INIT)
    files = sorted(d.glob("*.safetensors"))
    if not files:
        raise MissingWeights(f"{d} holds no .safetensors file", HINT_INIT)
    shapes: dict[str, tuple[int, ...]] = {}
    where: dict[str, Path] = {}
    for f in files:
        try:
            with safe_open(str(f), framework="pt") as sf:
                for k in sf.keys():
                    shapes[k] = tuple(sf.get_slice(k).get_shape())
                    where[k] = f
        except Exception as e:
            raise BadInput(f"{f} is not a readable safetensors file ({type(e).__name__})",
                           "re-download or rebuild the weights") from None
    C = _model_class(comp)
    try:
        with torch.device("meta"):
            if comp == "image_encoder":
                from transformers import CLIPVisionConfig

                model = C(CLIPVisionConfig.from_pretrained(d, local_files_only=True))
            else:
                model = C.from_config(C.load_config(d, local_files_only=True))
    except Exception as e:
        raise BadInput(f"{cfg_path} does not describe a valid {comp} ({type(e).__name__}: {e})") from None
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    missing = [k for k in expected if k not in shapes]
    # transformers may keep non-persistent buffers (e.g. position_ids) out of the files
    missing = [k for k in missing if not k.endswith("position_ids")]
    if missing:
        raise BadInput(f"{d} lacks {len(missing)} tensors (first: {missing[0]})", "re-download or rebuild the weights")
    for k, shape in expected.items():
        if k in shapes and shapes[k] != shape:
            raise BadInput(f"{where[k]}: tensor {k} has shape {list(shapes[k])}, the config says {list(shape)}",
                           "the weights do not match config.json: rebuild the folder")
    return int(sum(math.prod(s) for k, s in shapes.items() if k in expected))


# ---------------------------------------------------------------------------------------------
# loading
# ---------------------------------------------------------------------------------------------
def pick_device(name: str = "auto") -> str:
    import torch

    mps = bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available())
    if name != "auto":
        if name.startswith("cuda") and not torch.cuda.is_available():
            raise MissingDependency(f"--device {name} asked for but CUDA is not available", "use --device cpu or auto")
        if name == "mps" and not mps:
            raise MissingDependency("--device mps asked for but MPS is not available", "use --device cpu or auto")
        return name
    return "cuda" if torch.cuda.is_available() else "mps" if mps else "cpu"


def pick_dtype(name: str, device: str):
    import torch

    if name == "auto":
        return torch.float16 if device.startswith(("cuda", "mps")) else torch.float32
    if device == "cpu" and name == "fp16":
        raise BadInput("fp16 on the CPU is not supported", "use --dtype fp32 or bf16 on the CPU")
    return {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[name]


def load_pipeline(path: str | os.PathLike, device: str = "auto", dtype: str = "auto", offload: bool = False):
    """Check the folder, then load HVGPipeline from it: local files only, safetensors only."""
    import torch

    from hvg_cli.backends.diffusion.pipeline_hvg import HVGPipeline

    check_weights(path)
    _quiet()
    dev = pick_device(device)
    torch_dtype = pick_dtype(dtype, dev)
    pipe = HVGPipeline.from_pretrained(str(Path(path).expanduser()), local_files_only=True, use_safetensors=True,
                                       dtype=torch_dtype)
    if torch_dtype == torch.float16 and getattr(pipe.vae.config, "force_upcast", False):
        pipe.vae.to(dtype=torch.float32)
    pipe.set_progress_bar_config(disable=True)
    if offload and dev != "cpu":
        pipe.enable_model_cpu_offload(device=dev)
    else:
        pipe.to(dev)
    return pipe
