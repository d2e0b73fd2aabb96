"""Plot helpers: each takes data and an optional ``ax`` and returns the figure.

None of them calls ``plt.show()`` or changes global settings; ``use_book_style`` is the one
explicit style call a notebook makes in its setup cell.
"""

from __future__ import annotations

from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from labutils.train import History


FIGURE_FORMATS = ("png", "jpeg")
JPEG_QUALITY = 85


def use_book_style(figure_format: str = "png") -> None:
    """The book's figure style (call once per notebook).

    ``figure_format="jpeg"`` (quality 85) is for chapters full of photographs: a PNG of a photo is
    several times larger, and a committed notebook must stay under 1 MB. It sets the format of
    the figures a notebook displays (IPython's inline backend); outside IPython it does nothing.
    """
    if figure_format not in FIGURE_FORMATS:
        raise ValueError(f"figure_format must be one of {FIGURE_FORMATS}, got {figure_format!r}")
    plt.style.use("seaborn-v0_8-whitegrid")
    plt.rcParams.update({"figure.dpi": 100, "savefig.dpi": 100, "axes.titlesize": "medium",
                         "image.cmap": "gray"})
    try:
        from IPython import get_ipython
        from matplotlib_inline.backend_inline import set_matplotlib_formats
    except ImportError:  # plain Python: figures are saved explicitly, nothing to configure
        return
    if get_ipython() is not None:
        kwargs = {"pil_kwargs": {"quality": JPEG_QUALITY}} if figure_format == "jpeg" else {}
        set_matplotlib_formats(figure_format, **kwargs)


def _axes(ax, ncols: int = 1, figsize=(5, 3.5)):
    if ax is not None:
        axes = np.atleast_1d(ax)
        return axes[0].figure, list(axes)
    fig, axes = plt.subplots(1, ncols, figsize=(figsize[0] * ncols, figsize[1]), squeeze=False)
    return fig, list(axes[0])


_METRIC_LABELS = {"acc": "accuracy", "top5": "top-5 accuracy", "lr": "learning rate"}


def plot_history(history: History, metrics: Sequence[str] = (), *, ax=None,
                 title: str | None = None) -> Figure:
    """Learning curves: loss, then one panel per named metric (train and validation)."""
    fig, axes = _axes(ax, ncols=1 + len(metrics))
    if len(axes) < 1 + len(metrics):
        raise ValueError(f"need {1 + len(metrics)} axes, got {len(axes)}")
    epochs = np.arange(1, history.epochs + 1)
    panels = [("loss", history.train_loss, history.val_loss)]
    for name in metrics:
        if name not in history.train_metrics and name not in history.val_metrics:
            raise KeyError(f"metric {name!r} not in history; it has "
                           f"{sorted(set(history.train_metrics) | set(history.val_metrics))}")
        panels.append((name, history.train_metrics.get(name, []), history.val_metrics.get(name, [])))
    for a, (name, train, val) in zip(axes, panels):
        if train:
            a.plot(epochs[:len(train)], train, "o-", label="train", ms=3)
        if val:
            a.plot(epochs[:len(val)], val, "s--", label="validation", ms=3)
        if history.best_epoch is not None:
            a.axvline(history.best_epoch + 1, color="grey", lw=0.8, ls=":", label="best")
        a.xaxis.set_major_locator(MaxNLocator(integer=True))  # no "epoch 1.5" ticks
        a.set_xlabel("epoch")
        a.set_ylabel(_METRIC_LABELS.get(name, name))  # "acc" -> "accuracy"
        a.legend()
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def _to_display(images: torch.Tensor | np.ndarray, mean, std) -> np.ndarray:
    x = torch.as_tensor(images).detach().float().cpu()
    if x.ndim == 3:
        x = x.unsqueeze(1)
    if x.ndim != 4:
        raise ValueError(f"images must be (N, C, H, W) or (N, H, W), got {tuple(x.shape)}")
    if len(x) == 0:
        raise ValueError("no images to show (got an empty batch)")
    if (mean is None) != (std is None):
        raise ValueError("give both mean and std (the values the images were normalised with), "
                         "or neither")
    if mean is not None:
        mean, std = torch.tensor(mean).view(1, -1, 1, 1), torch.tensor(std).view(1, -1, 1, 1)
        if mean.shape[1] not in (1, x.shape[1]) or std.shape[1] not in (1, x.shape[1]):
            raise ValueError(f"the images have {x.shape[1]} channels but mean and std have "
                             f"{mean.shape[1]} and {std.shape[1]} values; give one per channel")
        x = x * std + mean
    elif x.max() > 1.5:  # uint8 range
        x = x / 255
    return x.clamp(0, 1).permute(0, 2, 3, 1).numpy()


