"""Segmentation scores against scikit-learn/scikit-image, the U-Net's shapes, tiled == whole
prediction, and image/mask alignment under joint augmentation."""

import numpy as np
import pytest
import torch
from sklearn.metrics import f1_score, jaccard_score
import torch.nn.functional as F
from torch import nn

from labutils.segmentation import UNet, binary_scores, joint_augment, predict_tiled, rand_error
from device_spy import first_input_device  # tests/device_spy.py


def test_binary_scores_match_scikit_learn():
    rng = np.random.default_rng(0)
    target = rng.random((64, 64)) < 0.3
    pred = target ^ (rng.random((64, 64)) < 0.1)
    s = binary_scores(pred, target)
    assert s["dice"] == pytest.approx(f1_score(target.ravel(), pred.ravel()))
    assert s["iou"] == pytest.approx(jaccard_score(target.ravel(), pred.ravel()))
    assert s["pixel error"] == pytest.approx(np.mean(pred != target))
    assert binary_scores(target, target) == {"pixel error": 0.0, "dice": 1.0, "iou": 1.0}
    with pytest.raises(ValueError):
        binary_scores(pred[:10], target)


def test_rand_error_is_zero_for_a_perfect_map_and_grows_with_merges():
    membrane = np.zeros((40, 40), bool)
    membrane[:, 19:21] = True           # two cells, split by a vertical membrane
    membrane[19:21, :] = True           # four cells
    assert rand_error(membrane, membrane) == pytest.approx(0.0)
    broken = membrane.copy()
    broken[19:21, 5:8] = False          # a gap merges the two left cells
    assert rand_error(broken, membrane) > 0.1
    assert rand_error(np.zeros_like(membrane), membrane) > rand_error(broken, membrane)


def _pair_count_rand_error(pred, target, singletons):
    """1 - F-score over pairs of distinct pixels that are not true membrane, counted one by one."""
    from skimage.measure import label

    pred_ids = label(~pred, connectivity=1).ravel().astype(np.int64)
    if singletons:
        pred_ids[pred.ravel()] = -1 - np.arange(pred.sum())   # distinct labels, none repeated
    return _pair_count_cell_error(pred_ids.reshape(pred.shape), target)


@pytest.mark.parametrize("convention", ["singletons", "one segment"])
def test_rand_error_matches_a_pair_count(convention):
    rng = np.random.default_rng(1)
    target = np.zeros((14, 14), bool)
    target[:, 6] = target[9, :] = True
    pred = target ^ (rng.random(target.shape) < 0.15)
    expected = _pair_count_rand_error(pred, target, singletons=convention == "singletons")
    assert rand_error(pred, target, predicted_membrane=convention) == pytest.approx(expected)


def test_the_two_conventions_differ_on_a_slightly_thick_membrane():
    membrane = np.zeros((40, 40), bool)
    membrane[:, 19:21] = membrane[19:21, :] = True   # four cells
    thick = np.zeros_like(membrane)
    thick[:, 18:22] = thick[18:22, :] = True         # the right cells, membrane 1 px too wide
    singletons = rand_error(thick, membrane, predicted_membrane="singletons")
    lumped = rand_error(thick, membrane, predicted_membrane="one segment")
    assert singletons == pytest.approx(_pair_count_rand_error(thick, membrane, singletons=True))
    assert 0 < singletons < lumped
    with pytest.raises(ValueError, match="predicted_membrane"):
        rand_error(thick, membrane, predicted_membrane="lumped")


@pytest.mark.parametrize("skips", [True, False])
def test_unet_shapes(skips):
    net = UNet(1, 1, base=4, depth=3, skips=skips)
    assert net(torch.randn(2, 1, 48, 64)).shape == (2, 1, 48, 64)
    with pytest.raises(ValueError, match="multiples of 8"):
        net(torch.randn(1, 1, 50, 64))


def test_skip_connections_double_the_decoder_inputs():
    with_skips = UNet(1, 1, base=4, depth=3)
    without = UNet(1, 1, base=4, depth=3, skips=False)
    assert [m[0].in_channels for m in with_skips.merge] == [32, 16, 8]
    assert [m[0].in_channels for m in without.merge] == [16, 8, 4]


