# Where SAM helps a lot: LeNet-5 with BatchNorm (arsam_mm's LeNet5BN)
# memorises the noisy labels of lenet5_fashion-mnist-noisy40_sgd.py under
# SGD. Same data, splits and rules: choices on val (clean holdout carved
# from the training set), the clean test set read once at the end.
_base_ = './lenet5_fashion-mnist-noisy40_sgd.py'
model = dict(backbone=dict(type='LeNet5BN'))
