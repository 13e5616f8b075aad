"""The training loop on tiny random components at 32 px: it learns, the split of the global batch changes
nothing (accumulation in one process; 2 processes under `accelerate launch --cpu`), a killed run resumed
from its checkpoint ends with the uninterrupted run's weights, bad input writes nothing."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from hvg_cli.core.errors import BadInput, MissingWeights
from hvg_cli.train.dataset import DatasetWriter, random_clip
from hvg_cli.train.loop import TrainSettings, evaluate_loss, train

REPO = Path(__file__).resolve().parents[1]
NO_DROP = dict(drop_reference=0.0, drop_embedding=0.0, drop_latent=0.0, drop_pose=0.0)


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # conftest: one torch thread


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """Tiny random HVG weights and a dataset of 4 random clips (1 view × 2 frames, 32 px)."""
    from hvg_cli.backends.diffusion.weights import init_tiny

    root = tmp_path_factory.mktemp("train")
    init_tiny(root / "weights")
    with DatasetWriter(root / "data", clips_per_shard=2) as w:
        for i in range(4):
            w.add(random_clip(f"clip{i}", views=1, frames=2, seed=i))
    return root


# Parameters whose true gradient is 0 (a bias right before a GroupNorm) get float-noise gradients (~1e-10)
# that differ with the summation order; Adam with eps 1e-8 rescales that noise to steps of ±lr. An eps
# above the noise floor keeps Adam's step continuous in the gradient, so the split-equivalence tests
# compare the maths, not the noise (measured: eps 1e-8 -> 2.6e-4 apart after 3 steps at lr 1e-3, all in such
# biases; see EPS below).
EPS = 1e-4


def settings(tiny: Path, out: str, **kw) -> TrainSettings:
    base = dict(
        weights=str(tiny / "weights"),
        data=str(tiny / "data"),
        out=str(tiny / out),
        cpu=True,
        checkpoint_every=0,
        lr=1e-3,
        lr_new=1e-3,
        adam_eps=EPS,
    )
    return TrainSettings(**{**base, **kw})


def trained_tensors(out: Path) -> dict[str, torch.Tensor]:
    return {
        **{f"unet.{k}": v for k, v in load_file(out / "unet" / "diffusion_pytorch_model.safetensors").items()},
        **{
            f"pose_encoder.{k}": v
            for k, v in load_file(out / "pose_encoder" / "diffusion_pytorch_model.safetensors").items()
        },
    }


def assert_same_weights(a: Path, b: Path, atol: float) -> float:
    ta, tb = trained_tensors(a), trained_tensors(b)
    assert ta.keys() == tb.keys()
    worst = max(float((ta[k] - tb[k]).abs().max()) for k in ta)
    assert worst <= atol, f"weights differ by up to {worst}"
    return worst


def test_loss_falls_on_a_fixed_batch(tiny):
    """Two clips, global batch 2 (every step sees both), 20 steps of the whole UNet: the loss on fixed draws
    falls well below the base's, and the logged training loss falls too."""
    with DatasetWriter(tiny / "fixed") as w:
        for i in range(2):
            w.add(random_clip(f"f{i}", views=1, frames=2, seed=10 + i))
    s = settings(
        tiny, "learned", data=str(tiny / "fixed"), unet="all", steps=20, batch_size=2, lr=3e-3, lr_new=3e-3, **NO_DROP
    )
    result = train(s)
    before = evaluate_loss(tiny / "weights", tiny / "fixed", samples=8)
    after = evaluate_loss(result.out, tiny / "fixed", samples=8)
    assert 0.9 < before < 1.4  # an untrained v-predictor's loss is near E[v²] = 1
    assert after < 0.8 * before, (before, after)
    with open(result.metrics) as f:
        losses = [float(r["loss"]) for r in csv.DictReader(f)]
    assert len(losses) == 20
    assert sum(losses[-5:]) / 5 < 0.85 * sum(losses[:5]) / 5, losses
    meta = json.loads((Path(result.out) / "hvg.json").read_text())
    t = meta["training"]
    assert t["steps"] == 20 and t["global_batch"] == 2 and t["trained"]["unet_mode"] == "all"
    assert t["data_manifest_sha256"] == result.data_manifest_sha256 and len(t["data_manifest_sha256"]) == 64
    assert t["trained"]["unet"] > 600_000 and t["trained"]["pose_encoder"] > 0
    # still a toy (the mark stays), but `hvg weights check` says it was trained rather than calling it random
    from hvg_cli.backends.diffusion.weights import check_weights

    first = check_weights(result.out).notes[0]
    assert meta["untrained"] is True and "trained by hvg train for 20 steps" in first and "meaningless" not in first
    # OUT is a weights folder the sampler loads (what `hvg animate --weights OUT` does)
    from hvg_cli.backends.diffusion.weights import load_pipeline

    pipe = load_pipeline(result.out, device="cpu", dtype="fp32")
    torch.testing.assert_close(
        pipe.pose_encoder.conv_out.weight.detach(),
        trained_tensors(Path(result.out))["pose_encoder.conv_out.weight"],
        rtol=0,
        atol=0,
    )
    assert float(pipe.pose_encoder.conv_out.weight.detach().abs().max()) > 0  # trained away from its zero start


