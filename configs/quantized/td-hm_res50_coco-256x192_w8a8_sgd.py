# W8A8 LSQ fake-quantized SimpleBaseline-R50 (COCO), upstream Adam recipe.
_base_ = 'mmpose::body_2d_keypoint/topdown_heatmap/coco/td-hm_res50_8xb64-210e_coco-256x192.py'
custom_imports = dict(imports=['arsam_mm'], allow_failed_imports=False)
custom_hooks = [dict(type='FakeQuantHook', w_bits=8, a_bits=8)]
