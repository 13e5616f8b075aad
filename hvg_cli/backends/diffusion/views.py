"""Views as their own axis: SVD's UNet with new, zero-initialised attention across views.

A tile holds v views × t frames. HVG keeps the two axes apart:

  time   runs through the base model's own temporal layers (temporal resnets, temporal attention,
         the frame position embedding). They see ONE view's frames at a time: the tile's views are
         folded into the UNet's batch axis, `sample: [B*V, T, C, h, w]` (batch-major, view-minor).
  views  meet only through new VIEW ATTENTION: in every spatio-temporal transformer block, after the
         spatial block (self-attention, cross-attention to the photo's CLIP embedding, feed-forward),
         each latent pixel attends to the same pixel of the same frame in the tile's other views
         (sequence length V, same neighbourhood as SVD's temporal attention, which attends along
         time at one pixel). Its output projection starts at zero, so a fresh model is exactly SVD
         run on each view alone; the temporal layers then mix the view-informed features along time.

Why this way round. SV4D (by HVG's authors) starts from SV3D, whose temporal layers were trained
on an orbit's *views*, so it keeps views on those layers and adds new attention across time. HVG
starts from SVD, whose temporal layers were trained on *time* (motion, frame-to-frame coherence, the
fps/motion-bucket micro-conditioning): putting views on them would spend that prior on an axis it
never saw, and the frame position embedding would number views as if they were frames (the leak
measured before this module: changing view 1 moved view 0 by up to 0.47, and the same view placed
first or second in a tile came out up to 0.56 apart). So time stays on the temporal layers and views
get the new attention. There is no view position embedding: what distinguishes the views is their
camera, which reaches the features through the Plücker rays in the pose encoder's input; the
attention itself is symmetric in the views, so a tile's view order does not matter.

Neighbourhood: the same latent pixel at every UNet level. Bone maps and photo are aligned per view
(the subject centred and scaled alike), and at the deeper levels one latent pixel covers a large
part of the subject, so same-pixel attention already reaches corresponding body parts there.

Parameter names. The base model's names are untouched (the new modules are children of the
existing blocks), so an SVD `unet/` folder loads with every base tensor matched; every new parameter
name contains `view_attn` (e.g. `down_blocks.0.attentions.0.transformer_blocks.0.view_attn.attn.to_q.weight`).
Training code selects them with `view_attention_parameters(unet)`.

Built from diffusers parts: the UNet is a subclass of `UNetSpatioTemporalConditionModel` with the same
config (so `from_config` / `from_pretrained` work on any SVD unet folder), the spatial blocks become a
subclass of `BasicTransformerBlock` that calls the original forward and then the view attention, and
the view attention is diffusers' `Attention`. Temporal and view attention run through
`BatchChunkedAttnProcessor` (diffusers' SDPA processor over slices of the batch), because folding views
into the batch can pass the batch limit of CUDA's fused attention kernels. diffusers is not edited.

Contract for training code: `view_attention_parameters(unet)` lists the new parameters;
`view_unet_from_config(config_or_folder)` builds an HVGUNet, `load_view_unet(folder)` loads one (from an
SVD or HVG unet folder), `as_view_unet(unet)` upgrades a plain SVD UNet in place, `base_unet(unet)`
gives back a plain diffusers UNet with the base weights; call the UNet with `num_views=V`.
"""

from __future__ import annotations

import functools
import math
import os
from pathlib import Path
from typing import Any

import torch
from diffusers import UNetSpatioTemporalConditionModel
from diffusers.models.attention import BasicTransformerBlock, TemporalBasicTransformerBlock
from diffusers.models.attention_processor import Attention, AttnProcessor2_0
from diffusers.models.modeling_utils import ModelMixin  # noqa: F401  diffusers' pipeline loader looks the

# base class of a custom component (model_index.json: ["hvg_cli.backends.diffusion.views", "HVGUNet"]) up here
from diffusers.models.transformers.transformer_temporal import TransformerSpatioTemporalModel
from torch import nn