def test_accumulation_equals_a_bigger_batch(tiny):
    """1 process × batch 2 and 1 process × batch 1 × 2 accumulation steps: same weights after 3 steps (and
    with a loader worker, identical ones)."""
    a = train(settings(tiny, "acc-b2", steps=3, batch_size=2))
    b = train(settings(tiny, "acc-b1x2", steps=3, batch_size=1, grad_accum=2))
    assert a.global_batch == b.global_batch == 2
    assert abs(a.final_loss - b.final_loss) < 1e-5
    assert_same_weights(Path(a.out), Path(b.out), atol=1e-6)
    # batches built ahead by a DataLoader worker: the same micro-batches, bit for bit
    c = train(settings(tiny, "acc-b1x2-w", steps=3, batch_size=1, grad_accum=2, num_workers=1))
    assert_same_weights(Path(b.out), Path(c.out), atol=0.0)
    # and the weights did move (the comparison is not between two copies of the base)
    moved = trained_tensors(Path(a.out))["pose_encoder.conv_out.weight"].abs().max()
    assert moved > 1e-4


def test_two_processes_equal_one(tiny):
    """`accelerate launch --multi_gpu --num_processes 2` on the CPU (gloo) with batch 1 ends with the weights of
    1 process × batch 2."""
    one = train(settings(tiny, "p1-b2", steps=3, batch_size=2))
    out2 = tiny / "p2-b1"
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""),
        "OMP_NUM_THREADS": "1",
    }
    # accelerate 1.x: `--cpu --num_processes 2` runs ONE process (its simple launcher; several CPU processes
    # need mpirun there); `--multi_gpu` starts torch.distributed.run, and cpu=True makes it gloo on the CPU
    cmd = [
        sys.executable,
        "-m",
        "accelerate.commands.launch",
        "--multi_gpu",
        "--num_processes",
        "2",
        "--num_machines",
        "1",
        "--mixed_precision",
        "no",
        "--dynamo_backend",
        "no",
        "--main_process_port",
        str(free_port()),
        str(REPO / "tests" / "scripts" / "train_launch.py"),
        str(tiny / "weights"),
        str(tiny / "data"),
        str(out2),
        "steps=3",
        "batch_size=1",
        "checkpoint_every=0",
        "lr=0.001",
        "lr_new=0.001",
        "cpu=True",
        f"adam_eps={EPS}",
    ]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("global_batch=")]
    assert len(lines) == 1 and lines[0].startswith("global_batch=2 ")
    assert abs(float(lines[0].split("loss=")[1]) - one.final_loss) < 1e-5
    assert json.loads((out2 / "hvg.json").read_text())["training"]["processes"] == 2
    assert_same_weights(Path(one.out), out2, atol=1e-6)


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class _Kill(Exception):
    pass


class KillAfter:
    """A progress reporter that raises after `n` steps, like a killed process (nothing after it runs)."""

    def __init__(self, n: int):
        self.n = n
        self.notes: list[str] = []

    def task(self, description, total, unit="frames"):
        from contextlib import contextmanager

        outer = self

        class Task:
            done = 0

            def advance(self, k=1):
                self.done += k
                if self.done >= outer.n:
                    raise _Kill()

        @contextmanager
        def ctx():
            yield Task()

        return ctx()

    def note(self, message):
        self.notes.append(message)


