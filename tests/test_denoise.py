"""Noise model statistics, PSNR/SSIM against scikit-image, and the denoisers' shapes."""

import numpy as np
import pytest
import torch
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from labutils.denoise import (AUTOENCODERS, CLASSICAL, ConvAutoencoder, DnCNN, NoisyBatches,
                              TwoLayerDenoiser, UpsampleDecoderAutoencoder, add_gaussian_noise,
                              checkerboard_energy, classical_denoise, decoder_output_paddings,
                              denoise_all, mirrored_autoencoder, psnr, ssim)
from labutils.shapes import conv_output_size, conv_transpose_output_size
from device_spy import first_input_device  # tests/device_spy.py


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
    assert torch.equal(net(x), x)  # zero-initialised: no predicted noise, the input comes back
    random_last = DnCNN(channels=1, depth=5, width=8, zero_init=False).eval()
    assert random_last(x).shape == x.shape and not torch.equal(random_last(x), x)
    with pytest.raises(ValueError):
        DnCNN(depth=1)


def test_two_layer_denoiser_is_the_source_network():
    net = TwoLayerDenoiser()
    assert sum(p.numel() for p in net.parameters()) == (3 * 30 * 9 + 30) + (30 * 3 * 9 + 3)
    y = net(torch.rand(2, 3, 32, 32))
    assert y.shape == (2, 3, 32, 32) and 0 < y.min() and y.max() < 1


def test_noisy_batches_fresh_noise_for_training_same_noise_for_testing():
    images = torch.randint(0, 256, (10, 3, 8, 8), dtype=torch.uint8)
    train = NoisyBatches(images, 0.1, 4, seed=0)
    assert len(train) == 3 and [len(c) for _, c in train] == [4, 4, 2]
    first, second = list(train), list(train)
    assert not torch.equal(first[0][0], second[0][0])       # new order and noise each pass
    seen = torch.cat([c for _, c in first])
    assert sorted(map(tuple, seen.flatten(1).tolist())) == sorted(
        map(tuple, (images.float() / 255).flatten(1).tolist()))   # every image once, scaled
    test = NoisyBatches(images, 0.1, 4, seed=0, fixed=True)
    a, b = list(test), list(test)
    assert all(torch.equal(x[0], y[0]) for x, y in zip(a, b))
    assert torch.equal(torch.cat([c for _, c in a]), images.float() / 255)   # in order
    assert all(n.min() >= 0 and n.max() <= 1 for n, _ in a)


def test_noisy_batches_blind_levels_lie_in_the_range():
    clean = torch.full((400, 1, 32, 32), 0.5)
    noisy, _ = next(iter(NoisyBatches(clean, (0.02, 0.2), 400, clip=False, fixed=True)))
    stds = (noisy - 0.5).flatten(1).std(dim=1)
    assert stds.min() > 0.02 * 0.85 and stds.max() < 0.2 * 1.15
    assert stds.max() - stds.min() > 0.1    # the levels really differ between images
    fixed = (next(iter(NoisyBatches(clean, 0.1, 400, clip=False)))[0] - 0.5).flatten(1).std(1)
    assert fixed.min() > 0.085 and fixed.max() < 0.115
    assert len(list(NoisyBatches(clean, np.float32(0.1), 100))) == 4   # NumPy scalars work
    with pytest.raises(ValueError):
        NoisyBatches(clean, (0.2, 0.1), 8)
    with pytest.raises(ValueError):
        NoisyBatches(clean[0], 0.1, 8)


def test_denoise_all_is_the_model_in_eval_mode_clipped():
    torch.manual_seed(0)
    net = DnCNN(depth=4, width=8, zero_init=False)   # not the identity: the model must be run
    x = torch.rand(5, 3, 16, 16)
    out = denoise_all(net, x, batch_size=2)
    assert not net.training
    with torch.no_grad():
        assert torch.allclose(out, net(x).clamp(0, 1), atol=1e-6)


def test_decoder_output_paddings_reproduce_the_hand_worked_values_and_any_size():
    for name, (encoder, decoder) in AUTOENCODERS.items():
        assert decoder_output_paddings(encoder, 150) == [d[4] for d in decoder]
        for size in (32, 64, 97, 150):
            x = torch.rand(1, 3, size, size)
            assert mirrored_autoencoder(name, size)(x).shape == x.shape


def test_checkerboard_energy_finds_period_two_patterns():
    i, j = torch.meshgrid(torch.arange(16), torch.arange(16), indexing="ij")
    board = ((i + j) % 2).float().expand(1, 3, 16, 16)
    smooth = torch.sin(i / 5.0).float().expand(1, 3, 16, 16)
    assert checkerboard_energy(board).item() == pytest.approx(1.0)
    assert checkerboard_energy(smooth).item() < 0.01
    r = torch.randn(2, 3, 8, 8, dtype=torch.float64)
    f = np.fft.fft2((r - r.mean(dim=(2, 3), keepdim=True)).numpy())
    p = np.abs(f) ** 2
    ref = (p[..., 4, 0] + p[..., 0, 4] + p[..., 4, 4]).sum(1) / p.sum((1, 2, 3))
    assert np.allclose(checkerboard_energy(r).numpy(), ref)
    with pytest.raises(ValueError):
        checkerboard_energy(torch.rand(1, 3, 7, 8))


