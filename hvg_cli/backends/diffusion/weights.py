"""The weights folder: build (tiny / from a local SVD folder), check, load. Safetensors only, local only.

Layout (weights/README.md): a diffusers pipeline folder
  model_index.json                       _class_name HVGPipeline, one entry per component
  unet/ vae/ image_encoder/ pose_encoder/   config.json + *.safetensors
  scheduler/scheduler_config.json, feature_extractor/preprocessor_config.json
  hvg.json                               {"format": "hvg-diffusion", "version": 2, "untrained": bool,
                                          "pose_control_trained": bool, "view_attention_trained": bool, ...}

The UNet is views.HVGUNet: SVD's UNet with view attention (every new tensor's name contains `view_attn`).
`init_from_base` keeps the SVD UNet file linked and writes the view attention beside it
(unet/view_attention.safetensors) with a safetensors index naming both files, so nothing is copied.
A folder without any view attention (SVD's own unet, or an HVG folder from before view attention) loads
with view attention initialised as `init` writes it (output projections zero: views independent) and
`check` says so; a folder with only part of it is refused.
"""

from __future__ import annotations

import json
import math
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hvg_cli.core.errors import BadInput, MissingDependency, MissingWeights

if TYPE_CHECKING:
    import torch
    from diffusers import AutoencoderKLTemporalDecoder

    from hvg_cli.backends.diffusion.pipeline_hvg import HVGPipeline
    from hvg_cli.backends.diffusion.pose_encoder import PoseEncoder

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
# Stable Video Diffusion's scheduler_config.json (img2vid and img2vid-xt ship these values): tiny folders, the
# GPU benchmark and the training tests use SVD's own schedule
SVD_SCHEDULER_CONFIG = dict(
    beta_start=0.00085,
    beta_end=0.012,
    beta_schedule="scaled_linear",
    interpolation_type="linear",
    num_train_timesteps=1000,
    prediction_type="v_prediction",
    sigma_max=700.0,
    sigma_min=0.002,
    steps_offset=1,
    timestep_spacing="leading",
    timestep_type="continuous",
    trained_betas=None,
    use_karras_sigmas=True,
)


def tiny_components(seed: int = 0) -> dict:
    """Tiny random SVD components + pose encoder (channels (32, 64), CLIP at 224 px, VAE factor 2).

    torch.manual_seed(seed) before each component, as diffusers' own fast tests do. The UNet is diffusers'
    plain UNetSpatioTemporalConditionModel (so these components also build diffusers' own SVD pipeline);
    HVGPipeline turns it into views.HVGUNet (zero view attention, same base weights) when it is built.
    """
    import torch
    from diffusers import EulerDiscreteScheduler, UNetSpatioTemporalConditionModel
    from transformers import CLIPImageProcessor, CLIPVisionConfig, CLIPVisionModelWithProjection

    _quiet()
    torch.manual_seed(seed)
    unet = UNetSpatioTemporalConditionModel(
        block_out_channels=(32, 64),
        layers_per_block=2,
        sample_size=32,
        in_channels=8,
        out_channels=4,
        down_block_types=("CrossAttnDownBlockSpatioTemporal", "DownBlockSpatioTemporal"),
        up_block_types=("UpBlockSpatioTemporal", "CrossAttnUpBlockSpatioTemporal"),
        cross_attention_dim=32,
        num_attention_heads=8,
        projection_class_embeddings_input_dim=96,
        addition_time_embed_dim=32,
    )
    scheduler = EulerDiscreteScheduler(**SVD_SCHEDULER_CONFIG)
    vae = tiny_vae(seed)
    torch.manual_seed(seed)
    clip_cfg = CLIPVisionConfig(
        hidden_size=32,
        projection_dim=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        image_size=224,
        intermediate_size=37,
        patch_size=32,
    )
    image_encoder = CLIPVisionModelWithProjection(clip_cfg)
    feature_extractor = CLIPImageProcessor(crop_size=224, size=224)
    torch.manual_seed(seed)
    pose_encoder = pose_encoder_for(unet, vae, block_out_channels=(8, 16))
    for m in (unet, vae, image_encoder, pose_encoder):
        m.eval()  # as from_pretrained leaves them (train mode takes other kernels in the VAE)
    return {
        "vae": vae,
        "image_encoder": image_encoder,
        "unet": unet,
        "scheduler": scheduler,
        "feature_extractor": feature_extractor,
        "pose_encoder": pose_encoder,
    }


