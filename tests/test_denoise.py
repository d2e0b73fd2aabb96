"""Noise model statistics, PSNR/SSIM against scikit-image, and the denoisers' shapes."""

import numpy as np
import pytest
import torch
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from labutils.denoise import (AUTOENCODERS, ConvAutoencoder, DnCNN, TwoLayerDenoiser,
                              add_gaussian_noise, psnr, ssim)
from labutils.shapes import conv_output_size, conv_transpose_output_size


def test_noise_statistics_and_reproducibility():
    x = torch.full((8, 3, 64, 64), 0.5)
    sigma = 25 / 255
    a = add_gaussian_noise(x, sigma, torch.Generator().manual_seed(0), clip=False)
    noise = a - x
    assert abs(noise.mean().item()) < 3 * sigma / noise.numel() ** 0.5
    assert noise.std().item() == pytest.approx(sigma, rel=0.01)
    b = add_gaussian_noise(x, sigma, torch.Generator().manual_seed(0), clip=False)
    c = add_gaussian_noise(x, sigma, torch.Generator().manual_seed(1), clip=False)
    assert torch.equal(a, b) and not torch.equal(a, c)
    clipped = add_gaussian_noise(torch.rand(4, 3, 16, 16), 0.3, torch.Generator().manual_seed(0))
    assert clipped.min() >= 0 and clipped.max() <= 1
    with pytest.raises(ValueError):
        add_gaussian_noise(x, -0.1, torch.Generator())


def test_psnr_and_ssim_match_scikit_image():
    g = torch.Generator().manual_seed(0)
    clean = torch.rand(3, 3, 32, 32, generator=g)
    noisy = add_gaussian_noise(clean, 0.1, g)
    ours = psnr(clean, noisy)
    for i in range(3):
        ref = peak_signal_noise_ratio(clean[i].numpy(), noisy[i].numpy(), data_range=1.0)
        assert ours[i].item() == pytest.approx(ref, rel=1e-9)
        ref_ssim = structural_similarity(clean[i].permute(1, 2, 0).double().numpy(),
                                         noisy[i].permute(1, 2, 0).double().numpy(),
                                         data_range=1.0, channel_axis=2, gaussian_weights=True,
                                         sigma=1.5, use_sample_covariance=False)
        assert ssim(clean, noisy)[i] == pytest.approx(ref_ssim, rel=1e-9)
    assert np.allclose(ssim(clean, clean), 1.0)
    more = add_gaussian_noise(clean, 0.3, torch.Generator().manual_seed(1))
    assert (psnr(clean, more) < ours).all() and (ssim(clean, more) < ssim(clean, noisy)).all()
    with pytest.raises(ValueError):
        psnr(clean, noisy[:2])


@pytest.mark.parametrize("name,latent", [("128x10x10", (128, 10, 10)), ("32x38x38", (32, 38, 38)),
                                         ("32x71x71", (32, 71, 71))])
def test_source_autoencoders_shapes_follow_the_formulas(name, latent):
    model = ConvAutoencoder.source(name)
    x = torch.rand(2, 3, 150, 150)
    z = model.encoder(x)
    assert tuple(z.shape[1:]) == latent
    assert model(x).shape == x.shape and model(x).min() >= 0 and model(x).max() <= 1
    n = 150
    encoder, decoder = AUTOENCODERS[name]
    for _, k, s, p, _ in encoder:
        n = conv_output_size(n, k, stride=s, padding=p)
    assert n == latent[1]
    for _, k, s, p, op in decoder:
        n = conv_transpose_output_size(n, k, stride=s, padding=p, output_padding=op)
    assert n == 150


def test_dncnn_predicts_the_noise_and_keeps_any_size():
    torch.manual_seed(0)
    net = DnCNN(channels=1, depth=5, width=8).eval()
    x = torch.rand(2, 1, 23, 37)
    assert net(x).shape == x.shape
    last = net.noise[-1]
    torch.nn.init.zeros_(last.weight)
    torch.nn.init.zeros_(last.bias)
    assert torch.equal(net(x), x)  # zero predicted noise: the input comes back unchanged
    with pytest.raises(ValueError):
        DnCNN(depth=1)


def test_two_layer_denoiser_is_the_source_network():
    net = TwoLayerDenoiser()
    assert sum(p.numel() for p in net.parameters()) == (3 * 30 * 9 + 30) + (30 * 3 * 9 + 3)
    y = net(torch.rand(2, 3, 32, 32))
    assert y.shape == (2, 3, 32, 32) and 0 < y.min() and y.max() < 1
