# W4A4 LSQ fake-quantized twin of resnet18_cifar10_sgd.py (SGD).
_base_ = '../classification/resnet18_cifar10_sgd.py'
custom_hooks = [dict(type='FakeQuantHook', w_bits=4, a_bits=4)]
