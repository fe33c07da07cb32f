# The small-ResNet label-noise setting, sized for a CPU: the CIFAR-style
# ResNet-18 of resnet18_fashion-mnist-noisy40_sgd.py at a quarter of its
# width (16 base channels instead of 64; about 1/16 of the FLOPs), on a
# 5,000-image subset with 40% symmetric label noise, 15 epochs. As in the
# LeNet5BN settings, no augmentation and plain cross-entropy: with random
# crops, flips and label smoothing (its parent's recipe) SGD did not
# memorise the noise within a CPU-sized run and SAM did not beat it
# (docs/benchmarks.md). Val is the clean rest of the training set; the
# clean test set is read once at the end.
_base_ = './resnet18_fashion-mnist-noisy40_sgd.py'
_width = 16
model = dict(
    backbone=dict(stem_channels=_width, base_channels=_width),
    head=dict(in_channels=_width * 8,
              loss=dict(_delete_=True, type='CrossEntropyLoss',
                        loss_weight=1.0)))
_fmnist_train = dict(type='FashionMNIST', data_root='data/fashion_mnist',
                     split='train', pipeline=[dict(type='PackInputs')])
_subset = dict(num_samples=5000, data_seed=0)
train_dataloader = dict(num_workers=0, dataset=dict(
    **_subset, dataset=dict(_delete_=True, **_fmnist_train)))
val_dataloader = dict(num_workers=0, dataset=dict(**_subset))
test_dataloader = dict(num_workers=0)
param_scheduler = dict(T_max=15)
train_cfg = dict(max_epochs=15, val_interval=15)