def test_strided_transposed_convolution_makes_a_checkerboard_and_resize_does_not():
    torch.manual_seed(0)
    x = torch.rand(1, 3, 32, 32)
    out = {}
    for kind in ("transposed", "resize"):
        net = UpsampleDecoderAutoencoder(kind)
        for m in net.decoder.modules():   # constant kernels: only the overlap pattern remains
            if isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d)):
                torch.nn.init.constant_(m.weight, 0.05)
                torch.nn.init.zeros_(m.bias)
        with torch.no_grad():
            out[kind] = net(x)
        assert out[kind].shape == x.shape
    assert checkerboard_energy(out["transposed"]) > 10 * checkerboard_energy(out["resize"])


def test_every_classical_method_denoises_a_real_photo():
    from skimage import data
    clean = torch.from_numpy(data.astronaut()[100:164, 150:214]).permute(2, 0, 1)[None] / 255
    sigma = 25 / 255
    noisy = add_gaussian_noise(clean.float(), sigma, torch.Generator().manual_seed(0))
    before = psnr(clean, noisy).item()
    for name, (_, grid) in CLASSICAL.items():
        after = psnr(clean, classical_denoise(name, noisy, sigma, grid[len(grid) // 2])).item()
        assert after > before + 2, name
    two = torch.cat([noisy, noisy.flip(-1)])
    serial = classical_denoise("non-local means", two, sigma, 0.6)
    assert torch.allclose(classical_denoise("non-local means", two, sigma, 0.6, workers=2), serial)
    with pytest.raises(ValueError):
        classical_denoise("no such method", noisy, sigma, 1.0)


def test_psnr_and_ssim_of_uint8_images_need_the_range_and_then_match_scikit_image():
    g = torch.Generator().manual_seed(0)
    clean = torch.randint(0, 256, (2, 3, 16, 16), generator=g, dtype=torch.uint8)
    noisy = (clean.int() + torch.randint(-20, 21, clean.shape, generator=g)).clamp(0, 255)
    noisy = noisy.to(torch.uint8)
    for metric in (psnr, ssim):
        with pytest.raises(TypeError, match=r"uint8.*data_range=255.*float\(\) / 255"):
            metric(clean, noisy)
    ref_p = [peak_signal_noise_ratio(a.numpy(), b.numpy()) for a, b in zip(clean, noisy)]
    ref_s = [structural_similarity(a.numpy(), b.numpy(), channel_axis=0, gaussian_weights=True,
                                   sigma=1.5, use_sample_covariance=False, data_range=255)
             for a, b in zip(clean, noisy)]
    np.testing.assert_allclose(psnr(clean, noisy, data_range=255).numpy(), ref_p, rtol=1e-12)
    np.testing.assert_allclose(ssim(clean, noisy, data_range=255), ref_s, rtol=1e-12)
    # the same images as floats in [0, 1] give the same scores
    np.testing.assert_allclose(psnr(clean.double() / 255, noisy.double() / 255).numpy(), ref_p,
                               rtol=1e-10)


def test_psnr_and_ssim_reject_values_outside_the_data_range():
    clean = torch.rand(1, 3, 16, 16)
    for metric in (psnr, ssim):
        with pytest.raises(ValueError, match=r"\[0, 1\].*data_range=255"):
            metric(clean * 255, clean * 255)          # 0-255 floats, default range 1
        with pytest.raises(ValueError, match=r"\[0, 1\]"):
            metric(clean, clean - 0.5)                # an unclipped estimate
        with pytest.raises(ValueError, match="data_range"):
            metric(clean, clean, data_range=0)
        with pytest.raises(ValueError, match="NaN"):
            metric(clean, clean * float("nan"))
    with pytest.raises(ValueError, match=r"at least 7"):
        ssim(torch.rand(1, 1, 5, 5), torch.rand(1, 1, 5, 5))


def test_denoise_all_runs_on_the_models_device_and_handles_empty_batches():
    model = DnCNN(channels=1, depth=2).to("meta")
    noisy = torch.rand(3, 1, 8, 8)
    assert first_input_device(model, lambda: denoise_all(model, noisy)).type == "meta"
    out = denoise_all(DnCNN(channels=1, depth=2), torch.rand(0, 1, 8, 8))
    assert out.shape == (0, 1, 8, 8) and out.dtype == torch.float32
    with pytest.raises(ValueError, match="batch_size"):
        denoise_all(DnCNN(channels=1, depth=2), torch.rand(2, 1, 8, 8), batch_size=0)
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        denoise_all(DnCNN(channels=1, depth=2), torch.rand(1, 8, 8))


def test_noisy_batches_reject_floats_outside_zero_one():
    with pytest.raises(ValueError, match=r"\[0, 1\].*/ 255"):
        NoisyBatches(torch.rand(4, 1, 8, 8) * 255, 0.1, 2)
    with pytest.raises(TypeError, match="uint8"):
        NoisyBatches(torch.ones(4, 1, 8, 8, dtype=torch.int64), 0.1, 2)
