"""Denoising networks: the source's denoiser and autoencoders (any input size), DnCNN."""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn


class TwoLayerDenoiser(nn.Module):
    """The source's denoiser: 3x3 conv (channels -> 30) + ReLU, 3x3 conv (30 -> channels) +
    sigmoid. (N, C, H, W) -> (N, C, H, W) in (0, 1)."""

    def __init__(self, channels: int = 3, width: int = 30):
        super().__init__()
        self.net = nn.Sequential(nn.Conv2d(channels, width, 3, padding=1), nn.ReLU(),
                                 nn.Conv2d(width, channels, 3, padding=1), nn.Sigmoid())

    def forward(self, x):
        return self.net(x)


class DnCNN(nn.Module):
    """DnCNN (Zhang et al., 2017): conv + ReLU, (depth - 2) x (conv + BN + ReLU), conv; the
    network predicts the noise and returns ``x - noise`` (residual learning). Any (H, W).

    The last convolution starts at zero (``zero_init=True``), so the untrained network is the
    identity and training starts from the noisy input's error instead of a random one.
    """

    def __init__(self, channels: int = 3, depth: int = 17, width: int = 64, *,
                 zero_init: bool = True):
        super().__init__()
        if depth < 2:
            raise ValueError(f"depth must be >= 2, got {depth}")
        layers = [nn.Conv2d(channels, width, 3, padding=1), nn.ReLU(inplace=True)]
        for _ in range(depth - 2):
            layers += [nn.Conv2d(width, width, 3, padding=1, bias=False), nn.BatchNorm2d(width),
                       nn.ReLU(inplace=True)]
        layers.append(nn.Conv2d(width, channels, 3, padding=1))
        if zero_init:
            nn.init.zeros_(layers[-1].weight)
            nn.init.zeros_(layers[-1].bias)
        self.noise = nn.Sequential(*layers)

    def forward(self, x):
        return x - self.noise(x)


# The source's three denoising autoencoders for 150x150 images, as layer specifications:
# (out_channels, kernel, stride, padding, output_padding); output_padding None = a Conv2d.
AUTOENCODERS = {
    "128x10x10": ([(16, 3, 2, 1, None), (32, 3, 2, 1, None), (64, 3, 2, 1, None),
                   (128, 3, 2, 1, None)],
                  [(64, 3, 2, 1, 0), (32, 3, 2, 1, 1), (16, 3, 2, 1, 0), (3, 3, 2, 1, 1)]),
    "32x38x38": ([(16, 3, 2, 1, None), (32, 3, 2, 1, None)],
                 [(16, 3, 2, 1, 0), (3, 3, 2, 1, 1)]),
    "32x71x71": ([(16, 5, 1, 0, None), (32, 5, 2, 0, None)],
                 [(16, 5, 2, 0, 1), (3, 5, 1, 0, 0)]),
}


class ConvAutoencoder(nn.Module):
    """Strided convolutions down to a latent map, transposed convolutions back up, ReLU
    between layers and a sigmoid at the end. ``ConvAutoencoder.source(name)`` builds one of the
    source's three (``AUTOENCODERS``); sizes follow the conv / transposed-conv formulas."""

    def __init__(self, encoder: list[tuple], decoder: list[tuple], in_channels: int = 3):
        super().__init__()
        enc, c = [], in_channels
        for i, (out, k, s, p, _) in enumerate(encoder):
            enc.append(nn.Conv2d(c, out, k, stride=s, padding=p))
            if i < len(encoder) - 1:
                enc.append(nn.ReLU())
            c = out
        dec = []
        for i, (out, k, s, p, op) in enumerate(decoder):
            dec.append(nn.ConvTranspose2d(c, out, k, stride=s, padding=p, output_padding=op))
            dec.append(nn.ReLU() if i < len(decoder) - 1 else nn.Sigmoid())
            c = out
        self.encoder, self.decoder = nn.Sequential(*enc), nn.Sequential(*dec)

    @classmethod
    def source(cls, name: str) -> "ConvAutoencoder":
        if name not in AUTOENCODERS:
            raise ValueError(f"unknown autoencoder {name!r}; expected one of {list(AUTOENCODERS)}")
        return cls(*AUTOENCODERS[name])

    def forward(self, x):
        return self.decoder(self.encoder(x))


def decoder_output_paddings(encoder: Sequence[tuple], size: int) -> list[int]:
    """The ``output_padding`` that makes each transposed convolution of a mirrored decoder
    restore the size of the matching encoder input, for square inputs of ``size``.

    ``encoder`` is a list of ``(out_channels, kernel, stride, padding, _)`` as in
    ``AUTOENCODERS``; the decoder is assumed to reuse each layer's kernel, stride and padding in
    reverse order. Raises ``ValueError`` if some size cannot be restored.
    """
    from labutils.shapes import conv_output_size, conv_transpose_output_size

    sizes = [size]
    for _, k, s, p, _ in encoder:
        sizes.append(conv_output_size(sizes[-1], k, stride=s, padding=p))
    paddings = []
    for (_, k, s, p, _), n_in, n_out in zip(reversed(encoder), reversed(sizes[1:]),
                                            reversed(sizes[:-1])):
        op = n_out - conv_transpose_output_size(n_in, k, stride=s, padding=p)
        if not 0 <= op < s:
            raise ValueError(f"a transposed conv (k={k}, s={s}, p={p}) cannot map {n_in} back "
                             f"to {n_out}: it would need output_padding {op}")
        paddings.append(op)
    return paddings


def mirrored_autoencoder(name: str, size: int) -> ConvAutoencoder:
    """One of the source's autoencoders (``AUTOENCODERS``) rebuilt for square inputs of
    ``size``: the same layers, with the decoder's output paddings worked out for that size."""
    if name not in AUTOENCODERS:
        raise ValueError(f"unknown autoencoder {name!r}; expected one of {list(AUTOENCODERS)}")
    encoder, decoder = AUTOENCODERS[name]
    paddings = decoder_output_paddings(encoder, size)
    decoder = [(out, k, s, p, op) for (out, k, s, p, _), op in zip(decoder, paddings)]
    return ConvAutoencoder(encoder, decoder)


class UpsampleDecoderAutoencoder(nn.Module):
    """A two-stage autoencoder whose decoder can upsample two ways (Odena et al., 2016):
    ``"transposed"``, a 3x3 transposed convolution with stride 2, or ``"resize"``, nearest-
    neighbour 2x upsampling followed by a 3x3 convolution. The encoders are identical."""

    def __init__(self, upsample: str, channels: int = 3, width: int = 32):
        super().__init__()
        if upsample not in ("transposed", "resize"):
            raise ValueError(f"upsample must be 'transposed' or 'resize', got {upsample!r}")

        def up(c_in, c_out):
            if upsample == "transposed":
                return nn.ConvTranspose2d(c_in, c_out, 3, stride=2, padding=1, output_padding=1)
            return nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"),
                                 nn.Conv2d(c_in, c_out, 3, padding=1))

        self.encoder = nn.Sequential(nn.Conv2d(channels, width, 3, stride=2, padding=1), nn.ReLU(),
                                     nn.Conv2d(width, width, 3, stride=2, padding=1), nn.ReLU())
        self.decoder = nn.Sequential(up(width, width), nn.ReLU(), up(width, channels),
                                     nn.Sigmoid())

    def forward(self, x):
        return self.decoder(self.encoder(x))
