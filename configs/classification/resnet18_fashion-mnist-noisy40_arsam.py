# ARSAM twin of resnet18_fashion-mnist-noisy40_sgd.py: one line changes.
_base_ = './resnet18_fashion-mnist-noisy40_sgd.py'
optim_wrapper = dict(type='ARSAMOptimWrapper', rho=0.05)
