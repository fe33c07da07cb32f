"""The split a shipped config names is the split it reads.

mmpretrain 1.2.0's FashionMNIST reads its training files unless
``test_mode=True`` (``split`` is only validated), so a test loader that
says ``split='test'`` alone evaluates on the 60,000 training images. The
Fashion-MNIST configs are checked on idx files this test writes with the
real sizes (60,000 training and 10,000 test images, every image unique and
marked with its file and index): the test loader reads the 10,000 test
images, the val holdout and the training subset share no index, and
neither shares an image with the test set. The generated seg/pose sets
are checked by the paths each loader names.
"""
import os.path as osp

import numpy as np
import pytest
from mmengine.config import Config
from mmengine.registry import init_default_scope
from test_configs import CONFIGS, _short, load_config

from arsam._checks import ConfigError
from arsam_mm.datasets.split_check import check_dataset_splits
from arsam_mm.runner.embedded import walk_dicts

LOADERS = ('train_dataloader', 'val_dataloader', 'test_dataloader')
SIZES = dict(train=60000, t10k=10000)


def _write_idx(path, array):
    header = bytes([0, 0, 8, array.ndim]) + b''.join(
        int(n).to_bytes(4, 'big') for n in array.shape)
    with open(path, 'wb') as f:
        f.write(header + array.astype(np.uint8).tobytes())


def _identity(img):
    """Which file and index an image of :func:`fashion_root` came from."""
    return bytes(np.asarray(img).reshape(-1)[:4])


@pytest.fixture(scope='module')
def fashion_root(tmp_path_factory):
    """Fashion-MNIST-format files of the real sizes; pixel 0 says the
    file (1: train, 2: t10k), pixels 1-3 the index."""
    root = tmp_path_factory.mktemp('fashion_mnist')
    for marker, (prefix, count) in enumerate(SIZES.items(), start=1):
        index = np.arange(count)
        images = np.zeros((count, 28, 28), np.uint8)
        images[:, 0, 0] = marker
        images[:, 0, 1] = index // 65536
        images[:, 0, 2] = index // 256 % 256
        images[:, 0, 3] = index % 256
        _write_idx(str(root / f'{prefix}-images-idx3-ubyte'), images)
        _write_idx(str(root / f'{prefix}-labels-idx1-ubyte'), index % 10)
    return str(root)


def _uses(cfg, type_name):
    found = []
    walk_dicts([cfg.get(k) for k in LOADERS],
               lambda d: found.append(d.get('type') == type_name))
    return any(found)


FASHION = [p for p in CONFIGS if _uses(load_config(p), 'FashionMNIST')]


def _without_pipelines(node):
    if isinstance(node, dict):
        return {k: _without_pipelines(v) for k, v in node.items()
                if k != 'pipeline'}
    return node


_BUILT = {}


def _read(cfg, loader, root):
    """Image identities (and the wrapper's indices, if any) of a loader's
    data set, built once for every config that shares it (pipelines
    aside)."""
    from mmpretrain.registry import DATASETS
    dataset = cfg[loader].dataset.to_dict()

    def set_root(node):
        if 'data_root' in node:
            node['data_root'] = root
    walk_dicts(dataset, set_root)
    key = repr(_without_pipelines(dataset))
    if key not in _BUILT:
        init_default_scope('mmpretrain')
        built = DATASETS.build(dataset)
        indices = getattr(built, 'indices', None)
        _BUILT[key] = (
            [_identity(built.get_data_info(i)['img'])
             for i in range(len(built))],
            None if indices is None else {int(i) for i in indices})
    return _BUILT[key]


def test_every_fashion_mnist_config_is_found():
    assert len(FASHION) >= 30


@pytest.mark.slow
@pytest.mark.parametrize('path', FASHION, ids=_short)
def test_fashion_mnist_test_split_is_the_test_set(path, fashion_root):
    cfg = load_config(path)
    train, train_indices = _read(cfg, 'train_dataloader', fashion_root)
    val, val_indices = _read(cfg, 'val_dataloader', fashion_root)
    test, _ = _read(cfg, 'test_dataloader', fashion_root)
    assert len(test) == 10000
    assert {t[0] for t in test} == {2}  # every image from the t10k file
    assert not set(train) & set(test)
    if cfg.val_dataloader.dataset != cfg.test_dataloader.dataset:
        # A holdout of the training set, not the test set.
        assert not set(val) & set(test)
        assert not set(val) & set(train)
        if train_indices is not None and val_indices is not None:
            assert not train_indices & val_indices


