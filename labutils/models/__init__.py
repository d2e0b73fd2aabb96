"""Networks that more than one chapter uses. Each ``forward`` returns logits (no softmax)."""

from labutils.models.plain import TinyCNN, ThreeBlockCNN, LayeredCNN
from labutils.models.lenet import LeNet5
from labutils.models.vgg import MiniVGG
from labutils.models.resnet import BasicBlock, CifarResNet, resnet20, resnet32, resnet56
from labutils.models.efficientnet import efficientnet_lite0

__all__ = ["TinyCNN", "ThreeBlockCNN", "LayeredCNN", "LeNet5", "MiniVGG", "BasicBlock",
           "CifarResNet", "resnet20", "resnet32", "resnet56", "efficientnet_lite0"]
