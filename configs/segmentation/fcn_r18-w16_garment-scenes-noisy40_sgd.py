# A segmentation label-noise setting: mmseg's FCN (ResNet-18-D8 at a quarter of
# the width, random init) on Fashion-MNIST garment scenes whose training
# objects carry 40% class flips; SGD. Choices on val, test read once.
_base_ = [
    '../_base_/fcn_r18-d8_64x64_sgd.py',
    '../_base_/garment_scenes_64x64.py',
]
model = dict(
    backbone=dict(base_channels=16, stem_channels=16),
    decode_head=dict(in_channels=128, channels=64, num_classes=11),
    auxiliary_head=dict(in_channels=64, channels=32, num_classes=11))

max_iters = 2000
param_scheduler = [
    dict(type='PolyLR', eta_min=1e-4, power=0.9, begin=0, end=max_iters,
         by_epoch=False)
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters,
                 val_interval=max_iters)
default_hooks = dict(
    checkpoint=dict(type='CheckpointHook', by_epoch=False,
                    interval=max_iters))
