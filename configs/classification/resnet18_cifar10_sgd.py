# The ARSAM paper's CIFAR recipe (docs/algorithms.md, "ARSAM") with plain SGD:
# the reference its SAM and ARSAM twins below change one line of.
_base_ = 'mmpretrain::resnet/resnet18_8xb16_cifar10.py'
custom_imports = dict(imports=['arsam_mm'], allow_failed_imports=False)

model = dict(
    head=dict(loss=dict(type='LabelSmoothLoss', label_smooth_val=0.1,
                        loss_weight=1.0)))
train_dataloader = dict(batch_size=128)  # one GPU, batch 128
val_dataloader = dict(batch_size=128)
test_dataloader = val_dataloader
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='SGD', lr=0.05, momentum=0.9, weight_decay=1e-3))
param_scheduler = dict(
    _delete_=True, type='CosineAnnealingLR', by_epoch=True, T_max=200,
    convert_to_iter_based=True)  # cosine, stepped every iteration
train_cfg = dict(by_epoch=True, max_epochs=200, val_interval=10)
auto_scale_lr = dict(base_batch_size=128)
