# W4A4 LSQ fake-quantized twin of resnet18_cifar10_sam.py (SAM).
_base_ = '../classification/resnet18_cifar10_sam.py'
custom_hooks = [dict(type='FakeQuantHook', w_bits=4, a_bits=4)]
