"""Issue 12 pilot: which fine-tuning recipe should chapter 6's strong transfer run use?

Chapter 6 fine-tunes an eight-class SpeedrunNet source (CIFAR-10 without cats and dogs) on all
10,000 cat and dog training images for 20 epochs at learning rate 4.0 and scores it on the test
images. Choosing a better recipe on those test images would make the chapter's accuracy an
optimistic estimate, so this pilot holds out ``--val-per-class`` cats and as many dogs from the
*training* images, fine-tunes on the rest, and scores every recipe on the held-out images (with
the chapter's test-time augmentation). The test images are never loaded.

Each recipe is EPOCHS:LR (target epochs, the recipe's learning rate); each value of
``--source-epochs`` trains one source network, and every recipe fine-tunes every source. The
first source with the first recipe is the reference: every other pair's paired difference from
it on the same validation images is printed with a 95% interval over images (it says nothing
about the seed spread). Fine-tuning
sees 8,000 images instead of the chapter's 10,000, so an epoch has fewer steps (15 against 19).
Usage: LAB_DATA=../shared/data .venv/bin/python benchmarks/transfer_recipe_pilot.py
       --source-epochs 10 --recipes 20:4 30:4 20:2
       (or --source-epochs 10 20 --recipes 20:4: is a longer-trained source the better start?)
"""

from __future__ import annotations

import argparse
import copy
import dataclasses

import numpy as np
import torch

from labutils.data import (CIFAR10_CLASSES, CIFAR10_MEAN, CIFAR10_STD, load_tensors,
                           stratified_indices)
from labutils.device import pick_device, seed_everything
from labutils.speedrun import SpeedrunConfig, normalise, train_speedrun
from labutils.transfer import replace_head

from _pilot import describe, held_out_hits, print_paired


def recipe(text: str) -> tuple[int, float]:
    epochs, lr = text.split(":")
    return int(epochs), float(lr)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source-epochs", type=float, nargs="+", default=[10],
                        help="one source network per value; the first is the reference")
    parser.add_argument("--recipes", type=recipe, nargs="+", default=[(20, 4.0)],
                        help="EPOCHS:LR pairs; the first is the reference (chapter 6: 20:4)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--val-per-class", type=int, default=1000)
    parser.add_argument("--quick", action="store_true",
                        help="tiny widths and subsets: checks that the script runs (pass "
                             "small --source-epochs and recipes too, e.g. 1 2 and 1:4)")
    args = parser.parse_args()
    if len(set(args.recipes)) < len(args.recipes):
        parser.error("each recipe once, please")
    if len(set(args.source_epochs)) < len(args.source_epochs):
        parser.error("each source length once, please")
    device = pick_device()
    base = SpeedrunConfig(batch_size=512)
    if args.quick:
        base = SpeedrunConfig(widths=(16, 32, 32), batch_size=128)

    images, labels = load_tensors("cifar10", "train")
    cat, dog = CIFAR10_CLASSES.index("cat"), CIFAR10_CLASSES.index("dog")
    is_source = ~torch.isin(labels, torch.tensor([cat, dog]))
    source_x = normalise(images[is_source], CIFAR10_MEAN, CIFAR10_STD)
    source_y = torch.unique(labels[is_source], return_inverse=True)[1]   # 8 classes -> 0..7
    target_x = normalise(images[~is_source], CIFAR10_MEAN, CIFAR10_STD)
    target_y = (labels[~is_source] == dog).long()                        # 0 cat, 1 dog
    # the source's image order as in chapter 6 (its first draw from default_rng(seed))
    source_pick = np.random.default_rng(args.seed).permutation(len(source_y))
    split_rng = np.random.default_rng([args.seed, 1])
    val = stratified_indices(target_y, args.val_per_class, split_rng)
    fit_idx = split_rng.permutation(np.setdiff1d(np.arange(len(target_y)), val))
    if args.quick:
        source_pick, fit_idx = source_pick[:2_000], fit_idx[:500]
    # the source is scored on 2,000 of its own training images: a check that it learned
    source_check = source_pick[:2_000]
    print(f"source: {len(source_pick):,} images of 8 classes; target: {len(fit_idx):,} cat/dog "
          f"training images, {len(val):,} held out from the training set for validation")

    fit_set = (target_x[fit_idx], target_y[fit_idx])
    val_x, val_y = target_x[val], target_y[val]
    correct = {}
    for source_epochs in args.source_epochs:
        strong = dataclasses.replace(base, epochs=source_epochs)
        source = train_speedrun(strong, (source_x[source_pick], source_y[source_pick]),
                                (source_x[source_check], source_y[source_check]),
                                device=device, seed=args.seed, eval_each_epoch=False)
        print(f"source SpeedrunNet {strong.widths}, {strong.epochs:g} epochs: "
              f"{source.train_seconds / 60:.1f} min, accuracy on 2,000 of its training images "
              f"{source.test_acc_plain:.2%}", flush=True)
        for epochs, lr in args.recipes:
            cfg = dataclasses.replace(strong, epochs=epochs, lr=lr, whiten_bias_epochs=0)
            seed_everything(args.seed)   # the new head's initialisation, as in chapter 6
            start = copy.deepcopy(source.model)
            replace_head(start, 2)
            run = train_speedrun(cfg, fit_set, (val_x, val_y), device=device, seed=args.seed,
                                 model=start, eval_each_epoch=False)
            hits = correct[source_epochs, epochs, lr] = held_out_hits(run, cfg, val_x, val_y,
                                                                      device)
            print(f"source {source_epochs:g} epochs, fine-tuned {epochs} epochs at lr {lr:g}: "
                  f"{describe(hits)}, {run.test_acc_plain:.2%} without, "
                  f"{run.train_seconds / 60:.1f} min", flush=True)
    print_paired(correct, (args.source_epochs[0], *args.recipes[0]),
                 lambda key: f"source {key[0]:g}, {key[1]}:{key[2]:g}")


if __name__ == "__main__":
    main()
