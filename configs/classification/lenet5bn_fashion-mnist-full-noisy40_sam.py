# SAM twin of lenet5bn_fashion-mnist-full-noisy40_sgd.py: one line changes.
_base_ = './lenet5bn_fashion-mnist-full-noisy40_sgd.py'
optim_wrapper = dict(type='SAMOptimWrapper', rho=0.05)
