# The small-ResNet label-noise setting, sized for a CPU: the CIFAR-style
# ResNet-18 of resnet18_fashion-mnist-noisy40_sgd.py at a quarter of its
# width (16 base channels instead of 64; about 1/16 of the FLOPs), trained
# on a 5,000-image subset with 40% symmetric label noise. Val is the clean
# rest of the training set; the clean test set is read once at the end.
_base_ = './resnet18_fashion-mnist-noisy40_sgd.py'
_width = 16
model = dict(
    backbone=dict(stem_channels=_width, base_channels=_width),
    head=dict(in_channels=_width * 8))
_subset = dict(num_samples=5000, data_seed=0)
train_dataloader = dict(num_workers=0, dataset=dict(**_subset))
val_dataloader = dict(num_workers=0, dataset=dict(**_subset))
test_dataloader = dict(num_workers=0)
param_scheduler = dict(T_max=20)
train_cfg = dict(max_epochs=20, val_interval=20)