def test_killed_run_resumes_to_the_same_weights(tiny):
    """Uninterrupted 5 steps vs killed after step 3 (checkpoints every 2) and resumed with resume='latest':
    same weights (EMA and a warm-up schedule on, so their states must come back too); the killed run left
    no OUT, and bad resumes are refused."""
    kw = dict(steps=5, batch_size=2, checkpoint_every=2, ema_decay=0.9, warmup_steps=2, lr_schedule="cosine")
    whole = train(settings(tiny, "whole", **kw))
    s = settings(tiny, "killed", **kw)
    with pytest.raises(_Kill):
        train(s, progress=KillAfter(3))
    assert not (tiny / "killed").exists()
    assert not list(tiny.glob(".killed.tmp*"))
    ckpts = sorted(p.name for p in (tiny / "killed.train" / "checkpoints").iterdir())
    assert ckpts == ["checkpoint-2"]
    # a resume with other maths is refused before anything is written
    with pytest.raises(BadInput, match="other settings"):
        train(settings(tiny, "killed", **{**kw, "lr": 2e-3}, resume="latest"))
    resumed = train(settings(tiny, "killed", **kw, resume="latest"))
    assert resumed.resumed_from == 2
    assert abs(resumed.final_loss - whole.final_loss) < 1e-6
    assert_same_weights(Path(whole.out), Path(resumed.out), atol=1e-6)
    with open(resumed.metrics) as f:
        steps = [int(r["step"]) for r in csv.DictReader(f)]
    assert steps == [1, 2, 3, 4, 5]  # the killed run's step 3 row was dropped, then logged again


def test_bad_input_writes_nothing(tiny, tmp_path):
    # a base without the pose encoder
    import shutil

    shutil.copytree(tiny / "weights", tmp_path / "nope")
    shutil.rmtree(tmp_path / "nope" / "pose_encoder")
    with pytest.raises(MissingWeights):
        train(settings(tiny, str(tmp_path / "out1"), weights=str(tmp_path / "nope"), steps=1))
    # a dataset whose bone maps (32 px) and latents (8) do not match the VAE's factor of 2
    with DatasetWriter(tmp_path / "odd") as w:
        w.add(random_clip("o", height=32, width=32, latent_factor=4))
    with pytest.raises(BadInput, match="does not fit"):
        train(settings(tiny, str(tmp_path / "out2"), data=str(tmp_path / "odd"), steps=1))
    # an OUT that is not empty
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "f").write_text("x")
    with pytest.raises(BadInput, match="not empty"):
        train(settings(tiny, str(tmp_path / "full"), steps=1))
    with pytest.raises(BadInput, match="unknown --unet"):
        settings(tiny, "x", unet="half")
    assert not (tmp_path / "out1").exists() and not (tmp_path / "out2").exists()
    assert not (tmp_path / "out1.train").exists() and not (tmp_path / "out2.train").exists()


def test_parameter_selection_by_name():
    """Pose encoder and anything named view_attn always train; the UNet per mode."""
    from torch import nn

    from hvg_cli.backends.diffusion.weights import tiny_components
    from hvg_cli.train.model import HVGDenoiser, is_temporal, select_trainable

    c = tiny_components()
    c["unet"].down_blocks[0].view_attn = nn.Linear(4, 4)  # stands in for the view attention's new layers
    model = HVGDenoiser(c["unet"], c["pose_encoder"])
    every = dict(model.named_parameters())
    pe = {n for n in every if n.startswith("pose_encoder.")}
    va = {"unet.down_blocks.0.view_attn.weight", "unet.down_blocks.0.view_attn.bias"}
    temporal = {n for n in every if n.startswith("unet.") and is_temporal(n) and n not in va}
    assert len(pe) == 8 and len(temporal) > 50
    assert not any("spatial_res_block" in n or ".transformer_blocks." in n for n in temporal)
    for mode, unet_part in (("frozen", set()), ("temporal", temporal), ("all", set(every) - pe - va)):
        names = select_trainable(model, mode)
        assert set(names["new"]) == pe | va
        assert set(names["unet"]) == unet_part
        assert {n for n, p in model.named_parameters() if p.requires_grad} == pe | va | unet_part


