"""Denoising: the noise model, image-quality metrics and the denoising networks of chapter 7.

Images are float tensors in [0, 1], (N, C, H, W). Noise levels ``sigma`` are on that scale
(sigma 25 on the 0-255 scale is 25 / 255).
"""

from labutils.denoise.noise import add_gaussian_noise, NoisyBatches, denoise_all
from labutils.denoise.scores import psnr, ssim, checkerboard_energy
from labutils.denoise.networks import (TwoLayerDenoiser, DnCNN, AUTOENCODERS, ConvAutoencoder,
                                       decoder_output_paddings, mirrored_autoencoder,
                                       UpsampleDecoderAutoencoder)
from labutils.denoise.classical import CLASSICAL, classical_denoise

__all__ = ["add_gaussian_noise", "NoisyBatches", "denoise_all", "psnr", "ssim",
           "checkerboard_energy", "TwoLayerDenoiser", "DnCNN", "AUTOENCODERS", "ConvAutoencoder",
           "decoder_output_paddings", "mirrored_autoencoder", "UpsampleDecoderAutoencoder",
           "CLASSICAL", "classical_denoise"]
