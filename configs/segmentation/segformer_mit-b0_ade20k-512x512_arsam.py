# ARSAM on the upstream config, unchanged otherwise.
_base_ = 'mmseg::segformer/segformer_mit-b0_8xb2-160k_ade20k-512x512.py'
custom_imports = dict(imports=['arsam_mm'], allow_failed_imports=False)
optim_wrapper = dict(type='ARSAMOptimWrapper', rho=0.05)
