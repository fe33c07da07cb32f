"""NoisyLabelDataset over a real mmpretrain dataset (the generated shapes
classification set read by mmpretrain's CustomDataset)."""
import numpy as np
import pytest
from mmpretrain.registry import DATASETS

SIZE = dict(num_train=60, num_val=6, img_size=16, seed=0)


def _build(root, **kwargs):
    from mmengine.registry import init_default_scope
    # Whatever scope an earlier test left (mmseg for the segmentor tests):
    # these are mmpretrain datasets.
    init_default_scope('mmpretrain')
    pipeline = [dict(type='LoadImageFromFile'), dict(type='PackInputs')]
    return DATASETS.build(dict(
        type='NoisyLabelDataset',
        dataset=dict(type='ShapesClsDataset', data_root=root,
                     data_prefix='train', generate=SIZE, pipeline=pipeline),
        **kwargs))


@pytest.fixture(scope='module')
def root(tmp_path_factory):
    return str(tmp_path_factory.mktemp('cls') / 'shapes_cls')


def test_noise_fraction_subset_and_clean_labels(root):
    noisy = _build(root, noise_rate=0.4, num_samples=50, data_seed=3)
    inner = noisy.dataset
    assert len(noisy) == 50 and len(inner) == 60
    assert noisy.noise_fraction == pytest.approx(20 / 50)  # exactly 40%
    changed = 0
    for i in range(len(noisy)):
        info = noisy.get_data_info(i)
        source = inner.get_data_info(int(noisy.indices[i]))
        assert info['clean_gt_label'] == source['gt_label']  # kept
        assert info['img_path'] == source['img_path']
        changed += info['gt_label'] != info['clean_gt_label']
    assert changed == 20
    sample = noisy[0]  # the inner pipeline packs the noisy label
    assert int(sample['data_samples'].gt_label) == noisy.noisy_labels[0]
    assert noisy.metainfo['classes'] == inner.metainfo['classes']


def test_same_data_seed_same_labels_other_seed_other(root):
    a = _build(root, noise_rate=0.3, num_samples=40, data_seed=1)
    b = _build(root, noise_rate=0.3, num_samples=40, data_seed=1)
    c = _build(root, noise_rate=0.3, num_samples=40, data_seed=2)
    assert np.array_equal(a.indices, b.indices)
    assert np.array_equal(a.get_gt_labels(), b.get_gt_labels())
    assert not (np.array_equal(a.indices, c.indices)
                and np.array_equal(a.get_gt_labels(), c.get_gt_labels()))


def test_pair_noise_moves_to_the_next_class(root):
    noisy = _build(root, noise_rate=0.5, noise_type='pair')
    classes = len(noisy.metainfo['classes'])
    flipped = noisy.noisy_labels != noisy.clean_labels
    assert flipped.mean() == pytest.approx(0.5)
    assert np.array_equal(noisy.noisy_labels[flipped],
                          (noisy.clean_labels[flipped] + 1) % classes)


@pytest.mark.parametrize('kwargs, match', [
    (dict(noise_rate=1.5), r'NoisyLabelDataset\.noise_rate'),
    (dict(num_samples=1000), 'num_samples=1000'),
    (dict(noise_type='flip'), 'noise_type'),
])
def test_bad_values_name_the_key(root, kwargs, match):
    with pytest.raises(ValueError, match=match):
        _build(root, **kwargs)


def test_holdout_is_the_clean_complement_of_the_subset(root):
    train = _build(root, noise_rate=0.4, num_samples=45, data_seed=5)
    held = _build(root, num_samples=45, data_seed=5, holdout=True)
    assert len(held) == 60 - 45
    assert not set(train.indices) & set(held.indices)
    assert held.noise_fraction == 0.0
    with pytest.raises(ValueError, match='holdout'):
        _build(root, noise_rate=0.2, num_samples=45, holdout=True)
