# W4A4 LSQ fake-quantized twin of fcn_r50-d8_cityscapes-512x1024_sam.py.
_base_ = '../segmentation/fcn_r50-d8_cityscapes-512x1024_sam.py'
custom_hooks = [dict(type='FakeQuantHook', w_bits=4, a_bits=4)]