def tiny_vae(seed: int = 0) -> AutoencoderKLTemporalDecoder:
    """The tiny folder's random VAE (AutoencoderKLTemporalDecoder, channels (32, 64): factor 2, 4 latent channels),
    after torch.manual_seed(seed)."""
    import torch
    from diffusers import AutoencoderKLTemporalDecoder

    torch.manual_seed(seed)
    return AutoencoderKLTemporalDecoder(
        block_out_channels=[32, 64],
        in_channels=3,
        out_channels=3,
        down_block_types=["DownEncoderBlock2D", "DownEncoderBlock2D"],
        latent_channels=4,
    )


def pose_encoder_for(unet: Any, vae: Any, block_out_channels: tuple[int, ...] = (16, 32, 64, 128)) -> PoseEncoder:
    """A fresh zero-initialised pose encoder sized for this UNet (conv_in width) and VAE (downscale)."""
    from hvg_cli.backends.diffusion.pose_encoder import PoseEncoder
    from hvg_cli.backends.diffusion.settings import downscale

    return PoseEncoder(
        block_out_channels=tuple(block_out_channels),
        out_channels=unet.config.block_out_channels[0],
        downscale=downscale(vae.config.block_out_channels),
    )


META_VERSION = 2  # 2: view attention in the UNet; pose_control_trained / view_attention_trained


def write_meta(
    out: Path,
    untrained: bool,
    base: str | None,
    note: str,
    pose_control_trained: bool = False,
    view_attention_trained: bool = False,
) -> None:
    """hvg.json: where the folder came from and which HVG parts were ever trained (training sets them true)."""
    meta = {
        "format": "hvg-diffusion",
        "version": META_VERSION,
        "untrained": untrained,
        "base": base,
        "note": note,
        "pose_control_trained": pose_control_trained,
        "view_attention_trained": view_attention_trained,
    }
    (out / "hvg.json").write_text(json.dumps(meta, indent=2) + "\n")


def untrained_note(meta: dict) -> str | None:
    """The warning a folder marked untrained in hvg.json earns (None when it is not marked).

    A folder `hvg train` made from tiny random weights keeps the mark (its video is still a toy's), but it was
    trained: the note says so instead of calling it random.
    """
    if not meta.get("untrained"):
        return None
    steps = (meta.get("training") or {}).get("steps")
    if steps is not None:
        return f"trained by hvg train for {steps} steps from UNTRAINED tiny test weights: a toy model, not a real video"
    return "UNTRAINED weights: the video will be meaningless"


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
    """An HVG folder from a local Stable Video Diffusion folder plus fresh zero-initialised HVG parts.

    The SVD components are symlinked (link=True) or copied; `*.fp16.safetensors` variants are used
    under the plain name when no plain file exists. Pickle files in the base are left behind (the
    check of the new folder fails if a component then has no safetensors). New: the pose encoder
    (pose_encoder/) and the UNet's view attention (unet/view_attention.safetensors, in the base UNet's
    dtype, listed with the base file in unet/diffusion_pytorch_model.safetensors.index.json), both with
    zero output layers, so the folder generates exactly like SVD run on each view alone.
    """
    import torch
    from diffusers import AutoencoderKLTemporalDecoder

    from hvg_cli.backends.diffusion.views import HVGUNet

    base = Path(base).expanduser()
    if not (base / "model_index.json").exists():
        raise MissingWeights(
            f"{base} is not a diffusers folder (no model_index.json)",
            "download stabilityai/stable-video-diffusion-img2vid(-xt) with `hf download` first",
        )
    out = _fresh_out(out)
    index = json.loads((base / "model_index.json").read_text())
    for comp in ("unet", "vae", "image_encoder"):
        src = base / comp
        if not src.is_dir():
            raise MissingWeights(f"{src} is missing", "use a complete Stable Video Diffusion folder")
        dst = out / comp
        dst.mkdir()
        # pickle files (.bin, .pt ...) are never linked or copied: only configs and safetensors; the
        # unet's shard index (if any) is rewritten below from the files actually placed
        files = sorted(
            p
            for p in src.iterdir()
            if p.is_file()
            and p.suffix.lower() not in PICKLE_SUFFIXES
            and not (comp == "unet" and p.name.endswith(".index.json"))
        )
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
        unet = HVGUNet.from_config(HVGUNet.load_config(out / "unet"))
        vae = AutoencoderKLTemporalDecoder.from_config(AutoencoderKLTemporalDecoder.load_config(out / "vae"))
    pe = pose_encoder_for(unet, vae)  # real tensors (outside the meta context)
    pe.save_pretrained(out / "pose_encoder", safe_serialization=True)
    write_view_attention(out / "unet", unet)
    index["_class_name"] = "HVGPipeline"
    index["unet"] = ["hvg_cli.backends.diffusion.views", "HVGUNet"]
    index["pose_encoder"] = ["hvg_cli.backends.diffusion.pose_encoder", "PoseEncoder"]
    (out / "model_index.json").write_text(json.dumps(index, indent=2) + "\n")
    write_meta(
        out,
        False,
        str(base),
        "SVD base with a fresh zero-initialised pose encoder and view attention "
        "(pose control and view attention untrained)",
    )
    return check_weights(out)