VIEW_KEY = "view_attn"  # every view-attention parameter name contains this
MAX_ATTENTION_BATCH = 32768  # sequences per fused-attention launch (CUDA grids take at most 65535 there)


class BatchChunkedAttnProcessor:
    """diffusers' AttnProcessor2_0 (SDPA) over slices of at most `max_batch` sequences of the batch axis.

    Folding views into the batch multiplies the batch of SVD's temporal attention by the tile's views
    (2 · V · h · w sequences at the first level: 73,728 for 4 views at 576×1024), and the view attention
    runs 2 · T · h · w sequences of V tokens; CUDA's memory-efficient and flash kernels put the batch on a
    grid axis limited to 65,535 in the PyTorch releases that have it (pytorch/pytorch#146704). Every
    sequence is independent, so the slices give the same numbers as one launch.
    """

    def __init__(self, max_batch: int = MAX_ATTENTION_BATCH):
        self.inner = AttnProcessor2_0()
        self.max_batch = max_batch

    def __call__(
        self,
        attn: Attention,
        hidden_states: torch.Tensor,
        encoder_hidden_states: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        temb: torch.Tensor | None = None,
        *args,
        **kwargs,
    ):
        n = hidden_states.shape[0]
        if n <= self.max_batch:
            return self.inner(attn, hidden_states, encoder_hidden_states, attention_mask, temb, *args, **kwargs)
        outs = []
        for start in range(0, n, self.max_batch):
            sl = slice(start, start + self.max_batch)
            ctx = encoder_hidden_states[sl] if encoder_hidden_states is not None else None
            mask = attention_mask[sl] if attention_mask is not None and attention_mask.shape[0] == n else attention_mask
            outs.append(self.inner(attn, hidden_states[sl], ctx, mask, temb, *args, **kwargs))
        return torch.cat(outs)


class ViewAttention(nn.Module):
    """Pre-norm self-attention across the views of a tile, at one frame and one latent pixel; residual.

    Input/output: [B*V*T, N, C] in the UNet's flattening order ((b·V + v)·T + t, then N = h·w pixels).
    `views` and `frames` are set by `HVGUNet.forward` before every call (and kept until the next one, so a
    checkpointed block recomputed in backward sees the layout of its forward).
    """

    def __init__(self, dim: int, heads: int, dim_head: int):
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.attn = Attention(
            query_dim=dim, heads=heads, dim_head=dim_head, out_bias=True, processor=BatchChunkedAttnProcessor()
        )
        nn.init.zeros_(self.attn.to_out[0].weight)  # a fresh model adds exactly 0: SVD per view
        nn.init.zeros_(self.attn.to_out[0].bias)
        self.views = 1
        self.frames = 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        V, T = self.views, self.frames
        if V == 1:
            # one view attends to itself only: softmax over one key is 1, the attention is to_out(to_v(.))
            # (the same numbers without the attention kernel; tests/test_views.py checks the twin)
            return x + self.attn.to_out[0](self.attn.to_v(self.norm(x)))
        BVT, N, C = x.shape
        if BVT % (V * T):
            raise ValueError(f"view attention: {BVT} rows are not batches of {V} views x {T} frames")
        B = BVT // (V * T)
        y = self.norm(x).reshape(B, V, T * N, C)  # [B, V, T*N, C]
        y = y.permute(0, 2, 1, 3).reshape(B * T * N, V, C)  # [B*T*N, V, C]: one sequence of V views per pixel
        y = self.attn(y)  # [B*T*N, V, C]
        y = y.reshape(B, T * N, V, C).permute(0, 2, 1, 3).reshape(BVT, N, C)  # back to [B*V*T, N, C]
        return x + y

    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """Norm to identity, q/k/v uniform(±1/√fan_in) (as nn.Linear's default) from `generator`, output zero."""
        with torch.no_grad():
            self.norm.weight.fill_(1.0)
            self.norm.bias.zero_()
            for lin in (self.attn.to_q, self.attn.to_k, self.attn.to_v):
                bound = 1.0 / math.sqrt(lin.in_features)
                w = torch.rand(lin.weight.shape, generator=generator, dtype=torch.float32) * 2 * bound - bound
                lin.weight.copy_(w)
                if lin.bias is not None:
                    lin.bias.zero_()
            self.attn.to_out[0].weight.zero_()
            self.attn.to_out[0].bias.zero_()


