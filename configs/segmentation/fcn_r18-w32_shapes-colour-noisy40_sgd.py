# mmseg's FCN (ResNet-18-D8 at half width, random init) on the generated
# shapes scenes: 200 training scenes in which 40% of the shapes carry
# another shape's class, each class with its own tint; SGD, 48 epochs.
_base_ = [
    'mmseg::_base_/models/fcn_r50-d8.py',
    'mmseg::_base_/default_runtime.py',
    '../_base_/shapes_seg-colour-noisy40_64x64.py',
]
custom_imports = dict(imports=['arsam_mm'], allow_failed_imports=False)

norm_cfg = dict(type='BN', requires_grad=True)
model = dict(
    data_preprocessor=dict(size=(64, 64)),
    pretrained=None,
    backbone=dict(depth=18, base_channels=32, stem_channels=32,
                  norm_cfg=norm_cfg),
    decode_head=dict(in_channels=256, channels=64, num_classes=4,
                     norm_cfg=norm_cfg),
    auxiliary_head=dict(in_channels=128, channels=32, num_classes=4,
                        norm_cfg=norm_cfg))

optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='SGD', lr=0.05, momentum=0.9, weight_decay=5e-4))
max_iters = 1200
param_scheduler = [
    dict(type='PolyLR', eta_min=1e-4, power=0.9, begin=0, end=max_iters,
         by_epoch=False)
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters,
                 val_interval=max_iters)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=100, log_metric_by_epoch=False),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='CheckpointHook', by_epoch=False,
                    interval=max_iters),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    visualization=dict(type='SegVisualizationHook'))
randomness = dict(seed=0)
