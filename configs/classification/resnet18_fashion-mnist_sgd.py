# Real data that installs offline: Fashion-MNIST from Debian's
# dataset-fashion-mnist (see tools/prepare_fashion_mnist.sh), read by
# mmpretrain's own FashionMNIST class (test_mode=True makes it read the test
# files: split alone does not). CIFAR-style ResNet-18, one channel.
_base_ = [
    'mmpretrain::_base_/models/resnet18_cifar.py',
    'mmpretrain::_base_/default_runtime.py',
]
custom_imports = dict(imports=['arsam_mm'], allow_failed_imports=False)

model = dict(
    backbone=dict(in_channels=1),
    head=dict(num_classes=10,
              loss=dict(type='LabelSmoothLoss', label_smooth_val=0.1,
                        loss_weight=1.0)))
data_preprocessor = dict(num_classes=10, mean=[72.94], std=[90.02])
train_pipeline = [
    dict(type='RandomCrop', crop_size=28, padding=2),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='PackInputs'),
]
test_pipeline = [dict(type='PackInputs')]
train_dataloader = dict(
    batch_size=128,
    num_workers=2,
    dataset=dict(type='FashionMNIST', data_root='data/fashion_mnist',
                 split='train', pipeline=train_pipeline),
    sampler=dict(type='DefaultSampler', shuffle=True))
val_dataloader = dict(
    batch_size=256,
    num_workers=2,
    dataset=dict(type='FashionMNIST', data_root='data/fashion_mnist',
                 split='test', test_mode=True, pipeline=test_pipeline),
    sampler=dict(type='DefaultSampler', shuffle=False))
val_evaluator = dict(type='Accuracy', topk=(1, ))
test_dataloader = val_dataloader
test_evaluator = val_evaluator
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='SGD', lr=0.05, momentum=0.9, weight_decay=1e-3))
param_scheduler = dict(
    type='CosineAnnealingLR', by_epoch=True, T_max=30,
    convert_to_iter_based=True)
train_cfg = dict(by_epoch=True, max_epochs=30, val_interval=5)
val_cfg = dict()
test_cfg = dict()