def show_images(images: torch.Tensor | np.ndarray, labels: Sequence | None = None, *,
                class_names: Sequence[str] | None = None, mean=None, std=None, ncols: int = 8,
                title: str | None = None, size: float = 1.3) -> Figure:
    """A grid of images (N, C, H, W), denormalised with ``mean``/``std`` if given, with labels."""
    x = _to_display(images, mean, std)
    n = len(x)
    if labels is not None and len(labels) != n:
        raise ValueError(f"{n} images but {len(labels)} labels")
    ncols = min(ncols, n)
    nrows = -(-n // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols, size * nrows + 0.3 * bool(labels is not None)),
                             squeeze=False)
    for i, a in enumerate(axes.flat):
        a.axis("off")
        if i >= n:
            continue
        img = x[i]
        a.imshow(img[..., 0] if img.shape[-1] == 1 else img, cmap="gray", vmin=0, vmax=1)
        if labels is not None:
            label = labels[i]
            label = int(label) if isinstance(label, (torch.Tensor, np.integer)) else label
            a.set_title(class_names[label] if class_names is not None else str(label), fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_confusion_matrix(y_true: Sequence[int], y_pred: Sequence[int],
                          class_names: Sequence[str], *, normalize: bool = True, ax=None,
                          title: str = "Confusion matrix", errors_only: bool = False) -> Figure:
    """Heatmap of the confusion matrix (rows: true class, columns: predicted).

    ``normalize=True`` shows each row as fractions of its true class; ``normalize=False`` shows
    integer counts, which is what to use when accuracy is high: at 98% every off-diagonal
    fraction rounds to 0.00, while the counts still show which mistakes happen.
    ``errors_only=True`` leaves the diagonal (the correct predictions) blank, so that the colour
    scale is set by the mistakes alone.
    """
    import seaborn as sns
    from sklearn.metrics import confusion_matrix

    k = len(class_names)
    for name, labels in (("y_true", np.asarray(y_true)), ("y_pred", np.asarray(y_pred))):
        outside = labels[(labels < 0) | (labels >= k)]
        if outside.size:  # confusion_matrix(labels=range(k)) would silently drop those samples
            raise ValueError(f"{name} must hold class indices in [0, {k}) to match the "
                             f"{k} class names, found {outside[0]}")
    cm = confusion_matrix(y_true, y_pred, labels=range(k))  # integer counts
    if normalize:
        cm = cm / cm.sum(axis=1, keepdims=True).clip(min=1)
    fig, (a,) = _axes(ax, figsize=(0.55 * len(class_names) + 2.5, 0.5 * len(class_names) + 1.5))
    mask = np.eye(k, dtype=bool) if errors_only else None
    sns.heatmap(cm, annot=True, fmt=".2f" if normalize else "d", cmap="Blues", cbar=False,
                xticklabels=class_names, yticklabels=class_names, ax=a, annot_kws={"size": 7},
                mask=mask)
    a.set_xlabel("predicted class")
    a.set_ylabel("true class")
    a.set_title(title)
    fig.tight_layout()
    return fig


def plot_kernels(weight: torch.Tensor | np.ndarray, *, ncols: int = 8,
                 titles: Sequence[str] | None = None, shared_scale: bool = False,
                 colorbar: bool = False, title: str | None = None,
                 size: float = 1.0, annotate: bool = False) -> Figure:
    """Filters of a conv layer, weight (out, in, kH, kW): one panel per output channel.

    Single-input-channel filters are shown on a blue-white-red scale centred on 0, each filter on
    its own scale unless ``shared_scale``; three-channel filters as RGB images rescaled to [0, 1].
    ``colorbar=True`` (single-channel filters only) puts all filters on one shared scale and adds
    one colour bar for the whole grid, so that weights can be read and compared.
    ``annotate=True`` (single-channel filters) writes each weight's value in its cell.
    """
    w = torch.as_tensor(weight).detach().float().cpu()
    if w.ndim == 2:
        w = w[None, None]
    if w.ndim != 4:
        raise ValueError(f"weight must be (out, in, kH, kW), got {tuple(w.shape)}")
    n = w.shape[0]
    if titles is not None and len(titles) != n:
        raise ValueError(f"{n} filters but {len(titles)} titles")
    if colorbar and w.shape[1] == 3:
        raise ValueError("colorbar=True needs single-channel filters (in=1); three-channel "
                         "filters are shown as RGB images, which have no colour scale")
    shared_scale = shared_scale or colorbar
    ncols = min(ncols, n)
    nrows = -(-n // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols, size * nrows + 0.2 * (titles is not None)),
                             squeeze=False)
    for i, a in enumerate(axes.flat):
        a.set_xticks([])
        a.set_yticks([])
        a.grid(False)
        if i >= n:
            a.axis("off")
            continue
        if w.shape[1] == 3:
            rgb = w[i].permute(1, 2, 0)
            a.imshow(((rgb - rgb.min()) / (rgb.max() - rgb.min() + 1e-12)).numpy())
        else:
            vmax = float((w if shared_scale else w[i]).abs().max()) or 1.0
            image = a.imshow(w[i, 0].numpy(), cmap="bwr", vmin=-vmax, vmax=vmax)
            if annotate:
                for (r, c), value in np.ndenumerate(w[i, 0].numpy()):
                    a.text(c, r, f"{value:.2g}", ha="center", va="center",
                           fontsize=max(6.0, 3.5 * size))
        if titles is not None:
            a.set_title(titles[i], fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    if colorbar:  # after tight_layout, which would otherwise squeeze the bar
        fig.colorbar(image, ax=list(axes.flat), fraction=0.025, pad=0.02, label="weight")
    return fig


def plot_feature_maps(maps: torch.Tensor | np.ndarray, *, ncols: int = 8,
                      titles: Sequence[str] | None = None, cmap: str = "viridis",
                      symmetric: bool = False, title: str | None = None,
                      size: float = 1.2, vmin: float | None = None, vmax: float | None = None,
                      scale_margin: int = 0) -> Figure:
    """Maps of shape (C, H, W), one panel each with its own colour scale (e.g. the activations
    of one image, or one image under several filters). ``symmetric`` centres the scale on 0.

    ``vmin``/``vmax`` fix one scale for every panel (values outside are clipped, e.g. images
    to their valid range [0, 1]). ``scale_margin`` leaves that many pixels at each edge out when
    a panel's own scale is chosen (e.g. the border that zero padding distorts); they are still
    drawn, clipped to the scale of the interior.
    """
    m = torch.as_tensor(maps).detach().float().cpu()
    if m.ndim == 4 and m.shape[0] == 1:
        m = m[0]
    if m.ndim != 3:
        raise ValueError(f"maps must be (C, H, W), got {tuple(m.shape)}")
    n = m.shape[0]
    if titles is not None and len(titles) != n:
        raise ValueError(f"{n} maps but {len(titles)} titles")
    if scale_margin < 0 or 2 * scale_margin >= min(m.shape[1:]):
        raise ValueError(f"scale_margin must be >= 0 and leave an interior in {tuple(m.shape[1:])} "
                         f"maps, got {scale_margin}")
    ncols = min(ncols, n)
    nrows = -(-n // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols, size * nrows + 0.2),
                             squeeze=False)
    cut = slice(scale_margin, m.shape[1] - scale_margin), slice(scale_margin, m.shape[2] - scale_margin)
    for i, a in enumerate(axes.flat):
        a.axis("off")
        if i < n:
            inner = m[i][cut]  # (H - 2 margin, W - 2 margin): the pixels that set the scale
            if symmetric:
                top = float(inner.abs().max()) or 1.0
                limits = dict(vmin=-top, vmax=top)
            else:
                limits = dict(vmin=float(inner.min()), vmax=float(inner.max()))
            limits.update({k: v for k, v in (("vmin", vmin), ("vmax", vmax)) if v is not None})
            a.imshow(m[i].numpy(), cmap=cmap, **limits)
            a.set_title(titles[i] if titles is not None else f"ch {i}", fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig
