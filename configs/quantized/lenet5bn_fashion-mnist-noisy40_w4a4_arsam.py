# W4A4 LSQ fake-quantized twin of
# ../classification/lenet5bn_fashion-mnist-noisy40_arsam.py (ARSAM, its
# float rho 0.2); issue 22's probe ran rho 0.1 (--cfg-options).
_base_ = '../classification/lenet5bn_fashion-mnist-noisy40_arsam.py'
custom_hooks = [dict(type='FakeQuantHook', w_bits=4, a_bits=4)]
