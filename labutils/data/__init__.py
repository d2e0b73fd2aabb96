"""Where the data lives, how it is checked, and how chapters load it.

One setting finds the data: the environment variable ``LAB_DATA`` (default: the repository's
``data/`` folder). Below it the layout is torchvision's (``MNIST/raw``, ``FashionMNIST/raw``,
``cifar-10-batches-py``) plus two offline copies: ``cifar10-jpeg/{train,test}/<class>/*.jpg`` and
``isbi2012-membranes`` (downloaded from a fixed commit of zhixuhao/unet when absent). Files the
loaders read are checked once against ``manifest.json``.

Two ways to feed a model:
- the idiomatic one that chapters teach: a torchvision ``Dataset`` with transforms and a
  ``DataLoader`` (``mnist``, ``cifar10``);
- a fast one for small images: decode once into uint8 tensors (``load_tensors``, cached in a
  git-ignored folder) and batch them with ``TensorLoader``, which can keep them on the GPU.
"""

from labutils.data.integrity import (REPO_ROOT, MANIFEST, DataMissingError, DataIntegrityError,
                                     data_root, cache_dir, tree_digest, verify_dataset)
from labutils.data.datasets import (MNIST_MEAN, MNIST_STD, FASHION_MNIST_MEAN, FASHION_MNIST_STD,
                                    CIFAR10_MEAN, CIFAR10_STD, CIFAR10_CLASSES,
                                    FASHION_MNIST_CLASSES, mnist, cifar10, svhn, oxford_pets,
                                    Segmentation, isbi_membranes)
from labutils.data.loaders import (load_tensors, TensorLoader, stratified_indices, subset_indices,
                                   split_indices)
from labutils.data.download import ISBI_URL, download_isbi_membranes

__all__ = ["REPO_ROOT", "MANIFEST", "DataMissingError", "DataIntegrityError", "data_root",
           "cache_dir", "tree_digest", "verify_dataset", "MNIST_MEAN", "MNIST_STD",
           "FASHION_MNIST_MEAN", "FASHION_MNIST_STD", "CIFAR10_MEAN", "CIFAR10_STD",
           "CIFAR10_CLASSES", "FASHION_MNIST_CLASSES", "mnist", "cifar10", "svhn", "oxford_pets",
           "Segmentation", "isbi_membranes", "ISBI_URL", "download_isbi_membranes", "load_tensors",
           "TensorLoader", "stratified_indices", "subset_indices", "split_indices"]
