"""The garment-scenes segmentation set (the segmentation family's setting),
generated from Fashion-MNIST-format idx files that this test writes (the
real files are not on CI machines), read through mmseg's registry."""
import json
import os.path as osp

import cv2
import numpy as np
import pytest
from mmseg.registry import DATASETS

SIZE = dict(num_train=40, num_val=10, num_test=10, img_size=32, seed=0)


def _write_idx(path, array):
    header = bytes([0, 0, 8, array.ndim]) + b''.join(
        int(n).to_bytes(4, 'big') for n in array.shape)
    with open(path, 'wb') as f:
        f.write(header + array.astype(np.uint8).tobytes())


@pytest.fixture(scope='module')
def fashion_root(tmp_path_factory):
    """Two hundred 'garments' per split: solid squares, the class in the
    label file."""
    root = tmp_path_factory.mktemp('fashion')
    images = np.zeros((200, 28, 28), np.uint8)
    images[:, 4:24, 4:24] = 255
    labels = np.arange(200) % 10
    for split in ('train', 't10k'):
        _write_idx(str(root / f'{split}-images-idx3-ubyte'), images)
        _write_idx(str(root / f'{split}-labels-idx1-ubyte'), labels)
    return str(root)


def _build(data_root, fashion_root, split, noise_rate):
    from mmengine.registry import init_default_scope
    init_default_scope('mmseg')
    return DATASETS.build(dict(
        type='GarmentScenesDataset', data_root=data_root,
        generate=dict(SIZE, fashion_root=fashion_root, noise_rate=noise_rate),
        data_prefix=dict(img_path=f'img_dir/{split}',
                         seg_map_path=f'ann_dir/{split}'),
        pipeline=[dict(type='LoadImageFromFile'),
                  dict(type='LoadAnnotations'), dict(type='PackSegInputs')]))


def _ann(root, split, idx):
    return cv2.imread(osp.join(root, 'ann_dir', split, f'{idx:05d}.png'), 0)


def test_object_flips_touch_training_labels_only(tmp_path, fashion_root):
    clean_root, noisy_root = str(tmp_path / 'clean'), str(tmp_path / 'noisy')
    noisy = _build(noisy_root, fashion_root, 'train', 0.4)
    _build(clean_root, fashion_root, 'train', 0.0)
    assert noisy.metainfo['classes'][0] == 'background'
    assert len(noisy.metainfo['classes']) == 11
    sample = noisy[0]['data_samples'].gt_sem_seg.data
    assert sample.shape[-2:] == (32, 32) and 0 < int(sample.max()) <= 10

    with open(osp.join(noisy_root, 'train_objects.json')) as f:
        objects = json.load(f)
    clean, flipped = np.array(objects['clean']), np.array(objects['noisy'])
    assert sum(objects['per_scene']) == len(clean)
    assert (clean != flipped).sum() == round(0.4 * len(clean))
    # Held-out splits are identical with and without noise; training
    # scenes differ only in their labels.
    for split, num in (('val', 10), ('test', 10), ('train', 40)):
        for idx in range(num):
            img = [cv2.imread(osp.join(r, 'img_dir', split, f'{idx:05d}.png'))
                   for r in (clean_root, noisy_root)]
            np.testing.assert_array_equal(img[0], img[1])
            if split != 'train':
                np.testing.assert_array_equal(_ann(clean_root, split, idx),
                                              _ann(noisy_root, split, idx))
    changed = sum(not np.array_equal(_ann(clean_root, 'train', i),
                                     _ann(noisy_root, 'train', i))
                  for i in range(40))
    assert changed > 0


def test_a_set_made_with_other_noise_is_refused(tmp_path, fashion_root):
    root = str(tmp_path / 'scenes')
    _build(root, fashion_root, 'val', 0.4)
    with pytest.raises(ValueError, match='delete the folder'):
        _build(root, fashion_root, 'val', 0.2)


def test_missing_fashion_mnist_names_the_script(tmp_path):
    with pytest.raises(FileNotFoundError, match='prepare_fashion_mnist'):
        _build(str(tmp_path / 's'), str(tmp_path / 'none'), 'val', 0.4)
