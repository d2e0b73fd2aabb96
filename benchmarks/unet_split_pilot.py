"""Issue 14 pilot: does longer training or test-time augmentation bring chapter 8's second split
under the pixel-error target?

Chapter 8's U-Net recipe (base 16, depth 4, 128-pixel tiles with 32 pixels of context, batch 8,
100 steps per epoch, Adam 1e-3 with a cosine schedule, the paper's coarse elastic warp and
separation-border weights) trained on slices 6-29 and scored on slices 0-5, as in the chapter's
"A second split". Prints the held-out loss per epoch, then the held-out pixel error at the
threshold chosen on every other training slice, and the watershed Rand error at the training-
chosen seed threshold, without and with 8-fold test-time augmentation (the four 90-degree
rotations of the slice and of its mirror image, probabilities averaged).
Usage: LAB_DATA=../shared/data .venv/bin/python benchmarks/unet_split_pilot.py --epochs 20
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from labutils.data import isbi_membranes
from labutils.device import pick_device, seed_everything
from labutils.segmentation import (RandomTiles, UNet, border_weighted_loss, choose_thresholds,
                                   grid_tiles, joint_augment, predict_tiled,
                                   watershed_rand_error)
from labutils.train import fit

HELD_OUT, TILE, CONTEXT, BATCH, STEPS = 6, 128, 32, 8, 100
PIXEL_THRESHOLDS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
WATERSHED_THRESHOLDS = (0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6)


def probabilities(model, x, tta):
    """Membrane probabilities of each slice (N, H, W); with ``tta`` the mean over the 8 views."""
    views = [(k, flip) for k in range(4) for flip in (False, True)] if tta else [(0, False)]
    out = []
    with torch.no_grad():
        for i in range(len(x)):
            total = 0
            for k, flip in views:
                view = torch.rot90(x[i:i + 1], k, (-2, -1))
                view = view.flip(-1) if flip else view
                p = torch.sigmoid(predict_tiled(model, view, tile=480, margin=112))
                p = p.flip(-1) if flip else p
                total = total + torch.rot90(p, -k, (-2, -1))
            out.append(total / len(views))
    return torch.cat(out)[:, 0].numpy()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    device = pick_device()
    data = isbi_membranes("train")
    images, membranes = data.images, 1 - data.masks                    # 1 = membrane
    train_x, train_y = images[HELD_OUT:], membranes[HELD_OUT:]
    test_x, test_y = images[:HELD_OUT], membranes[:HELD_OUT]
    val_tiles = grid_tiles(test_x, test_y, TILE)
    seed_everything(args.seed)
    model = UNet(1, 1, base=16, depth=4).to(device)
    augment = joint_augment(grid_points=3, grid_sigma=10.0, brightness=0.1, contrast=0.1)
    tiles = RandomTiles(train_x, train_y, tile=TILE, batch_size=BATCH, steps=STEPS,
                        context=CONTEXT, augment=augment, seed=args.seed)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=args.epochs * STEPS)
    start = time.perf_counter()
    history = fit(model, tiles, val_tiles, border_weighted_loss(w0=10.0, sigma=5.0), opt,
                  epochs=args.epochs, device=device, scheduler=schedule,
                  step_scheduler_every_batch=True, progress=False, verbose=False)
    model.eval()
    print(f"{args.epochs} epochs, seed {args.seed}: {(time.perf_counter() - start) / 60:.1f} min; "
          f"held-out loss per epoch {[round(v, 3) for v in history.val_loss]}", flush=True)
    choice_x, choice_y = train_x[::2], train_y[::2]
    target = test_y[:, 0].numpy() > 0.5
    for tta in (False, True):
        train_p, test_p = probabilities(model, choice_x, tta), probabilities(model, test_x, tta)
        t_rand, t_pixel, _, _ = choose_thresholds(train_p, choice_y,
                                                  watershed_thresholds=WATERSHED_THRESHOLDS,
                                                  pixel_thresholds=PIXEL_THRESHOLDS)
        print(f"test-time augmentation {tta}: slices 0-{HELD_OUT - 1}: pixel error "
              f"{np.mean((test_p > t_pixel) != target):.4f} at the training-chosen threshold "
              f"{t_pixel} ({np.mean((test_p > 0.5) != target):.4f} at 0.5); watershed Rand error "
              f"{watershed_rand_error(test_p, target, t_rand):.4f} at seed threshold {t_rand}",
              flush=True)


if __name__ == "__main__":
    main()
