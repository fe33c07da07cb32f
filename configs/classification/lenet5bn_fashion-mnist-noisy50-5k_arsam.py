# ARSAM twin of lenet5bn_fashion-mnist-noisy50-5k_sgd.py: one line changes.
_base_ = './lenet5bn_fashion-mnist-noisy50-5k_sgd.py'
optim_wrapper = dict(type='ARSAMOptimWrapper', rho=0.1)
