"""Annotation noise and the test split of the stick-figure keypoint set
(the pose family's setting), read through mmpose's registry."""
import json
import os.path as osp

import numpy as np
import pytest
from mmpose.registry import DATASETS

from arsam_mm.datasets.stick_figures import COCO_KEYPOINTS

SIZE = dict(num_train=20, num_val=6, img_size=64, seed=0)


def _keypoints(root, split):
    with open(osp.join(root, 'annotations',
                       f'person_keypoints_{split}.json')) as f:
        anns = json.load(f)['annotations']
    return np.array([a['keypoints'] for a in anns]).reshape(len(anns), 17,
                                                             3)[..., :2]


def _build(root, split, **generate):
    from mmengine.registry import init_default_scope
    init_default_scope('mmpose')
    return DATASETS.build(dict(
        type='StickFigureCocoDataset', data_root=root,
        generate=dict(SIZE, **generate),
        ann_file=f'annotations/person_keypoints_{split}.json',
        data_prefix=dict(img=f'{split}/'), test_mode=split != 'train',
        pipeline=[]))


@pytest.mark.parametrize('noise_type', ['jitter', 'swap'])
def test_noise_touches_the_listed_training_figures_only(tmp_path,
                                                        noise_type):
    clean, noisy = str(tmp_path / 'clean'), str(tmp_path / 'noisy')
    _build(clean, 'train', num_test=4)
    noisy_set = _build(noisy, 'train', num_test=4, noise_rate=0.25,
                       noise_type=noise_type, jitter=0.1)
    assert len(noisy_set) == 20
    with open(osp.join(noisy, 'train_figures.json')) as f:
        listed = json.load(f)['noisy']
    assert len(listed) == 5
    before, after = _keypoints(clean, 'train'), _keypoints(noisy, 'train')
    moved = np.abs(after - before).max(axis=(1, 2)) > 0.01
    assert sorted(np.flatnonzero(moved).tolist()) == listed
    if noise_type == 'swap':  # each left_* now holds its right_*, by name
        mirror = [COCO_KEYPOINTS.index(n.replace('left', '#').replace(
            'right', 'left').replace('#', 'right')) for n in COCO_KEYPOINTS]
        np.testing.assert_allclose(after[listed], before[listed][:, mirror])
    else:  # within jitter * figure height (<= 0.8 * image) per axis
        assert (np.abs(after - before) <= 0.1 * 0.8 * 64 + 1e-6).all()
    for split in ('val', 'test'):  # clean and identical
        np.testing.assert_array_equal(_keypoints(clean, split),
                                      _keypoints(noisy, split))
    assert len(_build(noisy, 'test', num_test=4, noise_rate=0.25,
                      noise_type=noise_type, jitter=0.1)) == 4


def test_bad_noise_arguments_name_the_key(tmp_path):
    with pytest.raises(ValueError, match='generate.noise_type'):
        _build(str(tmp_path / 'a'), 'train', noise_rate=0.4,
               noise_type='drop')
    with pytest.raises(ValueError, match='generate.noise_rate'):
        _build(str(tmp_path / 'b'), 'train', noise_rate=1.0)
