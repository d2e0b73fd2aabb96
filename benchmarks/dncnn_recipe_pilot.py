"""Issue 13 pilot: how far does a longer or deeper DnCNN move the sigma-25 gap to BM3D?

Chapter 7's recipe (Adam 1e-3, cosine schedule, batch 128, fresh noise every epoch, CIFAR-10
classes 0-4) for one DnCNN at sigma 25; prints the validation PSNR after every epoch on the
chapter's validation set (500 test images of classes 5-9, noise seed 5) and, at the end, the
paired PSNR gap to BM3D on the first 200 of those images (BM3D takes minutes here). The
chapter's table uses a random 200 of the 5,000 test images, which overlap these only by chance.
With --blind-epochs N the sigma-25 model starts from a blind model (sigma 0-55, trained N epochs
with its own cosine schedule) and is fine-tuned for --epochs: one way to share training between
the chapter's per-sigma models.
Usage: LAB_DATA=../shared/data .venv/bin/python benchmarks/dncnn_recipe_pilot.py --depth 10
       --width 48 --epochs 15
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
import torch.nn.functional as F

from labutils.data import load_tensors
from labutils.denoise import DnCNN, NoisyBatches, classical_denoise, denoise_all, psnr
from labutils.device import pick_device, seed_everything
from labutils.stats import compare_paired
from labutils.train import fit


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--depth", type=int, default=10)
    parser.add_argument("--width", type=int, default=48)
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--train-images", type=int, default=None, help="default: all 25,000")
    parser.add_argument("--compare-images", type=int, default=200)
    parser.add_argument("--blind-epochs", type=int, default=0,
                        help="first train a blind model (sigma 0-55) this long, then fine-tune "
                             "it at sigma 25 for --epochs (0: train from scratch)")
    args = parser.parse_args()
    device = pick_device()
    images, labels = load_tensors("cifar10", "train")
    test_images, test_labels = load_tensors("cifar10", "test")
    train_set, test_set = images[labels < 5][:args.train_images], test_images[test_labels >= 5]
    val = NoisyBatches(test_set[:500], 25 / 255, 500, seed=5, fixed=True)
    seed_everything(args.seed)
    model = DnCNN(depth=args.depth, width=args.width).to(device)

    def train(sigma, epochs, label):
        batches = NoisyBatches(train_set, sigma, 128, seed=args.seed)
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        schedule = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs * len(batches))
        start = time.perf_counter()
        history = fit(model, batches, val, F.mse_loss, opt, epochs=epochs, device=device,
                      scheduler=schedule, step_scheduler_every_batch=True, progress=False,
                      verbose=False)
        minutes = (time.perf_counter() - start) / 60
        print(f"DnCNN {args.depth}x{args.width}, {label}, {epochs} epochs, seed {args.seed}: "
              f"{minutes:.1f} min ({minutes / epochs:.2f} min per epoch)")
        print("  validation PSNR at sigma 25 per epoch (dB):",
              [round(float(10 * np.log10(1 / v)), 2) for v in history.val_loss], flush=True)

    if args.blind_epochs:
        train((0.0, 55 / 255), args.blind_epochs, "blind (sigma 0-55)")
    train(25 / 255, args.epochs, "sigma 25" + (", fine-tuned from blind" if args.blind_epochs
                                               else ""))
    noisy, clean = map(torch.cat, zip(*val))
    noisy, clean = noisy[:args.compare_images], clean[:args.compare_images]
    net = psnr(clean, denoise_all(model, noisy)).numpy()
    bm3d = psnr(clean, classical_denoise("BM3D", noisy, 25 / 255, 1.0, workers=2)).numpy()
    gap = compare_paired(net, bm3d)
    print(f"{len(clean)} validation images: DnCNN {net.mean():.2f} dB, BM3D {bm3d.mean():.2f} dB, "
          f"gap {gap.difference:+.2f} dB, 95% interval [{gap.low:+.2f}, {gap.high:+.2f}]")


if __name__ == "__main__":
    main()
