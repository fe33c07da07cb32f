# LatePhaseSAMOptimWrapper twin of fcn_r18-w32_shapes-colour-noisy40_sgd.py: SGD, then
# SAM on the last 20% of the iterations (0.6x SAM's passes); rho 0.1 as its
# SAM and ARSAM twins.
_base_ = './fcn_r18-w32_shapes-colour-noisy40_sgd.py'
optim_wrapper = dict(type='LatePhaseSAMOptimWrapper', rho=0.1)
