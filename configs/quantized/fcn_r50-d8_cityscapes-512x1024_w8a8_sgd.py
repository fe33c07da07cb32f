# W8A8 LSQ fake-quantized FCN-R50-D8 (Cityscapes), upstream SGD recipe.
_base_ = 'mmseg::fcn/fcn_r50-d8_4xb2-80k_cityscapes-512x1024.py'
custom_imports = dict(imports=['arsam_mm'], allow_failed_imports=False)
custom_hooks = [dict(type='FakeQuantHook', w_bits=8, a_bits=8)]
