# A small, fast real-data recipe for side-by-side comparisons on a CPU
# (tools/benchmark.py): mmpretrain's LeNet-5 on Fashion-MNIST (Debian's
# dataset-fashion-mnist, see tools/prepare_fashion_mnist.sh), read by
# mmpretrain's own FashionMNIST class. mmpretrain 1.2.0's MNIST classes read
# the test files only with test_mode=True (split is only validated), so the
# test split names both.
_base_ = 'mmpretrain::lenet/lenet5_mnist.py'
custom_imports = dict(imports=['arsam_mm'], allow_failed_imports=False)

data_preprocessor = dict(mean=[72.94], std=[90.02], num_classes=10)
_data = dict(type='FashionMNIST', data_root='data/fashion_mnist',
             download=False,
             pipeline=[dict(type='Resize', scale=32), dict(type='PackInputs')])
train_dataloader = dict(
    num_workers=0, persistent_workers=False,
    dataset=dict(_delete_=True, split='train', **_data))
val_dataloader = dict(
    batch_size=1000, num_workers=0, persistent_workers=False,
    dataset=dict(_delete_=True, split='test', test_mode=True, **_data))
test_dataloader = val_dataloader
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='SGD', lr=0.05, momentum=0.9, weight_decay=1e-3))
param_scheduler = dict(
    _delete_=True, type='CosineAnnealingLR', by_epoch=True, T_max=5,
    convert_to_iter_based=True)
train_cfg = dict(by_epoch=True, max_epochs=5, val_interval=5)
