# W4A4 LSQ fake-quantized twin of
# ../classification/lenet5bn_fashion-mnist-noisy40_sam.py (SAM, rho 0.2:
# SAM's best of 0.1/0.2/0.4 on val at W4A4 too).
_base_ = '../classification/lenet5bn_fashion-mnist-noisy40_sam.py'
custom_hooks = [dict(type='FakeQuantHook', w_bits=4, a_bits=4)]
