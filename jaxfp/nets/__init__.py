"""Flax linen modules only: no losses, no optimizers, no data."""

from jaxfp.nets.autoencoder import Autoencoder
from jaxfp.nets.heads import PositionHeads
from jaxfp.nets.mlp import MLP
from jaxfp.nets.mobile import MobileNetV2, ShuffleNetV2
from jaxfp.nets.resnet import ResNet, ResNet18, ResNet34, ResNet50, ResNet101, ResNetTiny
from jaxfp.nets.sage import EdgeSAGE, EdgeSAGELayer

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
    "Autoencoder",
    "EdgeSAGE",
    "EdgeSAGELayer",
    "BACKBONES",
    "MLP",
    "MobileNetV2",
    "PositionHeads",
    "ResNet",
    "ResNet18",
    "ResNet34",
    "ResNet50",
    "ResNet101",
    "ResNetTiny",
    "ShuffleNetV2",
]
