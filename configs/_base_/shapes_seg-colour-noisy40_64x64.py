# The generated shapes set with label noise (arsam_mm/datasets/shapes_seg.py):
# 200 training scenes in which 40% of the shapes carry another shape's class
# (whole-object flips), 500 clean val scenes, 500 clean test scenes; each
# class tinted with its own colour (`class_colours`).
# Generated under data_root on first use; read by mmseg's pipeline.
_base_ = './shapes_seg_64x64.py'
data_root = 'data/arsam_shapes_colour_noisy40'
generate = dict(num_train=200, num_val=500, num_test=500, noise_rate=0.4,
                class_colours=True)
scenes = dict(data_root=data_root, generate=generate)
train_dataloader = dict(dataset=scenes)
val_dataloader = dict(dataset=scenes)
test_dataloader = dict(
    batch_size=8,
    num_workers=0,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type='ShapesSegDataset',
        data_root=data_root,
        generate=generate,
        data_prefix=dict(img_path='img_dir/test', seg_map_path='ann_dir/test'),
        pipeline={{_base_.test_pipeline}}))