def test_gradient_checkpointing_and_frozen_mode(tiny):
    """Gradient checkpointing recomputes, it does not change the maths; --unet frozen leaves every UNet
    tensor as the base had it while the pose encoder learns."""
    a = train(settings(tiny, "gc-off", steps=2, batch_size=2))
    b = train(settings(tiny, "gc-on", steps=2, batch_size=2, gradient_checkpointing=True))
    assert_same_weights(Path(a.out), Path(b.out), atol=1e-6)
    f = train(settings(tiny, "frozen", steps=2, batch_size=2, unet="frozen"))
    base, got = trained_tensors(tiny / "weights"), trained_tensors(Path(f.out))
    # view attention always trains (a new part, like the pose encoder); SVD's own tensors stay the base's
    assert all(torch.equal(base[k], got[k]) for k in base if k.startswith("unet.") and "view_attn" not in k)
    assert any(not torch.equal(base[k], got[k]) for k in base if "view_attn" in k)
    assert float((got["pose_encoder.conv_out.weight"] - base["pose_encoder.conv_out.weight"]).abs().max()) > 1e-4
    assert f.trained["unet"] == 0


def test_mixed_precision_is_refused_on_the_cpu(tiny, tmp_path):
    """bf16 autocast on the CPU gave NaN Conv3d weight gradients here (torch 2.13): refused before any write."""
    for mp in ("bf16", "fp16"):
        with pytest.raises(BadInput, match="not supported on the CPU"):
            train(settings(tiny, str(tmp_path / mp), steps=1, mixed_precision=mp))
        assert not (tmp_path / mp).exists() and not (tmp_path / f"{mp}.train").exists()


def test_lora_merges_into_the_attention_projections(tiny):
    pytest.importorskip("peft")  # optional: --unet lora needs it, nothing else does
    r = train(settings(tiny, "lora", steps=2, batch_size=2, unet="lora", lora_rank=4))
    base, got = trained_tensors(tiny / "weights"), trained_tensors(Path(r.out))
    assert base.keys() == got.keys()  # merged: a plain UNet, no adapter tensors
    changed = {k for k in base if k.startswith("unet.") and "view_attn" not in k and not torch.equal(base[k], got[k])}
    assert changed and all(any(t in k for t in ("to_q", "to_k", "to_v", "to_out.0")) for k in changed)
    assert r.trained["unet"] > 0


def test_validation_callback_sees_the_exported_weights(tiny):
    """validate runs every 2 steps and after the last, with the EMA weights the export writes; its files
    end up in OUT/validation; checkpoints_total_limit prunes old checkpoints."""
    seen = []

    def validate(step, unet, pose_encoder, folder):
        assert not pose_encoder.training and not torch.is_grad_enabled()
        seen.append((step, pose_encoder.conv_out.weight.detach().clone()))
        (folder / "note.txt").write_text(f"step {step}\n")

    r = train(
        settings(
            tiny,
            "val",
            steps=3,
            batch_size=2,
            ema_decay=0.9,
            validate_every=2,
            checkpoint_every=1,
            checkpoints_total_limit=1,
        ),
        validate=validate,
    )
    assert [s for s, _ in seen] == [2, 3]
    # checkpoints after steps 1 and 2 (none after the last: OUT holds it); the limit keeps the newest
    assert sorted(p.name for p in (tiny / "val.train" / "checkpoints").iterdir()) == ["checkpoint-2"]
    exported = trained_tensors(Path(r.out))["pose_encoder.conv_out.weight"]
    torch.testing.assert_close(seen[-1][1], exported, rtol=0, atol=0)
    assert (Path(r.out) / "validation" / "step-2" / "note.txt").read_text() == "step 2\n"
    # a fresh run over a work folder with checkpoints is refused (continue it with resume="latest")
    (tiny / "val2.train" / "checkpoints" / "checkpoint-1").mkdir(parents=True)
    (tiny / "val2.train" / "checkpoints" / "checkpoint-1" / "hvg_train_state.json").write_text("{}")
    with pytest.raises(BadInput, match="earlier run"):
        train(settings(tiny, "val2", steps=1))
