# LookSAMOptimWrapper twin of fcn_r18-w32_shapes-colour-noisy40_sgd.py: the peer at
# ARSAM's cost (k=5: 0.6x SAM's passes) with alpha=0.25; rho 0.1 as its
# SAM and ARSAM twins.
_base_ = './fcn_r18-w32_shapes-colour-noisy40_sgd.py'
optim_wrapper = dict(type='LookSAMOptimWrapper', rho=0.1, k=5, alpha=0.25)