def test_tiled_prediction_equals_whole_prediction_where_both_fit():
    torch.manual_seed(0)
    net = UNet(1, 2, base=4, depth=2).eval()
    image = torch.randn(1, 1, 96, 80)
    margin, tile = 32, 96            # margin beyond the receptive-field radius; step 32 = 8 * 2**2
    tiled = predict_tiled(net, image, tile=tile, margin=margin)
    # 80 is not a multiple of the step: the image is still mirrored once, by the margin
    padded = torch.nn.functional.pad(image, (margin,) * 4, mode="reflect")
    with torch.no_grad():
        whole = net(padded)[:, :, margin:margin + 96, margin:margin + 80]
    assert tiled.shape == (1, 2, 96, 80)
    assert torch.allclose(tiled, whole, atol=1e-5)
    with pytest.raises(ValueError):
        predict_tiled(net, image, tile=32, margin=16)


def test_joint_augmentation_keeps_image_and_mask_aligned():
    from torchvision import tv_tensors

    torch.manual_seed(0)
    mask = torch.zeros(1, 64, 64, dtype=torch.uint8)
    mask[:, 5:22, 3:40] = 1
    mask[:, 40:60, 45:58] = 1
    image = mask.float() * 0.8 + 0.1     # the image shows the mask: alignment is checkable
    for elastic in (0.0, 30.0):
        augment = joint_augment(elastic_alpha=elastic, elastic_sigma=5.0)
        for _ in range(10):
            img, m = augment(tv_tensors.Image(image), tv_tensors.Mask(mask))
            assert isinstance(m, tv_tensors.Mask) and m.shape == mask.shape
            if elastic == 0:  # flips and 90-degree turns are exact
                assert torch.equal((img > 0.5).to(torch.uint8), m)
                assert m.sum() == mask.sum()
            else:  # resampled: the image (bilinear) and mask (nearest) agree except at edges
                agree = ((img > 0.5).to(torch.uint8) == m).float().mean()
                assert agree > 0.97 and set(m.unique().tolist()) <= {0, 1}
    jitter = joint_augment(brightness=0.5, contrast=0.5)
    img, m = jitter(tv_tensors.Image(image), tv_tensors.Mask(mask))
    assert set(m.unique().tolist()) <= {0, 1} and m.sum() == mask.sum()


def test_bce_dice_loss_matches_its_formula():
    from labutils.segmentation import bce_dice_loss

    torch.manual_seed(0)
    logits, target = torch.randn(2, 1, 8, 8), (torch.rand(2, 1, 8, 8) > 0.7).float()
    p = torch.sigmoid(logits)
    bce = -(target * torch.log(p) + (1 - target) * torch.log(1 - p)).mean()
    dice = (2 * (p * target).sum() + 1) / (p.sum() + target.sum() + 1)
    assert torch.allclose(bce_dice_loss(logits, target), bce + 1 - dice, atol=1e-6)
    assert torch.allclose(bce_dice_loss(logits, target, dice_weight=0.0), bce, atol=1e-6)
    perfect = bce_dice_loss(20 * (2 * target - 1), target)
    assert perfect < 1e-3 < bce_dice_loss(-20 * (2 * target - 1), target)
    with pytest.raises(ValueError):
        bce_dice_loss(logits, target[:1])


def test_random_tiles_keep_image_and_mask_aligned():
    from labutils.segmentation import RandomTiles, joint_augment

    torch.manual_seed(0)
    images = torch.rand(3, 1, 40, 48)
    masks = (images > 0.5).float()      # the mask is a function of the pixel it labels
    tiles = RandomTiles(images, masks, tile=16, batch_size=5, steps=4, context=6,
                        augment=joint_augment(), seed=1)
    batches = list(tiles)
    assert len(batches) == len(tiles) == 4
    for x, y in batches:
        assert x.shape == y.shape == (5, 1, 16, 16) and type(x) is torch.Tensor
        assert torch.equal(y, (x > 0.5).float())
    plain = [x for x, _ in RandomTiles(images, masks, tile=16, batch_size=5, steps=4, context=6,
                                       seed=1)]
    # without augmentation every tile is the centre of its window: a window of the slices
    # themselves (never of the mirrored context)
    windows = images.unfold(2, 16, 1).unfold(3, 16, 1).reshape(3, -1, 16, 16).flatten(0, 1)

    def distance(x):
        return (windows - x[0]).abs().flatten(1).amax(1).min()

    assert all(distance(x) == 0 for x in torch.cat(plain))
    # with augmentation (flips, rotations) some tiles are not windows of the slices any more
    assert any(distance(x) > 0 for x in torch.cat([x for x, _ in batches]))
    with pytest.raises(ValueError):
        RandomTiles(images, masks[:2], tile=16, batch_size=2, steps=1)


