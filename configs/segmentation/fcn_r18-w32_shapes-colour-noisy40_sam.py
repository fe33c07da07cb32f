# SAMOptimWrapper twin of fcn_r18-w32_shapes-colour-noisy40_sgd.py (SGD stays the
# base optimizer); rho 0.1: SAM's better of 0.05 / 0.1 on val
# (docs/benchmarks.md, "Segmentation").
_base_ = './fcn_r18-w32_shapes-colour-noisy40_sgd.py'
optim_wrapper = dict(type='SAMOptimWrapper', rho=0.1)