VIEW_FILE = "view_attention.safetensors"
UNET_INDEX = "diffusion_pytorch_model.safetensors.index.json"
_ST_DTYPES = {"F16": "float16", "BF16": "bfloat16", "F32": "float32", "F64": "float64"}


def _headers(files: list[Path]) -> dict[str, tuple[Path, str, tuple[int, ...]]]:
    """key -> (file, safetensors dtype, shape), from the files' headers only."""
    from safetensors import safe_open

    out = {}
    for f in files:
        try:
            with safe_open(str(f), framework="pt") as sf:
                for k in sf.keys():
                    sl = sf.get_slice(k)
                    out[k] = (f, sl.get_dtype(), tuple(sl.get_shape()))
        except Exception as e:
            raise BadInput(
                f"{f} is not a readable safetensors file ({type(e).__name__})", "re-download or rebuild the weights"
            ) from None
    return out


def write_view_attention(unet_dir: Path, unet) -> None:
    """Write `unet`'s view attention (fresh, seed 0, output zero) into unet_dir/view_attention.safetensors,
    in the dtype of the UNet files already there, and a shard index naming every safetensors file.

    `unet` may be on the meta device (only its view attention is materialised).
    """
    import torch
    from safetensors.torch import save_file

    from hvg_cli.backends.diffusion.views import init_view_attention, view_attention_state_dict

    base_files = sorted(p for p in unet_dir.glob("*.safetensors") if p.name != VIEW_FILE)
    heads = _headers(base_files)
    dtypes = {d for _, d, _ in heads.values()}
    dtype = getattr(torch, _ST_DTYPES.get(dtypes.pop(), "float32")) if len(dtypes) == 1 else torch.float32
    init_view_attention(unet, seed=0)
    view = {k: v.to(dtype).contiguous() for k, v in view_attention_state_dict(unet).items()}
    save_file(view, str(unet_dir / VIEW_FILE), metadata={"format": "pt"})
    heads.update(_headers([unet_dir / VIEW_FILE]))
    itemsize = {"F16": 2, "BF16": 2, "F32": 4, "F64": 8}
    total = sum(math.prod(shape) * itemsize.get(d, 4) for _, d, shape in heads.values())
    index = {"metadata": {"total_size": total}, "weight_map": {k: f.name for k, (f, _, _) in sorted(heads.items())}}
    target = unet_dir / UNET_INDEX
    if target.is_symlink():  # never write through a link into the base folder
        target.unlink()
    target.write_text(json.dumps(index, indent=2) + "\n")


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
            raise BadInput(
                f"{p} is a pickle file ({p.suffix}); hvg loads safetensors only",
                "convert it to .safetensors or remove it",
            )


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
    notes = []
    for comp in MODEL_COMPONENTS:
        params[comp], comp_notes = _check_component(folder / comp, comp)
        notes += comp_notes
    meta = {}
    if (folder / "hvg.json").exists():
        try:
            meta = json.loads((folder / "hvg.json").read_text())
        except json.JSONDecodeError as e:
            raise BadInput(f"{folder / 'hvg.json'} is not valid JSON: {e}") from None
    if (warning := untrained_note(meta)) is not None:
        notes.insert(0, warning)
    if not meta:
        notes.append("no hvg.json: origin unknown")
    elif meta.get("pose_control_trained") is False:
        notes.append("pose control never trained: the pose encoder adds nothing, pose and camera are ignored")
    return WeightsReport(str(folder), params, bool(meta.get("untrained", False)), tuple(notes), meta)


def _model_class(comp: str) -> Any:
    if comp == "unet":
        from hvg_cli.backends.diffusion.views import HVGUNet

        return HVGUNet
    if comp == "vae":
        from diffusers import AutoencoderKLTemporalDecoder

        return AutoencoderKLTemporalDecoder
    if comp == "image_encoder":
        from transformers import CLIPVisionModelWithProjection

        return CLIPVisionModelWithProjection
    from hvg_cli.backends.diffusion.pose_encoder import PoseEncoder

    return PoseEncoder