def _brute_force_border_weights(membrane, w0, sigma):
    # d1, d2 from every pixel to every pixel of every cell, then the paper's formula
    from skimage.measure import label

    cells = label(~membrane, connectivity=1)
    yy, xx = np.indices(membrane.shape)
    per_cell = []
    for k in range(1, cells.max() + 1):
        ky, kx = np.nonzero(cells == k)
        d = np.sqrt((yy[..., None] - ky) ** 2 + (xx[..., None] - kx) ** 2).min(-1)
        per_cell.append(d)
    d = np.sort(np.stack(per_cell), axis=0)
    w = np.ones(membrane.shape)
    w[membrane] += w0 * np.exp(-(d[0] + d[1])[membrane] ** 2 / (2 * sigma ** 2))
    return w


def test_border_weights_match_a_brute_force_computation():
    from labutils.segmentation import border_weights

    membrane = np.zeros((30, 34), bool)
    membrane[:, 10:12] = True            # a thin membrane between two cells
    membrane[:, 20:26] = True            # a thick one
    membrane[15, :] = True               # cut across: six cells
    membrane[0, :] = True
    expected = _brute_force_border_weights(membrane, 10.0, 3.0)
    exact = border_weights(membrane, w0=10.0, sigma=3.0, reach=100.0)
    assert np.allclose(exact, expected)
    # the default reach drops only terms below w0 * exp(-reach**2 / 2)
    assert np.abs(border_weights(membrane, w0=10.0, sigma=3.0) - expected).max() \
        <= 10.0 * np.exp(-4.0 ** 2 / 2)
    assert (exact[~membrane] == 1).all()
    # the thin membrane between two close cells weighs more than the middle of the thick one
    assert exact[5, 10] > exact[5, 23] > 1
    with pytest.raises(ValueError):
        border_weights(np.zeros((2, 3, 4), bool))


def test_pixel_weights_weight_the_cross_entropy_only():
    from labutils.segmentation import bce_dice_loss, border_weighted_loss, border_weights

    torch.manual_seed(0)
    logits, target = torch.randn(2, 1, 8, 8), (torch.rand(2, 1, 8, 8) > 0.7).float()
    w = 1 + 3 * torch.rand(2, 1, 8, 8)
    p = torch.sigmoid(logits)
    bce = -(w * (target * torch.log(p) + (1 - target) * torch.log(1 - p))).mean()
    dice = (2 * (p * target).sum() + 1) / (p.sum() + target.sum() + 1)
    assert torch.allclose(bce_dice_loss(logits, target, pixel_weights=w), bce + 1 - dice,
                          atol=1e-6)
    assert torch.allclose(bce_dice_loss(logits, target, pixel_weights=torch.ones_like(w)),
                          bce_dice_loss(logits, target))
    with pytest.raises(ValueError):
        bce_dice_loss(logits, target, pixel_weights=w[:1])
    # the weighted loss computes the weights from each target mask
    loss = border_weighted_loss(w0=5.0, sigma=2.0)
    wm = torch.from_numpy(np.stack([border_weights(t[0].numpy() > 0.5, w0=5.0, sigma=2.0)
                                    for t in target]))[:, None]
    assert torch.allclose(loss(logits, target), bce_dice_loss(logits, target, pixel_weights=wm))


