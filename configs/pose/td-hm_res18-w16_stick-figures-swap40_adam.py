# The pose label-noise setting: mmpose's top-down heatmap estimator (ResNet-18
# at a quarter of the width, random init, HeatmapHead, Adam as upstream) on
# generated stick figures, 40% of the training figures with their left and
# right keypoints swapped (the lever: label noise); clean val and test splits
# (200 figures each), CocoMetric AP. Choices on val, test read once. ~5 CPU
# minutes per Adam run.
_base_ = 'mmpose::body_2d_keypoint/topdown_heatmap/coco/' \
    'td-hm_res50_8xb64-210e_coco-256x192.py'
custom_imports = dict(imports=['arsam_mm'], allow_failed_imports=False)

max_epochs = 150
train_cfg = dict(max_epochs=max_epochs, val_interval=max_epochs)
param_scheduler = [
    dict(type='LinearLR', begin=0, end=100, start_factor=0.001,
         by_epoch=False),
    dict(type='MultiStepLR', begin=0, end=max_epochs,
         milestones=[int(0.8 * max_epochs), int(0.95 * max_epochs)],
         gamma=0.1, by_epoch=True)
]
auto_scale_lr = dict(enable=False)
default_hooks = dict(
    logger=dict(interval=50),
    checkpoint=dict(save_best=None, interval=max_epochs))

codec = dict(type='MSRAHeatmap', input_size=(64, 64), heatmap_size=(16, 16),
             sigma=1)
model = dict(
    backbone=dict(depth=18, base_channels=16, stem_channels=16,
                  init_cfg=None),
    head=dict(in_channels=128, deconv_out_channels=(64, 64, 64),
              decoder=codec),
    # Left and right are told apart by colour here, so no flip (in
    # training or test): a mirrored figure would swap the colours' sides.
    test_cfg=dict(flip_test=False))

train_pipeline = [
    dict(type='LoadImage'),
    dict(type='GetBBoxCenterScale'),
    dict(type='RandomBBoxTransform'),
    dict(type='TopdownAffine', input_size=codec['input_size']),
    dict(type='GenerateTarget', encoder=codec),
    dict(type='PackPoseInputs')
]
val_pipeline = [
    dict(type='LoadImage'),
    dict(type='GetBBoxCenterScale'),
    dict(type='TopdownAffine', input_size=codec['input_size']),
    dict(type='PackPoseInputs')
]
data_root = 'data/stick_figures_swap40/'
generate = dict(num_train=400, num_val=200, num_test=200, noise_rate=0.4,
                noise_type='swap')
figures = dict(type='StickFigureCocoDataset', data_root=data_root,
               generate=generate, bbox_file=None)
train_dataloader = dict(
    batch_size=32, num_workers=0, persistent_workers=False,
    dataset=dict(figures, ann_file='annotations/person_keypoints_train.json',
                 data_prefix=dict(img='train/'), pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=50, num_workers=0, persistent_workers=False,
    dataset=dict(figures, ann_file='annotations/person_keypoints_val.json',
                 data_prefix=dict(img='val/'), pipeline=val_pipeline))
test_dataloader = dict(
    batch_size=50, num_workers=0, persistent_workers=False,
    dataset=dict(figures, ann_file='annotations/person_keypoints_test.json',
                 data_prefix=dict(img='test/'), pipeline=val_pipeline))
val_evaluator = dict(ann_file=data_root + 'annotations/'
                     'person_keypoints_val.json')
test_evaluator = dict(ann_file=data_root + 'annotations/'
                      'person_keypoints_test.json')
randomness = dict(seed=0)
