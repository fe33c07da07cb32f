"""The shapes segmentation set's options for the segmentation family's
setting: whole-object class flips in the training split, a test split and
class tints; without them the set is the one the demo and the tests use."""
import hashlib
import json
import os
import os.path as osp

import cv2
import numpy as np
import pytest
from mmseg.registry import DATASETS

from arsam_mm.datasets.shapes_seg import SHAPE_PALETTE, generate_shapes_dataset

SIZE = dict(num_train=30, num_val=6, img_size=32, seed=0)


def _digest(root):
    sha = hashlib.sha256()
    for folder, _, files in sorted(os.walk(root)):
        for name in sorted(files):
            if name.endswith('.png'):
                with open(osp.join(folder, name), 'rb') as f:
                    sha.update(name.encode() + f.read())
    return sha.hexdigest()[:16]


def _read(root, kind, split, idx):
    flag = cv2.IMREAD_UNCHANGED if kind == 'ann_dir' else cv2.IMREAD_COLOR
    return cv2.imread(osp.join(root, kind, split, f'{idx:05d}.png'), flag)


def test_the_default_set_is_unchanged_by_the_options(tmp_path):
    # The digest of the set as generated before noise_rate, num_test and
    # class_colours existed: the options must not move the demo's data.
    root = generate_shapes_dataset(str(tmp_path / 'plain'), **SIZE)
    assert _digest(root) == '5979fd0ae6751dc1'
    assert not osp.exists(osp.join(root, 'train_objects.json'))


def test_object_flips_touch_training_labels_only(tmp_path):
    clean = generate_shapes_dataset(str(tmp_path / 'clean'), **SIZE,
                                    num_test=5)
    noisy = generate_shapes_dataset(str(tmp_path / 'noisy'), **SIZE,
                                    num_test=5, noise_rate=0.4)
    with open(osp.join(noisy, 'train_objects.json')) as f:
        objects = json.load(f)
    before, after = np.array(objects['clean']), np.array(objects['noisy'])
    assert sum(objects['per_scene']) == len(before)
    assert (before != after).sum() == round(0.4 * len(before))
    assert set(after.tolist()) <= {1, 2, 3}
    for split, num in (('train', 30), ('val', 6), ('test', 5)):
        for idx in range(num):
            np.testing.assert_array_equal(_read(clean, 'img_dir', split, idx),
                                          _read(noisy, 'img_dir', split, idx))
            ann = [_read(r, 'ann_dir', split, idx) for r in (clean, noisy)]
            if split != 'train':
                np.testing.assert_array_equal(*ann)
            else:  # a flip relabels shape pixels, never the background
                np.testing.assert_array_equal(ann[0] == 0, ann[1] == 0)
    changed = sum(not np.array_equal(_read(clean, 'ann_dir', 'train', i),
                                     _read(noisy, 'ann_dir', 'train', i))
                  for i in range(30))
    assert changed > 0


def test_class_tints_follow_the_palette(tmp_path):
    root = generate_shapes_dataset(str(tmp_path / 'tinted'), **SIZE,
                                   class_colours=True)
    for idx in range(6):
        img, ann = (_read(root, 'img_dir', 'val', idx),
                    _read(root, 'ann_dir', 'val', idx))
        for cls in set(np.unique(ann).tolist()) - {0}:
            # The tint is written in the array's channel order, shifted
            # by at most 40 per channel.
            mean = img[ann == cls].mean(0)
            assert np.abs(mean - SHAPE_PALETTE[cls]).max() <= 40


def test_the_noisy_set_through_mmseg_and_a_changed_spec_refused(tmp_path):
    from mmengine.registry import init_default_scope
    init_default_scope('mmseg')
    root = str(tmp_path / 'set')
    generate = dict(SIZE, num_test=4, noise_rate=0.4, class_colours=True)
    test = DATASETS.build(dict(
        type='ShapesSegDataset', data_root=root, generate=generate,
        data_prefix=dict(img_path='img_dir/test', seg_map_path='ann_dir/test'),
        pipeline=[dict(type='LoadImageFromFile'),
                  dict(type='LoadAnnotations'), dict(type='PackSegInputs')]))
    assert len(test) == 4
    with pytest.raises(ValueError, match='delete the folder'):
        generate_shapes_dataset(root, **dict(generate, noise_rate=0.2))