def test_grid_elastic_moves_image_and_mask_together_by_the_stated_amount():
    from torchvision import tv_tensors

    from labutils.segmentation import grid_elastic

    torch.manual_seed(0)
    warp = grid_elastic(3, 10.0)
    # at the grid points (the corners among them) the displacement is the drawn vector itself
    corner = torch.cat([warp.make_params([tv_tensors.Image(torch.zeros(1, 40, 60))])
                        ["displacement"][0, 0, 0] for _ in range(400)])
    pixels = corner.view(-1, 2) * torch.tensor([60 / 2, 40 / 2])
    assert pixels.std(0).sub(10.0).abs().max() < 1.5
    mask = torch.zeros(1, 64, 64, dtype=torch.uint8)
    mask[:, 8:30, 10:44] = 1
    mask[:, 40:58, 30:60] = 1
    image = mask.float() * 0.8 + 0.1
    for augment in (grid_elastic(3, 6.0), joint_augment(grid_sigma=6.0)):
        moved = 0
        for _ in range(10):
            img, m = augment(tv_tensors.Image(image), tv_tensors.Mask(mask))
            assert isinstance(m, tv_tensors.Mask) and set(m.unique().tolist()) <= {0, 1}
            assert ((img > 0.5).to(torch.uint8) == m).float().mean() > 0.97
            moved += int(not torch.equal(m, mask))
        assert moved >= 8   # the warp alone moves the mask in (almost) every draw
    with pytest.raises(ValueError):
        joint_augment(elastic_alpha=30.0, grid_sigma=6.0)


def _pair_count_cell_error(cells, target):
    """1 - F-score over pairs of distinct pixels outside the true membrane, counted one by one."""
    from skimage.measure import label

    true_ids = label(~target, connectivity=1).ravel()
    keep = true_ids > 0
    t, p = true_ids[keep], np.asarray(cells).ravel()[keep]
    same_t, same_p = t[:, None] == t[None, :], p[:, None] == p[None, :]
    off = ~np.eye(len(t), dtype=bool)
    both = np.sum(same_t & same_p & off)
    precision, recall = both / np.sum(same_p & off), both / np.sum(same_t & off)
    return 1 - 2 * precision * recall / (precision + recall)


def test_cell_rand_error_matches_a_pair_count_with_label_zero_as_a_segment():
    from labutils.segmentation import cell_rand_error

    rng = np.random.default_rng(2)
    target = np.zeros((12, 12), bool)
    target[:, 5] = target[8, :] = True
    cells = rng.integers(0, 4, target.shape)          # label 0 included
    assert cell_rand_error(cells, target) == pytest.approx(_pair_count_cell_error(cells, target))
    with pytest.raises(ValueError, match="differ in shape"):
        cell_rand_error(cells[:-1], target)


def test_watershed_cells_fills_thick_membranes_but_not_gaps():
    from labutils.segmentation import cell_rand_error, watershed_cells

    membrane = np.zeros((40, 40), bool)
    membrane[:, 19:21] = True                          # two cells, a 2-pixel membrane
    prob = np.where(membrane, 0.9, 0.1)
    prob[:, 17:23] = np.maximum(prob[:, 17:23], 0.7)   # predicted three times too thick
    cells = watershed_cells(prob, 0.5)
    assert cells.min() >= 1 and len(np.unique(cells)) == 2
    assert set(np.unique(cells[:, :17])) != set(np.unique(cells[:, 23:]))
    assert cell_rand_error(cells, membrane) == pytest.approx(0.0)
    # with the thick membrane's pixels as singletons the same map is penalised
    assert rand_error(prob > 0.5, membrane, predicted_membrane="singletons") > 0.05
    gap = prob.copy()
    gap[18:22, 17:23] = 0.2                            # a gap: the two cells merge
    assert len(np.unique(watershed_cells(gap, 0.5))) == 1
    assert cell_rand_error(watershed_cells(gap, 0.5), membrane) > 0.3
    assert (watershed_cells(np.full((5, 5), 0.9)) == 1).all()
    with pytest.raises(ValueError):
        watershed_cells(prob, 1.0)


