# The no-harm case of the W4A4 setting: lenet5bn_fashion-mnist-noisy40_w4a4
# with clean labels (the float clean10k config plus the hook line).
_base_ = '../classification/lenet5bn_fashion-mnist-clean10k_sgd.py'
custom_hooks = [dict(type='FakeQuantHook', w_bits=4, a_bits=4)]
