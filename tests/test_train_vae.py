"""train.vae.fit_vae: the tiny random VAE cannot reconstruct; a short fit on a fixed batch makes it."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

from hvg_cli.core.errors import BadInput


def silhouettes(n: int = 8, size: int = 16, seed: int = 0) -> np.ndarray:
    """[n, size, size, 3] uint8: a coloured rectangle and bar per image on a plain grey background."""
    rng = np.random.default_rng(seed)
    out = np.full((n, size, size, 3), 127, np.uint8)
    for i in range(n):
        y0, x0 = rng.integers(1, size // 2, 2)
        h, w = rng.integers(3, size // 2, 2)
        out[i, y0 : y0 + h, x0 : x0 + w] = rng.integers(0, 256, 3)
        r = rng.integers(0, size)
        out[i, r, 1:-1] = rng.integers(0, 256, 3)  # a one-pixel bar, like a limb
    return out


@pytest.fixture(scope="module")
def random_vae_folder(tmp_path_factory):
    """A weights folder holding only what fit_vae reads: vae/ (the tiny folder's random VAE) and hvg.json."""
    from hvg_cli.backends.diffusion.weights import tiny_vae

    root = tmp_path_factory.mktemp("vae") / "w"
    tiny_vae(0).save_pretrained(root / "vae", safe_serialization=True)
    (root / "hvg.json").write_text(json.dumps({"format": "hvg-diffusion", "untrained": True}))
    return root


@pytest.fixture()
def tiny(random_vae_folder, tmp_path):
    shutil.copytree(random_vae_folder, tmp_path / "w")
    return tmp_path / "w"


def _load_vae(folder):
    from diffusers import AutoencoderKLTemporalDecoder

    return AutoencoderKLTemporalDecoder.from_pretrained(folder / "vae", local_files_only=True).eval()


def test_fit_makes_the_tiny_vae_reconstruct(tiny):
    """The random VAE's round-trip error on a fixed batch is large (a bound it does not meet); after 100 steps
    the refitted folder's VAE meets it and the error fell to under a third; the latents × the new
    scaling_factor have unit std; hvg.json records the fit."""
    from hvg_cli.train.vae import fit_vae, reconstruction_error

    torch.manual_seed(0)
    imgs = silhouettes(4)
    bound = 0.1  # mean |x̂ − x| in [−1, 1] units (measured: 0.27 random, 0.07 fitted)
    before = reconstruction_error(_load_vae(tiny), imgs, num_frames=2)
    assert before > 2 * bound  # the random VAE fails the bound: this test can fail
    fit = fit_vae(tiny, imgs, steps=100, seed=0, batch_size=4, num_frames=2, lr=5e-3, fg_weight=10.0, sample_std=0.0)
    assert fit.error_before == pytest.approx(before, rel=1e-5)
    vae = _load_vae(tiny)  # what a pipeline loads from the folder now
    after = reconstruction_error(vae, imgs, num_frames=2)
    assert after == pytest.approx(fit.error_after, rel=1e-4)
    assert after < bound and after < before / 3
    assert np.mean(fit.losses[-10:]) < np.mean(fit.losses[:10]) / 2
    with torch.no_grad():
        x = torch.from_numpy(imgs.astype(np.float32) / 127.5 - 1).permute(0, 3, 1, 2)
        z = vae.encode(x).latent_dist.mode() * vae.config.scaling_factor
    assert float(z.std()) == pytest.approx(1.0, rel=1e-3)
    assert vae.config.scaling_factor == pytest.approx(fit.scaling_factor)
    meta = json.loads((tiny / "hvg.json").read_text())
    assert meta["vae_fit"]["steps"] == 100 and meta["vae_fit"]["error_after"] == pytest.approx(after, rel=1e-4)


def test_fit_is_deterministic_given_the_seed(random_vae_folder, tmp_path):
    from hvg_cli.train.vae import fit_vae

    imgs = silhouettes(4)
    fits = []
    for name in ("a", "b"):
        shutil.copytree(random_vae_folder, tmp_path / name)
        fits.append(fit_vae(tmp_path / name, imgs, steps=3, seed=5, batch_size=2, num_frames=2, sample_std=1.0))
    assert fits[0].losses == fits[1].losses
    a, b = _load_vae(tmp_path / "a").state_dict(), _load_vae(tmp_path / "b").state_dict()
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=0)


def test_fit_refuses_bad_images(tiny):
    from hvg_cli.train.vae import fit_vae

    with pytest.raises(BadInput):
        fit_vae(tiny, np.zeros((3, 16, 16, 3), np.uint8), steps=1, num_frames=2)  # not whole groups
    with pytest.raises(BadInput):
        fit_vae(tiny, np.zeros((4, 16, 16), np.uint8), steps=1)
