"""Thin layer objects over the forward/backward pairs, ``Sequential`` and ``MomentumSGD``."""

from __future__ import annotations

import numpy as np

from labutils.nplayers.conv import (conv_backward, conv_backward_loops, conv_forward,
                                    conv_forward_loops)
from labutils.nplayers.dense import (l2_penalty, linear_backward, linear_forward, relu_backward,
                                     relu_forward, softmax_cross_entropy)
from labutils.nplayers.pool import (avgpool_backward, avgpool_forward, maxpool_backward,
                                    maxpool_forward)


# ---------------------------------------------------------------------------------------------
# Layer objects and a model, for training

class Layer:
    """A layer keeps its parameters, their gradients and the cache of its last forward pass."""

    def __init__(self):
        self.params: dict[str, np.ndarray] = {}
        self.grads: dict[str, np.ndarray] = {}
        self.cache = None

    def forward(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def backward(self, dout: np.ndarray) -> np.ndarray:
        raise NotImplementedError


class Conv2d(Layer):
    """Convolution with He-initialised weights; ``naive=True`` uses the loop implementation."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, *,
                 rng: np.random.Generator, stride: int = 1, pad: int = 0, naive: bool = False,
                 dtype=np.float32):
        super().__init__()
        fan_in = in_channels * kernel_size * kernel_size
        self.params["w"] = (rng.standard_normal((out_channels, in_channels, kernel_size, kernel_size))
                            * np.sqrt(2 / fan_in)).astype(dtype)
        self.params["b"] = np.zeros(out_channels, dtype=dtype)
        self.stride, self.pad = stride, pad
        self._fwd, self._bwd = (conv_forward_loops, conv_backward_loops) if naive else (conv_forward, conv_backward)

    def forward(self, x):
        out, self.cache = self._fwd(x, self.params["w"], self.params["b"], stride=self.stride, pad=self.pad)
        return out

    def backward(self, dout):
        dx, self.grads["w"], self.grads["b"] = self._bwd(dout, self.cache)
        return dx


class Linear(Layer):
    def __init__(self, in_features: int, out_features: int, *, rng: np.random.Generator,
                 dtype=np.float32):
        super().__init__()
        self.params["w"] = (rng.standard_normal((in_features, out_features))
                            * np.sqrt(2 / in_features)).astype(dtype)
        self.params["b"] = np.zeros(out_features, dtype=dtype)

    def forward(self, x):
        out, self.cache = linear_forward(x, self.params["w"], self.params["b"])
        return out

    def backward(self, dout):
        dx, self.grads["w"], self.grads["b"] = linear_backward(dout, self.cache)
        return dx


class ReLU(Layer):
    def forward(self, x):
        out, self.cache = relu_forward(x)
        return out

    def backward(self, dout):
        return relu_backward(dout, self.cache)


class MaxPool2d(Layer):
    def __init__(self, size: int = 2, stride: int | None = None):
        super().__init__()
        self.size, self.stride = size, stride

    def forward(self, x):
        out, self.cache = maxpool_forward(x, size=self.size, stride=self.stride)
        return out

    def backward(self, dout):
        return maxpool_backward(dout, self.cache)


class AvgPool2d(MaxPool2d):
    def forward(self, x):
        out, self.cache = avgpool_forward(x, size=self.size, stride=self.stride)
        return out

    def backward(self, dout):
        return avgpool_backward(dout, self.cache)


class Flatten(Layer):
    def forward(self, x):
        self.cache = x.shape
        return x.reshape(x.shape[0], -1)

    def backward(self, dout):
        return dout.reshape(self.cache)


class Sequential:
    """Layers applied in order; ``loss`` adds L2 regularisation of every weight named ``w``."""

    def __init__(self, *layers: Layer, l2: float = 0.0):
        self.layers, self.l2 = list(layers), l2

    def forward(self, x: np.ndarray) -> np.ndarray:
        for layer in self.layers:
            x = layer.forward(x)
        return x

    def backward(self, dout: np.ndarray) -> np.ndarray:
        for layer in reversed(self.layers):
            dout = layer.backward(dout)
        return dout

    def loss(self, x: np.ndarray, targets: np.ndarray) -> tuple[float, np.ndarray]:
        """Forward, loss (cross-entropy + L2) and backward; fills every layer's ``grads``."""
        logits = self.forward(x)
        loss, dlogits = softmax_cross_entropy(logits, targets)
        self.backward(dlogits)
        for layer in self.layers:
            if "w" in layer.params and self.l2:
                penalty, grad = l2_penalty(layer.params["w"], self.l2)
                loss += penalty
                layer.grads["w"] = layer.grads["w"] + grad
        return loss, logits

    def parameters(self) -> list[tuple[Layer, str]]:
        return [(layer, name) for layer in self.layers for name in layer.params]

    def predict(self, x: np.ndarray, batch_size: int = 1000) -> np.ndarray:
        return np.concatenate([self.forward(x[i:i + batch_size]).argmax(axis=1)
                               for i in range(0, len(x), batch_size)])


class MomentumSGD:
    """SGD with momentum in PyTorch's convention: v <- momentum * v + grad; param <- param - lr * v.

    ``lr`` may be changed between steps (a schedule); the velocity does not depend on it.
    """

    def __init__(self, model: Sequential, *, lr: float, momentum: float = 0.9):
        self.model, self.lr, self.momentum = model, lr, momentum
        self.velocity = {(id(layer), name): np.zeros_like(layer.params[name])
                         for layer, name in model.parameters()}

    def step(self) -> None:
        for layer, name in self.model.parameters():
            if name not in layer.grads:
                raise RuntimeError(f"{type(layer).__name__} has no gradient for {name!r}: call "
                                   f"model.loss(x, targets) (or model.backward) before step()")
            v = self.velocity[(id(layer), name)]
            v *= self.momentum
            v += layer.grads[name]
            layer.params[name] = layer.params[name] - self.lr * v
