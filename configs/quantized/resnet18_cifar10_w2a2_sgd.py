# W2A2 LSQ fake-quantized twin of resnet18_cifar10_sgd.py (SGD).
_base_ = '../classification/resnet18_cifar10_sgd.py'
custom_hooks = [dict(type='FakeQuantHook', w_bits=2, a_bits=2)]