def test_watershed_rand_error_averages_the_slices_of_a_stack():
    import torch

    from labutils.segmentation import cell_rand_error, watershed_cells, watershed_rand_error

    membrane = np.zeros((2, 40, 40), bool)
    membrane[:, :, 19:21] = True
    probs = np.where(membrane, 0.9, 0.1)
    probs[1, 18:22, 17:23] = 0.2                      # slice 1 has a gap: its cells merge
    per_slice = [cell_rand_error(watershed_cells(p, 0.5), m) for p, m in zip(probs, membrane)]
    assert per_slice[0] == pytest.approx(0.0) and per_slice[1] > 0.3
    as_tensors = watershed_rand_error(torch.from_numpy(probs)[:, None],
                                      torch.from_numpy(membrane)[:, None], 0.5)
    assert as_tensors == pytest.approx(np.mean(per_slice))
    assert watershed_rand_error(probs, membrane, 0.5) == pytest.approx(as_tensors)
    with pytest.raises(ValueError, match="differ in shape"):
        watershed_rand_error(probs, membrane[:1], 0.5)
    with pytest.raises(ValueError, match="expected"):
        watershed_rand_error(probs[0], membrane[0], 0.5)


def test_choose_thresholds_picks_the_lowest_errors_on_a_designed_map():
    from labutils.segmentation import choose_thresholds, watershed_rand_error

    membrane = np.zeros((2, 40, 40), bool)
    membrane[:, :, 19:21] = True                      # two cells per slice
    probs = np.where(membrane, 0.9, 0.1)
    probs[1, 18:22, 17:23] = 0.3    # a faint patch across the membrane: 8 membrane, 16 cell px
    # watershed: at 0.05 nothing is a seed (one cell), at 0.2 the cells are the seeds, at 0.5
    # the patch joins the two seeds of slice 1; pixel error: 16 wrong at 0.2, 8 at 0.3 and 0.5
    t_ws, t_px, rand, pixel = choose_thresholds(
        torch.from_numpy(probs)[:, None], membrane, watershed_thresholds=(0.5, 0.05, 0.2),
        pixel_thresholds=(0.2, 0.3, 0.5, 0.95))
    assert (t_ws, t_px) == (0.2, 0.3)   # 0.3 and 0.5 tie; "> t" calls the 0.3 patch a cell
    assert list(rand) == [0.05, 0.2, 0.5]
    assert rand[0.2] == pytest.approx(0.0) and min(rand[0.05], rand[0.5]) > 0.1
    assert rand[0.5] == pytest.approx(watershed_rand_error(probs, membrane, 0.5))
    assert pixel[0.2] == pytest.approx(16 / probs.size)
    assert pixel[0.3] == pixel[0.5] == pytest.approx(8 / probs.size)
    # ties go to the smaller threshold
    assert choose_thresholds(probs[:1], membrane[:1], watershed_thresholds=(0.5, 0.2),
                             pixel_thresholds=(0.6, 0.4))[:2] == (0.2, 0.4)
    with pytest.raises(ValueError, match="at least one"):
        choose_thresholds(probs, membrane, watershed_thresholds=(), pixel_thresholds=(0.5,))
    with pytest.raises(ValueError, match="differ in shape"):
        choose_thresholds(probs, membrane[:1], watershed_thresholds=(0.5,),
                          pixel_thresholds=(0.5,))


def test_grid_tiles_cover_the_images_once_in_row_order():
    from labutils.segmentation import grid_tiles

    x = torch.arange(2 * 1 * 8 * 12, dtype=torch.float32).view(2, 1, 8, 12)
    y = -x
    tiles = grid_tiles(x, y, 4)
    assert len(tiles) == 6 and all(t.shape == (2, 1, 4, 4) for pair in tiles for t in pair)
    rows = [torch.cat([tiles[r * 3 + c][0] for c in range(3)], dim=-1) for r in range(2)]
    assert torch.equal(torch.cat(rows, dim=-2), x)
    assert all(torch.equal(b, -a) for a, b in tiles)
    with pytest.raises(ValueError, match="does not divide"):
        grid_tiles(x, y, 5)
    with pytest.raises(ValueError, match="same N"):
        grid_tiles(x, y[:1], 4)


def _fully_convolutional(channels=2):
    # receptive-field radius 1 + 2 + 1 = 4 pixels
    return nn.Sequential(nn.Conv2d(channels, 6, 3, padding=1), nn.ReLU(),
                         nn.Conv2d(6, 6, 5, padding=2), nn.ReLU(), nn.Conv2d(6, 3, 3, padding=1))


