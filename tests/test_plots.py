import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from labutils.plots import (plot_confusion_matrix, plot_feature_maps, plot_history,  # noqa: E402
                            plot_kernels, show_images, use_book_style)
from labutils.train import History  # noqa: E402


@pytest.fixture(autouse=True)
def _close():
    yield
    plt.close("all")


def test_plot_history_one_panel_per_metric():
    h = History(train_loss=[1.0, 0.5], val_loss=[1.1, 0.7],
                train_metrics={"acc": [0.5, 0.8]}, val_metrics={"acc": [0.4, 0.7]}, best_epoch=1)
    fig = plot_history(h, ["acc"], title="curves")
    assert isinstance(fig, Figure) and len(fig.axes) == 2
    loss_ax, acc_ax = fig.axes
    assert loss_ax.get_ylabel() == "loss" and acc_ax.get_xlabel() == "epoch"
    assert acc_ax.get_ylabel() == "accuracy"  # known metric names are spelled out
    np.testing.assert_allclose(acc_ax.lines[1].get_ydata(), [0.4, 0.7])
    with pytest.raises(KeyError, match="'f1'"):
        plot_history(h, ["f1"])


def test_plot_history_draws_into_given_axes():
    _, ax = plt.subplots()
    fig = plot_history(History(train_loss=[1.0, 0.5]), ax=ax)
    assert fig is ax.figure and len(ax.lines) == 1


def test_show_images_denormalises():
    x = torch.full((3, 1, 4, 4), -1.0)  # normalised value of 0.0 with mean 0.5, std 0.5
    fig = show_images(x, [0, 1, 2], class_names=["a", "b", "c"], mean=(0.5,), std=(0.5,), ncols=2)
    shown = [a for a in fig.axes if a.images]
    assert len(shown) == 3 and shown[2].get_title() == "c"
    assert shown[0].images[0].get_array().max() == 0.0
    rgb = show_images(torch.randint(0, 255, (2, 3, 5, 5), dtype=torch.uint8))
    assert rgb.axes[0].images[0].get_array().shape == (5, 5, 3)
    with pytest.raises(ValueError):
        show_images(torch.zeros(4))


def test_confusion_matrix_rows_normalised():
    fig = plot_confusion_matrix([0, 0, 1, 1], [0, 1, 1, 1], ["x", "y"])
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert texts == ["0.50", "0.50", "0.00", "1.00"]


def test_kernel_and_feature_map_grids():
    fig = plot_kernels(torch.randn(6, 1, 3, 3), ncols=4)
    assert len([a for a in fig.axes if a.images]) == 6
    small_and_large = torch.stack([torch.full((1, 3, 3), 0.1), torch.full((1, 3, 3), 5.0)])
    own = plot_kernels(small_and_large, titles=["s", "l"])
    assert own.axes[0].images[0].get_clim() == pytest.approx((-0.1, 0.1)) and own.axes[0].get_title() == "s"
    shared = plot_kernels(small_and_large, shared_scale=True)
    assert shared.axes[0].images[0].get_clim() == (-5.0, 5.0)
    assert len([a for a in plot_kernels(torch.randn(2, 3, 5, 5)).axes if a.images]) == 2
    fig = plot_feature_maps(torch.rand(1, 5, 8, 8), ncols=3)
    assert len([a for a in fig.axes if a.images]) == 5
    with pytest.raises(ValueError):
        plot_kernels(torch.randn(3, 3, 3))
    with pytest.raises(ValueError):
        plot_feature_maps(torch.rand(8, 8))
    fig = plot_feature_maps(torch.randn(2, 4, 4), titles=["a", "b"], cmap="bwr", symmetric=True)
    lo, hi = fig.axes[0].images[0].get_clim()
    assert fig.axes[1].get_title() == "b" and lo == -hi
    with pytest.raises(ValueError, match="titles"):
        plot_feature_maps(torch.rand(2, 4, 4), titles=["a"])


def test_book_style_is_one_explicit_call():
    with matplotlib.rc_context():
        use_book_style()
        assert plt.rcParams["image.cmap"] == "gray"


def test_book_style_figure_format():
    with matplotlib.rc_context():
        use_book_style(figure_format="jpeg")   # outside IPython: style only, no error
        assert plt.rcParams["figure.dpi"] == 100
    with pytest.raises(ValueError, match="figure_format"):
        use_book_style(figure_format="gif")


def test_book_style_jpeg_in_ipython():
    interactiveshell = pytest.importorskip("IPython.core.interactiveshell")
    shell = interactiveshell.InteractiveShell.instance()
    with matplotlib.rc_context():
        use_book_style(figure_format="jpeg")
        formatters = shell.display_formatter.formatters
        fig, _ = plt.subplots()
        assert formatters["image/jpeg"](fig).startswith("/9j/")   # base64 of the JPEG magic bytes
        assert formatters["image/png"](fig) is None
        use_book_style()
        assert formatters["image/png"](fig) is not None
        plt.close(fig)


