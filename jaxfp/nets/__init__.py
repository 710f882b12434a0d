"""Flax linen modules used by more than one method (or by benchmarks): no losses, no optimizers,
no data. Networks only one paper uses live in its subpackage (GUFU's autoencoder and GraphSAGE,
the CSI paper's position heads)."""

from jaxfp.nets.mlp import MLP
from jaxfp.nets.mobile import MobileNetV2, ShuffleNetV2
from jaxfp.nets.resnet import ResNet, ResNet18, ResNet34, ResNet50, ResNet101, ResNetTiny

BACKBONES = {
    "shufflenet_v2": ShuffleNetV2,
    "mobilenet_v2": MobileNetV2,
    "resnet18": ResNet18,
    "resnet34": ResNet34,
    "resnet50": ResNet50,
    "resnet101": ResNet101,
    "resnet_tiny": ResNetTiny,  # small experiment sizes only
}

__all__ = [
    "BACKBONES",
    "MLP",
    "MobileNetV2",
    "ResNet",
    "ResNet18",
    "ResNet34",
    "ResNet50",
    "ResNet101",
    "ResNetTiny",
    "ShuffleNetV2",
]
