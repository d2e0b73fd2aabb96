"""A CNN in NumPy: layers as pure ``*_forward -> (out, cache)`` / ``*_backward(dout, cache)``
pairs, thin layer objects around them, a ``Sequential`` model and momentum SGD.

Images are (N, C, H, W) like PyTorch, conv weights (F, C, kH, kW). Nothing here mutates its
inputs. Forward passes compute in the dtype of the input (float64 for gradient checks).
"""

from labutils.nplayers.conv import (conv_forward_loops, conv_backward_loops, im2col, col2im,
                                    conv_forward, conv_backward)
from labutils.nplayers.pool import (maxpool_forward, maxpool_backward, avgpool_forward,
                                    avgpool_backward)
from labutils.nplayers.dense import (relu_forward, relu_backward, linear_forward, linear_backward,
                                     softmax_cross_entropy, l2_penalty)
from labutils.nplayers.layers import (Layer, Conv2d, Linear, ReLU, MaxPool2d, AvgPool2d, Flatten,
                                      Sequential, MomentumSGD)

__all__ = ["conv_forward_loops", "conv_backward_loops", "im2col", "col2im", "conv_forward",
           "conv_backward", "maxpool_forward", "maxpool_backward", "avgpool_forward",
           "avgpool_backward", "relu_forward", "relu_backward", "linear_forward",
           "linear_backward", "softmax_cross_entropy", "l2_penalty", "Layer", "Conv2d", "Linear",
           "ReLU", "MaxPool2d", "AvgPool2d", "Flatten", "Sequential", "MomentumSGD"]
