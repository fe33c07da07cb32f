# The short-schedule label-noise setting: lenet5bn_fashion-mnist-noisy40_sgd.py
# on 5,000 training images, 12 epochs (480 iterations) at a constant
# learning rate (no schedule), as many hand-written loops train. The
# run length where ARSAM's stored PSF is reused over most of a short run.
# Same splits and rules: val is the clean rest of the training set, the
# clean test set is read once at the end.
_base_ = './lenet5bn_fashion-mnist-noisy40_sgd.py'
_subset = dict(num_samples=5000, data_seed=0)
train_dataloader = dict(dataset=dict(**_subset))
val_dataloader = dict(dataset=dict(**_subset))
param_scheduler = []
train_cfg = dict(max_epochs=12, val_interval=12)