def _mnist_cfg(**test_dataset):
    return Config(dict(test_dataloader=dict(dataset=dict(
        type='FashionMNIST', data_root='data/fashion_mnist', **test_dataset))))


@pytest.mark.parametrize('dataset, reads', [
    (dict(split='test'), 'training'),
    (dict(split='train', test_mode=True), 'test'),
])
def test_a_split_that_reads_other_files_is_refused(dataset, reads):
    with pytest.raises(ConfigError) as error:
        check_dataset_splits(_mnist_cfg(**dataset))
    message = str(error.value)
    assert message.startswith('test_dataloader.dataset.test_mode: ')
    assert "picks its files by test_mode, not split" in message
    assert f'reads the {reads} images' in message
    check_dataset_splits(_mnist_cfg(split='test', test_mode=True))
    check_dataset_splits(_mnist_cfg(split='train'))


def test_the_noisy_label_wrapper_refuses_it_before_loading(tmp_path):
    from mmpretrain.registry import DATASETS
    init_default_scope('mmpretrain')
    with pytest.raises(ConfigError, match=r'^NoisyLabelDataset\.dataset\.'
                       r"test_mode: split='test' with test_mode=False"):
        # No files under tmp_path: refused before mmpretrain looks.
        DATASETS.build(dict(
            type='NoisyLabelDataset', num_samples=10, dataset=dict(
                type='FashionMNIST', data_root=str(tmp_path),
                split='test')))


def test_train_py_stops_on_it_before_the_config_dump(tmp_path, capsys):
    from arsam_mm.runner import cli
    config = tmp_path / 'wrong_test_split.py'
    config.write_text(
        "_base_ = '" + osp.join(osp.dirname(osp.dirname(__file__)), 'configs',
                                'classification', 'lenet5_fashion-mnist_sgd.py')
        + "'\ntest_dataloader = dict(dataset=dict(test_mode=False))\n")
    with pytest.raises(SystemExit, match='test_dataloader.dataset.test_mode'):
        cli([str(config), '--work-dir', str(tmp_path / 'work')])


GENERATED = ('ShapesSegDataset', 'GarmentScenesDataset',
             'StickFigureCocoDataset')


@pytest.mark.parametrize(
    'path', [p for p in CONFIGS
             if any(_uses(load_config(p), t) for t in GENERATED)],
    ids=_short)
def test_generated_sets_read_the_split_each_loader_names(path):
    """Each loader's image and annotation paths (and the evaluator's
    annotation file) name its own split: test reads ``test``, unless the
    config evaluates its test loader on val, as upstream configs do."""
    cfg = load_config(path)
    for loader in LOADERS:
        paths = []
        walk_dicts(cfg[loader].dataset, lambda d: paths.extend(
            str(v) for k, v in d.items()
            if k in ('ann_file', 'img_path', 'seg_map_path', 'img')))
        split = loader.split('_')[0]
        named = {s for s in ('train', 'val', 'test') if any(
            s in osp.basename(p.rstrip('/')) for p in paths)}
        assert named == {split} or (split == 'test' and named == {'val'}), (
            loader, paths)
        evaluator = cfg.get(f'{split}_evaluator', {})
        if split != 'train' and isinstance(evaluator, dict) and (
                evaluator.get('ann_file')):
            assert osp.basename(evaluator['ann_file']).split('.')[0].endswith(
                named.pop()), evaluator['ann_file']


@pytest.mark.slow
def test_mmpretrain_reads_mnist_files_by_test_mode(fashion_root):
    """The behaviour the guard exists for (docs/design.md, "Private APIs
    we rely on"): split='test' alone reads the training files. Should
    mmpretrain change it, this fails and the guard can go."""
    from mmpretrain.datasets import FashionMNIST
    assert len(FashionMNIST(data_root=fashion_root, split='test',
                            download=False)) == 60000
    assert len(FashionMNIST(data_root=fashion_root, split='test',
                            test_mode=True, download=False)) == 10000
