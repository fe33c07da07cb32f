"""LeNet-5 with BatchNorm, registered in mmpretrain's ``MODELS``.

mmpretrain's ``LeNet5`` is the 1998 network (tanh, average pooling, no
normalisation). The label-noise benchmarks (``configs/classification/
lenet5bn_*``) use the common modern variant that memorises noisy labels
under SGD, the setting where SAM's gain is large: each convolution is
followed by BatchNorm and ReLU, pooling is max pooling. Same layer sizes
(6, 16, 120 channels; 84-unit hidden layer), 32x32 single-channel input.
"""
import torch.nn as nn

__all__ = []

try:
    from mmpretrain.models.backbones.base_backbone import BaseBackbone
    from mmpretrain.registry import MODELS
except ImportError:  # pragma: no cover
    MODELS = None

if MODELS is not None:

    def _conv_bn_relu(in_channels, out_channels):
        return [
            nn.Conv2d(in_channels, out_channels, kernel_size=5, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True)
        ]

    @MODELS.register_module()
    class LeNet5BN(BaseBackbone):
        """LeNet-5 with BatchNorm and ReLU.

        Args:
            num_classes (int): classes of the built-in classifier; -1 (the
                default) returns the 120-d features for a separate head.
            in_channels (int): input channels. Defaults to 1.
        """

        def __init__(self, num_classes: int = -1, in_channels: int = 1,
                     init_cfg=None):
            super().__init__(init_cfg=init_cfg)
            self.num_classes = num_classes
            self.features = nn.Sequential(
                *_conv_bn_relu(in_channels, 6), nn.MaxPool2d(2),
                *_conv_bn_relu(6, 16), nn.MaxPool2d(2),
                *_conv_bn_relu(16, 120), nn.Flatten())
            if num_classes > 0:
                self.classifier = nn.Sequential(
                    nn.Linear(120, 84), nn.ReLU(inplace=True),
                    nn.Linear(84, num_classes))

        def forward(self, x):
            x = self.features(x)
            if self.num_classes > 0:
                x = self.classifier(x)
            return (x, )

    __all__.append('LeNet5BN')
