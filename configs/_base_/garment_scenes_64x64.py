# Fashion-MNIST garment scenes (arsam_mm/datasets/garment_scenes.py): 500
# train scenes with 40% of the objects relabelled, 500 clean val scenes
# (other training garments), 500 clean test scenes (Fashion-MNIST's test
# garments). Generated under data_root on first use from the Fashion-MNIST
# files (`bash tools/prepare_fashion_mnist.sh`); read by mmseg's pipeline.
# Pipelines and IoUMetric as in the shapes set.
_base_ = './shapes_seg_64x64.py'
dataset_type = 'GarmentScenesDataset'
data_root = 'data/garment_scenes_noisy40'
generate = dict(fashion_root='data/fashion_mnist', noise_rate=0.4)
scenes = dict(type=dataset_type, data_root=data_root, generate=generate)
train_dataloader = dict(batch_size=16, dataset=scenes)
val_dataloader = dict(batch_size=16, dataset=scenes)
test_dataloader = dict(
    batch_size=16,
    dataset=dict(
        scenes,
        data_prefix=dict(img_path='img_dir/test', seg_map_path='ann_dir/test')))
