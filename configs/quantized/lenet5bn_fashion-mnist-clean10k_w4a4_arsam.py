# W4A4 LSQ fake-quantized twin of
# ../classification/lenet5bn_fashion-mnist-clean10k_arsam.py (the no-harm
# case of the low-bit setting).
_base_ = '../classification/lenet5bn_fashion-mnist-clean10k_arsam.py'
custom_hooks = [dict(type='FakeQuantHook', w_bits=4, a_bits=4)]
