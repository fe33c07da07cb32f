# ARSAM on the upstream config, unchanged otherwise.
_base_ = 'mmpose::body_2d_keypoint/cid/coco/cid_hrnet-w32_8xb20-140e_coco-512x512.py'
custom_imports = dict(imports=['arsam_mm'], allow_failed_imports=False)
optim_wrapper = dict(type='ARSAMOptimWrapper', rho=0.05)
