# ARSAM twin of lenet5bn_fashion-mnist-noisy50-5k_sgd.py: one line changes.
# rho 0.2: SAM's best of 0.05/0.1/0.2 on val in this setting (seed 0;
# docs/benchmarks.md, "The budget study").
_base_ = './lenet5bn_fashion-mnist-noisy50-5k_sgd.py'
optim_wrapper = dict(type='ARSAMOptimWrapper', rho=0.2)
