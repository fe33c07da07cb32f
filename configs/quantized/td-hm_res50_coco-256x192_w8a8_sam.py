# W8A8 LSQ fake-quantized twin of td-hm_res50_coco-256x192_sam.py.
_base_ = '../pose/td-hm_res50_coco-256x192_sam.py'
custom_hooks = [dict(type='FakeQuantHook', w_bits=8, a_bits=8)]
