# A one-config ARSAM run: mmseg's FCN (ResNet-18-D8, random init) on the
# generated shapes set, on CPU in about a minute. The end-to-end check of
# the tests and of tools/gpu_check.sh; the demo that compares SGD,
# SAM and ARSAM is bash tools/run_demo.sh.
_base_ = [
    '../_base_/fcn_r18-d8_64x64_sgd.py',
    '../_base_/shapes_seg_64x64.py',
]
model = dict(
    decode_head=dict(in_channels=512, channels=128, num_classes=4),
    auxiliary_head=dict(in_channels=256, channels=64, num_classes=4))

# The one line that makes this ARSAM (window 20 so a short run adapts).
optim_wrapper = dict(type='ARSAMOptimWrapper', rho=0.05, window=20)

param_scheduler = [
    dict(type='PolyLR', eta_min=1e-4, power=0.9, begin=0, end=400,
         by_epoch=False)
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=400, val_interval=400)
default_hooks = dict(
    logger=dict(interval=20),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=400))