@pytest.mark.parametrize("h,w,tile,margin", [(100, 77, 36, 8), (77, 100, 36, 8), (13, 9, 16, 4),
                                             (50, 50, 50, 4)])
def test_tiled_prediction_equals_whole_prediction_on_sizes_that_are_not_multiples_of_the_step(
        h, w, tile, margin):
    torch.manual_seed(0)
    net = _fully_convolutional().double().eval()
    image = torch.randn(2, 2, h, w, dtype=torch.float64)
    before = image.clone()
    tiled = predict_tiled(net, image, tile=tile, margin=margin)
    with torch.no_grad():
        padded = F.pad(image, (margin,) * 4, mode="reflect")
        whole = net(padded)[:, :, margin:margin + h, margin:margin + w]
    assert tiled.shape == (2, 3, h, w)
    torch.testing.assert_close(tiled, whole, rtol=1e-12, atol=1e-12)
    assert torch.equal(image, before)


def test_predict_tiled_says_what_shape_and_sizes_it_expects():
    net = _fully_convolutional().eval()
    with pytest.raises(ValueError, match=r"\(N, C, H, W\).*unsqueeze\(0\)"):
        predict_tiled(net, torch.randn(2, 40, 40), tile=24, margin=4)
    with pytest.raises(ValueError, match=r"margin.*smaller than.*\(6, 40\)"):
        predict_tiled(net, torch.randn(1, 2, 6, 40), tile=24, margin=6)
    with pytest.raises(ValueError, match="margin must be >= 0"):
        predict_tiled(net, torch.randn(1, 2, 40, 40), tile=24, margin=-1)
    with pytest.raises(ValueError, match="empty"):
        predict_tiled(net, torch.randn(0, 2, 40, 40), tile=24, margin=4)


def test_predict_tiled_runs_on_the_models_device():
    net = _fully_convolutional().to("meta")
    image = torch.randn(1, 2, 40, 40)
    call = lambda: predict_tiled(net, image, tile=24, margin=4)  # noqa: E731
    assert first_input_device(net, call).type == "meta"


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_predict_tiled_on_a_gpu_model_returns_on_the_inputs_device():
    torch.manual_seed(0)
    net = _fully_convolutional().eval()
    image = torch.randn(1, 2, 100, 77)
    cpu = predict_tiled(net, image, tile=24, margin=5)
    gpu = predict_tiled(net.cuda(), image, tile=24, margin=5)
    assert gpu.device == image.device
    torch.testing.assert_close(gpu, cpu, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("bad", [0.3, 2, -1, 255])
def test_binary_scores_reject_masks_that_are_not_binary(bad):
    from labutils.segmentation import cell_rand_error

    good = np.array([[0, 1], [1, 0]])
    wrong = np.array([[0, 1], [bad, 0]])
    for call in (lambda: binary_scores(wrong, good), lambda: binary_scores(good, wrong),
                 lambda: rand_error(wrong, good), lambda: cell_rand_error(good, wrong)):
        with pytest.raises(ValueError, match=r"boolean or exactly 0/1.*> 0\.5"):
            call()
    # booleans, 0/1 integers and 0./1. floats (tensors too) are all fine and agree
    expected = binary_scores(good.astype(bool), good.astype(bool))
    assert binary_scores(good.astype(float), torch.tensor(good)) == expected


def test_probability_inputs_are_checked():
    from labutils.segmentation import bce_dice_loss, border_weights, watershed_cells

    with pytest.raises(ValueError, match=r"probabilities in \[0, 1\].*sigmoid"):
        watershed_cells(np.array([[-2.0, 3.0], [0.1, 0.2]]))
    with pytest.raises(ValueError, match="boolean or exactly 0/1"):
        border_weights(np.array([[0.0, 0.3], [1.0, 0.0]]))
    with pytest.raises(ValueError, match=r"target must lie in \[0, 1\]"):
        bce_dice_loss(torch.zeros(1, 1, 2, 2), torch.full((1, 1, 2, 2), 255.0))
