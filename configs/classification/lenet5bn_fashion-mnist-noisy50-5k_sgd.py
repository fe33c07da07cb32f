# The third label-noise setting: lenet5bn_fashion-mnist-noisy40_sgd.py with
# another subset size, noise rate and length: 5,000 training images, 50%
# symmetric label noise, 60 epochs (about the same number of iterations).
# Same splits and rules: val is the clean rest of the training set, the
# clean test set is read once at the end.
_base_ = './lenet5bn_fashion-mnist-noisy40_sgd.py'
_subset = dict(num_samples=5000, data_seed=0)
train_dataloader = dict(dataset=dict(noise_rate=0.5, **_subset))
val_dataloader = dict(dataset=dict(**_subset))
param_scheduler = dict(T_max=60)
train_cfg = dict(max_epochs=60, val_interval=60)
