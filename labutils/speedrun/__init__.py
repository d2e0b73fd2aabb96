"""A fast CIFAR-10 recipe in the style of airbench (Jordan, 2024), written for CPU and GPU.

The ingredients, each a switch in ``SpeedrunConfig`` so that chapter 5 can remove them one at a
time: a first layer of fixed 2x2 whitening filters computed from the training patches (only its
bias learns, and only early), batch norm whose scales are frozen at 1, GELU, Nesterov SGD whose
learning rate and weight decay are decoupled (the decay per step does not change when the
learning rate is tuned), a 64x larger learning rate for the batch-norm biases, label smoothing,
alternating flips (every image is seen mirrored in every other epoch, not at random), lookahead
(the weights are pulled toward a slow moving average every 5 steps) and test-time augmentation.
"""

from labutils.speedrun.config import SpeedrunConfig
from labutils.speedrun.net import ConvGroup, SpeedrunNet, whitening_filters
from labutils.speedrun.optim import make_optimizer, lr_factor, Lookahead
from labutils.speedrun.tta import tta_logits, predict_tta, evaluate_tta
from labutils.speedrun.recipe import (flip_plan, SpeedrunResult, normalise, train_speedrun,
                                      epochs_for_budget)

__all__ = ["SpeedrunConfig", "ConvGroup", "SpeedrunNet", "whitening_filters", "make_optimizer",
           "lr_factor", "Lookahead", "tta_logits", "predict_tta", "evaluate_tta", "flip_plan",
           "SpeedrunResult", "normalise", "train_speedrun", "epochs_for_budget"]
