# SAM twin of resnet18_cifar10_sgd.py: one line changes.
_base_ = './resnet18_cifar10_sgd.py'
optim_wrapper = dict(type='SAMOptimWrapper', rho=0.05)
