# mmseg's FCN (ResNet-18-D8 at half width, random init) on the generated
# shapes scenes: 200 training scenes in which 40% of the shapes carry
# another shape's class, each class with its own tint; SGD, 48 epochs.
_base_ = [
    '../_base_/fcn_r18-d8_64x64_sgd.py',
    '../_base_/shapes_seg-colour-noisy40_64x64.py',
]
model = dict(
    backbone=dict(base_channels=32, stem_channels=32),
    decode_head=dict(in_channels=256, channels=64, num_classes=4),
    auxiliary_head=dict(in_channels=128, channels=32, num_classes=4))

max_iters = 1200
param_scheduler = [
    dict(type='PolyLR', eta_min=1e-4, power=0.9, begin=0, end=max_iters,
         by_epoch=False)
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters,
                 val_interval=max_iters)
default_hooks = dict(
    checkpoint=dict(type='CheckpointHook', by_epoch=False,
                    interval=max_iters))