def test_confusion_matrix_rejects_labels_outside_the_class_names():
    with pytest.raises(ValueError, match=r"y_pred.*\[0, 2\).*found 2"):
        plot_confusion_matrix([0, 1, 1], [0, 1, 2], ["x", "y"])
    with pytest.raises(ValueError, match=r"y_true.*found -1"):
        plot_confusion_matrix([0, -1], [0, 1], ["x", "y"])


def test_show_images_checks_labels_and_normalisation():
    x = torch.zeros(3, 1, 4, 4)
    with pytest.raises(ValueError, match="3 images but 2 labels"):
        show_images(x, [0, 1])
    with pytest.raises(ValueError, match="mean and std"):
        show_images(x, mean=(0.5,))
    with pytest.raises(ValueError, match=r"1 channels.*3 values"):
        show_images(x, mean=(0.5, 0.5, 0.5), std=(0.2, 0.2, 0.2))
    with pytest.raises(ValueError, match="no images"):
        show_images(torch.zeros(0, 1, 4, 4))


def test_plot_history_epoch_ticks_are_integers():
    h = History(train_loss=[1.0, 0.6, 0.5], val_loss=[1.1, 0.7, 0.6],
                train_metrics={"acc": [0.5, 0.8, 0.9]}, val_metrics={"acc": [0.4, 0.7, 0.8]})
    fig = plot_history(h, ["acc"])
    fig.canvas.draw()
    for a in fig.axes:
        ticks = [t for t in a.get_xticks() if a.get_xlim()[0] <= t <= a.get_xlim()[1]]
        assert ticks and all(float(t).is_integer() for t in ticks), ticks


def test_confusion_matrix_counts_are_integers():
    y_true = [0] * 98 + [0, 0] + [1] * 100
    y_pred = [0] * 98 + [1, 1] + [1] * 100
    texts = [t.get_text() for t in plot_confusion_matrix(y_true, y_pred, ["x", "y"],
                                                         normalize=False).axes[0].texts]
    assert texts == ["98", "2", "0", "100"]
    # the same errors as fractions of each row
    rates = [t.get_text() for t in plot_confusion_matrix(y_true, y_pred, ["x", "y"]).axes[0].texts]
    assert rates == ["0.98", "0.02", "0.00", "1.00"]


def test_kernels_colorbar_shares_one_scale():
    w = torch.stack([torch.full((1, 3, 3), 0.1), torch.full((1, 3, 3), -2.0)])
    fig = plot_kernels(w, colorbar=True)
    panels = [a for a in fig.axes if a.images]
    assert len(fig.axes) == len(panels) + 1   # one colour bar for the whole grid
    assert all(a.images[0].get_clim() == (-2.0, 2.0) for a in panels)
    assert fig.axes[-1].get_ylabel() == "weight"
    with pytest.raises(ValueError, match="single-channel"):
        plot_kernels(torch.randn(2, 3, 3, 3), colorbar=True)


def test_feature_maps_fixed_limits_and_scale_margin():
    m = torch.zeros(1, 6, 6)
    m[0, 2:4, 2:4] = 1.5   # interior: beyond the valid range [0, 1]
    m[0, 0, :] = -9.0      # border: a padding artefact
    clipped = plot_feature_maps(m, vmin=0, vmax=1).axes[0].images[0].get_clim()
    assert clipped == (0, 1)
    inner = plot_feature_maps(m, scale_margin=1, cmap="RdBu_r", symmetric=True)
    assert inner.axes[0].images[0].get_clim() == (-1.5, 1.5)   # the -9 border does not set it
    whole = plot_feature_maps(m, symmetric=True).axes[0].images[0].get_clim()
    assert whole == (-9.0, 9.0)
    with pytest.raises(ValueError, match="scale_margin"):
        plot_feature_maps(m, scale_margin=3)


def test_confusion_matrix_errors_only_blanks_the_diagonal():
    y_true, y_pred = [0, 0, 0, 1, 1, 1], [0, 0, 1, 1, 1, 0]
    texts = [t.get_text() for t in plot_confusion_matrix(
        y_true, y_pred, ["x", "y"], normalize=False, errors_only=True).axes[0].texts]
    assert sorted(texts) == ["1", "1"]  # the two mistakes; the correct counts (2, 2) are hidden


def test_plot_kernels_annotate_writes_each_weight():
    w = torch.arange(9.0).reshape(1, 1, 3, 3)
    texts = [t.get_text() for t in plot_kernels(w, annotate=True).axes[0].texts]
    assert texts == [f"{v:.2g}" for v in range(9)]