def _check_component(d: Path, comp: str) -> tuple[int, list[str]]:
    """Parameter count of one component folder and notes on it; raises on any mismatch."""
    import torch

    from hvg_cli.backends.diffusion.views import is_view_key

    cfg_path = d / "config.json"
    if not cfg_path.exists():
        raise MissingWeights(f"{cfg_path} is missing", HINT_INIT)
    files = sorted(d.glob("*.safetensors"))
    if not files:
        raise MissingWeights(f"{d} holds no .safetensors file", HINT_INIT)
    heads = _headers(files)
    _check_index(d, heads)
    shapes = {k: shape for k, (_, _, shape) in heads.items()}
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
    notes: list[str] = []
    if comp == "unet":
        view_keys = [k for k in expected if is_view_key(k)]
        view_missing = [k for k in missing if is_view_key(k)]
        missing = [k for k in missing if not is_view_key(k)]
        if view_missing and len(view_missing) < len(view_keys):
            raise BadInput(
                f"{d} holds only part of the view attention ({len(view_missing)} of {len(view_keys)} "
                f"tensors missing, first: {view_missing[0]})",
                HINT_INIT,
            )
        if view_missing:
            notes.append(
                f"{d} has no view attention (a folder from before it): it loads with view attention "
                "zero, every view generated alone; `hvg weights init` writes it"
            )
        elif _view_output_is_zero(heads):
            notes.append("view attention untrained (zero output projections): every view is generated alone")
    if missing:
        raise BadInput(f"{d} lacks {len(missing)} tensors (first: {missing[0]})", "re-download or rebuild the weights")
    for k, shape in expected.items():
        if k in shapes and shapes[k] != shape:
            raise BadInput(
                f"{heads[k][0]}: tensor {k} has shape {list(shapes[k])}, the config says {list(shape)}",
                "the weights do not match config.json: rebuild the folder",
            )
    return int(sum(math.prod(s) for k, s in shapes.items() if k in expected)), notes


def _check_index(d: Path, heads: dict) -> None:
    """With a shard index (diffusers then reads only the files it names): it must name every safetensors
    file in the folder and map every tensor to the file that holds it."""
    idx_path = d / UNET_INDEX
    if not idx_path.exists():
        return
    try:
        weight_map = json.loads(idx_path.read_text())["weight_map"]
    except (json.JSONDecodeError, KeyError, TypeError):
        raise BadInput(f"{idx_path} is not a valid shard index", "rebuild the folder with `hvg weights init`") from None
    named = set(weight_map.values())
    for f in sorted({f for f, _, _ in heads.values()}):
        if f.name not in named:
            raise BadInput(
                f"{f} is not listed in {idx_path.name}, so it would never be loaded",
                "remove the file or rebuild the folder with `hvg weights init`",
            )
    for k, name in weight_map.items():
        if k not in heads or heads[k][0].name != name:
            raise BadInput(
                f"{idx_path.name} maps {k} to {name}, which does not hold it",
                "rebuild the folder with `hvg weights init`",
            )


def _view_output_is_zero(heads: dict) -> bool:
    """Whether every view-attention output projection in the files is exactly zero (reads only those)."""
    from safetensors import safe_open

    from hvg_cli.backends.diffusion.views import is_view_key

    keys = [k for k in heads if is_view_key(k) and ".to_out." in k]
    by_file: dict[Path, list[str]] = {}
    for k in keys:
        by_file.setdefault(heads[k][0], []).append(k)
    for f, ks in by_file.items():
        with safe_open(str(f), framework="pt") as sf:
            if any(bool(sf.get_tensor(k).any()) for k in ks):
                return False
    return bool(keys)


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


def pick_dtype(name: str, device: str) -> torch.dtype:
    import torch

    if name == "auto":
        return torch.float16 if device.startswith(("cuda", "mps")) else torch.float32
    if device == "cpu" and name == "fp16":
        raise BadInput("fp16 on the CPU is not supported", "use --dtype fp32 or bf16 on the CPU")
    return {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[name]


def load_pipeline(
    path: str | os.PathLike, device: str = "auto", dtype: str = "auto", offload: bool = False
) -> HVGPipeline:
    """Check the folder, then load HVGPipeline from it: local files only, safetensors only."""
    import torch

    from hvg_cli.backends.diffusion.pipeline_hvg import HVGPipeline
    from hvg_cli.backends.diffusion.views import load_view_unet

    check_weights(path)
    _quiet()
    dev = pick_device(device)
    torch_dtype = pick_dtype(dtype, dev)
    folder = Path(path).expanduser()
    # the UNet is loaded here as HVGUNet whatever model_index.json names (older folders name diffusers' UNet)
    unet = load_view_unet(folder / "unet", torch_dtype=torch_dtype)
    pipe = HVGPipeline.from_pretrained(
        str(folder), unet=unet, local_files_only=True, use_safetensors=True, dtype=torch_dtype
    )
    if torch_dtype == torch.float16 and getattr(pipe.vae.config, "force_upcast", False):
        pipe.vae.to(dtype=torch.float32)
    pipe.set_progress_bar_config(disable=True)
    if offload and dev != "cpu":
        pipe.enable_model_cpu_offload(device=dev)
    else:
        pipe.to(dev)
    return pipe
