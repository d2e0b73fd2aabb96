"""Per-pixel classification: the U-Net, joint augmentation of image and mask, tiled inference
with mirrored borders, and the scores of the ISBI 2012 membrane challenge.

Masks are binary with 1 = the positive class (for the membranes: 1 = membrane, 0 = cell).
"""

from labutils.segmentation.scores import binary_scores, rand_error, cell_rand_error
from labutils.segmentation.watershed import (watershed_cells, watershed_rand_error,
                                             choose_thresholds)
from labutils.segmentation.tiling import grid_tiles, predict_tiled, RandomTiles
from labutils.segmentation.losses import bce_dice_loss, border_weights, border_weighted_loss
from labutils.segmentation.unet import UNet
from labutils.segmentation.augment import grid_elastic, joint_augment
from labutils.segmentation.multiclass import (PET_CLASSES, PetSegmentation, confusion,
                                              digit_canvases, mean_iou, per_class_iou,
                                              trimap_to_classes)

__all__ = ["binary_scores", "rand_error", "cell_rand_error", "watershed_cells",
           "watershed_rand_error", "choose_thresholds", "grid_tiles", "predict_tiled",
           "RandomTiles", "bce_dice_loss", "border_weights", "border_weighted_loss", "UNet",
           "grid_elastic", "joint_augment", "PET_CLASSES", "PetSegmentation", "confusion",
           "digit_canvases", "mean_iou", "per_class_iou", "trimap_to_classes"]