class ViewTransformerBlock(BasicTransformerBlock):
    """SVD's spatial transformer block followed by view attention (`self.view_attn`)."""

    view_attn: ViewAttention

    def forward(self, hidden_states: torch.Tensor, *args, **kwargs) -> torch.Tensor:
        hidden_states = super().forward(hidden_states, *args, **kwargs)  # [B*V*T, N, C]
        return self.view_attn(hidden_states)


def chunk_temporal_attention(unet: nn.Module, max_batch: int = MAX_ATTENTION_BATCH) -> None:
    """Give the temporal blocks' attention (batch 2·V·h·w once views are folded in) the batch-chunked processor."""
    for block in unet.modules():
        if isinstance(block, TemporalBasicTransformerBlock):
            for attn in (block.attn1, block.attn2):
                if attn is not None:
                    attn.set_processor(BatchChunkedAttnProcessor(max_batch))


def _add_view_attention(unet: nn.Module) -> None:
    """Turn every spatial block of every spatio-temporal transformer into a ViewTransformerBlock, in place.

    The blocks keep their parameters and names; each gains a child `view_attn` with the block's width and
    the heads of its self-attention.
    """
    for tsm in unet.modules():
        if not isinstance(tsm, TransformerSpatioTemporalModel):
            continue
        for block in tsm.transformer_blocks:
            if isinstance(block, ViewTransformerBlock):
                continue
            heads = block.attn1.heads
            dim = block.attn1.inner_dim
            block.__class__ = ViewTransformerBlock
            block.view_attn = ViewAttention(dim, heads, dim // heads)


class HVGUNet(UNetSpatioTemporalConditionModel):
    """`UNetSpatioTemporalConditionModel` plus view attention; same config, base parameter names unchanged.

    forward(sample [B*V, T, C_in, h, w], timestep, encoder_hidden_states [B*V, 1, D], added_time_ids [B*V, 3],
            num_views=V) -> [B*V, T, C_out, h, w]
    Batch index b·V + v: the tile's views folded into the batch (batch-major), so the base's temporal
    layers see one view's T frames at a time and only the view attention mixes views.
    With num_views=1 it is SVD's UNet (plus the view attention of a single view, zero when fresh).
    """

    @functools.wraps(UNetSpatioTemporalConditionModel.__init__)  # type: ignore[misc]  # same signature: from_config reads it
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        _add_view_attention(self)
        self._view_modules = [m for m in self.modules() if isinstance(m, ViewAttention)]
        chunk_temporal_attention(self)

    def forward(
        self,
        sample: torch.Tensor,
        timestep,
        encoder_hidden_states: torch.Tensor,
        added_time_ids: torch.Tensor,
        return_dict: bool = True,
        num_views: int = 1,
    ) -> Any:
        n, T = sample.shape[:2]
        if num_views < 1 or n % num_views:
            raise ValueError(f"the batch of {n} is not a multiple of num_views={num_views}")
        # the layout stays set after the call on purpose: with gradient checkpointing the blocks run again
        # during backward, after this method returned (tests/test_views.py checks the gradients)
        for m in self._view_modules:
            m.views, m.frames = num_views, T
        return super().forward(sample, timestep, encoder_hidden_states, added_time_ids, return_dict=return_dict)


# ---------------------------------------------------------------------------------------------
# the naming contract and helpers for weights and training
# ---------------------------------------------------------------------------------------------
def is_view_key(name: str) -> bool:
    return VIEW_KEY in name


def view_attention_parameters(unet: nn.Module) -> list[tuple[str, nn.Parameter]]:
    """Every view-attention parameter of `unet` as (name, parameter); the names all contain `view_attn`."""
    return [(n, p) for n, p in unet.named_parameters() if is_view_key(n)]


def view_attention_state_dict(unet: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v for k, v in unet.state_dict().items() if is_view_key(k)}


def init_view_attention(unet: HVGUNet, seed: int = 0) -> None:
    """(Re)initialise every view attention deterministically from `seed`, output projections zero.

    Modules still on the meta device (built by `from_config` under `torch.device("meta")` or left
    unloaded by `from_pretrained`) are first given real CPU storage in their dtype.
    """
    gen = torch.Generator("cpu").manual_seed(seed)
    for m in unet._view_modules:
        if any(p.is_meta for p in m.parameters()):
            m.to_empty(device="cpu")
        m.reset_parameters(gen)


def view_unet_from_config(config) -> HVGUNet:
    """A view-aware UNet from an SVD/HVG unet config (dict, or folder with config.json); random base weights."""
    if isinstance(config, (str, os.PathLike)):
        config = HVGUNet.load_config(Path(config), local_files_only=True)
    return HVGUNet.from_config(config)


def load_view_unet(folder: str | os.PathLike, torch_dtype: torch.dtype | None = None) -> HVGUNet:
    """Load a unet folder (SVD or HVG) as HVGUNet: local safetensors only, strict about the base tensors.

    Every base tensor must be in the files (else BadInput). View attention: present -> loaded; absent
    altogether (an SVD folder, or an HVG folder from before view attention) -> initialised as
    `hvg weights init` writes it (output projection zero: views independent); partly present -> BadInput.
    """
    from hvg_cli.core.errors import BadInput

    folder = Path(folder)
    kwargs = {"torch_dtype": torch_dtype} if torch_dtype is not None else {}
    unet, info = HVGUNet.from_pretrained(
        folder, local_files_only=True, use_safetensors=True, output_loading_info=True, **kwargs
    )
    missing = set(info["missing_keys"])
    base_missing = sorted(k for k in missing if not is_view_key(k))
    if base_missing:
        raise BadInput(
            f"{folder} lacks {len(base_missing)} UNet tensors (first: {base_missing[0]})",
            "re-download the base or rebuild the folder with `hvg weights init`",
        )
    view_keys = [k for k in unet.state_dict() if is_view_key(k)]
    view_missing = [k for k in view_keys if k in missing]
    if view_missing and len(view_missing) != len(view_keys):
        raise BadInput(
            f"{folder} holds only part of the view attention ({len(view_missing)} of {len(view_keys)} "
            f"tensors missing, first: {view_missing[0]})",
            "rebuild the folder with `hvg weights init`, or restore the missing file",
        )
    if view_missing:
        init_view_attention(unet, seed=0)
        if torch_dtype is not None:
            unet.to(dtype=torch_dtype)
    return unet


def base_unet(unet: HVGUNet) -> UNetSpatioTemporalConditionModel:
    """A plain diffusers UNet with `unet`'s base weights (view attention dropped); loaded strictly."""
    plain = UNetSpatioTemporalConditionModel.from_config(unet.config)
    base = {k: v for k, v in unet.state_dict().items() if not is_view_key(k)}
    plain.load_state_dict(base, strict=True)
    return plain.to(device=unet.device, dtype=unet.dtype).eval()


def as_view_unet(unet: UNetSpatioTemporalConditionModel) -> HVGUNet:
    """`unet` itself if it is an HVGUNet; a plain SVD UNet is turned into one IN PLACE (same object, same
    base parameters) with view attention initialised as `hvg weights init` writes it (output zero)."""
    if isinstance(unet, HVGUNet):
        return unet
    if type(unet) is not UNetSpatioTemporalConditionModel:
        raise TypeError(f"expected a UNetSpatioTemporalConditionModel, got {type(unet).__name__}")
    param = next(unet.parameters())
    unet.__class__ = HVGUNet
    _add_view_attention(unet)
    unet._view_modules = [m for m in unet.modules() if isinstance(m, ViewAttention)]
    chunk_temporal_attention(unet)
    init_view_attention(unet, seed=0)
    for m in unet._view_modules:
        m.to(device=param.device, dtype=param.dtype)
    return unet
