# The long run (about 20,000 iterations): LeNet5BN on 55,000 Fashion-MNIST
# training images with 40% symmetric label noise, 47 epochs of 430
# iterations; val is the clean 5,000-image remainder of the training set,
# test the clean test set.
_base_ = './lenet5bn_fashion-mnist-noisy40_sgd.py'
_subset = dict(num_samples=55000)
train_dataloader = dict(dataset=dict(**_subset))
val_dataloader = dict(dataset=dict(**_subset))
param_scheduler = dict(T_max=47)
train_cfg = dict(max_epochs=47, val_interval=47)
